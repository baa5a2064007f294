"""Conditional GAN: Mirza & Osindero 2014, "Conditional Generative Adversarial
Nets" (arXiv:1411.1784), with the projection discriminator of Miyato & Koyama
2018, "cGANs with Projection Discriminator" (arXiv:1802.05637) as an option."""

import numpy as np
import keras
import tensorflow as tf
from keras import layers

from ganzoo import data, visualize
from ganzoo.arrays import latent_noise
from ganzoo.models.base import GAN, serializable
from ganzoo.models.dcgan import downsampling_stack, logit_layer, upsampling_stack, weight_init, widths
from ganzoo.networks import register_network

CONDITIONINGS = ("concat", "projection")


@register_network("conditional_dcgan", kind="conditional")
def conditional_dcgan(
    latent_dim,
    data_shape,
    num_classes,
    conditioning="projection",
    embedding_dim=50,
    filters=64,
    max_filters=512,
    kernel_size=4,
    generator_norm="batch",
    discriminator_norm="batch",
):
    """The DCGAN pair, conditioned on a class label.

    The generator concatenates a learned `embedding_dim` label embedding to z
    (Mirza & Osindero 2014). The discriminator takes the label either by
    `"concat"`: a learned per-class plane stacked onto the image as an extra
    channel, the paper's baseline carried over to convolutions; or by
    `"projection"`: logit = psi(phi(x)) + <embed(y), phi(x)>, the inner product
    of a class embedding with the image features (Miyato & Koyama 2018).
    """
    if conditioning not in CONDITIONINGS:
        raise ValueError(f"conditioning must be one of {', '.join(CONDITIONINGS)}, got {conditioning!r}.")
    width_at = widths(data_shape, filters, max_filters, network="conditional_dcgan")
    height, width, channels = data_shape

    z = keras.Input((latent_dim,), name="z")
    labels = keras.Input((), dtype="int32", name="labels")
    embedded = layers.Embedding(num_classes, embedding_dim, name="label_embedding")(labels)
    images = upsampling_stack(layers.Concatenate()([z, embedded]), width_at, channels, kernel_size, generator_norm)
    generator = keras.Model([z, labels], images, name="generator")

    image = keras.Input(data_shape, name="image")
    image_labels = keras.Input((), dtype="int32", name="labels")
    if conditioning == "concat":
        plane = layers.Embedding(num_classes, height * width, name="label_plane")(image_labels)
        stacked = layers.Concatenate()([image, layers.Reshape((height, width, 1))(plane)])
        features = downsampling_stack(stacked, width_at, kernel_size, discriminator_norm)
        logits = logit_layer(discriminator_norm)(features)
    else:
        features = downsampling_stack(image, width_at, kernel_size, discriminator_norm)
        unconditional = logit_layer(discriminator_norm)(features)
        class_embedding = layers.Embedding(
            num_classes, features.shape[-1], embeddings_initializer=weight_init(), name="projection"
        )(image_labels)
        projection = layers.Dot(axes=1, dtype="float32")([class_embedding, features])
        logits = layers.Add(dtype="float32")([unconditional, projection])
    discriminator = keras.Model([image, image_labels], logits, name="discriminator")
    return generator, discriminator


