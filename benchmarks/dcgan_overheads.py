"""What the default DCGAN 32x32 step spends beyond its convolutions: the
same model trained with and without its DiffAugment transforms and its
generator average (EMA), and at the paper's width (64 filters), each as a
fraction of this machine's float32 matmul rate.

    python benchmarks/dcgan_overheads.py [default noaug noaug_noema f64]

The FLOPs counted are the step's convolutions and matmuls only, so the
augmentation and the average show up as time without work.
"""

import sys

import keras

from run import batch_of, load_for_benchmark, matmul_gflops, train_step_flops, training_rate

VARIANTS = {
    "default": {},
    "noaug": {"augment": None},
    "noaug_noema": {"augment": None, "ema_decay": None},
    "f64": {"network_args": {"filters": 64, "max_filters": 512, "kernel_size": 4}},
}


def main(names):
    unknown = sorted(set(names) - set(VARIANTS))
    if unknown:
        sys.exit(f"Unknown variant(s) {unknown}; choose from {', '.join(VARIANTS)}.")
    ceiling = matmul_gflops()
    print(f"float32 matmul (4096^2, TF): {ceiling:.0f} GFLOP/s")
    for name in names:
        model = load_for_benchmark("dcgan", (32, 32, 1), **VARIANTS[name])
        batch = batch_of(model, 64)
        flops = train_step_flops(model, batch) / 64
        rate = training_rate(model, batch, 64)
        print(f"{name:12s} {rate:8.1f} images/s {flops / 1e9:.4f} GFLOP/image "
              f"{rate * flops / 1e9 / ceiling:6.1%} of matmul", flush=True)
        keras.backend.clear_session()


if __name__ == "__main__":
    main(sys.argv[1:] or list(VARIANTS))
