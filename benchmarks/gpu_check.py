"""The first thing to run on a GPU machine: does every entry train, fast and
finite, on one GPU and on all of them?

    python benchmarks/gpu_check.py [--entries dcgan wgan_gp] [--steps 300] [--json out.json]
    python benchmarks/gpu_check.py --tiny      # CPU smoke mode: tiny networks, 2 logical CPUs (CI runs it)

For each entry at its default size (its `tiny:` size with --tiny), on one
device: XLA off and on, and mixed precision (mixed_float16 on GPU,
mixed_bfloat16 on CPU), each for `--steps` steps; then MirroredStrategy over
every visible GPU (two logical CPUs with --tiny). It prints images/s, the
fraction of the device's measured float32 matmul rate, whether every loss
stayed finite, and, for the mirrored run, whether the replicas' weights are
equal. An XLA failure (an op without a kernel) is reported, not fatal; a
non-finite loss or unequal replicas makes the exit code 1.
"""

import argparse
import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))


def configure(tiny):
    """Devices must be set before TensorFlow runs anything."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    os.environ["GANZOO_XLA_PROBE"] = "0"  # each mode here is chosen explicitly
    import tensorflow as tf

    if tiny:
        tf.config.set_visible_devices([], "GPU")
        cpu = tf.config.list_physical_devices("CPU")[0]
        tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    return tf


def finite_losses(history):
    import numpy as np

    return all(np.isfinite(v).all() for key, v in history.history.items() if "loss" in key)


def train(name, options, batch_size, steps, tiny, strategy=None):
    """`(images/s, FLOPs per image, losses finite, model)` of `steps` steps on random data."""
    import keras
    import tensorflow as tf

    import ganzoo
    from run import batch_of, fit_rate, train_step_flops

    keras.utils.set_random_seed(0)
    overrides = {**(ganzoo.registry.tiny_overrides(name) if tiny else {}), **options}
    scope = strategy.scope() if strategy is not None else _null()
    with scope:
        model = ganzoo.load(name, **overrides)
    batch = batch_of(model, batch_size)
    flops = train_step_flops(model, batch) / batch_size if strategy is None else None
    data = tf.data.Dataset.from_tensors(batch).repeat()
    window = max(steps // 5, 1)
    rate = fit_rate(model, data, batch_size, window, rounds=5, warmup=2)
    history = model.fit(data, steps_per_epoch=2, epochs=1, verbose=0)
    return rate, flops, finite_losses(history), model


class _null:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def replicas_equal(model):
    """Every mirrored variable holds the same values on every replica."""
    import numpy as np

    for variable in model.variables:
        values = getattr(variable, "values", None)
        if values and len(values) > 1:
            first = values[0].numpy()
            if not all(np.array_equal(first, v.numpy()) for v in values[1:]):
                return False
    return True


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tiny", action="store_true", help="CPU smoke mode: tiny networks, 2 logical CPUs, few steps")
    parser.add_argument("--entries", nargs="+", default=None)
    parser.add_argument("--steps", type=int, default=None, help="steps per mode (default 300; 10 with --tiny)")
    parser.add_argument("--json")
    args = parser.parse_args()
    tf = configure(args.tiny)
    import keras

    import ganzoo
    from run import matmul_gflops

    gpus = tf.config.list_logical_devices("GPU")
    if not gpus and not args.tiny:
        print("No GPU is visible to TensorFlow (install ganzoo[gpu] and check `nvidia-smi`). "
              "For the CPU smoke test, run with --tiny.", file=sys.stderr)
        return 2
    steps = args.steps or (10 if args.tiny else 300)
    device = "CPU" if args.tiny else f"{len(gpus)} GPU(s)"
    ceiling = matmul_gflops(512 if args.tiny else 8192)
    mixed = "mixed_bfloat16" if args.tiny else "mixed_float16"
    print(f"{device}: float32 matmul {ceiling:.0f} GFLOP/s; {steps} steps per mode\n")
    print(f"{'entry':10s} {'mode':22s} {'images/s':>10} {'of matmul':>9}  finite  replicas")
    entries = args.entries or ganzoo.list_models()
    devices = tf.config.list_logical_devices("CPU" if args.tiny else "GPU")
    # One strategy for every entry: strategies made one after another in a process can reuse
    # collective instance keys, and their all-reduces then meet tensors of another model.
    strategy = tf.distribute.MirroredStrategy([d.name for d in devices]) if len(devices) > 1 else None
    rows, failed = [], False
    for name in entries:
        train_section = ganzoo.registry.train_settings(name)
        batch_size = 8 if args.tiny else train_section["batch_size"]
        modes = [("float32", {"jit_compile": False}), ("float32 + XLA", {"jit_compile": True}),
                 (mixed, {"jit_compile": False, "_policy": mixed})]
        for label, options in modes:
            policy = options.pop("_policy", "float32")
            keras.mixed_precision.set_global_policy(policy)
            try:
                rate, flops, finite, _ = train(name, options, batch_size, steps, args.tiny)
            except Exception as error:  # XLA without a kernel for an op, or a mode an entry refuses
                row = dict(entry=name, mode=label, error=f"{type(error).__name__}: {str(error).splitlines()[0][:100]}")
                print(f"{name:10s} {label:22s} {'failed':>10}            {row['error']}", flush=True)
                rows.append(row)
                continue
            finally:
                keras.mixed_precision.set_global_policy("float32")
                keras.backend.clear_session()
            fraction = rate * flops / 1e9 / ceiling if flops else None
            failed |= not finite
            rows.append(dict(entry=name, mode=label, images_per_s=rate, fraction=fraction, finite=finite))
            shown = f"{fraction:9.0%}" if fraction is not None else f"{'':9s}"
            print(f"{name:10s} {label:22s} {rate:10.0f} {shown}  {'yes' if finite else 'NO':6s}", flush=True)
        if strategy is not None:
            rate, _, finite, model = train(name, {"jit_compile": False}, batch_size * len(devices), steps, args.tiny,
                                           strategy=strategy)
            equal = replicas_equal(model)
            failed |= not (finite and equal)
            rows.append(dict(entry=name, mode=f"mirrored x{len(devices)}", images_per_s=rate, finite=finite,
                             replicas_equal=equal))
            print(f"{name:10s} {f'mirrored x{len(devices)}':22s} {rate:10.0f} {'':9s}  {'yes' if finite else 'NO':6s}  "
                  f"{'equal' if equal else 'DIFFER'}", flush=True)
            keras.backend.clear_session()
    if args.json:
        Path(args.json).write_text(json.dumps({"device": device, "matmul_gflops": ceiling, "rows": rows}, indent=1))
    print("\nAll checks passed." if not failed else "\nA check FAILED: a loss went non-finite or replicas differ.")
    return 1 if failed else 0


if __name__ == "__main__":
    start = time.time()
    code = main()
    print(f"({time.time() - start:.0f} s)")
    sys.exit(code)