@serializable
class ConditionalGAN(GAN):
    """Class-conditional GAN (Mirza & Osindero 2014): G(z, y) and D(x, y).

    Trains on `(images, labels)` batches (`ganzoo.data.load(..., with_labels=True)`);
    each fake is generated for the label of the real image beside it, so
    fakes follow the data's class frequencies. `generate(n, labels=...)`
    takes one class for all samples or one per sample.

    Args:
        num_classes: number of classes; labels are ints in [0, num_classes).
        **kwargs: as `ganzoo.GAN`; `network_args={"conditioning": "concat"}`
            selects the paper's concatenation instead of projection.
    """

    default_network = "conditional_dcgan"
    conditional = True
    network_kind = "conditional"

    def __init__(self, data_shape, num_classes=10, **kwargs):
        if isinstance(num_classes, bool) or not isinstance(num_classes, (int, np.integer)) or num_classes < 2:
            raise ValueError(f"num_classes must be an integer of at least 2, got {num_classes!r}.")
        self.num_classes = int(num_classes)  # read by build_networks in GAN.__init__
        super().__init__(data_shape, **kwargs)

    # ------------------------------------------------------------ labels
    def checked_labels(self, labels):
        """`labels` as int32 `[batch]`, with an error (in graphs too) for
        labels outside [0, num_classes)."""
        labels = tf.convert_to_tensor(labels)
        if not labels.dtype.is_integer:
            raise ValueError(
                f"labels must be integer class ids in [0, {self.num_classes}), got dtype {labels.dtype.name}. "
                "One-hot labels: pass their argmax."
            )
        if labels.shape.rank == 2 and labels.shape[-1] == 1:
            labels = labels[:, 0]
        if labels.shape.rank != 1:
            raise ValueError(f"labels must have shape [batch], got {labels.shape}.")
        labels = tf.cast(labels, tf.int32)
        message = f"labels must lie in [0, {self.num_classes}) for this model (num_classes={self.num_classes})"
        with tf.control_dependencies([
            tf.debugging.assert_non_negative(labels, message=message),
            tf.debugging.assert_less(labels, self.num_classes, message=message),
        ]):
            return tf.identity(labels)

    def sample_labels(self, batch_size):
        """This replica's share of uniformly drawn labels for a global batch."""

        def draw(shape, seed):
            return keras.random.randint(shape, 0, self.num_classes, dtype="int32", seed=seed)

        return self.replica_random(draw, batch_size)

    # ------------------------------------------------------------- hooks
    def unpack_batch(self, data):
        images, labels = super().unpack_batch(data)
        if labels is None:
            raise ValueError(
                f"{self.name} trains on (images, labels) batches, but the dataset yields images only. "
                "Load it with ganzoo.data.load(name, with_labels=True) (digits, a TFDS dataset with "
                "labels, or a folder with one sub-folder per class)."
            )
        return images, self.checked_labels(labels)

    def generator_step(self, batch_size, labels=None):
        """One generator update; without labels (outside `fit`), uniform ones."""
        if labels is None:
            labels = self.sample_labels(batch_size)
        return super().generator_step(batch_size, labels)

    def fake_samples(self, batch_size, labels=None, training=True):
        return self.generator([self.sample_noise(batch_size), self._required(labels)], training=training)

    def discriminate(self, samples, labels=None, training=True):
        return self.discriminator([samples, self._required(labels)], training=training)

    def _required(self, labels):
        if labels is None:
            raise ValueError(f"{self.name} generates and judges (sample, label) pairs: pass labels.")
        return labels

    # -------------------------------------------------------- generation
    def call(self, inputs, training=None):
        """Generate from `(z, labels)` (or `{"z": ..., "labels": ...}`)."""
        if isinstance(inputs, dict):
            inputs = (inputs["z"], inputs["labels"])
        if not isinstance(inputs, (tuple, list)) or len(inputs) != 2:
            raise ValueError(f"{self.name} generates from (z, labels); got {type(inputs).__name__}.")
        return self.sampling_generator(list(inputs), training=training)

    def generator_inputs(self, z, labels=None):
        """`(z, labels)` checked; labels None cycles through the classes,
        one int labels every row, a sequence gives one label per row."""
        z = super().generator_inputs(z)
        n = len(z)
        if labels is None:
            labels = np.arange(n) % self.num_classes
        labels = np.asarray(labels)
        if labels.ndim == 0:
            labels = np.full(n, labels)
        if labels.dtype.kind not in "iu" or labels.ndim != 1 or len(labels) != n:
            raise ValueError(
                f"labels must be one int or {n} ints (one per sample), got "
                f"{labels.dtype} array of shape {list(labels.shape)}."
            )
        if labels.min() < 0 or labels.max() >= self.num_classes:
            raise ValueError(
                f"labels must lie in [0, {self.num_classes}); got values from {labels.min()} to {labels.max()}."
            )
        return z, labels.astype("int32")

    # ---------------------------------------------- hooks for ganzoo.train
    @classmethod
    def options_from_data(cls, dataset):
        known = data.num_classes(dataset) if isinstance(dataset, str) else None
        return {"num_classes": known} if known else {}

    def evaluation_metrics(self, dataset):
        # The digits classifier knows the classes: it can tell whether G drew the asked one.
        return super().evaluation_metrics(dataset) + (("conditional_accuracy",) if dataset == "digits" else ())

    def preview_inputs(self, n=64, seed=0, per_class=8, dataset=None):
        """`per_class` noise vectors, shared by one row per class."""
        classes = np.arange(self.num_classes, dtype="int32")
        return np.tile(latent_noise(per_class, self.latent_dim, seed), (len(classes), 1)), np.repeat(classes, per_class)

    def preview(self, inputs):
        z, labels = inputs
        return visualize.image_grid(self.generate_from(z, labels), columns=len(z) // self.num_classes), ""

    # ------------------------------------------------------------ export
    def serving_endpoints(self):
        def serve(z, labels):
            labels = self.checked_labels(labels)
            with tf.control_dependencies([
                tf.debugging.assert_equal(
                    tf.shape(z)[0], tf.shape(labels)[0], message="z and labels need the same number of rows"
                )
            ]):
                return {"images": self.sampling_generator([z, labels], training=False)}

        labels = tf.TensorSpec([None], tf.int32, name="labels")
        return {"serving_default": (serve, [self.latent_spec(), labels])}

    def get_config(self):
        return {**super().get_config(), "num_classes": self.num_classes}
