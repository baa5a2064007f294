"""The Inception-v3 of FID's reference code, in Keras: the network that published
FIDs come from.

Heusel et al.'s TTUR `fid.py`, TF-GAN and the PyTorch ports (pytorch-fid,
torch-fidelity, clean-fid) all run the TensorFlow graph of 2015-12-05. It
differs from `keras.applications.InceptionV3`: the average pools of the
A, C and first E blocks do not count padding, the last E block's pool branch
max-pools, and the classifier has 1008 outputs. Weights come from the file
pytorch-fid downloads, read without torch (`torch_checkpoint`).

Each reference tool also resizes and scales images its own way, and that
changes FID by more than many papers' margins, so the mode is a choice
(`RESIZE_MODES`), recorded in the protocol:

- `legacy_pytorch` (pytorch-fid): pixels / 255, bilinear with half-pixel
  centres and no antialiasing (`F.interpolate(align_corners=False)`), then
  2x - 1.
- `legacy_tensorflow` (TTUR, TF-GAN, torch-fidelity): TF1's bilinear resize
  (no half-pixel centres) on [0, 255], then (x - 128) / 128, as the graph does.
- `clean` (clean-fid, Parmar et al. 2022): PIL's bicubic resize of each
  channel in float32 (antialiased), then (x - 128) / 128.

Every mode starts from uint8 pixels: generated images in [-1, 1] are
quantised first, as the tools see them when they read saved PNGs.
"""

import os
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from ganzoo.files import file_sha256
from ganzoo.metrics.torch_checkpoint import load_state_dict

WEIGHTS_FILE = "pt_inception-2015-12-05-6726825d.pth"
WEIGHTS_URL = "https://github.com/mseitzer/pytorch-fid/releases/download/fid_weights/" + WEIGHTS_FILE
# torch-fidelity publishes the same weights under another name.
OTHER_WEIGHTS_FILES = ("weights-inception-2015-12-05-6726825d.pth",)
RESIZE_MODES = ("clean", "legacy_tensorflow", "legacy_pytorch")
DEFAULT_RESIZE = "clean"
SIZE = 299
FEATURES = 2048
CLASSES = 1008


# ------------------------------------------------------------------ network
def _conv(x, name, filters, kernel, strides=1, padding="valid"):
    """BasicConv2d: convolution without bias, batch norm (eps 1e-3), ReLU.
    Layers are named after the state dict's keys (`Mixed_5b.branch1x1.conv`)."""
    x = keras.layers.Conv2D(filters, kernel, strides=strides, padding=padding, use_bias=False, name=f"{name}.conv")(x)
    x = keras.layers.BatchNormalization(epsilon=1e-3, name=f"{name}.bn")(x)
    return keras.layers.ReLU(name=f"{name}.relu")(x)


def _same(x, name, filters, kernel):
    return _conv(x, name, filters, kernel, padding="same")


def _average_pool(x):
    # TF's SAME average pool divides by the pixels inside the image: padding
    # is not counted (PyTorch's count_include_pad=False), as in the graph.
    return keras.layers.AveragePooling2D(3, strides=1, padding="same")(x)


def _block_a(x, name, pool_features):
    b1 = _conv(x, f"{name}.branch1x1", 64, 1)
    b5 = _same(_conv(x, f"{name}.branch5x5_1", 48, 1), f"{name}.branch5x5_2", 64, 5)
    b3 = _conv(x, f"{name}.branch3x3dbl_1", 64, 1)
    b3 = _same(_same(b3, f"{name}.branch3x3dbl_2", 96, 3), f"{name}.branch3x3dbl_3", 96, 3)
    pool = _conv(_average_pool(x), f"{name}.branch_pool", pool_features, 1)
    return keras.layers.Concatenate(name=name)([b1, b5, b3, pool])


def _block_b(x, name):
    b3 = _conv(x, f"{name}.branch3x3", 384, 3, strides=2)
    dbl = _conv(x, f"{name}.branch3x3dbl_1", 64, 1)
    dbl = _conv(_same(dbl, f"{name}.branch3x3dbl_2", 96, 3), f"{name}.branch3x3dbl_3", 96, 3, strides=2)
    pool = keras.layers.MaxPooling2D(3, strides=2)(x)
    return keras.layers.Concatenate(name=name)([b3, dbl, pool])


