"""Mode coverage of vanilla GAN, WGAN and WGAN-GP on the 2D mixtures.

    python benchmarks/mode_coverage.py [--models vanilla wgan wgan_gp] [--mixtures ring grid]
                                       [--seeds 5] [--json results.json]
    python benchmarks/mode_coverage.py --table results.json [more.json ...]

The protocol of VEEGAN (Srivastava et al. 2017) and GDPP (Elfeki et al. 2019),
Table 1: after training, draw 2,500 samples; a sample is high quality within
3 standard deviations of its nearest mode, and a mode is covered when a
high-quality sample has it as nearest mode. Every model uses MLP networks of
3 x 256 units, a 2-d latent, batch 256 and the same number of generator
steps; the other settings are each entry's YAML defaults plus the overrides
in RECIPES. For WGAN-GP: lambda 0.1 (the value of the paper's own code for
its toy data) and Adam(1e-3, 0.5, 0.9) decaying linearly to 0 over the run,
which turned 15 % high-quality grid samples (lr 1e-4, 10,000 steps) into 79 %
(6,000 steps). Prints mean +- std over seeds, with the
training steps and the wall time of one run.

Against mode collapse (issue 23), vanilla with each option of
docs/stabilizers.md: GMAN's ensemble, PacGAN's packing, snapshots of past
discriminators, a pool of past fakes and the reliable-D rule, each on
vanilla trained with Adam(1e-3, 0.5) decaying linearly to 0 (`+decay`),
and the combination that covers all 25 grid modes: the schedule with the
R1 penalty (`vanilla+decay+r1`).
"""

import argparse
import json
import time

import keras
import numpy as np

import ganzoo

# Published figures (VEEGAN / GDPP, Table 1): modes and % high quality.
PUBLISHED = {
    ("grid", "GAN"): (3.3, 0.5), ("grid", "WGAN-GP"): (24.2, 28.7), ("grid", "GDPP"): (24.8, 68.5),
    ("ring", "GAN"): (1.0, 99.3), ("ring", "WGAN-GP"): (6.8, 59.6), ("ring", "GDPP"): (8.0, 71.7),
    ("grid", "PacGAN4 (its own networks and schedule)"): (24.8, None),
}
MLP = {"network": "mlp", "data_shape": (2,), "latent_dim": 2, "network_args": {"hidden_units": [256, 256, 256]}}
RECIPES = {
    "vanilla": {}, "wgan": {}, "wgan_gp": {"gp_weight": 0.1, "learning_rate": 1e-3, "decay": True},
    # Against mode collapse (issue 23): vanilla with PacGAN's packing (its grid
    # runs use pac2-pac4), an ensemble of three discriminators with GMAN's soft
    # max (lambda 1), and both.
    "vanilla+pack4": {"entry": "vanilla", "pack": 4},
    "vanilla+ensemble3": {"entry": "vanilla", "discriminators": 3, "ensemble": "softmax"},
    "vanilla+pack4+ensemble3": {"entry": "vanilla", "pack": 4, "discriminators": 3, "ensemble": "softmax"},
}
# The same options on vanilla trained with Adam(1e-3, 0.5) decaying linearly
# to 0 (the schedule that lifted WGAN-GP): +decay alone, then one option each.
DECAY = {"entry": "vanilla", "learning_rate": 1e-3, "decay": True}
RECIPES.update({
    "vanilla+decay": DECAY,
    "vanilla+decay+ensemble3": {**DECAY, "discriminators": 3, "ensemble": "softmax"},
    "vanilla+decay+pack2": {**DECAY, "pack": 2},
    "vanilla+decay+pack4": {**DECAY, "pack": 4},
    "vanilla+decay+snapshots": {**DECAY, "snapshots": 5, "snapshot_every": 300},
    "vanilla+decay+pool": {**DECAY, "pool_size": 2560},
    "vanilla+decay+reliable": {**DECAY, "d_until_accuracy": 0.8, "d_steps": 3},
    "vanilla+decay+snapshots+pool": {**DECAY, "snapshots": 5, "snapshot_every": 300, "pool_size": 2560},
    # The combination that covers the grid: the schedule and Mescheder's R1
    # penalty on real data (gamma 0.1, lazily every 4th D step). Without the
    # schedule, R1 alone (`vanilla+r1`).
    "vanilla+decay+r1": {**DECAY, "r1_weight": 0.1, "r1_every": 4},
    "vanilla+r1": {"entry": "vanilla", "r1_weight": 0.1, "r1_every": 4},
})
STEPS = 6000  # generator steps
BATCH = 256


