"""The CIFAR-10 ResNets of WGAN-GP (Gulrajani et al. 2017, arXiv:1704.00028,
appendix F) and SN-GAN (Miyato et al. 2018, arXiv:1802.05957, appendix B.4),
as one network for every unconditional entry: `network: resnet`.

G: z -> dense to 4x4 x W -> per doubling a residual block (BN, ReLU, nearest
2x upsampling, 3x3 conv, BN, ReLU, 3x3 conv; the shortcut upsamples and
1x1-convolves) -> BN, ReLU, 3x3 conv to the channels, tanh.
D: an "optimised" first block at full size and one residual block per halving
down to 8x8 (3x3 convs, 2x2 average pooling), two more blocks without
pooling, ReLU, global pooling (WGAN-GP: mean; SN-GAN: sum) and a dense
logit. W = 128 in WGAN-GP's networks and SN-GAN's D (its G: 256); `norm` is
the critic's (WGAN-GP: none; SN-GAN: spectral).
"""

import math

import keras
from keras import layers

from ganzoo import layers as zoo_layers
from ganzoo.layers import SpectralConv2D, SpectralDense
from ganzoo.networks import register_network


def _conv(norm, filters, kernel):
    if norm == "spectral":
        return SpectralConv2D(filters, kernel, padding="same")
    return layers.Conv2D(filters, kernel, padding="same")


def _generator_block(x, filters):
    shortcut = layers.Conv2D(filters, 1)(layers.UpSampling2D()(x))
    x = layers.ReLU()(zoo_layers.BatchNormalization()(x))
    x = layers.Conv2D(filters, 3, padding="same")(layers.UpSampling2D()(x))
    x = layers.ReLU()(zoo_layers.BatchNormalization()(x))
    x = layers.Conv2D(filters, 3, padding="same")(x)
    return layers.Add()([x, shortcut])


def _critic_block(y, filters, norm, downsample, first=False):
    shortcut = y
    if first:  # the optimised block: no activation before the first conv
        h = _conv(norm, filters, 3)(y)
    else:
        h = _conv(norm, filters, 3)(layers.ReLU()(y))
    h = _conv(norm, filters, 3)(layers.ReLU()(h))
    if downsample:
        h = layers.AveragePooling2D(2)(h)
        shortcut = layers.AveragePooling2D(2)(shortcut)
    if downsample or shortcut.shape[-1] != filters:
        shortcut = _conv(norm, filters, 1)(shortcut)
    return layers.Add()([h, shortcut])


@register_network("resnet")
def resnet(latent_dim, data_shape, filters=128, norm=None, pool="sum"):
    """`filters`: the width W of every block; `norm`: None or `spectral` in D;
    `pool`: D's global pooling, `sum` (SN-GAN) or `mean` (WGAN-GP)."""
    if norm not in (None, "spectral"):
        raise ValueError(f"network_args norm of the resnet critic is None or 'spectral', got {norm!r}.")
    if pool not in ("sum", "mean"):
        raise ValueError(f"network_args pool of the resnet critic is 'sum' or 'mean', got {pool!r}.")
    size = data_shape[0]
    doublings = int(math.log2(size)) - 2
    if data_shape[0] != data_shape[1] or 2 ** (doublings + 2) != size or doublings < 1:
        raise ValueError(f"The resnet network draws square images of a power-of-two side from 8, got {list(data_shape)}.")

    z = keras.Input((latent_dim,), name="z")
    x = layers.Reshape((4, 4, filters))(layers.Dense(4 * 4 * filters)(z))
    for _ in range(doublings):
        x = _generator_block(x, filters)
    x = layers.ReLU()(zoo_layers.BatchNormalization()(x))
    images = layers.Conv2D(data_shape[-1], 3, padding="same", activation="tanh", dtype="float32")(x)
    generator = keras.Model(z, images, name="generator")

    image = keras.Input(data_shape, name="image")
    y = _critic_block(image, filters, norm, downsample=True, first=True)
    for _ in range(max(doublings - 2, 0)):  # down to 8x8, as the papers' 32 -> 16 -> 8
        y = _critic_block(y, filters, norm, downsample=True)
    for _ in range(2):
        y = _critic_block(y, filters, norm, downsample=False)
    positions = y.shape[1] * y.shape[2]
    y = layers.GlobalAveragePooling2D()(layers.ReLU()(y))
    if pool == "sum":
        y = layers.Rescaling(float(positions), name="sum_pool")(y)
    dense = SpectralDense(1, dtype="float32") if norm == "spectral" else layers.Dense(1, dtype="float32")
    discriminator = keras.Model(image, dense(y), name="discriminator")
    return generator, discriminator
