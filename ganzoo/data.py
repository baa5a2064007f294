"""Datasets as `tf.data` pipelines of float32 samples (images in [-1, 1]).

`load(name, ...)` understands:

- `digits`: scikit-learn's bundled 8x8 handwritten digits, offline: split
  `train` (1,437 images), `test` (360, held out for evaluation, ~36 per class)
  or `all` (1,797);
- `ring`: 8 Gaussians (std 0.01) on the unit circle at angles 2*pi*k/8;
- `grid`: 25 Gaussians (std 0.05) at {-4, -2, 0, 2, 4}^2;
- a folder of images (sub-folders are classes when `with_labels=True`);
- any TensorFlow Datasets name (`mnist`, `cifar10`, `celeb_a`, ...).

`load_unpaired(a, b, ...)` yields `(a_images, b_images)` from two independent
streams for image-to-image translation: `digits_style` (offline), TFDS
`cycle_gan/<name>`, or two folders (or one with `trainA/` and `trainB/`).
"""

import os
import re
from pathlib import Path

import numpy as np
import tensorflow as tf

OFFLINE_DATASETS = ("digits", "ring", "grid")
UNPAIRED_DATASETS = ("digits_style",)
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif")
MAX_IMAGE_SIZE = 4096  # the side of a training image; larger is a typo or a machine's memory

# The 2D mixtures of the GAN literature (Metz et al. 2017, Gulrajani et al. 2017).
MIXTURES = {
    "ring": {
        "centers": np.stack(
            [np.cos(2 * np.pi * np.arange(8) / 8), np.sin(2 * np.pi * np.arange(8) / 8)], axis=1
        ),
        "std": 0.01,
    },
    "grid": {
        "centers": np.array([(x, y) for x in (-4, -2, 0, 2, 4) for y in (-4, -2, 0, 2, 4)], float),
        "std": 0.05,
    },
}


def load(
    name,
    image_size=None,
    batch_size=64,
    channels=None,
    with_labels=False,
    split="train",
    shuffle=True,
    seed=None,
    num_examples=None,
    data_dir=None,
    drop_remainder=True,
    skip_corrupt=False,
    cache=True,
):
    """A batched, shuffled, prefetched `tf.data.Dataset`.

    Args:
        name: an offline dataset (`digits`, `ring`, `grid`), a folder of
            images, or a TensorFlow Datasets name.
        image_size: side of the square images; `None` keeps the native size
            (8 for digits). Ignored for vectors.
        batch_size: global batch size.
        channels: 1 or 3 to convert images; `None` keeps the native channels.
        with_labels: yield `(samples, labels)` instead of samples.
        split: `train`, `test` or `all` for digits; any TFDS split
            (`train`, `test`, `train[:10%]`, ...). Mixtures have no split.
        seed: shuffling (and mixture sampling) seed.
        num_examples: size of a generated mixture (default 25,600) or a cap
            on the others.
        data_dir: TFDS data folder (default: TFDS's, `~/tensorflow_datasets`).
        drop_remainder: drop the last partial batch, so every step sees
            `batch_size` samples (keeps replicas evenly split).
        skip_corrupt: image folders: skip unreadable files with a warning
            instead of failing with their names.
        cache: keep the prepared images in memory after the first pass
            (training reads them every epoch); False for one pass over a
            large dataset (reference statistics, evaluation).
    """
    if image_size is not None and (isinstance(image_size, bool) or not isinstance(image_size, int)
                                   or not 1 <= image_size <= MAX_IMAGE_SIZE):
        raise ValueError(f"image_size must be an integer from 1 to {MAX_IMAGE_SIZE}, got {image_size!r}.")
    if not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}.")
    if channels not in (None, 1, 3):
        raise ValueError(f"channels must be 1, 3 or None, got {channels!r}.")
    if name in MIXTURES:
        if with_labels:
            raise ValueError(f"{name!r} has no labels; use with_labels=False. {_LABELLED_DATASETS}")
        ds = tf.data.Dataset.from_tensor_slices(mixture_samples(name, num_examples or 25600, seed))
        return _finish(ds, batch_size, shuffle, seed, drop_remainder, cache=False)
    if name == "digits":
        images, labels = digits_arrays(split)
        ds = tf.data.Dataset.from_tensor_slices((images, labels))
    elif Path(os.fspath(name)).is_dir():
        ds = _folder(Path(name), with_labels, image_size, channels, skip_corrupt)
    elif _looks_like_a_path(name):
        raise FileNotFoundError(f"{name} is not a folder: give a folder of images that exists, or a dataset name "
                                f"({', '.join(OFFLINE_DATASETS)}, or a TFDS name such as mnist).")
    else:
        ds = _tfds(name, split, data_dir, with_labels)
    if num_examples:
        ds = ds.take(num_examples)
    ds = ds.map(
        lambda image, label: (_prepare_image(image, image_size, channels), label),
        num_parallel_calls=tf.data.AUTOTUNE,
    )
    if not with_labels:
        ds = ds.map(lambda image, label: image)
    return _finish(ds, batch_size, shuffle, seed, drop_remainder, cache=cache)