def _block_c(x, name, c7):
    b1 = _conv(x, f"{name}.branch1x1", 192, 1)
    b7 = _conv(x, f"{name}.branch7x7_1", c7, 1)
    b7 = _same(_same(b7, f"{name}.branch7x7_2", c7, (1, 7)), f"{name}.branch7x7_3", 192, (7, 1))
    dbl = _conv(x, f"{name}.branch7x7dbl_1", c7, 1)
    for i, (filters, kernel) in enumerate([(c7, (7, 1)), (c7, (1, 7)), (c7, (7, 1)), (192, (1, 7))], start=2):
        dbl = _same(dbl, f"{name}.branch7x7dbl_{i}", filters, kernel)
    pool = _conv(_average_pool(x), f"{name}.branch_pool", 192, 1)
    return keras.layers.Concatenate(name=name)([b1, b7, dbl, pool])


def _block_d(x, name):
    b3 = _conv(_conv(x, f"{name}.branch3x3_1", 192, 1), f"{name}.branch3x3_2", 320, 3, strides=2)
    b7 = _conv(x, f"{name}.branch7x7x3_1", 192, 1)
    b7 = _same(_same(b7, f"{name}.branch7x7x3_2", 192, (1, 7)), f"{name}.branch7x7x3_3", 192, (7, 1))
    b7 = _conv(b7, f"{name}.branch7x7x3_4", 192, 3, strides=2)
    pool = keras.layers.MaxPooling2D(3, strides=2)(x)
    return keras.layers.Concatenate(name=name)([b3, b7, pool])


def _block_e(x, name, max_pool):
    b1 = _conv(x, f"{name}.branch1x1", 320, 1)
    b3 = _conv(x, f"{name}.branch3x3_1", 384, 1)
    b3 = [_same(b3, f"{name}.branch3x3_2a", 384, (1, 3)), _same(b3, f"{name}.branch3x3_2b", 384, (3, 1))]
    dbl = _same(_conv(x, f"{name}.branch3x3dbl_1", 448, 1), f"{name}.branch3x3dbl_2", 384, 3)
    dbl = [_same(dbl, f"{name}.branch3x3dbl_3a", 384, (1, 3)), _same(dbl, f"{name}.branch3x3dbl_3b", 384, (3, 1))]
    # The graph's last block max-pools here; torchvision's (and Keras') average.
    pooled = keras.layers.MaxPooling2D(3, strides=1, padding="same")(x) if max_pool else _average_pool(x)
    pool = _conv(pooled, f"{name}.branch_pool", 192, 1)
    return keras.layers.Concatenate(name=name)([b1, *b3, *dbl, pool])


def build_network():
    """Scaled images `[n, 299, 299, 3]` -> `(pool features [n, 2048], logits [n, 1008])`.

    The logits are the unbiased ones (pool features times the classifier's
    weights, no bias), from which the reference Inception Score code
    (Salimans et al.; torch-fidelity) takes its softmax. Always float32,
    whatever the global policy: a network built during a mixed-precision
    run is kept for every later evaluation.
    """
    previous = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy("float32")
    try:
        return _build_network()
    finally:
        keras.mixed_precision.set_global_policy(previous)


