"""Layers the zoo's networks share that Keras does not ship."""

import keras
import numpy as np
import tensorflow as tf
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


@keras.saving.register_keras_serializable(package="ganzoo")
class BatchNormalization(keras.layers.BatchNormalization):
    """Keras' batch norm, with statistics over the global batch: N replicas
    train the network one replica would.

    On one replica, images (rank 4, channels last) go through TF's fused
    batch-norm kernel, one op forward and one backward, where Keras composes
    about twenty (moments, an all-reduce even on one device, the affine
    transform). The fused kernel makes a DCGAN 32x32 training step about 7 %
    faster on CPU (`benchmarks/run.py`). The result is Keras' own: the same
    outputs to float32 round-off, and the moving variance is updated with
    the biased batch variance as Keras does. The class keeps Keras' name, by
    which `.keras` and `.weights.h5` files find a layer's weights, so files
    saved with `keras.layers.BatchNormalization` load into it.
    """

    def __init__(self, **kwargs):
        if kwargs.pop("synchronized", True) is not True:
            raise ValueError(
                "ganzoo.layers.BatchNormalization always synchronizes its statistics; use "
                "keras.layers.BatchNormalization for per-replica statistics."
            )
        super().__init__(synchronized=True, **kwargs)

    def _fusable(self, inputs, mask):
        replicas = tf.distribute.get_replica_context()
        return (
            mask is None
            and not self.renorm
            and len(inputs.shape) == 4
            and self.axis in (-1, 3)
            and tf.as_dtype(inputs.dtype) in (tf.float16, tf.bfloat16, tf.float32)  # the kernel's types
            and (replicas is None or replicas.num_replicas_in_sync == 1)
        )

    def call(self, inputs, training=None, mask=None):
        if not self._fusable(inputs, mask):
            return super().call(inputs, training=training, mask=mask)
        x = tf.cast(inputs, "float32")  # as Keras does: statistics in float32
        channels = x.shape[-1]
        gamma = self.gamma if self.scale else tf.ones(channels)
        beta = self.beta if self.center else tf.zeros(channels)
        if training and self.trainable:
            y, mean, variance = tf.compat.v1.nn.fused_batch_norm(
                x, gamma, beta, epsilon=self.epsilon, is_training=True
            )
            # The kernel returns the unbiased variance; Keras averages the biased one.
            count = tf.cast(tf.size(x, out_type=tf.int64) // channels, "float32")
            variance = variance * (count - 1.0) / tf.maximum(count, 1.0)
            momentum = self.momentum
            self.moving_mean.assign(self.moving_mean * momentum + mean * (1.0 - momentum))
            self.moving_variance.assign(self.moving_variance * momentum + variance * (1.0 - momentum))
        else:
            y, _, _ = tf.compat.v1.nn.fused_batch_norm(
                x, gamma, beta, mean=self.moving_mean, variance=self.moving_variance,
                epsilon=self.epsilon, is_training=False,
            )
        return tf.cast(y, self.compute_dtype)


def instance_normalization(**kwargs):
    """Instance norm (Ulyanov et al. 2016): Keras' group norm with one group per channel."""
    return keras.layers.GroupNormalization(groups=-1, epsilon=1e-5, **kwargs)


@keras.saving.register_keras_serializable(package="ganzoo")
class ImageHistoryPool(keras.layers.Layer):
    """The history buffer of Shrivastava et al. 2017, as CycleGAN uses it:
    the discriminator sees a mix of new fakes and fakes from earlier steps.
    Any sample shape (images or vectors).

    Until `capacity` samples are stored, each new one is stored and passed
    through. Afterwards each new sample, with probability 1/2, is swapped
    with a random stored one (the stored one is returned, the new one kept);
    otherwise it passes through. The pool is saved with the model, so a
    resumed run keeps its history.

    Replica-consistent: under a distribution strategy every replica gathers
    the global batch, runs the same draws on it (the seed state is
    mirrored) and keeps its own rows, so every replica holds the same pool
    and one and N replicas return the same samples for the same global batch.
    """

    def __init__(self, image_shape, capacity=50, seed=None, **kwargs):
        super().__init__(trainable=False, **kwargs)
        self.image_shape = tuple(int(d) for d in image_shape)
        self.capacity = int(capacity)
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)
        # Every replica writes the same values (see above): any copy will do.
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
        context = tf.distribute.get_replica_context()
        replicas = context.num_replicas_in_sync if context else 1
        local = ops.shape(images)[0]
        if replicas > 1:
            images = context.all_gather(images, axis=0)
        returned = self._exchange(images)
        if replicas > 1:
            start = context.replica_id_in_sync_group * local
            returned = returned[start : start + local]
        return returned

    def _exchange(self, images):
        """The pool's update for a whole (global) batch, and what it returns."""
        n = ops.shape(images)[0]
        index = ops.arange(n, dtype="int32")
        stored = self.count.value
        # New samples fill the free slots first and pass through unchanged.
        filling = index < self.capacity - stored
        pool = ops.convert_to_tensor(self.images)
        fill_slots = ops.where(filling, stored + index, 0)
        pool = _scatter_rows(pool, fill_slots, images, filling)
        stored = ops.minimum(stored + n, self.capacity)
        # The others: a coin flip each to swap with a random stored sample.
        swap = ops.logical_and(
            ops.logical_not(filling), keras.random.uniform((n,), seed=self.seed_generator) < 0.5
        )
        slots = keras.random.randint((n,), 0, ops.maximum(stored, 1), dtype="int32", seed=self.seed_generator)
        old = ops.cast(ops.take(pool, slots, axis=0), images.dtype)
        swap_rows = ops.reshape(swap, (-1,) + (1,) * len(self.image_shape))
        returned = ops.where(swap_rows, old, images)
        pool = _scatter_rows(pool, ops.where(swap, slots, 0), images, swap)
        self.images.assign(pool)
        self.count.assign(stored)
        return returned

    # Keras saves the pool's variables but not its random state; keep that too,
    # so a resumed run swaps the images the uninterrupted run would have.
    _SEED_KEY = "seed_state"

    def save_own_variables(self, store):
        super().save_own_variables(store)
        store[self._SEED_KEY] = ops.convert_to_numpy(self.seed_generator.state.value)

    def load_own_variables(self, store):
        if self._SEED_KEY in store.keys():
            self.seed_generator.state.assign(store[self._SEED_KEY])
        super().load_own_variables({key: store[key] for key in store.keys() if key != self._SEED_KEY})

    def get_config(self):
        return {**super().get_config(), "image_shape": list(self.image_shape),
                "capacity": self.capacity, "seed": self.seed}


