"""DCGAN: Radford, Metz & Chintala 2015, "Unsupervised Representation Learning
with Deep Convolutional Generative Adversarial Networks" (arXiv:1511.06434)."""

import math

import keras
from keras import layers

from ganzoo import layers as zoo_layers
from ganzoo.models.base import GAN, serializable
from ganzoo.networks import register_network

def weight_init():
    """N(0, 0.02), the paper's (Section 4). A new initializer per layer: one
    shared instance draws the same values for every kernel of one shape."""
    return keras.initializers.RandomNormal(stddev=0.02)


NORMS = ("batch", "layer", "spectral", None)


def _normalization(kind):
    if kind == "batch":
        return zoo_layers.BatchNormalization(gamma_initializer=keras.initializers.RandomNormal(1.0, 0.02))
    if kind == "layer":
        return layers.LayerNormalization(axis=(1, 2, 3))
    raise ValueError(f"normalization must be one of {NORMS}, got {kind!r}.")


def logit_layer(norm=None):
    """D's last layer: one float32 logit, spectrally normalised with `norm="spectral"`."""
    dense = zoo_layers.SpectralDense if norm == "spectral" else layers.Dense
    return dense(1, kernel_initializer=weight_init(), dtype="float32")


def widths(data_shape, filters, max_filters, network="dcgan"):
    """Channel widths from 4x4 up: `filters` at the highest resolution,
    doubling at each halving up to `max_filters`."""
    if len(data_shape) != 3:
        raise ValueError(
            f"The {network} network makes images (H, W, C); data_shape {data_shape} is not. "
            "Use network='mlp' for vectors."
        )
    height, width, _ = data_shape
    steps = math.log2(height / 4) if height >= 8 else 0
    if height != width or steps != int(steps) or not 1 <= steps <= 6:
        raise ValueError(
            f"The {network} network needs square images whose side is 4 * 2^n "
            f"(8, 16, 32, 64, 128 or 256); got data_shape {data_shape}."
        )
    steps = int(steps)
    return [min(filters * 2 ** (steps - 1 - i), max_filters) for i in range(steps)]


def upsampling_stack(x, widths_from_4, channels, kernel_size=4, norm="batch"):
    """A vector -> 4x4 -> ... -> `[H, W, channels]` image in [-1, 1] (tanh)."""
    x = layers.Dense(4 * 4 * widths_from_4[0], use_bias=norm is None, kernel_initializer=weight_init())(x)
    x = layers.Reshape((4, 4, widths_from_4[0]))(x)
    for units in widths_from_4[1:]:
        if norm:
            x = _normalization(norm)(x)
        x = layers.ReLU()(x)
        x = layers.Conv2DTranspose(
            units, kernel_size, strides=2, padding="same", use_bias=norm is None, kernel_initializer=weight_init(),
        )(x)
    if norm:
        x = _normalization(norm)(x)
    x = layers.ReLU()(x)
    return layers.Conv2DTranspose(
        channels, kernel_size, strides=2, padding="same", activation="tanh",
        kernel_initializer=weight_init(), dtype="float32",
    )(x)


def downsampling_stack(y, widths_from_4, kernel_size=4, norm="batch"):
    """An image -> strided convolutions down to 4x4 -> flat features.
    `norm="spectral"`: every convolution spectrally normalised (Miyato et al.
    2018) and no normalisation layer."""
    if norm not in NORMS:
        raise ValueError(f"discriminator_norm must be one of {NORMS}, got {norm!r}.")
    spectral = norm == "spectral"
    conv = zoo_layers.SpectralConv2D if spectral else layers.Conv2D
    for i, units in enumerate(reversed(widths_from_4)):
        y = conv(
            units, kernel_size, strides=2, padding="same",
            use_bias=i == 0 or norm in (None, "spectral"), kernel_initializer=weight_init(),
        )(y)
        if i and norm and not spectral:
            y = _normalization(norm)(y)
        y = zoo_layers.LeakyReLU(0.2)(y)
    return layers.Flatten()(y)


@register_network("dcgan")
def dcgan(
    latent_dim,
    data_shape,
    filters=64,
    max_filters=512,
    kernel_size=4,
    generator_norm="batch",
    discriminator_norm="batch",
):
    """All-convolutional generator and discriminator of the paper.

    The generator projects z to 4x4 and doubles the resolution with strided
    transposed convolutions (batch norm, ReLU, tanh output); the
    discriminator mirrors it with strided convolutions and LeakyReLU(0.2),
    no normalisation on its first layer. `filters` is the width at the
    highest resolution and doubles at each halving, up to `max_filters`.
    `discriminator_norm=None` or `"layer"` suits critics with a gradient
    penalty (Gulrajani et al. 2017); `"spectral"` normalises every D layer
    instead (Miyato et al. 2018).
    """
    width_at = widths(data_shape, filters, max_filters)
    z = keras.Input((latent_dim,), name="z")
    images = upsampling_stack(z, width_at, data_shape[-1], kernel_size, generator_norm)
    generator = keras.Model(z, images, name="generator")

    image = keras.Input(data_shape, name="image")
    features = downsampling_stack(image, width_at, kernel_size, discriminator_norm)
    logits = logit_layer(discriminator_norm)(features)
    discriminator = keras.Model(image, logits, name="discriminator")
    return generator, discriminator


@serializable
class DCGAN(GAN):
    """Deep convolutional GAN (Radford et al. 2015): strided (transposed)
    convolutions, batch norm, LeakyReLU, Adam(2e-4, beta_1=0.5)."""

    default_network = "dcgan"
