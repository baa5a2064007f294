"""ganzoo's benchmark suite: how close each entry trains to this machine's limit.

    python benchmarks/run.py [--quick] [--entries dcgan cgan] [--json benchmarks/results/benchmarks.json]

Prints, and writes as JSON:

1. the float32 matmul rate through TF (4096^2), the ceiling;
2. per entry and size: training images/s, the FLOPs of one training step per
   image (counted from the step's graph: every convolution, its two
   gradients and every matmul), and the fraction of the matmul rate reached;
3. per entry: generation images/s (batch 256) and single-request latency
   (p50/p99 of 200 calls) of the exported SavedModel;
4. the input pipeline's cost: DCGAN trained from `ganzoo.data` against the
   same model fed one tensor already in memory;
5. the peak resident memory of a `ganzoo train dcgan` process.

Rates are the best of 5 rounds: on a shared machine a round can only be
slowed by others, so the fastest is the least disturbed.
"""

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import tensorflow as tf
import keras

import ganzoo

# (entry, data_shape) to train; the first of each entry is its default.
SIZES = {
    "dcgan": [(32, 32, 1), (16, 16, 1), (64, 64, 1), (128, 128, 1)],
    "cgan": [(32, 32, 1), (64, 64, 1)],
    "wgan": [(32, 32, 1), (64, 64, 1)],
    "wgan_gp": [(32, 32, 1), (64, 64, 1)],
    "cyclegan": [(32, 32, 3), (64, 64, 3)],
    "pggan": [(32, 32, 1), (64, 64, 1)],
    "vanilla": [(2,), (32, 32, 1)],
}
ROUNDS = 5
ROUND_SECONDS = 2.0  # each timed round runs about this long


def best_rate(run, items, rounds=ROUNDS):
    """Items/s of the fastest of `rounds` calls of `run`, each doing `items`."""
    best = 0.0
    for _ in range(rounds):
        start = time.perf_counter()
        run()
        best = max(best, items / (time.perf_counter() - start))
    return best


class StepClock(keras.callbacks.Callback):
    """The wall time at the end of every training batch."""

    def on_train_begin(self, logs=None):
        self.times = []

    def on_train_batch_end(self, batch, logs=None):
        self.times.append(time.perf_counter())


def fit_rate(model, data, batch_size, steps, rounds=ROUNDS, warmup=2):
    """Images/s of the fastest of `rounds` windows of `steps` steps, inside
    one `fit` on `data` (which must not run out).

    Timing `fit` calls from outside would count their teardown, and that
    can wait seconds: deleting a tf.data iterator blocks until its
    autotuning thread's next wake-up, which comes 2.55 s after the start of
    a short `fit`. Ten steps of 160 ms then read as 2.55 s.
    """
    if getattr(model, "steps_per_execution", 1) != 1 or warmup < 1:
        raise ValueError("fit_rate counts one batch end per step: use steps_per_execution=1 and warmup >= 1.")
    clock = StepClock()
    model.fit(data, steps_per_epoch=warmup + rounds * steps, epochs=1, verbose=0, callbacks=[clock])
    times = clock.times[warmup - 1 :]
    return max(batch_size * steps / (times[(i + 1) * steps] - times[i * steps]) for i in range(rounds))


def matmul_gflops(n=4096):
    a, b = tf.random.normal((n, n)), tf.random.normal((n, n))
    matmul = tf.function(lambda a, b: tf.matmul(a, b))
    matmul(a, b).numpy()
    repeats = 5
    return 2 * n**3 * repeats / 1e9 * best_rate(lambda: [matmul(a, b) for _ in range(repeats)][-1].numpy(), 1)


def batch_of(model, batch_size):
    """Random training data shaped for `model`."""
    rng = np.random.default_rng(0)
    images = rng.uniform(-1, 1, (batch_size, *model.data_shape)).astype("float32")
    if model.conditional:
        return images, (np.arange(batch_size) % model.num_classes).astype("int32")
    if model.network_kind == "translation":
        return images, rng.uniform(-1, 1, images.shape).astype("float32")
    return images


# ------------------------------------------------------------------ FLOPs
def _conv_flops(op):
    """2 x multiply-adds of Conv2D and of both its gradients (the backprop of
    the input is also the transposed convolution's forward pass)."""
    if op.type == "Conv2D":
        kh, kw, cin, _ = op.inputs[1].shape
        return 2 * np.prod(op.outputs[0].shape) * kh * kw * cin
    if op.type == "Conv2DBackpropInput":  # (input_sizes, filter, out_backprop)
        kh, kw, cin, _ = op.inputs[1].shape
        return 2 * np.prod(op.inputs[2].shape) * kh * kw * cin
    if op.type == "Conv2DBackpropFilter":  # (input, filter_sizes, out_backprop) -> filter gradient
        kh, kw, cin, _ = op.outputs[0].shape
        return 2 * np.prod(op.inputs[2].shape) * kh * kw * cin
    if op.type in ("MatMul", "BatchMatMulV2", "BatchMatMul"):
        a, b = op.inputs[0].shape, op.inputs[1].shape
        ta = op.get_attr("transpose_a") if op.type == "MatMul" else op.get_attr("adj_x")
        m, k = (a[-1], a[-2]) if ta else (a[-2], a[-1])
        tb = op.get_attr("transpose_b") if op.type == "MatMul" else op.get_attr("adj_y")
        n = b[-2] if tb else b[-1]
        return 2 * np.prod(a[:-2]) * m * k * n
    return 0