def _scatter_rows(pool, slots, rows, mask):
    """`pool` with `rows[i]` written at `slots[i]` where `mask[i]`."""
    keep = tf.where(mask)[:, 0]
    return tf.tensor_scatter_nd_update(
        pool, tf.gather(slots, keep)[:, None], tf.gather(tf.cast(rows, pool.dtype), keep)
    )


# ---------------------------------------------- progressive growing (pggan)
@keras.saving.register_keras_serializable(package="ganzoo")
class ClusterCode(keras.layers.Layer):
    """The cluster a self-conditioned generator draws for each noise vector:
    the normal CDF of z's first entry, u ~ U(0, 1), picks cluster k with
    probability `frequencies[k]` (inverse-CDF sampling), so the generator, its
    export and its serving signature still take one noise vector.

    The cumulative frequencies are a weight (`cluster_cdf`), set from the
    training data by `GAN.fit_clusters` and saved with the model. The CDF is
    Bowling et al.'s (2009) logistic approximation, sigmoid(1.5976 x +
    0.070566 x^3), within 1.4e-4 of the normal's everywhere: TFLite has no
    erf, and the drawn frequencies differ from the data's by less than that.
    Computed in float32 under any precision policy.
    """

    def __init__(self, clusters, **kwargs):
        super().__init__(**{"dtype": "float32", **kwargs})
        self.clusters = int(clusters)
        self.cdf = self.add_weight(
            shape=(self.clusters,), trainable=False, name="cluster_cdf",
            initializer=keras.initializers.Constant([(k + 1) / self.clusters for k in range(self.clusters)]),
        )
        self.built = True  # its one weight is made here, whatever it is called on

    def call(self, z):
        x = ops.cast(z[:, 0], "float32")
        u = ops.sigmoid(1.5976 * x + 0.070566 * x * x * x)
        # Cluster k when cdf[k - 1] <= u < cdf[k]: the number of boundaries at or below u.
        below = ops.cast(self.cdf[None, :-1] <= u[:, None], "int32")
        return ops.sum(below, axis=1)

    def set_frequencies(self, frequencies):
        cdf = np.cumsum(np.asarray(frequencies, "float64"))
        cdf = cdf / cdf[-1]
        cdf[-1] = 1.0
        self.cdf.assign(cdf.astype("float32"))

    def compute_output_shape(self, input_shape):
        return (input_shape[0],)

    def get_config(self):
        return {**super().get_config(), "clusters": self.clusters}


