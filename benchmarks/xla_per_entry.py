"""Training images/s of every registry entry at its default size, with and
without XLA (`jit_compile`), on random data held in memory.

    python benchmarks/xla_per_entry.py [--entries dcgan pggan] [--steps 10] [--json PATH]

This is what decides each YAML's `jit_compile`. pggan is measured at its
final resolution (progress set to the top level), where a run spends most of
its steps.
"""

import argparse
import json

import tensorflow as tf

import ganzoo
from run import SIZES, batch_of, fit_rate, load_for_benchmark


def images_per_second(name, xla, steps):
    batch_size = ganzoo.registry.model_config(name).get("train", {}).get("batch_size", 64)
    try:
        model = load_for_benchmark(name, SIZES[name][0], jit_compile=xla)
        data = tf.data.Dataset.from_tensors(batch_of(model, batch_size)).repeat()
        model.fit(data, steps_per_epoch=3, epochs=1, verbose=0)  # trace and warm up
    except Exception as error:  # an op without an XLA kernel, or an entry that refuses XLA
        return None, f"{type(error).__name__}: {str(error).splitlines()[0][:120]}"
    return fit_rate(model, data, batch_size, steps), None


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entries", nargs="+", default=ganzoo.list_models())
    parser.add_argument("--steps", type=int, default=10, help="steps per timed round (best of 5)")
    parser.add_argument("--json")
    args = parser.parse_args()
    print(f"{'entry':10s} {'no XLA':>10} {'XLA':>10} {'speed-up':>9}")
    rows = []
    for name in args.entries:
        plain, _ = images_per_second(name, False, args.steps)
        compiled, error = images_per_second(name, True, args.steps)
        rows.append(dict(entry=name, images_per_s=plain, images_per_s_xla=compiled, xla_error=error))
        if compiled is None:
            print(f"{name:10s} {plain:10.0f} {'failed':>10}   {error}", flush=True)
        else:
            print(f"{name:10s} {plain:10.0f} {compiled:10.0f} {compiled / plain:8.2f}x", flush=True)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=2)


if __name__ == "__main__":
    main()