_LABELLED_DATASETS = (
    "Labelled datasets: digits, a TFDS dataset with a 'label' feature, or a folder with "
    "one sub-folder of images per class."
)


def num_classes(name, data_dir=None):
    """The number of classes of a labelled dataset (None if it has no labels)."""
    if name in MIXTURES:
        return None
    if name == "digits":
        return 10
    if Path(os.fspath(name)).is_dir():
        return len(_class_folders(Path(name))) or None
    import tensorflow_datasets as tfds

    try:
        features = tfds.builder(name, data_dir=data_dir).info.features
    except Exception:  # noqa: BLE001 - unknown or unreadable: `load` gives the full error
        return None
    return getattr(features["label"], "num_classes", None) if "label" in features.keys() else None


def mixture_samples(name, n, seed=None):
    """`n` points of the `ring` or `grid` mixture as float32 `[n, 2]`."""
    mixture = MIXTURES[name]
    rng = np.random.default_rng(seed)
    centers = mixture["centers"][rng.integers(len(mixture["centers"]), size=n)]
    return (centers + mixture["std"] * rng.standard_normal((n, 2))).astype("float32")


def _finish(ds, batch_size, shuffle, seed, drop_remainder, cache):
    if cache:
        ds = ds.cache()
    if shuffle:
        ds = ds.shuffle(10_000, seed=seed, reshuffle_each_iteration=True)
    ds = ds.batch(batch_size, drop_remainder=drop_remainder)
    return _prefetched(ds)


def _prefetched(ds):
    """`ds` prefetched, without tf.data's autotuning thread.

    Deleting an iterator waits for that thread's next wake-up, and Keras'
    `fit` deletes one at the end of every epoch: DCGAN on digits lost about
    1.6 s in every other 3.7 s epoch. The pipelines here are cached in
    memory, so what runs after the first epoch is cheap (shuffling, and
    cyclegan's augmentation); AUTOTUNE parallelism then means one call per
    core. The option carries over to what a caller chains on; set
    `options.autotune.enabled = True` there to tune a heavy map of one's own.
    """
    options = tf.data.Options()
    options.autotune.enabled = False
    return ds.prefetch(2).with_options(options)


DIGITS_SPLITS = ("train", "test", "all")


def digits_arrays(split="train"):
    """scikit-learn's digits as `(images [n, 8, 8, 1] in [0, 1], labels int32)`.

    `test` is a fixed, stratified 20 % (about 36 images per class) held out for
    evaluation; `train` is the rest. GANs train on `train` and are scored
    against `test`, so evaluation never measures memorised images.
    """
    if split not in DIGITS_SPLITS:
        raise ValueError(f"digits has the splits {', '.join(DIGITS_SPLITS)}; got split={split!r}.")
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    # Pixel values are 0..16: scale to [0, 1]; `_prepare_image` maps to [-1, 1].
    images = (digits.images[..., None] / 16.0).astype("float32")
    labels = digits.target.astype("int32")
    if split == "all":
        return images, labels
    train_x, test_x, train_y, test_y = train_test_split(
        images, labels, test_size=360, stratify=labels, random_state=0
    )
    return (train_x, train_y) if split == "train" else (test_x, test_y)


def _prepare_image(image, image_size, channels):
    """Resize and convert one image to float32 in [-1, 1]."""
    if image.dtype == tf.uint8:
        image = tf.cast(image, tf.float32) / 255.0
    image = tf.cast(image, tf.float32)
    if channels == 1 and image.shape[-1] == 3:
        image = tf.image.rgb_to_grayscale(image)
    elif channels == 3 and image.shape[-1] == 1:
        image = tf.image.grayscale_to_rgb(image)
    if image_size is not None:
        image = tf.image.resize(image, (image_size, image_size), method="bilinear", antialias=True)
    return tf.clip_by_value(image * 2.0 - 1.0, -1.0, 1.0)


