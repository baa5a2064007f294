"""DCGAN 32x32 training images/s on 1 and 2 devices, with and without XLA,
in float32 and mixed_bfloat16.

    python benchmarks/distributed_throughput.py [--batch 64] [--steps 10] [--json PATH]

Each configuration runs in its own process, because logical devices and the
dtype policy are fixed before TensorFlow starts. Two devices here are two
logical CPUs sharing the machine's cores, so this measures the overhead of
`MirroredStrategy` (splitting the batch, all-reducing gradients, synchronized
batch norm), not a speed-up: on real GPUs each replica brings its own compute.
"""

import argparse
import json
import subprocess
import sys

CONFIGS = [  # (devices, XLA, policy)
    (1, False, "float32"),
    (1, True, "float32"),
    (2, False, "float32"),
    (2, True, "float32"),
    (1, False, "mixed_bfloat16"),
    (1, True, "mixed_bfloat16"),
    (2, False, "mixed_bfloat16"),
]


def measure(devices, xla, policy, batch, steps):
    """Images/s of one configuration; runs inside the child process."""
    import tensorflow as tf

    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * devices)
    import keras

    import ganzoo
    from run import fit_rate

    keras.mixed_precision.set_global_policy(policy)
    strategy = ganzoo.distribute.get_strategy("mirrored" if devices > 1 else "default")
    with strategy.scope():
        model = ganzoo.load("dcgan", data_shape=(32, 32, 1), jit_compile=xla, clusters=0)  # as measured before
    images = tf.data.Dataset.from_tensors(tf.random.uniform((batch, 32, 32, 1), -1, 1)).repeat()
    model.fit(images, steps_per_epoch=5, epochs=1, verbose=0)  # trace and warm up
    return fit_rate(model, images, batch, steps)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=64, help="global batch (default 64)")
    parser.add_argument("--steps", type=int, default=10, help="steps per timed round (best of 5)")
    parser.add_argument("--json")
    parser.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        devices, xla, policy = int(args.child[0]), args.child[1] == "True", args.child[2]
        print(json.dumps({"images_per_s": measure(devices, xla, policy, args.batch, args.steps)}))
        return

    print(f"DCGAN 32x32, global batch {args.batch}, best of 5 rounds of {args.steps} steps\n")
    print(f"{'devices':>7} {'XLA':>5} {'policy':>15} {'images/s':>9} {'vs 1 device f32':>16}")
    rows, base = [], None
    for devices, xla, policy in CONFIGS:
        child = subprocess.run(
            [sys.executable, __file__, "--batch", str(args.batch), "--steps", str(args.steps),
             "--child", str(devices), str(xla), policy],
            capture_output=True, text=True,
        )
        if child.returncode:
            error = (child.stderr.strip().splitlines() or ["?"])[-1]
            print(f"{devices:7d} {str(xla):>5} {policy:>15}   failed: {error}", flush=True)
            rows.append(dict(devices=devices, xla=xla, policy=policy, error=error))
            continue
        rate = json.loads(child.stdout.strip().splitlines()[-1])["images_per_s"]
        base = base or rate
        rows.append(dict(devices=devices, xla=xla, policy=policy, images_per_s=rate))
        print(f"{devices:7d} {str(xla):>5} {policy:>15} {rate:9.0f} {rate / base:15.2f}x", flush=True)
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"batch": args.batch, "steps": args.steps, "rows": rows}, f, indent=2)


if __name__ == "__main__":
    main()
