"""CycleGAN: Zhu, Park, Isola & Efros 2017, "Unpaired Image-to-Image
Translation using Cycle-Consistent Adversarial Networks" (arXiv:1703.10593)."""

import keras
import numpy as np
import tensorflow as tf
from keras import layers, ops

from ganzoo import callbacks, data, losses, visualize
from ganzoo.arrays import in_batches
from ganzoo.layers import ImageHistoryPool, ReflectionPadding2D, instance_normalization
from ganzoo.models.base import AdversarialModel, serializable
from ganzoo.networks import register_network
from ganzoo.samplers import DIRECTIONS, Translator

def _weight_init():
    """N(0, 0.02), the paper's (Section 7); one per layer, as dcgan's `weight_init`
    (a shared instance started every residual block with the same kernels)."""
    return keras.initializers.RandomNormal(stddev=0.02)


def _conv_norm_relu(x, filters, kernel_size, strides=1, transpose=False, reflect=0):
    if reflect:
        x = ReflectionPadding2D(reflect)(x)
    conv = layers.Conv2DTranspose if transpose else layers.Conv2D
    x = conv(filters, kernel_size, strides=strides, padding="valid" if reflect else "same",
             use_bias=False, kernel_initializer=_weight_init())(x)
    return layers.ReLU()(instance_normalization()(x))


def resnet_generator(data_shape, filters=64, residual_blocks=9, downsamplings=2, name="generator"):
    """The ResNet generator of Johnson et al. 2016 as CycleGAN uses it:
    c7s1-f, `downsamplings` stride-2 convolutions, `residual_blocks` residual
    blocks, as many stride-2 transposed convolutions and c7s1-C with tanh;
    reflection padding and instance norm throughout."""
    height, width, channels = data_shape
    if height % 2**downsamplings or width % 2**downsamplings:
        raise ValueError(
            f"The ResNet generator halves the image {downsamplings} times; {height}x{width} "
            f"is not divisible by {2 ** downsamplings}."
        )
    images = keras.Input(data_shape, name="images")
    x = _conv_norm_relu(images, filters, 7, reflect=3)
    for i in range(downsamplings):
        x = _conv_norm_relu(x, filters * 2 ** (i + 1), 3, strides=2)
    width_inside = filters * 2**downsamplings
    for _ in range(residual_blocks):
        y = _conv_norm_relu(x, width_inside, 3, reflect=1)
        y = ReflectionPadding2D(1)(y)
        y = layers.Conv2D(width_inside, 3, use_bias=False, kernel_initializer=_weight_init())(y)
        x = layers.Add()([x, instance_normalization()(y)])
    for i in reversed(range(downsamplings)):
        x = _conv_norm_relu(x, filters * 2**i, 3, strides=2, transpose=True)
    x = ReflectionPadding2D(3)(x)
    x = layers.Conv2D(channels, 7, kernel_initializer=_weight_init())(x)
    outputs = layers.Activation("tanh", dtype="float32")(x)
    return keras.Model(images, outputs, name=name)


def patch_discriminator(data_shape, filters=64, layers_count=3, name="discriminator"):
    """The PatchGAN of Isola et al. 2017: `layers_count` stride-2 4x4
    convolutions (no norm on the first), one stride-1, then a 1-channel map
    of per-patch logits. 3 layers see 70x70 patches; fewer suit small images."""
    images = keras.Input(data_shape, name="images")
    x = images
    for i in range(layers_count + 1):
        x = layers.Conv2D(
            filters * 2 ** min(i, 3), 4, strides=2 if i < layers_count else 1, padding="same",
            use_bias=i == 0, kernel_initializer=_weight_init(),
        )(x)
        if i:
            x = instance_normalization()(x)
        x = layers.LeakyReLU(0.2)(x)
    logits = layers.Conv2D(1, 4, padding="same", kernel_initializer=_weight_init(), dtype="float32")(x)
    return keras.Model(images, logits, name=name)