def _folder(path, with_labels, image_size=None, channels=None, skip_corrupt=False):
    """`(image, label)` of every image under `path`, decoded with PIL at
    `image_size` (without one, at the most common size of the files, which
    is said). Large files are decoded at a reduced scale where the format
    allows (JPEG) and shrunk one at a time, so a huge file costs its own
    decode, never the whole folder at full size. A file PIL cannot read is
    an error that names it, or, with `skip_corrupt`, skipped with a warning."""
    import warnings
    from collections import Counter

    from PIL import Image, UnidentifiedImageError

    classes = _class_folders(path) if with_labels else []
    if with_labels and not classes:
        raise ValueError(
            f"{path} has no sub-folders, so its images have no labels. Put each class's "
            "images in its own sub-folder (e.g. cats/, dogs/), or use with_labels=False."
        )
    roots = [path / name for name in classes] if with_labels else [path]
    files = [(f, label) for label, root in enumerate(roots) for f in sorted(root.rglob("*"))
             if f.suffix.lower() in IMAGE_SUFFIXES and f.is_file()]
    if not files:
        raise ValueError(f"No images ({', '.join(IMAGE_SUFFIXES)}) found under {path}.")
    headers, bad = [], []
    for file, label in files:  # headers only: sizes and modes, no pixels yet
        try:
            with Image.open(file) as image:
                headers.append((file, label, image.size, image.mode))
        except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError) as error:
            bad.append((file, error))
    if bad and not skip_corrupt:
        listed = "; ".join(f"{f}: {type(e).__name__}" for f, e in bad[:5]) + (" ..." if len(bad) > 5 else "")
        raise ValueError(f"{len(bad)} of {len(files)} files under {path} are not readable images ({listed}). "
                         "Remove or replace them, or skip them (--skip-corrupt; skip_corrupt=True).")
    if image_size is None:
        (width, height), count = Counter(size for _, _, size, _ in headers).most_common(1)[0]
        if count < len(headers):
            print(f"{path}: images of {len(set(h[2] for h in headers))} sizes; resizing all to the most "
                  f"common, {width}x{height} ({count} of {len(headers)} files). Set image_size to choose.",
                  flush=True)
    else:
        width = height = image_size
    if channels is None:
        channels = 1 if all(mode in ("1", "L", "I", "I;16", "F") for _, _, _, mode in headers) else 3
    pixels, labels = [], []
    for file, label, _, _ in headers:
        try:
            pixels.append(_decoded(file, width, height, channels))
            labels.append(label)
        except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as error:  # shows only on decoding
            if not skip_corrupt:
                raise ValueError(f"{file} cannot be decoded ({error}). Remove or replace it, or skip it "
                                 "(--skip-corrupt; skip_corrupt=True).") from None
            bad.append((file, error))
    if bad:
        warnings.warn(f"Skipped {len(bad)} unreadable file(s) under {path}, e.g. {bad[0][0]}.", stacklevel=3)
    if not pixels:
        raise ValueError(f"None of the {len(files)} files under {path} is a readable image.")
    images = np.stack(pixels)
    return tf.data.Dataset.from_tensor_slices((images, np.asarray(labels, "int32"))).map(
        lambda image, label: (tf.cast(image, tf.float32) / 255.0, label)
    )


def _decoded(file, width, height, channels):
    """One file as uint8 `[height, width, channels]`, never decoded larger than it must be."""
    from PIL import Image

    with Image.open(file) as image:
        mode = "RGB" if channels == 3 else "L"
        image.draft(mode, (width, height))  # JPEG: decode at 1/2, 1/4 or 1/8 scale
        if image.mode in ("I;16", "I;16B", "I;16L", "I"):  # 16-bit: scaled, where convert("L") would clip at 255
            image = Image.fromarray((np.asarray(image, "float64") / 257.0).clip(0, 255).round().astype("uint8"))
        if image.mode not in ("L", "RGB"):  # palette, alpha, CMYK: PIL resizes these poorly
            image = image.convert(mode)
        if image.size != (width, height):  # shrink first, then convert: no full-size copy
            image = image.resize((width, height), Image.Resampling.BICUBIC, reducing_gap=3.0)
        if image.mode != mode:
            image = image.convert(mode)
        array = np.asarray(image, "uint8")
    return array[..., None] if channels == 1 else array


_TFDS_NAME = re.compile(r"^[a-z][a-z0-9_]*(/[a-zA-Z0-9_.+-]+)?(:[0-9.*]+)?$")


def _looks_like_a_path(name):
    """Not a TFDS name (`mnist`, `cycle_gan/horse2zebra`, `mnist:3.*.*`): a folder that is not there."""
    return not _TFDS_NAME.match(os.fspath(name))


