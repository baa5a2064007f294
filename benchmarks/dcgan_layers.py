"""Where a DCGAN step's time goes: each layer's forward and forward+backward
time at batch 64, and the GFLOP/s of its convolution or matmul.

    python benchmarks/dcgan_layers.py [--size 32] [--batch 64]

Compare the GFLOP/s column with the matmul rate `benchmarks/run.py` prints.
"""

import argparse

import numpy as np
import tensorflow as tf
import keras

import ganzoo
from run import best_rate


def best_seconds(function, *args, calls=20):
    """Seconds per call of `function(*args)`, from the fastest round of `calls`."""
    function(*args)
    run = lambda: tf.nest.map_structure(lambda x: x.numpy(), [function(*args) for _ in range(calls)][-1])  # noqa: E731
    return 1 / best_rate(run, calls)


def layer_flops(layer, inputs, outputs, batch):
    kernel = getattr(layer, "kernel", None)
    if kernel is None:
        return 0
    if isinstance(layer, keras.layers.Conv2DTranspose):
        pixels = np.prod(inputs.shape[1:3])  # each input pixel scatters a whole kernel
    elif isinstance(layer, keras.layers.Conv2D):
        pixels = np.prod(outputs.shape[1:3])
    else:
        pixels = 1
    return 2 * int(np.prod(kernel.shape)) * pixels * batch


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=32)
    parser.add_argument("--batch", type=int, default=64)
    args = parser.parse_args()
    model = ganzoo.load("dcgan", data_shape=(args.size, args.size, 1), clusters=0)  # the layer chain alone
    first_inputs = (tf.random.normal((args.batch, model.latent_dim)),
                    tf.random.uniform((args.batch, args.size, args.size, 1), -1, 1))
    print(f"{'net':4s} {'layer':20s} {'output':>18} {'fwd ms':>7} {'f+b ms':>7} {'fwd GFLOP/s':>11} {'f+b GFLOP/s':>11}")
    for network, h in zip((model.generator, model.discriminator), first_inputs):
        for layer in network.layers[1:]:
            forward = tf.function(lambda h, layer=layer: layer(h, training=True))

            def both(h, layer=layer):
                with tf.GradientTape() as tape:
                    tape.watch(h)
                    y = layer(h, training=True)
                # y is returned too: a linear layer's gradients do not need
                # its output, and TF would otherwise prune the forward pass.
                return y, tape.gradient(y, [h, *layer.trainable_variables])

            t_forward, t_both = best_seconds(forward, h), best_seconds(tf.function(both), h)
            out = layer(h, training=True)
            flops = layer_flops(layer, h, out, args.batch)
            rates = f"{flops / t_forward / 1e9:11.1f} {3 * flops / t_both / 1e9:11.1f}" if flops else ""
            print(f"{network.name[:4]:4s} {type(layer).__name__:20s} {str(tuple(out.shape)):>18} "
                  f"{t_forward * 1e3:7.2f} {t_both * 1e3:7.2f} {rates}")
            h = out


if __name__ == "__main__":
    main()
