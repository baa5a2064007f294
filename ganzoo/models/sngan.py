"""SN-GAN: Miyato, Kataoka, Koyama & Yoshida 2018, "Spectral Normalization for
Generative Adversarial Networks" (arXiv:1802.05957)."""

import keras
from keras import layers

from ganzoo import layers as zoo_layers
from ganzoo.layers import LeakyReLU, SpectralConv2D, SpectralDense
from ganzoo.models.base import GAN, serializable
from ganzoo.models.dcgan import widths
from ganzoo.networks import register_network


@register_network("sngan")
def sngan(latent_dim, data_shape, filters=64, max_filters=512, slope=0.1):
    """The paper's "standard CNN" (appendix B.4, Table 3).

    G: z -> dense to 4x4 x 2W -> per doubling a 4x4 stride-2 transposed
    convolution, batch norm, ReLU -> 3x3 convolution to the channels, tanh.
    D: per halving a 3x3 stride-1 and a 4x4 stride-2 convolution, then a 3x3
    convolution at 4x4 and a dense logit, all spectrally normalised, with
    LeakyReLU(`slope`) and no other normalisation. At 32 px and `filters` 64
    the widths are the paper's: G 512-256-128-64, D 64-128-256-512.
    """
    width_at = widths(data_shape, filters, max_filters, network="sngan")  # e.g. [256, 128, 64] at 32 px
    top = min(2 * width_at[0], max_filters)

    z = keras.Input((latent_dim,), name="z")
    x = layers.Reshape((4, 4, top))(layers.Dense(4 * 4 * top)(z))
    for units in width_at:
        x = layers.ReLU()(zoo_layers.BatchNormalization()(x))
        x = layers.Conv2DTranspose(units, 4, strides=2, padding="same")(x)
    x = layers.ReLU()(zoo_layers.BatchNormalization()(x))
    images = layers.Conv2D(data_shape[-1], 3, padding="same", activation="tanh", dtype="float32")(x)
    generator = keras.Model(z, images, name="generator")

    image = keras.Input(data_shape, name="image")
    y = image
    for units in reversed(width_at):
        y = LeakyReLU(slope)(SpectralConv2D(units, 3, padding="same")(y))
        y = LeakyReLU(slope)(SpectralConv2D(units, 4, strides=2, padding="same")(y))
    y = LeakyReLU(slope)(SpectralConv2D(top, 3, padding="same")(y))
    logits = SpectralDense(1, dtype="float32")(layers.Flatten()(y))
    discriminator = keras.Model(image, logits, name="discriminator")
    return generator, discriminator


@serializable
class SNGAN(GAN):
    """SN-GAN (Miyato et al. 2018): every discriminator layer spectrally
    normalised, W / sigma(W) with one power iteration per D step, the hinge
    loss and Adam."""

    default_network = "sngan"

    def compile(self, g_optimizer="adam", d_optimizer="adam", loss="hinge", **kwargs):
        super().compile(g_optimizer=g_optimizer, d_optimizer=d_optimizer, loss=loss, **kwargs)
