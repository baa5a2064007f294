"""DCGAN training throughput on this machine, as a fraction of its matmul rate.

    python benchmarks/dcgan_throughput.py [--sizes 32] [--batches 64 256] [--steps 30]

Prints images/s with and without XLA, the FLOPs of one training step per
image (counted from the layers, backward = 2x forward), and the achieved
fraction of the float32 matmul rate measured here. Writes the table as JSON
with --json PATH.
"""

import argparse
import json
import time

import numpy as np
import tensorflow as tf
import keras

import ganzoo


def matmul_gflops(n=4096, repeats=10):
    a, b = tf.random.normal((n, n)), tf.random.normal((n, n))
    matmul = tf.function(lambda a, b: tf.matmul(a, b))
    matmul(a, b).numpy()
    start = time.perf_counter()
    for _ in range(repeats):
        c = matmul(a, b)
    c.numpy()
    return 2 * n**3 * repeats / (time.perf_counter() - start) / 1e9


def forward_flops(model):
    """Multiply-adds x 2 of the convolution, transposed-convolution and dense layers."""
    flops = 0
    for layer in model.layers:
        kernel = getattr(layer, "kernel", None)
        if kernel is None:
            continue
        k = int(np.prod(kernel.shape))  # kh*kw*cin*cout or in*out
        if isinstance(layer, keras.layers.Conv2DTranspose):
            h, w = layer.input.shape[1:3]  # each input pixel scatters a full kernel
        elif isinstance(layer, keras.layers.Conv2D):
            h, w = layer.output.shape[1:3]
        else:
            h = w = 1
        flops += 2 * k * h * w
    return flops


def step_flops_per_image(model):
    # D step: G forward, D forward on real and fake, D backward on both (2x);
    # G step: G forward + backward, D forward + backward. d_steps D updates.
    g, d = forward_flops(model.generator), forward_flops(model.discriminator)
    return model.d_steps * (g + 6 * d) + 3 * g + 3 * d


def images_per_second(size, batch, xla, steps):
    keras.utils.set_random_seed(0)
    model = ganzoo.load("dcgan", data_shape=(size, size, 1), jit_compile=xla)
    data = tf.data.Dataset.from_tensors(
        tf.random.uniform((batch, size, size, 1), -1, 1)
    ).repeat()
    model.fit(data, steps_per_epoch=3, epochs=1, verbose=0)  # trace and warm up
    start = time.perf_counter()
    model.fit(data, steps_per_epoch=steps, epochs=1, verbose=0)
    return batch * steps / (time.perf_counter() - start), step_flops_per_image(model)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[32])
    parser.add_argument("--batches", type=int, nargs="+", default=[64, 256])
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--json")
    args = parser.parse_args()

    ceiling = matmul_gflops()
    print(f"float32 matmul (4096^2, TF): {ceiling:.1f} GFLOP/s\n")
    print(f"{'size':>4} {'batch':>5} {'XLA':>5} {'images/s':>9} {'GFLOP/img':>9} {'GFLOP/s':>8} {'of matmul':>9}")
    rows = []
    for size in args.sizes:
        for batch in args.batches:
            for xla in (False, True):
                rate, flops = images_per_second(size, batch, xla, args.steps)
                achieved = rate * flops / 1e9
                rows.append(dict(size=size, batch=batch, xla=xla, images_per_s=rate,
                                 gflop_per_image=flops / 1e9, gflops=achieved, fraction=achieved / ceiling))
                print(f"{size:4d} {batch:5d} {str(xla):>5} {rate:9.0f} {flops / 1e9:9.3f} "
                      f"{achieved:8.1f} {achieved / ceiling:9.1%}", flush=True)
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"matmul_gflops": ceiling, "rows": rows}, f, indent=2)


if __name__ == "__main__":
    main()