@register_network("cyclegan_resnet", kind="translation")
def cyclegan_resnet(latent_dim, data_shape, filters=64, residual_blocks=9, downsamplings=2,
                    discriminator_filters=64, discriminator_layers=3):
    """A ResNet generator and a PatchGAN discriminator for one direction."""
    if len(data_shape) != 3:
        raise ValueError(f"cyclegan_resnet translates images (H, W, C); data_shape {data_shape} is not.")
    return (
        resnet_generator(data_shape, filters, residual_blocks, downsamplings),
        patch_discriminator(data_shape, discriminator_filters, discriminator_layers),
    )


@serializable
class CycleGAN(AdversarialModel):
    """CycleGAN (Zhu et al. 2017): G: A -> B and F: B -> A, PatchGAN critics
    D_A and D_B, least-squares adversarial loss, cycle consistency
    ||F(G(a)) - a||_1 + ||G(F(b)) - b||_1 weighted by lambda = `cycle_weight`,
    the identity loss ||F(a) - a||_1 + ||G(b) - b||_1 weighted by
    `identity_weight` * lambda, and a history pool of `pool_size` fakes per
    discriminator. `g_optimizer` updates both generators, `d_optimizer` both
    discriminators. The paper's learning-rate decay (constant, then linear to
    zero over the second half) is `ganzoo.callbacks.LinearDecay`.

    Trains on `(a_images, b_images)` batches from `ganzoo.data.load_unpaired`.

    Args:
        data_shape: `(H, W, C)` of both domains.
        cycle_weight: lambda.
        identity_weight: the identity loss weight, as a multiple of lambda (0 turns it off).
        pool_size: images kept by each history pool (0: no pool).
    """

    default_network = "cyclegan_resnet"
    network_kind = "translation"
    train_options = ("decay_from", "jitter", "flip")
    tracked = ("d_loss", "g_loss", "cycle_loss", "identity_loss")

    def __init__(self, data_shape, cycle_weight=10.0, identity_weight=0.5, pool_size=50,
                 network=None, network_args=None, seed=None, **kwargs):
        if cycle_weight < 0 or identity_weight < 0:
            raise ValueError(f"cycle_weight and identity_weight must be >= 0, got {cycle_weight}, {identity_weight}.")
        if not isinstance(pool_size, (int, np.integer)) or pool_size < 0:
            raise ValueError(f"pool_size must be a non-negative integer, got {pool_size!r}.")
        self.cycle_weight, self.identity_weight = float(cycle_weight), float(identity_weight)
        self.pool_size = int(pool_size)
        super().__init__(data_shape, network=network, network_args=network_args, seed=seed, **kwargs)
        self.pool_a = ImageHistoryPool(self.data_shape, self.pool_size, seed=seed, name="pool_a")
        self.pool_b = ImageHistoryPool(self.data_shape, self.pool_size, seed=None if seed is None else seed + 1,
                                       name="pool_b")

    def build_networks(self):
        self.generator_ab, self.discriminator_b = self.build_network_pair()
        self.generator_ba, self.discriminator_a = self.build_network_pair()
        for network, name in ((self.generator_ab, "generator_a2b"), (self.generator_ba, "generator_b2a"),
                              (self.discriminator_a, "discriminator_a"), (self.discriminator_b, "discriminator_b")):
            network.name = name

    def generator_variables(self):
        return self.generator_ab.trainable_variables + self.generator_ba.trainable_variables

    def discriminator_variables(self):
        return self.discriminator_a.trainable_variables + self.discriminator_b.trainable_variables

    def compile(self, g_optimizer="adam", d_optimizer="adam", loss="least_squares", **kwargs):
        super().compile(g_optimizer=g_optimizer, d_optimizer=d_optimizer, loss=loss, **kwargs)

    # ------------------------------------------------------------- steps
    def unpack_batch(self, data):
        """`(a_images, b_images)`; anything else is an error that says what to load."""
        if isinstance(data, (tuple, list)) and len(data) == 2 and all(
            getattr(x, "shape", None) is not None and len(x.shape) == 4 for x in data
        ):
            return data[0], data[1]
        got = (
            f"a tuple of {len(data)} with shapes {[tuple(getattr(x, 'shape', ())) for x in data]}"
            if isinstance(data, (tuple, list)) else f"{type(data).__name__} with shape {getattr(data, 'shape', '?')}"
        )
        raise ValueError(
            f"{self.name} trains on unpaired (domain A images, domain B images) batches, got {got}. "
            "Single-domain or labelled data cannot train it: load two domains with "
            "ganzoo.data.load_unpaired(a, b) (digits_style, cycle_gan/<name>, or two image folders)."
        )

    def adversarial_generator_loss(self, fake_logits):
        # The authors' code trains G on E[(D(G(a)) - 1)^2], twice the least-squares
        # generator loss of Mao et al. that `ganzoo.losses` defines.
        scale = 2.0 if self.gan_loss == "least_squares" else 1.0
        return scale * self.generator_loss(fake_logits)

    def generator_losses(self, real_a, real_b, training=True):
        """`(total, adversarial, cycle, identity)` for both generators."""
        fake_b = self.generator_ab(real_a, training=training)
        fake_a = self.generator_ba(real_b, training=training)
        adversarial = self.adversarial_generator_loss(
            self.discriminator_b(fake_b, training=training)
        ) + self.adversarial_generator_loss(self.discriminator_a(fake_a, training=training))
        cycle = losses.cycle_consistency_loss(real_a, self.generator_ba(fake_b, training=training)) + (
            losses.cycle_consistency_loss(real_b, self.generator_ab(fake_a, training=training))
        )
        identity = ops.zeros(())
        if self.identity_weight:
            identity = losses.cycle_consistency_loss(real_a, self.generator_ba(real_a, training=training)) + (
                losses.cycle_consistency_loss(real_b, self.generator_ab(real_b, training=training))
            )
        total = adversarial + self.cycle_weight * (cycle + self.identity_weight * identity)
        return total, (fake_a, fake_b), cycle, identity

    def discriminator_losses(self, real_a, real_b, fake_a, fake_b, training=True):
        """D_A's loss plus D_B's, each the paper's 0.5 * (real + fake) least squares."""
        return self.discriminator_loss(
            real_a, fake_a, self.discriminator_a(real_a, training=training), self.discriminator_a(fake_a, training=training)
        ) + self.discriminator_loss(
            real_b, fake_b, self.discriminator_b(real_b, training=training), self.discriminator_b(fake_b, training=training)
        )

    def generator_step(self, real_a, real_b):
        with tf.GradientTape() as tape:
            loss, fakes, cycle, identity = self.generator_losses(real_a, real_b)
            scaled_loss = self.replica_scaled(loss)
        self._apply(self.g_optimizer, tape, scaled_loss, self.generator_variables())
        return loss, fakes, cycle, identity

    def discriminator_step(self, real_a, real_b, fake_a, fake_b):
        # The discriminators see the pools' mix of this step's fakes and older ones.
        fake_a = self.pool_a(ops.stop_gradient(fake_a))
        fake_b = self.pool_b(ops.stop_gradient(fake_b))
        with tf.GradientTape() as tape:
            loss = self.discriminator_losses(real_a, real_b, fake_a, fake_b)
            scaled_loss = self.replica_scaled(loss)
        self._apply(self.d_optimizer, tape, scaled_loss, self.discriminator_variables())
        return loss

    def train_step(self, data):
        real_a, real_b = self.unpack_batch(data)
        g_loss, (fake_a, fake_b), cycle, identity = self.generator_step(real_a, real_b)
        d_loss = self.discriminator_step(real_a, real_b, fake_a, fake_b)
        return self.track(d_loss, g_loss, cycle, identity)

    def test_step(self, data):
        real_a, real_b = self.unpack_batch(data)
        g_loss, (fake_a, fake_b), cycle, identity = self.generator_losses(real_a, real_b, training=False)
        d_loss = self.discriminator_losses(real_a, real_b, fake_a, fake_b, training=False)
        return self.track(d_loss, g_loss, cycle, identity)

    # ------------------------------------------------------- translation
    def call(self, images, training=None):
        """Translate domain A images to domain B."""
        return self.generator_ab(images, training=training)

    def translate(self, images, direction="a2b", batch_size=64):
        """Images of one domain in the other's style, as NumPy in [-1, 1].

        Args:
            images: `[n, H, W, C]` in [-1, 1] (C as `data_shape`).
            direction: `"a2b"` (G) or `"b2a"` (F).
        """
        if direction not in DIRECTIONS:
            raise ValueError(f"direction must be 'a2b' or 'b2a', got {direction!r}.")
        images = np.asarray(images, "float32")
        if images.ndim == 3:
            images = images[None]
        if images.shape[1:] != self.data_shape:
            raise ValueError(
                f"{self.name} translates images of shape {list(self.data_shape)}, got {list(images.shape[1:])}."
            )
        network = self.generator_ab if direction == "a2b" else self.generator_ba
        return in_batches(lambda rows: network(rows, training=False), images, batch_size)

    def generate(self, *args, **kwargs):
        raise TypeError(f"{self.name} translates images instead of generating from noise: use translate(images, direction).")

    generate_from = sample_latent = generate

    # ---------------------------------------------- hooks for ganzoo.train
    @classmethod
    def training_data(cls, dataset, batch_size, image_size=None, channels=None, seed=None, options=None):
        augment = {key: value for key, value in (options or {}).items() if key in ("jitter", "flip")}
        return data.load_unpaired(dataset, image_size=image_size, channels=channels, batch_size=batch_size,
                                  seed=seed, skip_corrupt=(options or {}).get("skip_corrupt", False), **augment)

    def training_callbacks(self, dataset, epochs, eval_every=None, options=None):
        """The paper's learning-rate decay, and label preservation on digits_style."""
        options = options or {}
        # The rates now, before a resumed run restores decayed ones.
        chosen = [callbacks.LinearDecay(epochs, options.get("decay_from", 0.5), initial_learning_rates=self.learning_rates())]
        every = eval_every if eval_every is not None else options.get("eval_every", 0)
        if every and dataset in data.UNPAIRED_DATASETS:
            chosen.append(callbacks.TranslationEvaluation(every))
        return chosen

    def preview_inputs(self, n=8, seed=0, per_class=8, dataset=None):
        """8 fixed images of each domain: digits_style's held-out test digits,
        the first training images of another dataset name, or the first
        batch of a `tf.data.Dataset` of `(a, b)` batches."""
        if dataset is None:
            raise ValueError("A translation model's sample grid needs its dataset, or fixed inputs=(a, b).")
        if not isinstance(dataset, str):
            a, b = next(iter(dataset))
            return np.asarray(a)[:8], np.asarray(b)[:8]
        return next(iter(data.load_unpaired(
            dataset, image_size=self.data_shape[0], channels=self.data_shape[-1], batch_size=8, shuffle=False,
            split="test" if dataset in data.UNPAIRED_DATASETS else "train", jitter=False, flip=False,
        )))

    def preview(self, inputs):
        """The rows A, G(A), B, F(B)."""
        a, b = (np.asarray(x, "float32") for x in inputs)
        rows = [a, self.translate(a, "a2b"), b, self.translate(b, "b2a")]
        return visualize.image_grid(np.concatenate(rows), columns=len(a)), ""

    def sampler(self):
        return Translator(self.translate, tuple(self.data_shape), self.name)

    # ------------------------------------------------------------ export
    def serving_endpoints(self):
        spec = tf.TensorSpec([None, *self.data_shape], tf.float32, name="images")
        endpoints = {}
        for name, network in (("a2b", self.generator_ab), ("b2a", self.generator_ba), ("serving_default", self.generator_ab)):
            endpoints[name] = (_serving_function(network), [spec])
        return endpoints

    def exported_networks(self):
        return [self.generator_ab, self.generator_ba]

    def get_config(self):
        return {
            "name": self.name,
            "trainable": self.trainable,
            "data_shape": list(self.data_shape),
            "cycle_weight": self.cycle_weight,
            "identity_weight": self.identity_weight,
            "pool_size": self.pool_size,
            "network": self.network,
            "network_args": dict(self._network_args),
            "seed": self.seed,
        }


def _serving_function(network):
    def serve(images):
        return {"images": network(images, training=False)}

    return serve