@keras.saving.register_keras_serializable(package="ganzoo")
class CategoricalCode(keras.layers.Layer):
    """InfoGAN's categorical code read off the noise: the first `categories`
    entries of z are replaced by the one-hot of their argmax.

    The argmax of i.i.d. normals is uniform over the categories, so this is
    InfoGAN's c ~ Cat(K) drawn with z (Chen et al. 2016, arXiv:1606.03657)
    while the generator, its export and its serving signature still take one
    noise vector: the code is a function of z, not a second input.
    """

    def __init__(self, categories, **kwargs):
        super().__init__(**{"dtype": "float32", **kwargs})  # the argmax of z as drawn, not of z rounded
        self.categories = int(categories)

    def call(self, z):
        return ops.concatenate([self.code(z), z[:, self.categories:]], axis=-1)

    def index(self, z):
        """The category of each row of `z`: the argmax of its first entries."""
        return ops.argmax(z[:, : self.categories], axis=-1)

    def code(self, z):
        """The one-hot code of each row of `z`."""
        return ops.one_hot(self.index(z), self.categories, dtype=z.dtype)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "categories": self.categories}


@keras.saving.register_keras_serializable(package="ganzoo")
class PixelNormalization(keras.layers.Layer):
    """x / sqrt(mean over channels of x^2 + epsilon) at every pixel
    (Karras et al. 2018, section 4.2): keeps G's feature magnitudes from
    escalating, with no learned parameters."""

    def __init__(self, epsilon=1e-8, **kwargs):
        super().__init__(**kwargs)
        self.epsilon = float(epsilon)

    def call(self, x):
        return x * ops.rsqrt(ops.mean(ops.square(x), axis=-1, keepdims=True) + self.epsilon)

    def get_config(self):
        return {**super().get_config(), "epsilon": self.epsilon}


@keras.saving.register_keras_serializable(package="ganzoo")
class MinibatchStdDev(keras.layers.Layer):
    """Append one feature map: the standard deviation of each feature over
    groups of `group_size` images, averaged over features and pixels
    (Karras et al. 2018, section 3), so D can see a batch's lack of variety.
    The batch must divide into groups; smaller batches use one group."""

    def __init__(self, group_size=4, epsilon=1e-8, **kwargs):
        super().__init__(**kwargs)
        self.group_size, self.epsilon = int(group_size), float(epsilon)

    def call(self, x):
        batch = ops.shape(x)[0]
        group = ops.minimum(self.group_size, batch)
        group = ops.where(batch % group == 0, group, batch)
        height, width, channels = x.shape[1], x.shape[2], x.shape[3]
        # Groups of consecutive images (the paper strides them, i, i + N/G,
        # ...): with a per-replica batch divisible by the group size, N
        # replicas form the groups one replica forms on the global batch.
        grouped = ops.reshape(x, (-1, group, height, width, channels))
        std = ops.sqrt(ops.var(grouped, axis=1) + self.epsilon)  # [batch / group, H, W, C]
        mean_std = ops.mean(std, axis=(1, 2, 3), keepdims=True)  # [batch / group, 1, 1, 1]
        tiled = ops.tile(ops.repeat(mean_std, group, axis=0), (1, height, width, 1))
        return ops.concatenate([x, ops.cast(tiled, x.dtype)], axis=-1)

    def compute_output_shape(self, input_shape):
        return (*input_shape[:-1], input_shape[-1] + 1)

    def get_config(self):
        return {**super().get_config(), "group_size": self.group_size, "epsilon": self.epsilon}