def _build_network():
    images = keras.Input((SIZE, SIZE, 3), name="images")
    x = _conv(images, "Conv2d_1a_3x3", 32, 3, strides=2)
    x = _conv(x, "Conv2d_2a_3x3", 32, 3)
    x = _same(x, "Conv2d_2b_3x3", 64, 3)
    x = keras.layers.MaxPooling2D(3, strides=2)(x)
    x = _conv(x, "Conv2d_3b_1x1", 80, 1)
    x = _conv(x, "Conv2d_4a_3x3", 192, 3)
    x = keras.layers.MaxPooling2D(3, strides=2)(x)
    for name, pool_features in [("Mixed_5b", 32), ("Mixed_5c", 64), ("Mixed_5d", 64)]:
        x = _block_a(x, name, pool_features)
    x = _block_b(x, "Mixed_6a")
    for name, c7 in [("Mixed_6b", 128), ("Mixed_6c", 160), ("Mixed_6d", 160), ("Mixed_6e", 192)]:
        x = _block_c(x, name, c7)
    x = _block_d(x, "Mixed_7a")
    x = _block_e(x, "Mixed_7b", max_pool=False)
    x = _block_e(x, "Mixed_7c", max_pool=True)
    features = keras.layers.GlobalAveragePooling2D(name="pool")(x)
    logits = keras.layers.Dense(CLASSES, use_bias=False, name="fc")(features)
    return keras.Model(images, [features, logits], name="fid_inception")


def set_weights(network, state):
    """Copy a pytorch-fid / torch-fidelity state dict (`{key: array}`) into
    `build_network()`'s layers; every layer must find its tensors."""
    used = set()

    def take(key, shape=None):
        if key not in state:
            raise ValueError(f"The weights file has no {key!r}: it is not the FID Inception's state dict "
                             f"({WEIGHTS_FILE}).")
        used.add(key)
        value = np.asarray(state[key], "float32")
        if shape is not None and value.shape != tuple(shape):
            raise ValueError(f"{key} has shape {list(value.shape)} in the weights file; the FID Inception "
                             f"needs {list(shape)}.")
        return value

    for layer in network.layers:
        if isinstance(layer, keras.layers.Conv2D):
            height, width, inputs, outputs = layer.kernel.shape
            layer.kernel.assign(take(f"{layer.name}.weight", (outputs, inputs, height, width)).transpose(2, 3, 1, 0))
        elif isinstance(layer, keras.layers.BatchNormalization):
            for variable, suffix in [(layer.gamma, "weight"), (layer.beta, "bias"),
                                     (layer.moving_mean, "running_mean"), (layer.moving_variance, "running_var")]:
                variable.assign(take(f"{layer.name}.{suffix}", variable.shape))
        elif isinstance(layer, keras.layers.Dense):
            layer.kernel.assign(take("fc.weight", (CLASSES, FEATURES)).T)
            used.add("fc.bias")  # the unbiased logits do not use it
    unused = sorted(k for k in state if k not in used and not k.endswith("num_batches_tracked"))
    if unused:
        raise ValueError(f"The weights file has tensors the FID Inception does not ({', '.join(unused[:5])}"
                         f"{', ...' if len(unused) > 5 else ''}): it is another network's state dict.")


# ------------------------------------------------------------------- weights
def weights_search_path():
    """Where the weights file is looked for when none is given: ganzoo's
    cache, then torch hub's checkpoints (where pytorch-fid and torch-fidelity
    download it), then the Keras cache."""
    torch_home = Path(os.environ.get("TORCH_HOME") or Path(os.environ.get("XDG_CACHE_HOME") or
                                                          Path.home() / ".cache") / "torch")
    ganzoo_cache = Path(os.environ.get("GANZOO_CACHE") or Path.home() / ".cache" / "ganzoo")
    keras_cache = Path(os.environ.get("KERAS_HOME", Path.home() / ".keras")) / "models"
    folders = [ganzoo_cache, torch_home / "hub" / "checkpoints", keras_cache]
    return [folder / name for folder in folders for name in (WEIGHTS_FILE, *OTHER_WEIGHTS_FILES)]


def find_weights(weights=None):
    """The path of the weights file, or FileNotFoundError naming the file, its
    URL and where to put it. ganzoo never downloads at evaluation time."""
    if weights:
        path = Path(weights).expanduser()
        if not path.is_file():
            raise FileNotFoundError(f"FID Inception weights file not found: {path}. Download {WEIGHTS_URL} "
                                    "and pass its path with --weights / weights=.")
        return path
    for path in weights_search_path():
        if path.is_file():
            return path
    raise FileNotFoundError(
        f"The FID Inception weights ({WEIGHTS_FILE}, the file pytorch-fid uses) are not on this machine. "
        f"Download {WEIGHTS_URL} and put it at {weights_search_path()[0]} (or pass its path with "
        "--weights FILE / weights=). Offline, use --features digits on digit-like data."
    )


