"""What sampling, evaluation and serving see of a trained model, wherever it
came from (a `ganzoo.GAN` in memory, a run folder, a SavedModel):

- `Sampler`: a generator from noise, `generate(z)` or, when `num_classes` is
  set, `generate(z, labels)`;
- `Translator`: an image-to-image model, `translate(images, direction)`.

Each draws its own preview picture (`picture`), so the `ganzoo sample`
command and the sample grids need not know which kind they hold.
"""

from dataclasses import dataclass

import numpy as np

from ganzoo import visualize
from ganzoo.arrays import latent_noise

DIRECTIONS = ("a2b", "b2a")
MAX_PICTURE = 1024  # samples in one picture: beyond it a grid is no longer a picture to look at


@dataclass
class Sampler:
    """A generator as the metrics see it: `generate(z) -> samples`, or
    `generate(z, labels)` when `num_classes` is set (conditional)."""

    generate: callable
    latent_dim: int
    data_shape: tuple
    source: str = "in-memory model"
    num_classes: int = None

    def default_features(self, dataset):
        """The feature extractor evaluation uses on `dataset` unless told."""
        return default_features(dataset, self.data_shape)

    def picture(self, n=None, seed=0, labels=None, inputs=None, direction=None):
        """A grid of `n` samples (default 64) from `seed`'s noise; for a
        conditional sampler a row of `n` (default 8) per class in `labels`
        (default every class). Returns `(PIL image, description)`."""
        if inputs is not None or direction is not None:
            raise ValueError(f"{self.source} generates from noise: input images (--input) and a direction "
                             "(--direction) are for translation models (cyclegan).")
        _check_count(n)
        if self.num_classes:
            classes = check_classes(range(self.num_classes) if labels is None else labels, self.num_classes)
            if len(classes) > MAX_PICTURE:
                raise ValueError(f"{len(classes)} classes make more rows than a picture holds ({MAX_PICTURE} "
                                 "samples): choose some with --labels.")
            per_class = n or min(8, MAX_PICTURE // len(classes))
            _check_count(per_class * len(classes), f"{per_class} per class x {len(classes)} classes")
            image = visualize.class_grid(self.generate, self.latent_dim, classes, per_class, seed)
            return image, f"{per_class} samples of each of the classes {', '.join(map(str, classes))} (a row each)"
        if labels is not None:
            raise ValueError(f"{self.source} is not a conditional model: it takes no labels (--labels).")
        n = n or 64
        return visualize.picture(self.generate(latent_noise(n, self.latent_dim, seed))), f"{n} samples"


@dataclass
class Translator:
    """A translation model as the metrics see it: `translate(images, direction)`."""

    translate: callable
    data_shape: tuple
    source: str = "in-memory model"

    def default_features(self, dataset):
        return None  # translation metrics use digits_style's own classifiers

    def picture(self, n=None, seed=0, labels=None, inputs=None, direction=None):
        """`inputs` (default: the first `n`, default 8, held-out digits_style
        test digits of the input domain) before and after `direction`."""
        if labels is not None:
            raise ValueError(f"{self.source} translates images: it takes input images (--input), not labels (--labels).")
        _check_count(n)
        direction = direction or "a2b"
        if direction not in DIRECTIONS:
            raise ValueError(f"direction must be 'a2b' or 'b2a', got {direction!r}.")
        if inputs is None:
            from ganzoo import data  # TensorFlow, only for the default inputs

            a, b, _ = data.digits_style_test(self.data_shape[0])
            inputs = (a if direction == "a2b" else b)[: n or 8]
        inputs = np.asarray(inputs, "float32")
        image = visualize.before_after(inputs, self.translate(inputs, direction))
        return image, f"{len(inputs)} images before and after {direction}"


def default_features(dataset, data_shape):
    """`raw` for vectors, `digits` on digits (offline), `fid_inception` (the
    reference FID network) otherwise."""
    if len(data_shape) == 1:
        return "raw"
    return "digits" if dataset == "digits" else "fid_inception"


def _check_count(n, what=None):
    if n is not None and not 1 <= n <= MAX_PICTURE:
        raise ValueError(f"A picture holds 1 to {MAX_PICTURE} samples (--n), got {what or n}. For more samples, "
                         "generate them in batches in Python (model.generate(n, batch_size=...)) and save arrays.")


def check_classes(labels, num_classes):
    """`labels` as a list of ints in [0, num_classes), or a ValueError naming the bad ones."""
    try:
        classes = [int(label) for label in labels]
    except (TypeError, ValueError):
        raise ValueError(f"labels (--labels) must be class numbers such as 0,1,2; got {labels!r}.") from None
    bad = [label for label in classes if not 0 <= label < num_classes]
    if not classes or bad:
        raise ValueError(
            f"labels (--labels) must be classes in 0..{num_classes - 1}"
            + (f"; {', '.join(map(str, bad))} out of range." if bad else "; got none.")
        )
    return classes