class _Equalized(keras.layers.Layer):
    """Weights drawn from N(0, 1) and multiplied at run time by He's constant
    sqrt(gain / fan_in) (Karras et al. 2018, section 4.1), so Adam's
    per-parameter step sizes give every layer the same learning speed."""

    def __init__(self, units, gain=2.0, use_bias=True, **kwargs):
        super().__init__(**kwargs)
        self.units, self.gain, self.use_bias = int(units), float(gain), use_bias

    def _build_weights(self, kernel_shape, fan_in):
        self.scale = (self.gain / fan_in) ** 0.5
        self.kernel = self.add_weight(
            shape=kernel_shape, initializer=keras.initializers.RandomNormal(0.0, 1.0), name="kernel"
        )
        self.bias = self.add_weight(shape=(self.units,), initializer="zeros", name="bias") if self.use_bias else None

    def _finish(self, y):
        return y + self.bias if self.use_bias else y

    def get_config(self):
        return {**super().get_config(), "gain": self.gain, "use_bias": self.use_bias}


@keras.saving.register_keras_serializable(package="ganzoo")
class EqualizedDense(_Equalized):
    def build(self, input_shape):
        self._build_weights((input_shape[-1], self.units), input_shape[-1])

    def call(self, x):
        return self._finish(ops.matmul(x, self.kernel * self.scale))

    def compute_output_shape(self, input_shape):
        return (*input_shape[:-1], self.units)

    def get_config(self):
        return {**super().get_config(), "units": self.units}


@keras.saving.register_keras_serializable(package="ganzoo")
class EqualizedConv2D(_Equalized):
    def __init__(self, filters, kernel_size=3, gain=2.0, use_bias=True, **kwargs):
        super().__init__(filters, gain=gain, use_bias=use_bias, **kwargs)
        self.kernel_size = int(kernel_size)

    def build(self, input_shape):
        k, channels = self.kernel_size, input_shape[-1]
        self._build_weights((k, k, channels, self.units), k * k * channels)

    def call(self, x):
        return self._finish(ops.conv(x, self.kernel * self.scale, strides=1, padding="same"))

    def compute_output_shape(self, input_shape):
        return (*input_shape[:-1], self.units)

    def get_config(self):
        return {**super().get_config(), "filters": self.units, "kernel_size": self.kernel_size}


def spectral_norm(matrix, u, iterations=1, epsilon=1e-12):
    """`(sigma, u)`: the largest singular value of `matrix` `[n, m]` by
    `iterations` steps of power iteration from `u` `[1, m]`, and the new `u`.

    Miyato et al. 2018, Algorithm 1: v = W u / |W u|, u = W^T v / |W^T v|,
    sigma = v^T W u. `u` and `v` are constants of the gradient, so the
    gradient of W / sigma runs through sigma's dependence on W, as in the paper.
    """
    matrix = ops.cast(matrix, "float32")
    u = ops.cast(u, "float32")
    for _ in range(iterations):
        v = _unit(ops.matmul(u, ops.transpose(matrix)), epsilon)
        u = _unit(ops.matmul(v, matrix), epsilon)
    u, v = ops.stop_gradient(u), ops.stop_gradient(v)
    sigma = ops.sum(ops.matmul(v, matrix) * u)
    return sigma, u


def _unit(x, epsilon):
    return x / (ops.sqrt(ops.sum(ops.square(x))) + epsilon)