def graph_flops(graph, functions):
    """FLOPs of the convolutions and matmuls in `graph`, following function
    calls; of a `Case` (pggan's level switch) the costliest branch counts,
    the one its final resolution runs."""
    total = 0
    for op in graph.get_operations():
        if op.type in ("Case", "StatelessCase"):
            total += max(graph_flops(functions[f.name].graph, functions) for f in op.get_attr("branches"))
        elif op.type in ("PartitionedCall", "StatefulPartitionedCall"):
            name = op.get_attr("f").name
            if name in functions:
                total += graph_flops(functions[name].graph, functions)
        else:
            total += _conv_flops(op)
    return int(total)


def _all_functions(graph, found=None):
    found = {} if found is None else found
    for name, function in getattr(graph, "_functions", {}).items():
        if name not in found:
            found[name] = function
            _all_functions(function.graph, found)
    return found


def train_step_flops(model, batch):
    """FLOPs of one `train_step` on `batch`, counted from its traced graph."""
    spec = tf.nest.map_structure(lambda x: tf.TensorSpec(x.shape, tf.as_dtype(x.dtype)), batch)
    graph = tf.function(model.train_step, autograph=False).get_concrete_function(spec).graph
    return graph_flops(graph, _all_functions(graph))


# --------------------------------------------------------------- training
def training_rate(model, batch, batch_size):
    data = tf.data.Dataset.from_tensors(batch).repeat()
    start = time.perf_counter()
    model.fit(data, steps_per_epoch=3, epochs=1, verbose=0)  # trace and warm up
    model.fit(data, steps_per_epoch=3, epochs=1, verbose=0)
    seconds_per_step = (time.perf_counter() - start) / 6  # an overestimate: it counts tracing
    steps = max(2, round(ROUND_SECONDS / seconds_per_step))
    return fit_rate(model, data, batch_size, steps)


def load_for_benchmark(name, data_shape, **options):
    keras.utils.set_random_seed(0)
    overrides = {"data_shape": data_shape, **options}
    if name == "vanilla" and len(data_shape) == 3:
        overrides["network_args"] = {"hidden_units": [1024, 1024]}
    model = ganzoo.load(name, **overrides)
    if hasattr(model, "images_seen"):  # pggan: at its final resolution, where most steps run
        model.images_seen.assign(float(model.total_images))
    return model


def bench_training(name, data_shape, ceiling, **options):
    """One row of the training table; `options` override the entry's model arguments."""
    batch_size = ganzoo.registry.model_config(name).get("train", {}).get("batch_size", 64)
    model = load_for_benchmark(name, data_shape, **options)
    batch = batch_of(model, batch_size)
    flops = train_step_flops(model, batch) / batch_size
    rate = training_rate(model, batch, batch_size)
    keras.backend.clear_session()
    achieved = rate * flops / 1e9
    return dict(entry=name, data_shape=list(data_shape), batch=batch_size, images_per_s=rate,
                gflop_per_image=flops / 1e9, gflops=achieved, fraction=achieved / ceiling)


# ------------------------------------------------------------- generation
def bench_generation(name):
    model = load_for_benchmark(name, SIZES[name][0])
    with tempfile.TemporaryDirectory() as folder:
        model.export(Path(folder) / "1")
        serve = tf.saved_model.load(str(Path(folder) / "1")).signatures["serving_default"]

        def request(n):
            rng = np.random.default_rng(0)
            if model.network_kind == "translation":
                return {"images": tf.constant(rng.uniform(-1, 1, (n, *model.data_shape)), tf.float32)}
            inputs = {"z": tf.constant(rng.standard_normal((n, model.latent_dim)), tf.float32)}
            if model.conditional:
                inputs["labels"] = tf.constant(np.arange(n) % model.num_classes, tf.int32)
            return inputs

        big, one = request(256), request(1)
        serve(**big)["images"].numpy()
        rate = best_rate(lambda: serve(**big)["images"].numpy(), 256)
        serve(**one)["images"].numpy()
        latencies = []
        for _ in range(200):
            start = time.perf_counter()
            serve(**one)["images"].numpy()
            latencies.append(time.perf_counter() - start)
    keras.backend.clear_session()
    return dict(entry=name, images_per_s=rate, p50_ms=1e3 * np.percentile(latencies, 50),
                p99_ms=1e3 * np.percentile(latencies, 99))


