"""Progressive growing of GANs: Karras, Aila, Laine & Lehtinen 2018,
"Progressive Growing of GANs for Improved Quality, Stability, and Variation"
(arXiv:1710.10196).

The whole network, up to the target resolution, is built once. A `progress`
value p in [0, L] (L doublings above 4x4) weights each block: block s is off
while p <= s - 1, fades in while s - 1 < p < s, and is on from p = s. p is a
pure function of the images shown so far, a saved variable, so a single
`fit` runs every phase without retracing and a resumed run continues at the
same resolution and alpha. `fit` keeps one traced step per level and picks,
before each step, the one for the current level (as keras-io's StyleGAN
switches steps between phases): a step at 8x8 costs what an 8x8 network
costs, and each step is a plain graph that XLA compiles and TF's graph
optimiser handles. Elsewhere (a traced `generate` at a progress only known
at run time) the networks pick the level with `tf.switch_case`.
"""

import math

import keras
import tensorflow as tf
from keras import ops

from ganzoo import clusters as clusters_lib
from ganzoo import losses, visualize
from ganzoo.layers import EqualizedConv2D, EqualizedDense, MinibatchStdDev, PixelNormalization, leaky_relu
from ganzoo.models.base import GAN, serializable
from ganzoo.networks import register_network


def resolutions(target):
    """[4, 8, ..., target] for a target side of 4 * 2^L."""
    levels = math.log2(target / 4)
    if target < 8 or levels != int(levels):
        raise ValueError(f"pggan grows square images from 4x4 to a side of 4 * 2^L (8, 16, 32, ...), got {target}.")
    return [4 * 2**s for s in range(int(levels) + 1)]


def block_weight(progress, level):
    """How much of block `level` (>= 1) is used at `progress`: 0, the fade-in alpha, or 1."""
    return ops.clip(ops.convert_to_tensor(progress, "float32") - (level - 1), 0.0, 1.0)


def upsample(x):
    _, height, width, channels = x.shape
    x = ops.repeat(ops.repeat(x, 2, axis=1), 2, axis=2)
    if None not in (height, width, channels):
        # repeat loses the static shape, and TFLite's Conv2D needs the channels
        x = ops.reshape(x, (-1, 2 * height, 2 * width, channels))
    return x


def downsample(x):
    return ops.average_pool(x, 2, strides=2, padding="valid")


def grow(levels, progress):
    """Compose per-level images (4x4 first) into the target-resolution image:
    each level is blended with the upsampled image below it by its block
    weight. The generator's output and the real images pass through this."""
    image = levels[0]
    for level, current in enumerate(levels[1:], start=1):
        weight = ops.cast(block_weight(progress, level), current.dtype)
        image = weight * current + (1.0 - weight) * upsample(image)
    return image


def pyramid(images, count):
    """`count` levels of `images` by 2x2 average pooling, lowest first."""
    levels = [images]
    for _ in range(count - 1):
        levels.insert(0, downsample(levels[0]))
    return levels


def _lrelu(x):
    return leaky_relu(x, 0.2)  # not the LeakyRelu op, which the penalty's double backward trips: see leaky_relu