def linear_decay(optimizer, learning_rate, steps, clock=None):
    """The optimizer with its learning rate going linearly from `learning_rate`
    to 0 in `steps` updates, or in `steps` counts of `clock` (a variable: D's
    rate follows G's steps under the reliable-D rule, whose count of D
    updates varies)."""
    if clock is None:
        schedule = keras.optimizers.schedules.PolynomialDecay(learning_rate, steps, end_learning_rate=0.0)
    else:
        def schedule():
            return learning_rate * keras.ops.maximum(0.0, 1.0 - keras.ops.cast(clock, "float32") / steps)
    config = {k: v for k, v in optimizer.get_config().items() if k not in ("learning_rate", "name")}
    return type(optimizer)(learning_rate=schedule, **config)


def run(name, mixture, seed, steps):
    keras.utils.set_random_seed(seed)
    recipe = dict(RECIPES[name])
    learning_rate, decay = recipe.pop("learning_rate", None), recipe.pop("decay", False)
    model = ganzoo.load(recipe.pop("entry", name), **MLP, **recipe, seed=seed, jit_compile=False)
    if decay:
        g_optimizer = linear_decay(model.g_optimizer, learning_rate, steps)
        d_optimizer = (linear_decay(model.d_optimizer, learning_rate, steps * model.d_steps)
                       if model.d_until_accuracy is None else
                       linear_decay(model.d_optimizer, learning_rate, steps, clock=g_optimizer.iterations))
        model.compile(g_optimizer=g_optimizer, d_optimizer=d_optimizer, loss=model.gan_loss, jit_compile=False)
    epochs = steps // 100
    # The reliable-D rule splits each batch into d_steps real batches: give
    # it d_steps times as many rows, so every D update sees BATCH of them.
    batch = BATCH * (model.d_steps if model.d_until_accuracy is not None else 1)
    data = ganzoo.data.load(mixture, batch_size=batch, seed=seed, num_examples=100 * batch)
    started = time.perf_counter()
    model.fit(data, epochs=epochs, verbose=0)
    seconds = time.perf_counter() - started
    result = ganzoo.metrics.mode_coverage(model.generate(2500, seed=seed), mixture)
    return {**result, "seconds": seconds, "steps": epochs * 100}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", nargs="+", default=["vanilla", "wgan", "wgan_gp"], choices=list(RECIPES))
    parser.add_argument("--mixtures", nargs="+", default=["ring", "grid"])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--first-seed", type=int, default=0, help="seeds first-seed .. first-seed + seeds - 1")
    parser.add_argument("--steps", type=int, help=f"generator steps (default {STEPS})")
    parser.add_argument("--json", help="write every run's figures here, after each run")
    parser.add_argument("--table", nargs="+", metavar="JSON", help="only print the table of runs saved with --json")
    args = parser.parse_args()

    if args.table:
        runs = [r for path in args.table for r in json.load(open(path))]
    else:
        runs = []
        for mixture in args.mixtures:
            for name in args.models:
                for seed in range(args.first_seed, args.first_seed + args.seeds):
                    result = run(name, mixture, seed, args.steps or STEPS)
                    runs.append({"model": name, "mixture": mixture, "seed": seed, **result})
                    print(f"  {mixture:4s} {name:8s} seed {seed}: {result['modes']}/{result['total_modes']} modes, "
                          f"{100 * result['high_quality']:.1f}% high quality, kl {result['kl']:.3f}, "
                          f"{result['steps']} steps in {result['seconds']:.0f}s", flush=True)
                    if args.json:
                        with open(args.json, "w") as handle:
                            json.dump(runs, handle, indent=1)
    print_table(runs)


def print_table(runs):
    rows = []
    for mixture in dict.fromkeys(r["mixture"] for r in runs):
        for name in dict.fromkeys(r["model"] for r in runs):
            results = [r for r in runs if r["mixture"] == mixture and r["model"] == name]
            if results:
                modes = np.array([r["modes"] for r in results], float)
                quality = 100 * np.array([r["high_quality"] for r in results])
                seconds = np.mean([r["seconds"] for r in results])
                rows.append((mixture, name, len(results), modes, quality, results[0]["steps"], seconds))
    print("\n| mixture | model | seeds | modes (mean ± std) | high quality % (mean ± std) | all modes in every seed | "
          "generator steps | seconds per run |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for mixture, name, seeds, modes, quality, steps, seconds in rows:
        total = 8 if mixture == "ring" else 25
        print(f"| {mixture} | {name} | {seeds} | {modes.mean():.1f} ± {modes.std():.1f} | "
              f"{quality.mean():.1f} ± {quality.std():.1f} | {'yes' if (modes == total).all() else 'no'} | "
              f"{steps} | {seconds:.0f} |")
    mixtures = {r["mixture"] for r in runs}
    for (mixture, model), (m, q) in PUBLISHED.items():
        if mixture in mixtures:
            print(f"| {mixture} | {model} (published) | | {m} | {'' if q is None else q} | | | |")


if __name__ == "__main__":
    main()