def _class_folders(path):
    """The sub-folders: Keras numbers the classes in this (sorted) order."""
    return sorted(d.name for d in path.iterdir() if d.is_dir())


def _tfds(name, split, data_dir, with_labels):
    import tensorflow_datasets as tfds

    try:
        ds = tfds.load(name, split=split, data_dir=data_dir, download=False)
    except tfds.core.registered.DatasetNotFoundError:
        raise ValueError(
            f"Unknown dataset {name!r}: it is not an offline dataset "
            f"({', '.join(OFFLINE_DATASETS)}), not an existing folder of images, "
            "and not a TensorFlow Datasets name."
        ) from None
    except AssertionError:
        # Not on disk yet: try to download and prepare it; fail fast offline.
        try:
            ds = tfds.load(name, split=split, data_dir=data_dir, download=True)
        except Exception as error:  # noqa: BLE001 - any download failure means the same to the user
            raise RuntimeError(
                f"The TFDS dataset {name!r} is not on disk "
                f"(data_dir={data_dir or '~/tensorflow_datasets'}) and could not be "
                f"downloaded ({type(error).__name__}: {str(error)[:200]}). "
                f"Prepare it where there is network (`tfds build {name}`) and copy the "
                f"data folder here, or use an offline dataset: "
                f"{', '.join(OFFLINE_DATASETS)}, or a folder of images."
            ) from None
    element = ds.element_spec
    if not isinstance(element, dict) or "image" not in element:
        raise ValueError(f"TFDS dataset {name!r} has no 'image' feature to train on.")
    has_label = "label" in element
    if with_labels and not has_label:
        raise ValueError(f"TFDS dataset {name!r} has no 'label' feature; use with_labels=False. {_LABELLED_DATASETS}")
    return ds.map(
        lambda ex: (ex["image"], tf.cast(ex["label"], tf.int32) if has_label else tf.constant(0, tf.int32))
    )


# ------------------------------------------------------------ unpaired
# digits_style's domain B: thick dark-blue ink on cream paper.
STYLE_INK = (0.10, 0.15, 0.45)
STYLE_PAPER = (0.96, 0.92, 0.80)


def digits_style(images):
    """The style of `digits_style`'s domain B, applied to grey digits
    `[n, H, W, 1]` in [0, 1] (white ink on black): strokes thickened by a
    3x3 grey dilation, then dark ink on light paper with a colour tint.
    Returns `[n, H, W, 3]` in [0, 1]."""
    ink = tf.nn.max_pool2d(tf.convert_to_tensor(images, tf.float32), 3, strides=1, padding="SAME")
    paper, ink_colour = tf.constant(STYLE_PAPER), tf.constant(STYLE_INK)
    return paper * (1.0 - ink) + ink_colour * ink


def digits_style_arrays(split="train", image_size=32):
    """`digits_style` as `((a_images, a_labels), (b_images, b_labels))`, RGB in [0, 1].

    Domain A is the digits as they are (grey, as RGB); domain B is
    `digits_style` of other digits. On `train` the two domains come from
    disjoint, stratified halves of the train split, so no digit appears in
    both; on `test` both are the 360 held-out digits, so that a translation
    can be compared with the known style of its input.
    """
    images, labels = digits_arrays(split)
    images = tf.image.resize(images, (image_size, image_size), method="bilinear", antialias=True)
    images = tf.clip_by_value(images, 0.0, 1.0).numpy()
    if split == "test":
        a, b = (images, labels), (images, labels)
    else:
        from sklearn.model_selection import train_test_split

        a_x, b_x, a_y, b_y = train_test_split(images, labels, test_size=0.5, stratify=labels, random_state=0)
        a, b = (a_x, a_y), (b_x, b_y)
    return (np.repeat(a[0], 3, axis=-1), a[1]), (digits_style(b[0]).numpy(), b[1])


def digits_style_test(image_size=32):
    """digits_style's held-out test split as `(a, b, labels)`, images in
    [-1, 1]: b is the known style of a, digit for digit."""
    (a, labels), (b, _) = digits_style_arrays("test", image_size)
    return a * 2 - 1, b * 2 - 1, labels