@keras.saving.register_keras_serializable(package="ganzoo")
class ProgressiveGenerator(keras.Model):
    """z -> pixel norm -> 4x4 -> [upsample, 2 x (3x3 conv, LReLU, pixel norm)]
    per doubling; a 1x1 toRGB after every level. Linear output."""

    def __init__(self, latent_dim, data_shape, fmap_base=2048, fmap_max=128, clusters=0,
                 cluster_embedding=clusters_lib.EMBEDDING, **kwargs):
        super().__init__(**kwargs)
        self.latent_dim, self.data_shape = int(latent_dim), tuple(data_shape)
        self.fmap_base, self.fmap_max = int(fmap_base), int(fmap_max)
        # Self-conditioned (GAN's `clusters`): G reads [z, k], k's embedding beside z.
        self.clusters, self.cluster_embedding = int(clusters), int(cluster_embedding)
        if self.clusters:
            self.embedding = keras.layers.Embedding(self.clusters, self.cluster_embedding, name="cluster_embedding")
        self.sizes = resolutions(self.data_shape[0])
        width = [min(self.fmap_base // r, self.fmap_max) for r in self.sizes]
        channels = self.data_shape[-1]
        self.pixel_norm = PixelNormalization()
        # The paper's first layer is a 4x4 transposed conv of z: a dense layer to 4x4 maps.
        self.project = EqualizedDense(16 * width[0], gain=2.0 / 16)
        self.head = EqualizedConv2D(width[0], 3)
        # Flat lists of layers: Keras tracks the weights of list items, not of tuples in lists.
        self.first_convs = [EqualizedConv2D(w, 3) for w in width[1:]]
        self.second_convs = [EqualizedConv2D(w, 3) for w in width[1:]]
        self.to_rgb = [EqualizedConv2D(channels, 1, gain=1.0) for _ in self.sizes]
        self.build((None, self.latent_dim))

    def build(self, input_shape):
        super().build(input_shape)
        z = ops.zeros((1, self.latent_dim))
        self([z, ops.zeros((1,), "int32")] if self.clusters else z)

    def level_images(self, z, top=None):
        """The toRGB image of every level up to `top` (default all), 4x4 first;
        `z` is `[z, clusters]` when self-conditioned."""
        if self.clusters:  # as the paper's conditional G: the label joins z before the pixel norm
            z, k = z
            z = ops.concatenate([z, ops.cast(self.embedding(k), z.dtype)], axis=-1)
        x = self.pixel_norm(z)
        x = ops.reshape(_lrelu(self.project(x)), (-1, 4, 4, self.project.units // 16))
        x = self.pixel_norm(_lrelu(self.head(self.pixel_norm(x))))
        # Images in float32 whatever the compute dtype (mixed precision).
        images = [ops.cast(self.to_rgb[0](x), "float32")]
        top = len(self.sizes) - 1 if top is None else top
        for first, second, to_rgb in list(zip(self.first_convs, self.second_convs, self.to_rgb[1:]))[:top]:
            x = upsample(x)
            x = self.pixel_norm(_lrelu(first(x)))
            x = self.pixel_norm(_lrelu(second(x)))
            images.append(ops.cast(to_rgb(x), "float32"))
        return images

    def call(self, z, progress=None, level=None):
        """Images at `progress`; `level` (a Python int, ceil(progress)) when
        the caller knows it, else it is read from `progress`."""
        top = len(self.sizes) - 1
        if progress is None:
            return grow(self.level_images(z), float(top))

        def up_to(level):
            image = grow(self.level_images(z, level), progress)
            return ops.repeat(ops.repeat(image, 2 ** (top - level), axis=1), 2 ** (top - level), axis=2)

        if isinstance(progress, (int, float)):
            # Known when traced (an export): the one level it needs, and no
            # switch, which TFLite and ONNX cannot convert.
            level = math.ceil(progress)
        if level is not None:
            return up_to(min(top, max(0, int(level))))
        progress = ops.convert_to_tensor(progress, "float32")
        level = ops.cast(ops.ceil(progress), "int32")
        return tf.switch_case(level, [lambda level=level_: up_to(level) for level_ in range(top + 1)])

    def get_config(self):
        return {**super().get_config(), "latent_dim": self.latent_dim, "data_shape": list(self.data_shape),
                "fmap_base": self.fmap_base, "fmap_max": self.fmap_max, "clusters": self.clusters,
                "cluster_embedding": self.cluster_embedding}


@keras.saving.register_keras_serializable(package="ganzoo")
class ProgressiveDiscriminator(keras.Model):
    """fromRGB (1x1) at every level; per halving 2 x (3x3 conv, LReLU) and 2x2
    average pooling; at 4x4 minibatch stddev, a 3x3 and a 4x4 conv (here a
    dense layer) and a linear output."""

    def __init__(self, data_shape, fmap_base=2048, fmap_max=128, group_size=4, clusters=0, **kwargs):
        super().__init__(**kwargs)
        self.data_shape = tuple(data_shape)
        self.fmap_base, self.fmap_max, self.group_size = int(fmap_base), int(fmap_max), int(group_size)
        self.clusters = int(clusters)
        self.sizes = resolutions(self.data_shape[0])
        width = [min(self.fmap_base // r, self.fmap_max) for r in self.sizes]
        self.from_rgb = [EqualizedConv2D(w, 1) for w in width]
        self.first_convs = [EqualizedConv2D(width[s], 3) for s in range(1, len(width))]
        self.second_convs = [EqualizedConv2D(width[s - 1], 3) for s in range(1, len(width))]
        self.stddev = MinibatchStdDev(group_size)
        self.tail_conv = EqualizedConv2D(width[0], 3)
        self.tail_dense = EqualizedDense(width[0])
        self.logit = EqualizedDense(1, gain=1.0)
        if self.clusters:  # the projection discriminator's class embedding (Miyato & Koyama 2018)
            self.projection = keras.layers.Embedding(
                self.clusters, width[0], name="cluster_projection",
                embeddings_initializer=clusters_lib.projection_initializer())
        self.build((None, *self.data_shape))

    def build(self, input_shape):
        super().build(input_shape)
        inputs = pyramid(ops.zeros((self.group_size, *self.data_shape)), len(self.sizes))
        labels = ops.zeros((self.group_size,), "int32") if self.clusters else None
        for level in range(len(self.sizes)):  # every fromRGB, not only the top two
            self._score(inputs, float(level), level, labels)

    def call(self, images, progress=None, level=None, labels=None):
        """Logits of `images` (and, self-conditioned, of their cluster `labels`) at `progress`."""
        if self.clusters and labels is None:
            raise ValueError("A self-conditioned discriminator judges (image, cluster) pairs: pass labels.")
        top = len(self.sizes) - 1
        inputs = pyramid(images, len(self.sizes))
        if progress is None:
            return self._score(inputs, float(top), top, labels)
        progress = ops.convert_to_tensor(progress, "float32")
        if level is not None:
            return self._score(inputs, progress, min(top, max(0, int(level))), labels)
        level = ops.cast(ops.ceil(progress), "int32")
        return tf.switch_case(
            level, [lambda level=level_: self._score(inputs, progress, level, labels) for level_ in range(top + 1)]
        )

    def _score(self, inputs, progress, top, labels=None):
        """Logits from the levels up to `top`; block `top` fades in by its
        weight; plus <embed(label), features> when self-conditioned."""
        h = _lrelu(self.from_rgb[top](inputs[top]))
        for level in range(top, 0, -1):
            first, second = self.first_convs[level - 1], self.second_convs[level - 1]
            block = downsample(_lrelu(second(_lrelu(first(h)))))
            if level < top:  # fully grown below the newest block: no skip path
                h = block
                continue
            skip = _lrelu(self.from_rgb[level - 1](inputs[level - 1]))
            weight = ops.cast(block_weight(progress, level), block.dtype)
            h = weight * block + (1.0 - weight) * skip
        h = _lrelu(self.tail_conv(self.stddev(h)))
        h = _lrelu(self.tail_dense(ops.reshape(h, (ops.shape(h)[0], -1))))
        logits = ops.cast(self.logit(h), "float32")
        if not self.clusters:
            return logits
        embedded = ops.cast(self.projection(labels), "float32")
        return logits + ops.sum(embedded * ops.cast(h, "float32"), axis=-1, keepdims=True)

    def get_config(self):
        return {**super().get_config(), "data_shape": list(self.data_shape), "fmap_base": self.fmap_base,
                "fmap_max": self.fmap_max, "group_size": self.group_size, "clusters": self.clusters}


class ProgressiveSampler(keras.Model):
    """z -> images of a self-conditioned progressive generator: the cluster
    drawn from z by `code` (a `ClusterCode`), at any `progress`. Not saved on
    its own: the GAN that holds it rebuilds it. float32, so that under mixed
    precision the code reads z as drawn (G casts it itself)."""

    def __init__(self, generator, code, **kwargs):
        super().__init__(**{"dtype": "float32", **kwargs})
        self.generator, self.code = generator, code
        self.built = True  # nothing of its own to build; else fit would build the GAN on a batch of data

    def call(self, z, progress=None, level=None, training=None):
        return self.generator([z, self.code(z)], progress=progress, level=level, training=training)


@register_network("progressive", kind="progressive")
def progressive(latent_dim, data_shape, fmap_base=2048, fmap_max=128, group_size=4, clusters=0,
                cluster_embedding=clusters_lib.EMBEDDING):
    """The progressive generator and discriminator, grown from 4x4 to `data_shape`.
    Widths are min(fmap_base / resolution, fmap_max) (the paper: 8192 and 512).
    With `clusters`, both are conditioned on a cluster id (self-conditioning)."""
    if len(data_shape) != 3 or data_shape[0] != data_shape[1]:
        raise ValueError(f"pggan grows square images (H, H, C); got data_shape {data_shape}.")
    return (
        ProgressiveGenerator(latent_dim, data_shape, fmap_base, fmap_max, clusters, cluster_embedding,
                             name="generator"),
        ProgressiveDiscriminator(data_shape, fmap_base, fmap_max, group_size, clusters, name="discriminator"),
    )


@serializable
class ProgressiveGAN(GAN):
    """Progressive growing (Karras et al. 2018): 4x4 up to `data_shape`, each
    new block faded in over `fade_images` images shown and then trained
    stable for `stable_images`; pixel norm in G, minibatch stddev in D,
    equalised learning rate, the WGAN-GP loss with the drift term
    epsilon * E[D(x)^2], and an exponential moving average of G's weights
    (`ema_decay`) for sampling and export.

    Args:
        fade_images, stable_images: images shown per fade-in and per stable phase.
        gp_weight: lambda of the gradient penalty.
        drift_weight: epsilon of the drift term.
        ema_decay: decay of the generator's moving average.
        **kwargs: as `ganzoo.GAN`; with `clusters`, G and D are conditioned
            on the cluster inside the progressive networks.
    """

    default_network = "progressive"
    network_kind = "progressive"
    fixed_discriminator = False  # D grows: no snapshots or pool of fakes
    _traced_level = None  # the level of the step being traced (make_train_function)

    def __init__(self, data_shape, fade_images=20_000, stable_images=20_000, gp_weight=10.0,
                 drift_weight=0.001, ema_decay=0.999, **kwargs):
        if fade_images < 1 or stable_images < 0:
            raise ValueError(f"fade_images must be positive and stable_images >= 0, got {fade_images}, {stable_images}.")
        self.fade_images, self.stable_images = int(fade_images), int(stable_images)
        self.gp_weight, self.drift_weight = float(gp_weight), float(drift_weight)
        super().__init__(data_shape, ema_decay=ema_decay, **kwargs)
        self.levels = len(self.generator.sizes) - 1
        # Images shown so far: the schedule's clock, saved with the model.
        self.images_seen = self.add_weight(shape=(), initializer="zeros", dtype="float32", trainable=False,
                                           name="images_seen", aggregation="only_first_replica")

    def make_train_function(self, force=False):
        """One traced step per level, chosen before each step from the
        schedule's clock, so no step holds the level switch."""
        if self.train_function is not None and not force:
            return self.train_function
        if self.steps_per_execution > 1:
            # One call runs several steps, and a level change may fall
            # inside it: only the switch step is right for every one.
            return super().make_train_function(force=True)
        steps = {}

        def train_function(data):
            level = self.current_level()
            if level not in steps:
                steps[level] = self._make_function(self.train_step)
            # Read when a step is traced (first call, or a new batch shape).
            self._traced_level = level
            try:
                return steps[level](data)
            finally:
                self._traced_level = None

        self.train_function = train_function
        return train_function

    def current_level(self):
        """ceil(progress) as a Python int (reads the schedule's clock)."""
        return min(self.levels, max(0, math.ceil(float(self.progress))))

    # ---------------------------------------------------------- schedule
    @property
    def total_images(self):
        """Images shown until the last block is faded in and trained stable."""
        return self.stable_images + self.levels * (self.fade_images + self.stable_images)

    def progress_at(self, images_seen):
        """p for a number of images shown: stable at 0, then per level a fade
        (p rises by 1 over `fade_images`) and a stable phase; at most L."""
        images = ops.maximum(ops.cast(images_seen, "float32") - self.stable_images, 0.0)
        period = float(self.fade_images + self.stable_images)
        level = ops.floor(images / period)
        within = images - level * period
        return ops.minimum(level + ops.minimum(within / self.fade_images, 1.0), float(self.levels))

    @property
    def progress(self):
        return self.progress_at(self.images_seen)

    def phase(self, progress=None):
        """`(resolution, alpha)` being trained: the resolution of the newest
        block in use and its fade-in alpha (1 when stable)."""
        p = float(self.progress if progress is None else progress)
        level = math.ceil(p)
        alpha = 1.0 if level == p else p - math.floor(p)
        return self.generator.sizes[level], alpha

    # ------------------------------------------------------------- hooks
    def build_self_conditioned_pair(self):
        """The progressive pair conditioned on the cluster (`clusters`)."""
        return self.build_network_pair(clusters=self.clusters, cluster_embedding=self.cluster_embedding)

    def cluster_sampler_for(self, generator, name):
        return ProgressiveSampler(generator, self.cluster_code, name=name)

    def fake_samples(self, batch_size, labels=None, training=True):
        return self.generator(self.conditioned_noise(self.sample_noise(batch_size), labels), progress=self.progress,
                              level=self._traced_level, training=training)

    def discriminate(self, samples, labels=None, training=True):
        return self.discriminator(samples, progress=self.progress, level=self._traced_level, labels=labels,
                                  training=training)

    def unpack_batch(self, data):
        """`(real, labels)` with the real images at the current resolution,
        blended as G's output is; self-conditioned, labelled by the clusters
        of the full-resolution images."""
        images, labels = super().unpack_batch(data)
        return grow(pyramid(images, self.levels + 1), self.progress), labels

    def discriminator_loss(self, real, fake, real_logits, fake_logits, labels=None):
        alpha = self.replica_random(keras.random.uniform, tf.shape(real)[0], (1, 1, 1))
        # The critic sees the current resolution repeated up to full size: take
        # the gradient's norm on the small image, or at 4x4 of 32x32 the penalty
        # would ask for gradients 8 times steeper (measured: it then dominated
        # the critic's loss, ~6 of ~7, and the critic ranked fakes above reals).
        upsampling = 2.0 ** (self.levels - ops.ceil(self.progress))
        # Self-conditioned, each interpolate is judged with its real end's cluster.
        penalty = losses.gradient_penalty(
            self.penalised_critic(self.labels_of(real, labels)), real, fake, alpha,
            weight=self.gp_weight, norm_scale=upsampling, group=self.pack,
        )
        drift = self.drift_weight * ops.mean(ops.square(real_logits))
        return super().discriminator_loss(real, fake, real_logits, fake_logits) + penalty + drift

    def train_step(self, data):
        logs = super().train_step(data)  # on real images at the current resolution (`unpack_batch`)
        replicas = tf.distribute.get_strategy().num_replicas_in_sync
        self.images_seen.assign_add(ops.cast(tf.shape(self._unpack(data)[0])[0] * replicas, "float32"))
        progress = self.progress
        level = ops.ceil(progress)
        sizes = ops.convert_to_tensor(self.generator.sizes, "float32")
        return self.step_logs({**logs, "resolution": ops.take(sizes, ops.cast(level, "int32")),
                               "alpha": ops.where(level == progress, 1.0, progress - ops.floor(progress))})

    def clone_generator(self):
        return ProgressiveGenerator(
            self.latent_dim, self.data_shape, **{k: v for k, v in self._network_args.items() if k != "group_size"},
            clusters=self.clusters, cluster_embedding=self.cluster_embedding, name="ema_generator",
        )

    def preview(self, inputs):
        """The grid at the resolution of the phase, which the full-size output only repeats."""
        resolution, _ = self.phase()
        samples = self.generate_from(inputs)
        factor = samples.shape[1] // resolution
        samples = samples.reshape(len(samples), resolution, factor, resolution, factor, -1).mean(axis=(2, 4))
        return visualize.picture(samples), f"_{resolution}x{resolution}"

    # -------------------------------------------------------- generation
    def call(self, z, training=None):
        """Images from the moving-average generator at the current progress, in [-1, 1]."""
        return ops.clip(self.sampling_generator(z, progress=self.progress, training=training), -1.0, 1.0)

    def serving_endpoints(self):
        # The SavedModel serves the resolution reached when it was written.
        progress = float(self.progress)

        def serve(z):
            images = self.sampling_generator(z, progress=progress, training=False)
            return {"images": ops.clip(images, -1.0, 1.0)}

        return {"serving_default": (serve, [self.latent_spec()])}

    def restore_exported(self, weights):
        """The export is the grown (moving-average) generator, which G starts
        from too (`GAN.restore_exported`); the schedule is at its end."""
        super().restore_exported(weights)
        self.images_seen.assign(float(self.total_images))

    def get_config(self):
        return {**super().get_config(), "fade_images": self.fade_images, "stable_images": self.stable_images,
                "gp_weight": self.gp_weight, "drift_weight": self.drift_weight}
