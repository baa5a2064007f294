"""Feature extractors for the metrics, chosen by name or given as a Keras model.

- `fid_inception`: the Inception-v3 of FID's reference code (the
  2015-12-05 graph, `ganzoo.metrics.fid_inception`): 2048-d pool features
  and 1008 class probabilities, resized as pytorch-fid, TTUR/torch-fidelity
  or clean-fid resize (`resize=`). Its FIDs stand beside published ones.
- `inception`: `keras.applications.InceptionV3`'s pool features and ImageNet
  probabilities, resized bilinearly (antialiased) to 299x299. Other weights
  than the reference's: its FIDs rank models but are not published FIDs.
- `digits`: a small CNN trained on the `train` split of scikit-learn's digits,
  trained once and cached; its 128-d penultimate features and 10 class
  probabilities. Works offline; the zoo's default on digits.
- `raw`: the samples themselves, flattened (for 2D mixtures and vectors).
- any Keras model: one output (features) or two (features, class probabilities).

An extractor maps images in [-1, 1] of any size and 1 or 3 channels to
`(features, probabilities or None)` as NumPy arrays.
"""

import json
import os
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from ganzoo import data
from ganzoo.files import file_sha256
from ganzoo.arrays import in_batches

EXTRACTORS = ("digits", "fid_inception", "inception", "raw")
INCEPTION_WEIGHTS_FILE = "inception_v3_weights_tf_dim_ordering_tf_kernels.h5"
INCEPTION_WEIGHTS_URL = (
    "https://storage.googleapis.com/tensorflow/keras-applications/inception_v3/" + INCEPTION_WEIGHTS_FILE
)
# Bump when the classifier's recipe changes, so stale caches are not reused.
DIGITS_CLASSIFIER_VERSION = 1


class FeatureExtractor:
    """Images in [-1, 1] -> `(features [n, d], probabilities [n, k] or None)`.

    Args:
        model: a Keras model on preprocessed images with one output
            (features) or two (features, class probabilities).
        name: recorded in evaluation protocols.
        weights_sha256: hash of the weights file, recorded likewise.
    """

    def __init__(self, model, name, weights_sha256=None):
        self.model = model
        self.name = name
        self.weights_sha256 = weights_sha256
        shape = model.input_shape
        if isinstance(shape, list):
            raise ValueError(f"A feature extractor needs a model with one input; {model.name} has {len(shape)}.")
        self.input_shape = tuple(shape[1:])
        self.has_probabilities = isinstance(model.output, (list, tuple)) and len(model.output) == 2
        self._compiled = {}  # one graph per input image shape, any batch size

    def _preprocess(self, images):
        height, width, channels = self.input_shape
        if images.shape[-1] == 1 and channels == 3:
            images = tf.image.grayscale_to_rgb(images)
        elif images.shape[-1] == 3 and channels == 1:
            # rgb_to_grayscale works on [0, 1]-like ranges: weights sum to 1, so [-1, 1] is kept.
            images = tf.image.rgb_to_grayscale(images)
        if (height, width) != tuple(images.shape[1:3]):
            images = tf.image.resize(images, (height, width), method="bilinear", antialias=True)
        return images

    def _forward(self, images):
        outputs = self.model(self._preprocess(images), training=False)
        if self.has_probabilities:
            return outputs[0], outputs[1]
        return outputs, tf.zeros((tf.shape(images)[0], 0))

    def __call__(self, images):
        images = np.asarray(images)
        images = images / np.float32(127.5) - 1 if images.dtype == np.uint8 else images.astype("float32")
        if images.ndim != 4 or images.shape[-1] not in (1, 3):
            raise ValueError(f"Expected images [n, H, W, 1 or 3], got shape {list(images.shape)}.")
        shape = images.shape[1:]
        if shape not in self._compiled:
            signature = [tf.TensorSpec((None, *shape), tf.float32)]
            self._compiled[shape] = tf.function(self._forward, input_signature=signature)
        features, probabilities = self._compiled[shape](images)
        features = features.numpy().reshape(len(features), -1)
        return features, probabilities.numpy() if self.has_probabilities else None


class RawFeatures:
    """The samples themselves, flattened: for 2D mixtures and other vectors."""

    name = "raw"
    weights_sha256 = None
    has_probabilities = False

    def __call__(self, samples):
        samples = np.asarray(samples)
        # uint8 images (a folder read for reference statistics) on the generators' [-1, 1] scale
        samples = samples / np.float32(127.5) - 1 if samples.dtype == np.uint8 else samples.astype("float32")
        return samples.reshape(len(samples), -1), None


