"""Layers the zoo's networks share that Keras does not ship."""

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="ganzoo")
class ReflectionPadding2D(keras.layers.Layer):
    """Pad height and width by mirroring the border (no edge artefacts from
    zero padding), as the ResNet generator of CycleGAN does."""

    def __init__(self, padding=1, **kwargs):
        super().__init__(**kwargs)
        self.padding = int(padding)

    def call(self, x):
        p = self.padding
        return ops.pad(x, [[0, 0], [p, p], [p, p], [0, 0]], mode="reflect")

    def compute_output_shape(self, input_shape):
        batch, height, width, channels = input_shape
        grow = lambda d: None if d is None else d + 2 * self.padding  # noqa: E731
        return batch, grow(height), grow(width), channels

    def get_config(self):
        return {**super().get_config(), "padding": self.padding}


def instance_normalization(**kwargs):
    """Instance norm (Ulyanov et al. 2016): Keras' group norm with one group per channel."""
    return keras.layers.GroupNormalization(groups=-1, epsilon=1e-5, **kwargs)


@keras.saving.register_keras_serializable(package="ganzoo")
class ImageHistoryPool(keras.layers.Layer):
    """The image buffer of Shrivastava et al. 2017, as CycleGAN uses it: the
    discriminator sees a mix of new fakes and fakes from earlier steps.

    Until `capacity` images are stored, each new image is stored and passed
    through. Afterwards each new image, with probability 1/2, is swapped
    with a random stored one (the stored one is returned, the new one kept);
    otherwise it passes through. The pool is saved with the model, so a
    resumed run keeps its history.
    """

    def __init__(self, image_shape, capacity=50, seed=None, **kwargs):
        super().__init__(trainable=False, **kwargs)
        self.image_shape = tuple(int(d) for d in image_shape)
        self.capacity = int(capacity)
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)
        # One pool for all replicas: replica 0's writes are kept.
        self.images = self.add_weight(
            shape=(max(self.capacity, 1), *self.image_shape), initializer="zeros",
            trainable=False, name="images", aggregation="only_first_replica",
        )
        self.count = self.add_weight(
            shape=(), initializer="zeros", dtype="int32", trainable=False, name="count",
            aggregation="only_first_replica",
        )
        self.built = True

    def call(self, images):
        if self.capacity == 0:
            return images
        n = ops.shape(images)[0]
        index = ops.arange(n, dtype="int32")
        stored = self.count.value
        # New images fill the free slots first and pass through unchanged.
        filling = index < self.capacity - stored
        pool = ops.convert_to_tensor(self.images)
        fill_slots = ops.where(filling, stored + index, 0)
        pool = _scatter_rows(pool, fill_slots, images, filling)
        stored = ops.minimum(stored + n, self.capacity)
        # The others: a coin flip each to swap with a random stored image.
        swap = ops.logical_and(
            ops.logical_not(filling), keras.random.uniform((n,), seed=self.seed_generator) < 0.5
        )
        slots = keras.random.randint((n,), 0, ops.maximum(stored, 1), dtype="int32", seed=self.seed_generator)
        old = ops.take(pool, slots, axis=0)
        swap_rows = ops.reshape(swap, (-1,) + (1,) * len(self.image_shape))
        returned = ops.where(swap_rows, old, images)
        pool = _scatter_rows(pool, ops.where(swap, slots, 0), images, swap)
        self.images.assign(pool)
        self.count.assign(stored)
        return returned

    def get_config(self):
        return {**super().get_config(), "image_shape": list(self.image_shape),
                "capacity": self.capacity, "seed": self.seed}


def _scatter_rows(pool, slots, rows, mask):
    """`pool` with `rows[i]` written at `slots[i]` where `mask[i]`."""
    import tensorflow as tf

    keep = tf.where(mask)[:, 0]
    return tf.tensor_scatter_nd_update(
        pool, tf.gather(slots, keep)[:, None], tf.gather(tf.cast(rows, pool.dtype), keep)
    )