# ------------------------------------------------------------------ resizing
def quantize(images):
    """Images in [-1, 1] (or uint8) -> uint8 pixels, rounded as a PNG writer
    (torchvision's `save_image`) rounds them."""
    images = np.asarray(images)
    if images.dtype == np.uint8:
        return images
    return np.floor(np.clip((images.astype("float32") + 1) * 127.5 + 0.5, 0, 255)).astype("uint8")


def _clean_resize(images):
    """clean-fid's resize: PIL bicubic on each channel as a float32 image, clipped to [0, 255]."""
    from PIL import Image

    out = np.empty((len(images), SIZE, SIZE, 3), "float32")
    for i, image in enumerate(images):
        for c in range(3):
            channel = Image.fromarray(image[:, :, c].astype("float32"), mode="F")
            out[i, :, :, c] = np.asarray(channel.resize((SIZE, SIZE), resample=Image.BICUBIC)).clip(0, 255)
    return out


def _tf_scale(images, mode):
    """uint8 (or clean-resized float) `[n, h, w, 3]` -> the network's input, in TF."""
    x = tf.cast(images, tf.float32)
    if mode == "legacy_pytorch":
        x = tf.image.resize(x / 255.0, (SIZE, SIZE), method="bilinear", antialias=False)
        return 2 * x - 1
    if mode == "legacy_tensorflow":
        x = tf.raw_ops.ResizeBilinear(images=x, size=[SIZE, SIZE], align_corners=False, half_pixel_centers=False)
    return (x - 128.0) / 128.0


_NETWORKS = {}  # weights hash -> network: one network serves every resize mode
_COMPILED = {}  # (weights hash, resize mode, input dtype) -> its traced forward pass


def _network(sha256, path):
    if sha256 not in _NETWORKS:
        network = build_network()
        set_weights(network, load_state_dict(path))
        _NETWORKS.clear()  # 95 MB of weights: keep one network
        _COMPILED.clear()
        _NETWORKS[sha256] = network
    return _NETWORKS[sha256]


class FIDInception:
    """Images (in [-1, 1], or uint8) -> `(2048-d pool features, 1008 class
    probabilities)`, resized and scaled as the reference tool of `resize` does.

    Args:
        weights: the `.pth` file (default: `find_weights()`).
        resize: one of `RESIZE_MODES`.
    """

    name = "fid_inception"
    has_probabilities = True

    def __init__(self, weights=None, resize=DEFAULT_RESIZE):
        if resize not in RESIZE_MODES:
            raise ValueError(f"Unknown resize mode {resize!r}. Choose one of {', '.join(RESIZE_MODES)}.")
        path = find_weights(weights)
        self.resize = resize
        self.weights_path = path
        self.weights_sha256 = file_sha256(path)
        self.network = _network(self.weights_sha256, path)

    def _forward(self, images):
        features, logits = self.network(_tf_scale(images, self.resize), training=False)
        return features, tf.nn.softmax(logits)

    def __call__(self, images):
        pixels = quantize(images)
        if pixels.ndim != 4 or pixels.shape[-1] not in (1, 3):
            raise ValueError(f"Expected images [n, H, W, 1 or 3], got shape {list(pixels.shape)}.")
        if pixels.shape[-1] == 1:  # grey to RGB, as the tools' PIL `convert("RGB")` does
            pixels = np.repeat(pixels, 3, axis=-1)
        if self.resize == "clean":
            pixels = _clean_resize(pixels)
        key = (self.weights_sha256, self.resize, tf.as_dtype(pixels.dtype))
        if key not in _COMPILED:  # any size: one graph for a folder of images of many sizes
            signature = [tf.TensorSpec((None, None, None, 3), key[2])]
            _COMPILED[key] = tf.function(self._forward, input_signature=signature)
        features, probabilities = _COMPILED[key](pixels)
        return features.numpy(), probabilities.numpy()
