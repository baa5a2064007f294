"""What self-conditioning costs per training step: the dcgan default with and
without `clusters`, side by side in one process.

    python benchmarks/clusters_overhead.py [--clusters 20] [--steps 100] [--rounds 4]

Both models are built, traced and warmed up first (the clustered one fits its
k-means then), and then trained in alternating windows of `--steps` steps on
the digits (batch 64, no XLA), so that both see the same machine state.
Prints steps/s per window, the medians and their ratio.
"""

import argparse
import time

import numpy as np


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--clusters", type=int, default=20)
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=4)
    args = parser.parse_args()

    import ganzoo

    data = ganzoo.data.load("digits", image_size=32, batch_size=64).repeat()
    models = {k: ganzoo.load("dcgan", clusters=k, jit_compile=False, seed=0) for k in (0, args.clusters)}
    for model in models.values():
        model.fit(data, steps_per_epoch=30, epochs=1, verbose=0)
    rates = {k: [] for k in models}
    for _ in range(args.rounds):
        for k, model in models.items():
            start = time.perf_counter()
            model.fit(data, steps_per_epoch=args.steps, epochs=1, verbose=0)
            rates[k].append(args.steps / (time.perf_counter() - start))
    for k, values in rates.items():
        print(f"clusters={k}: steps/s per window {[round(v, 1) for v in values]}, median {np.median(values):.1f}")
    print(f"ratio of medians (clusters={args.clusters} / none): {np.median(rates[args.clusters]) / np.median(rates[0]):.3f}")


if __name__ == "__main__":
    main()
