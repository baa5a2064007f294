"""What the default DCGAN 32x32 step spends beyond its convolutions: the
same model trained with and without its DiffAugment transforms and its
generator average (EMA), and at the paper's width (64 filters), each as a
fraction of this machine's float32 matmul rate.

    python benchmarks/dcgan_overheads.py [default noaug noaug_noema f64]

The FLOPs counted are the step's convolutions and matmuls only, so the
augmentation and the average show up as time without work.
"""

import sys

from run import bench_training, matmul_gflops

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
        row = bench_training("dcgan", (32, 32, 1), ceiling, **VARIANTS[name])
        print(f"{name:12s} {row['images_per_s']:8.1f} images/s {row['gflop_per_image']:.4f} GFLOP/image "
              f"{row['fraction']:6.1%} of matmul", flush=True)


if __name__ == "__main__":
    main(sys.argv[1:] or list(VARIANTS))