def load_unpaired(
    a,
    b=None,
    image_size=32,
    batch_size=1,
    channels=None,
    split="train",
    shuffle=True,
    seed=None,
    jitter=True,
    flip=None,
    data_dir=None,
    with_labels=False,
    skip_corrupt=False,
):
    """Two independent, shuffled image streams zipped into `(a_images, b_images)`.

    Args:
        a: `digits_style`, a TFDS `cycle_gan/<name>` dataset, a folder holding
            `trainA/` and `trainB/` (and `testA/`, `testB/`), or the folder of
            domain A.
        b: the folder of domain B when `a` is domain A's folder.
        image_size: side of the square images both domains are resized to.
        batch_size: images of each domain per batch.
        channels: 1 or 3 to convert; None keeps the native channels (3 for
            digits_style).
        split: `train` or `test` (`trainA`/`testA`, ... for TFDS and folders).
        jitter: resize up by 1/8 and crop back at random (the paper's 286 ->
            256), on `train` only.
        flip: random horizontal flips, on `train` only; None: on, except
            for digits_style (a mirrored digit is another glyph).
        with_labels: yield `((a_images, a_labels), (b_images, b_labels))`
            (digits_style only: for evaluation).

    One epoch is as many batches as the larger domain fills; the smaller
    repeats, reshuffled.
    """
    if not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}.")
    if split not in ("train", "test"):
        raise ValueError(f"split must be 'train' or 'test', got {split!r}.")
    if a == "digits_style":
        if b is not None:
            raise ValueError("digits_style holds both domains; give no second dataset.")
        (a_x, a_y), (b_x, b_y) = digits_style_arrays(split, image_size)
        domains = [tf.data.Dataset.from_tensor_slices((x, y)) for x, y in ((a_x, a_y), (b_x, b_y))]
        flip = False if flip is None else flip
    else:
        if with_labels:
            raise ValueError("with_labels=True is for digits_style, whose digits carry labels.")
        domains = _unpaired_sources(a, b, split, data_dir, image_size, skip_corrupt)
        flip = True if flip is None else flip
    training = split == "train"
    sizes = [int(d.cardinality()) for d in domains]
    streams = []
    for i, domain in enumerate(domains):
        domain = domain.map(
            lambda image, label: (_prepare_image(image, image_size, channels), label),
            num_parallel_calls=tf.data.AUTOTUNE,
        ).cache()
        if shuffle:
            domain = domain.shuffle(10_000, seed=None if seed is None else seed + i, reshuffle_each_iteration=True)
        if training and (jitter or flip):
            domain = domain.map(
                lambda image, label: (_augment(image, image_size, jitter, flip), label),
                num_parallel_calls=tf.data.AUTOTUNE,
            )
        if not with_labels:
            domain = domain.map(lambda image, label: image)
        streams.append(domain.repeat() if training else domain)
    ds = tf.data.Dataset.zip(tuple(streams))
    if training:
        ds = ds.take(max(sizes) if min(sizes) > 0 else 0)
    ds = ds.batch(batch_size, drop_remainder=training)
    return _prefetched(ds)


def _augment(image, image_size, jitter, flip):
    if jitter:
        larger = image_size + max(1, image_size // 8)
        image = tf.image.resize(image, (larger, larger), method="bilinear")
        image = tf.image.random_crop(image, (image_size, image_size, image.shape[-1]))
    if flip:
        image = tf.image.random_flip_left_right(image)
    return image


def _unpaired_sources(a, b, split, data_dir, image_size=None, skip_corrupt=False):
    """The two domains' `(image, label)` datasets, images in [0, 1]."""
    if b is not None:
        folders = [Path(os.fspath(a)), Path(os.fspath(b))]
    elif Path(os.fspath(a)).is_dir():
        root = Path(os.fspath(a))
        folders = [root / f"{split}A", root / f"{split}B"]
        if not all(f.is_dir() for f in folders):
            raise ValueError(
                f"{root} has no {split}A/ and {split}B/ folders. Give a folder laid out as "
                f"{root}/{split}A and {root}/{split}B, or two folders: load_unpaired(folder_a, folder_b)."
            )
    elif not str(a).startswith("cycle_gan/"):
        raise ValueError(
            f"{a!r} is a single domain: unpaired translation needs two. Use digits_style, a TFDS "
            "cycle_gan/<name> dataset (e.g. cycle_gan/horse2zebra), two image folders, or a folder "
            "with trainA/ and trainB/."
        )
    else:
        return [_tfds(a, f"{split}{domain}", data_dir, with_labels=False) for domain in ("A", "B")]
    for folder in folders:
        if not folder.is_dir():
            raise ValueError(f"{folder} is not a folder of images.")
    if folders[0].resolve() == folders[1].resolve():
        raise ValueError(f"Domains A and B are the same folder ({folders[0]}): give two different domains.")
    return [_folder(folder, with_labels=False, image_size=image_size, skip_corrupt=skip_corrupt) for folder in folders]
