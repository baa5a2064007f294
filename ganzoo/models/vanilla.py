"""Vanilla GAN: Goodfellow et al. 2014, "Generative Adversarial Nets" (arXiv:1406.2661)."""

import math

import keras
from keras import layers

from ganzoo.models.base import GAN, serializable
from ganzoo.networks import register_network


@register_network("mlp")
def mlp(latent_dim, data_shape, hidden_units=(256, 256), dropout=0.0, output_activation=None):
    """Fully connected generator and discriminator for vectors or flattened images.

    The generator ends in tanh for images (so samples lie in [-1, 1]) and is
    linear for vectors, whose range the data sets (e.g. the 25-Gaussian grid
    spans [-4, 4]). The discriminator uses LeakyReLU and optional dropout, as
    the paper's maxout networks did.
    """
    if output_activation is None:
        output_activation = "tanh" if len(data_shape) == 3 else "linear"
    z = keras.Input((latent_dim,), name="z")
    x = z
    for units in hidden_units:
        x = layers.Dense(units, activation="relu")(x)
    # float32 outputs under mixed precision, as the losses and metrics expect.
    x = layers.Dense(math.prod(data_shape), activation=output_activation, dtype="float32")(x)
    generator = keras.Model(z, layers.Reshape(data_shape, dtype="float32")(x), name="generator")

    sample = keras.Input(data_shape, name="sample")
    y = layers.Flatten()(sample)
    for units in hidden_units:
        y = layers.LeakyReLU(0.2)(layers.Dense(units)(y))
        if dropout:
            y = layers.Dropout(dropout)(y)
    discriminator = keras.Model(sample, layers.Dense(1, dtype="float32")(y), name="discriminator")
    return generator, discriminator


@serializable
class VanillaGAN(GAN):
    """The original GAN (Goodfellow et al. 2014): MLP generator and discriminator,
    the minimax game or its non-saturating variant, and `d_steps` = k.
    """

    default_network = "mlp"