class _SpectrallyNormalized:
    """A layer whose kernel W is used as W / sigma(W) (Miyato et al. 2018).

    A reparametrisation, unlike `keras.layers.SpectralNormalization`, which
    writes W / sigma into the kernel on every `training=True` call: here the
    trainable kernel stays W, and the only state, the power-iteration vector
    u, is assigned in training mode, so the generator step (which runs D
    inside `keras.StatelessScope`) changes nothing of the discriminator.
    """

    def __init__(self, *args, power_iterations=1, **kwargs):
        super().__init__(*args, **kwargs)
        if not 1 <= int(power_iterations) <= 100:
            raise ValueError(f"power_iterations must be in [1, 100], got {power_iterations!r}.")
        self.power_iterations = int(power_iterations)

    def build(self, input_shape):
        super().build(input_shape)
        # Replicas compute the same u from the same (mirrored) W and u: any copy will do.
        self.power_u = self.add_weight(
            shape=(1, self.kernel.shape[-1]), initializer=keras.initializers.RandomNormal(0.0, 1.0),
            trainable=False, name="power_u", aggregation="only_first_replica",
        )

    # Keras' Dense and Conv save a fixed list of their own variables; u goes beside them.
    _U_KEY = "power_u"

    def save_own_variables(self, store):
        super().save_own_variables(store)
        if self.built:
            store[self._U_KEY] = self.power_u.numpy()

    def load_own_variables(self, store):
        # The whole store: Keras checks that it holds as many entries as the
        # layer has variables (u included), then reads its own by index.
        super().load_own_variables(store)
        if self.built:
            self.power_u.assign(store[self._U_KEY])

    def normalized_kernel(self, training=False):
        kernel = self.kernel
        sigma, u = spectral_norm(ops.reshape(kernel, (-1, kernel.shape[-1])), self.power_u, self.power_iterations)
        if training:
            self.power_u.assign(u)
        return kernel / ops.cast(sigma, kernel.dtype)

    def sigma(self):
        """sigma(W) from the stored u, without updating it."""
        kernel = self.kernel
        return spectral_norm(ops.reshape(kernel, (-1, kernel.shape[-1])), self.power_u, self.power_iterations)[0]

    def _finish(self, x):
        if self.use_bias:
            x = ops.add(x, ops.reshape(self.bias, (1,) * (len(x.shape) - 1) + (-1,)))
        return self.activation(x) if self.activation is not None else x

    def get_config(self):
        return {**super().get_config(), "power_iterations": self.power_iterations}


@keras.saving.register_keras_serializable(package="ganzoo")
class SpectralDense(_SpectrallyNormalized, keras.layers.Dense):
    """`keras.layers.Dense` with a spectrally normalised kernel."""

    def call(self, inputs, training=None):
        return self._finish(ops.matmul(inputs, self.normalized_kernel(training)))


@keras.saving.register_keras_serializable(package="ganzoo")
class SpectralConv2D(_SpectrallyNormalized, keras.layers.Conv2D):
    """`keras.layers.Conv2D` with a spectrally normalised kernel (W reshaped
    to `[k * k * in, out]`, as the paper does)."""

    def call(self, inputs, training=None):
        return self._finish(self.convolution_op(inputs, self.normalized_kernel(training)))


def leaky_relu(x, slope):
    """Leaky ReLU as max(x, slope * x), for `slope` in [0, 1], with its
    gradient read from the output: 1 where it is positive, else slope (at 0
    too, as TF's ReLU gradient is 0 there).

    Not TF's LeakyRelu op: after a convolution whose kernel is computed
    (spectral norm), or under a double backward (R1, the gradient penalty),
    Grappler's remapper fuses it into the convolution, drops the node that
    the backward pass reads, logs "remapper failed" and skips every other
    rewrite of the step. max() does not, but TF differentiates it as two
    branches (a comparison, two selects, a multiply and a sum per layer);
    this gradient is one select, which made the default DCGAN step about 5 %
    faster. The output, not the input, is what the gradient keeps: keeping
    the convolution's output makes the remapper fail in the same way. The
    second derivative is zero, as it is for the op, so R1 and the gradient
    penalty differentiate through it unchanged.
    """
    slope = float(slope)

    @tf.custom_gradient
    def forward(x):
        y = tf.maximum(x, slope * x)

        def backward(upstream):
            return tf.where(y > 0, upstream, slope * upstream)

        return y, backward

    return forward(x)


@keras.saving.register_keras_serializable(package="ganzoo")
class LeakyReLU(keras.layers.LeakyReLU):
    """`keras.layers.LeakyReLU` computed by `leaky_relu` (why: see there)."""

    def __init__(self, negative_slope=0.3, **kwargs):
        super().__init__(negative_slope=negative_slope, **kwargs)
        if not 0 <= self.negative_slope <= 1:
            raise ValueError(f"negative_slope must lie in [0, 1], got {negative_slope!r}.")

    def call(self, inputs):
        return leaky_relu(inputs, self.negative_slope)