# ---------------------------------------------------------- input pipeline
def bench_pipeline():
    """DCGAN 32x32 at batch 64 fed by `ganzoo.data.load("digits")` and by
    one batch in memory, rounds alternating so drift hits both alike."""
    model = load_for_benchmark("dcgan", (32, 32, 1))
    real = ganzoo.data.load("digits", image_size=32, batch_size=64, seed=0).repeat()
    memory = tf.data.Dataset.from_tensors(next(iter(real))).repeat()
    for data in (real, memory):
        model.fit(data, steps_per_epoch=3, epochs=1, verbose=0)
    best = {"pipeline": 0.0, "memory": 0.0}
    for _ in range(2 * ROUNDS):  # the difference is small: more rounds than elsewhere
        for key, data in (("pipeline", real), ("memory", memory)):
            best[key] = max(best[key], fit_rate(model, data, 64, steps=10, rounds=1))
    keras.backend.clear_session()
    return dict(pipeline_images_per_s=best["pipeline"], memory_images_per_s=best["memory"],
                overhead=1 - best["pipeline"] / best["memory"])


def bench_memory():
    """Peak RSS of `ganzoo train dcgan` for 2 epochs (in-training evaluation
    off), as the process itself reports it: VmHWM, which starts afresh at
    exec, whereas a child's ru_maxrss counts the parent's pages it forked."""
    command = ["train", "dcgan", "--epochs", "2", "--eval-every", "0"]
    report = ("import sys, resource; from ganzoo import cli; assert cli.main(sys.argv[1:]) == 0; "
              "status = open('/proc/self/status').read() if sys.platform == 'linux' else ''; "
              "hwm = [l.split()[1] for l in status.splitlines() if l.startswith('VmHWM')]; "
              "print('PEAK_KB', hwm[0] if hwm else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)")
    with tempfile.TemporaryDirectory() as folder:
        started = time.perf_counter()
        child = subprocess.run([sys.executable, "-c", report, *command, "--out", str(Path(folder) / "run")],
                               check=True, capture_output=True, text=True)
        seconds = time.perf_counter() - started
    peak_kb = int(next(line for line in child.stdout.splitlines() if line.startswith("PEAK_KB")).split()[1])
    return dict(command="ganzoo " + " ".join(command), peak_rss_mb=peak_kb / 1024, seconds=seconds)


# -------------------------------------------------------------------- main
def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entries", nargs="+", default=ganzoo.list_models())
    parser.add_argument("--quick", action="store_true", help="default sizes only")
    parser.add_argument("--json", default="benchmarks/results/benchmarks.json")
    args = parser.parse_args()
    report = {"date": time.strftime("%Y-%m-%d"), "machine": platform.machine(), "cores": os.cpu_count(),
              "tensorflow": tf.__version__, "keras": keras.__version__}

    report["matmul_gflops"] = ceiling = matmul_gflops()
    print(f"float32 matmul (4096^2, TF): {ceiling:.0f} GFLOP/s\n")

    print("Training (best of 5 rounds, random data in memory)")
    print(f"{'entry':9s} {'shape':>12} {'batch':>5} {'images/s':>9} {'GFLOP/img':>9} {'GFLOP/s':>8} {'of matmul':>9}")
    report["training"] = []
    for name in args.entries:
        for shape in SIZES[name][: 1 if args.quick else None]:
            row = bench_training(name, shape, ceiling)
            report["training"].append(row)
            print(f"{name:9s} {'x'.join(map(str, shape)):>12} {row['batch']:5d} {row['images_per_s']:9.1f} "
                  f"{row['gflop_per_image']:9.4f} {row['gflops']:8.1f} {row['fraction']:9.1%}", flush=True)

    print("\nExported SavedModel, serving_default")
    print(f"{'entry':9s} {'images/s @256':>13} {'p50 ms @1':>10} {'p99 ms @1':>10}")
    report["generation"] = []
    for name in args.entries:
        row = bench_generation(name)
        report["generation"].append(row)
        print(f"{name:9s} {row['images_per_s']:13.0f} {row['p50_ms']:10.2f} {row['p99_ms']:10.2f}", flush=True)

    row = report["input_pipeline"] = bench_pipeline()
    print(f"\nInput pipeline, DCGAN 32x32 batch 64: ganzoo.data {row['pipeline_images_per_s']:.0f} images/s, "
          f"in memory {row['memory_images_per_s']:.0f} images/s: overhead {row['overhead']:.1%}")
    row = report["memory"] = bench_memory()
    print(f"Peak resident memory of `{row['command']}`: {row['peak_rss_mb']:.0f} MB ({row['seconds']:.0f} s)")

    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps(report, indent=2))
    print(f"\nWrote {args.json}")


if __name__ == "__main__":
    main()