def get_extractor(spec="digits", weights=None, cache_dir=None, resize=None):
    """A feature extractor from a name in `EXTRACTORS`, a Keras model, or the
    path of a `.keras` model file.

    Args:
        weights: for `fid_inception` and `inception`, the path of the weights
            file (default: looked for in the caches; see their docs).
        cache_dir: where the `digits` classifier is cached (default
            `$GANZOO_CACHE` or `~/.cache/ganzoo`).
        resize: for `fid_inception`, one of `fid_inception.RESIZE_MODES`
            (default `clean`); other extractors resize their own way.
    """
    from ganzoo.metrics import fid_inception

    if resize is not None and spec != "fid_inception" and not isinstance(spec, fid_inception.FIDInception):
        raise ValueError(f"A resize mode ({resize!r}) is a choice of the fid_inception features, not of {spec!r}: "
                         "use --features fid_inception, or drop --resize.")
    if isinstance(spec, fid_inception.FIDInception):
        if resize not in (None, spec.resize):
            raise ValueError(f"This fid_inception extractor resizes with {spec.resize!r}, not {resize!r}.")
        return spec
    if spec == "fid_inception":
        return fid_inception.FIDInception(weights, resize or fid_inception.DEFAULT_RESIZE)
    if isinstance(spec, (FeatureExtractor, RawFeatures)):
        return spec
    if isinstance(spec, keras.Model):
        return FeatureExtractor(spec, name=spec.name)
    if spec == "raw":
        return RawFeatures()
    if spec == "digits":
        return digits_extractor(cache_dir)
    if spec == "inception":
        return inception_extractor(weights)
    if isinstance(spec, (str, os.PathLike)) and str(spec).endswith(".keras") and Path(spec).exists():
        model = keras.models.load_model(spec, compile=False)
        return FeatureExtractor(model, name=Path(spec).name, weights_sha256=file_sha256(spec))
    raise ValueError(
        f"Unknown feature extractor {spec!r}. Choose one of {', '.join(EXTRACTORS)}, "
        "or pass a Keras model (or a .keras file) whose outputs are features or (features, probabilities)."
    )


# ------------------------------------------------------------- inception
def keras_cache_dir():
    """Where `keras.applications` looks for downloaded weights."""
    return Path(os.environ.get("KERAS_HOME", Path.home() / ".keras")) / "models"


def inception_extractor(weights=None):
    """InceptionV3 pool features (2048) and ImageNet probabilities (1000).

    Raises FileNotFoundError, naming where to put the weights, when no
    weights file is given and none is in the Keras cache: ganzoo never
    downloads at evaluation time, so an offline machine fails at once.

    Note: these are Keras' InceptionV3 weights, not the TF-Slim graph of
    the original FID code, so the numbers rank models but are not equal
    to published FIDs.
    """
    path = Path(weights) if weights else keras_cache_dir() / INCEPTION_WEIGHTS_FILE
    if not path.exists():
        raise FileNotFoundError(
            f"InceptionV3 weights not found at {path}. On a machine with network, download "
            f"{INCEPTION_WEIGHTS_URL} and put it at {keras_cache_dir() / INCEPTION_WEIGHTS_FILE} "
            "(or pass its path with --weights / weights=). Offline, use the 'digits' feature "
            "extractor for digit-like data."
        )
    network = keras.applications.InceptionV3(include_top=True, weights=os.fspath(path))
    model = keras.Model(network.input, [network.get_layer("avg_pool").output, network.output])
    return FeatureExtractor(model, name="inception", weights_sha256=file_sha256(path))


# ---------------------------------------------------------------- digits
def cache_dir(path=None):
    return Path(path or os.environ.get("GANZOO_CACHE") or Path.home() / ".cache" / "ganzoo")


