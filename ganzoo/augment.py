"""Differentiable augmentation of what the discriminator sees.

DiffAugment (Zhao, Liu, Lin, Zhu & Han 2020, "Differentiable Augmentation
for Data-Efficient GAN Training", arXiv:2006.10738): the same random
transforms on real and generated images, in the discriminator's step and in
the generator's, all differentiable so the generator learns through them.
With few training images (digits: 1,437) D otherwise memorises the real set.

ADA (Karras, Aittala, Hellsten, Laine, Lehtinen & Aila 2020, "Training
Generative Adversarial Networks with Limited Data", arXiv:2006.06676): each
transform is applied to a sample with probability p, and p follows the
overfitting heuristic r_t = E[sign(D(real))] toward a target (section 3).

Images are `[batch, H, W, C]` in [-1, 1]. A transform draws its per-sample
randomness through `uniform(shape)`, which returns `[batch, *shape]` values
in [0, 1): `ganzoo.GAN` passes its replica rule, so one and N replicas draw
the same values for the same global batch.
"""

import difflib

import keras
import tensorflow as tf
from keras import ops

TRANSFORMS = ("color", "translation", "cutout")
TRANSLATION_RATIO = 1 / 8  # DiffAugment's: shifts of up to H/8 and W/8 pixels
CUTOUT_RATIO = 1 / 2  # DiffAugment's: a square of half the side


def parse_policy(policy):
    """A tuple of transform names from `"color,translation,cutout"`, a list, or None/"" (none)."""
    if policy is None or policy == "" or policy is False:
        return ()
    names = policy.split(",") if isinstance(policy, str) else list(policy)
    names = tuple(str(n).strip() for n in names)
    for name in names:
        if name not in TRANSFORMS:
            close = difflib.get_close_matches(name, TRANSFORMS, n=1)
            hint = f" Did you mean {close[0]!r}?" if close else ""
            raise ValueError(f"Unknown augmentation {name!r}.{hint} Choose from: {', '.join(TRANSFORMS)}.")
    if len(set(names)) != len(names):
        raise ValueError(f"Each augmentation may appear once, got {list(names)}.")
    return names


def augment(images, policy, probability=1.0, uniform=None, seed=None):
    """`images` with the transforms of `policy` applied in order, each to a
    sample with `probability` (1: always, DiffAugment; ADA tunes it).

    `uniform(shape)` draws this replica's `[batch, *shape]` uniforms; by
    default `keras.random.uniform` with `seed`.
    """
    names = parse_policy(policy)
    if not names:
        return images
    if len(images.shape) != 4:
        raise ValueError(f"Augmentation works on images [batch, H, W, C]; got shape {images.shape}.")
    if uniform is None:
        batch = ops.shape(images)[0]

        def uniform(shape):
            return keras.random.uniform((batch, *shape), seed=seed)

    dtype = images.dtype
    images = ops.cast(images, "float32")
    probability = ops.cast(probability, "float32")
    for name in names:
        transformed = _TRANSFORM[name](images, uniform)
        applied = ops.cast(uniform((1, 1, 1)) < probability, "float32")
        images = applied * transformed + (1.0 - applied) * images
    return ops.cast(images, dtype)


def color(images, uniform):
    """DiffAugment's colour: brightness + U(-0.5, 0.5), saturation x U(0, 2)
    around the pixel's channel mean, contrast x U(0.5, 1.5) around the image
    mean; clipped into [-1, 1] so D sees only values G can draw."""
    images = images + (uniform((1, 1, 1)) - 0.5)
    mean = ops.mean(images, axis=3, keepdims=True)
    images = (images - mean) * (uniform((1, 1, 1)) * 2.0) + mean
    mean = ops.mean(images, axis=(1, 2, 3), keepdims=True)
    images = (images - mean) * (uniform((1, 1, 1)) + 0.5) + mean
    return ops.clip(images, -1.0, 1.0)


def translation(images, uniform, ratio=TRANSLATION_RATIO):
    """Each image shifted by whole pixels, up to `ratio` of its height and
    width each way; the uncovered border is 0, as in DiffAugment. The shift
    is a product with per-sample shift matrices: differentiable, and exact."""
    height, width = images.shape[1], images.shape[2]
    draws, shifts = uniform((2,)), []
    for size, column in ((height, 0), (width, 1)):
        reach = int(size * ratio + 0.5)
        shifts.append(ops.floor(draws[:, column] * (2 * reach + 1)) - reach)
    rows = _shift_matrices(shifts[0], height)  # [batch, H, H]
    columns = _shift_matrices(shifts[1], width)  # [batch, W, W]
    images = tf.einsum("bik,bkwc->biwc", rows, images)
    return tf.einsum("bjl,bilc->bijc", columns, images)


def _shift_matrices(shift, size):
    """`[batch, size, size]`: row i picks source i - shift (none off the edge)."""
    source = ops.arange(size, dtype="float32")[None, :] - shift[:, None]
    # tf.one_hot gives an all-zero row for an index outside [0, size).
    return tf.one_hot(ops.cast(source, "int32"), size, dtype="float32")


def cutout(images, uniform, ratio=CUTOUT_RATIO):
    """Each image with a square of `ratio` of its side set to 0 at a random
    centre (it may overlap the edge), as in DiffAugment."""
    height, width = images.shape[1], images.shape[2]
    draws, masks = uniform((2,)), []
    for size, column in ((height, 0), (width, 1)):
        side = int(size * ratio + 0.5)
        centre = ops.floor(draws[:, column] * (size + 1 - side % 2))
        start = centre - side // 2
        index = ops.arange(size, dtype="float32")[None, :]
        masks.append(ops.cast((index >= start[:, None]) & (index < start[:, None] + side), "float32"))
    hole = masks[0][:, :, None, None] * masks[1][:, None, :, None]
    return images * (1.0 - hole)


_TRANSFORM = {"color": color, "translation": translation, "cutout": cutout}


def overfitting(real_logits, loss):
    """ADA's r_t = E[sign(D(real) - centre)] of one batch: about 0 when D
    cannot tell, 1 when it is sure of every real image. The centre is where
    the loss puts D's boundary: 0, or 0.5 for the least-squares targets 0/1."""
    centre = 0.5 if loss == "least_squares" else 0.0
    return ops.mean(ops.sign(ops.cast(real_logits, "float32") - centre))