def build_classifier(input_shape, num_classes, seed=0):
    """A small CNN whose outputs are `(features [128], logits)`.

    Random shifts, rotations and zooms during training make it robust to the
    small misplacements of generated digits.
    """
    init = lambda i: keras.initializers.HeNormal(seed=seed + i)  # noqa: E731
    images = keras.Input(input_shape, name="images")
    x = keras.layers.RandomTranslation(0.08, 0.08, fill_mode="constant", fill_value=-1.0, seed=seed)(images)
    x = keras.layers.RandomRotation(0.04, fill_mode="constant", fill_value=-1.0, seed=seed + 1)(x)
    x = keras.layers.RandomZoom(0.08, fill_mode="constant", fill_value=-1.0, seed=seed + 2)(x)
    for i, (filters, strides) in enumerate([(32, 2), (64, 1), (64, 2), (128, 2)]):
        x = keras.layers.Conv2D(filters, 3, strides=strides, padding="same", kernel_initializer=init(i))(x)
        x = keras.layers.BatchNormalization()(x)
        x = keras.layers.ReLU()(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    features = keras.layers.Dense(128, activation="relu", kernel_initializer=init(10), name="features")(x)
    x = keras.layers.Dropout(0.3, seed=seed + 3)(features)
    logits = keras.layers.Dense(num_classes, kernel_initializer=init(11), name="logits")(x)
    return keras.Model(images, [features, logits], name="classifier")


def train_classifier(images, labels, num_classes=None, epochs=20, batch_size=64, seed=0, verbose=0):
    """Train `build_classifier` on images in [-1, 1]; returns the model."""
    images, labels = np.asarray(images, "float32"), np.asarray(labels, "int32")
    num_classes = num_classes or int(labels.max()) + 1
    model = build_classifier(images.shape[1:], num_classes, seed=seed)
    # Train the logits head alone; the two-output model shares its layers.
    trainer = keras.Model(model.input, model.outputs[1])
    schedule = keras.optimizers.schedules.CosineDecay(2e-3, epochs * -(-len(images) // batch_size))
    trainer.compile(
        optimizer=keras.optimizers.Adam(schedule),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
        jit_compile=False,
    )
    data = (
        tf.data.Dataset.from_tensor_slices((images, labels))
        .shuffle(len(images), seed=seed)
        .batch(batch_size)
    )
    trainer.fit(data, epochs=epochs, verbose=verbose)
    return model


def classifier_accuracy(model, images, labels, batch_size=256):
    """Top-1 accuracy of a `build_classifier` model (or extractor) on labelled images."""
    # Direct calls: `predict` would build (and warn about) a new graph per model.
    logits = in_batches(lambda rows: model(rows, training=False)[1], np.asarray(images, "float32"), batch_size)
    return float((logits.argmax(axis=1) == np.asarray(labels)).mean())


def digits_images(split, image_size=32):
    """The digits split as `(images [n, size, size, 1] in [-1, 1], labels)`."""
    images, labels = data.digits_arrays(split)
    images = tf.image.resize(images, (image_size, image_size), method="bilinear", antialias=True)
    return np.clip(images.numpy() * 2 - 1, -1, 1), labels


def digits_classifier(cache=None, verbose=True):
    """The digits classifier, trained on the `train` split at first use and
    cached; returns `(model, info)` with its held-out `test_accuracy`."""
    directory = cache_dir(cache)
    weights = directory / f"digits_classifier_v{DIGITS_CLASSIFIER_VERSION}.weights.h5"
    info_file = weights.with_name(weights.name.replace(".weights.h5", ".json"))
    if weights.exists() and info_file.exists():
        model = build_classifier((32, 32, 1), 10)
        model.load_weights(weights)
        return model, json.loads(info_file.read_text())
    if verbose:
        print(f"Training the digits classifier once (cached in {directory}) ...", flush=True)
    model = train_classifier(*digits_images("train"), num_classes=10)
    accuracy = classifier_accuracy(model, *digits_images("test"))
    directory.mkdir(parents=True, exist_ok=True)
    # Write then rename, so a concurrent reader never sees half a file.
    partial = weights.with_name(f"partial-{os.getpid()}.weights.h5")
    model.save_weights(partial)
    partial.replace(weights)
    info = {"test_accuracy": accuracy, "trained_on": "digits train split", "version": DIGITS_CLASSIFIER_VERSION}
    info_file.write_text(json.dumps(info, indent=2))
    if verbose:
        print(f"Digits classifier: {accuracy:.1%} on the held-out test split.", flush=True)
    return model, info


def digits_extractor(cache=None):
    """The digits classifier as a feature extractor: 128-d features, 10 probabilities."""
    model, _ = digits_classifier(cache)
    features, logits = model.outputs
    extractor = keras.Model(model.input, [features, keras.layers.Softmax()(logits)])
    weights = cache_dir(cache) / f"digits_classifier_v{DIGITS_CLASSIFIER_VERSION}.weights.h5"
    return FeatureExtractor(extractor, name="digits", weights_sha256=file_sha256(weights))
