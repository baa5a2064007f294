"""Streaming evaluation: features of real and generated samples, batch by
batch, then every requested metric, with the protocol recorded beside them.

    result = ganzoo.metrics.evaluate(model, "digits", metrics=["fid", "kid"])
    result["metrics"]["fid"], result["protocol"]["n_real"]
"""

import datetime
import os
from dataclasses import dataclass
from pathlib import Path

import keras
import numpy as np

from ganzoo.metrics import distances
from ganzoo.metrics.features import get_extractor
from ganzoo.metrics.mixtures import mode_coverage
from ganzoo.metrics.swd import multiscale_swd

# Each metric name and the keys it adds to the results.
METRICS = {
    "fid": ("fid",),
    "kid": ("kid", "kid_std"),
    "is": ("is", "is_std"),
    "precision_recall": ("precision", "recall"),
    "density_coverage": ("density", "coverage"),
    "mode_coverage": ("modes", "total_modes", "high_quality", "kl"),
    "conditional_accuracy": ("conditional_accuracy",),
    "swd": ("swd",),  # and swd_<resolution> per pyramid level
}
SAMPLE_METRICS = ("mode_coverage", "swd")  # computed from the samples, not from features
IMAGE_METRICS = ("fid", "kid", "is", "precision_recall", "density_coverage", "swd")
MIXTURE_METRICS = ("mode_coverage", "fid", "kid", "precision_recall", "density_coverage")
RUN_MODEL_FILE = "model.keras"  # what `ganzoo train` writes in a run folder
MODE_COVERAGE_SAMPLES = 2500  # the protocol of VEEGAN / GDPP, Table 1


@dataclass
class Features:
    """Features of one sample set, and class probabilities where the extractor has them."""

    features: np.ndarray
    probabilities: np.ndarray = None
    samples: np.ndarray = None  # kept only for 2D mixtures (mode coverage)
    labels: np.ndarray = None  # the classes a conditional generator was asked for


def default_metrics(dataset, conditional=False, extractor=None):
    from ganzoo.data import MIXTURES

    if dataset in MIXTURES:
        return MIXTURE_METRICS
    if conditional and extractor is not None and _classifies(extractor):
        return IMAGE_METRICS + ("conditional_accuracy",)
    return IMAGE_METRICS


def _classifies(extractor):
    """Whether the extractor's probabilities are over the dataset's own classes
    (ImageNet's are not the classes of a conditional GAN's data)."""
    return extractor.has_probabilities and extractor.name != "inception"


def default_features(dataset, data_shape):
    if len(data_shape) == 1:
        return "raw"
    return "digits" if dataset == "digits" else "inception"


def check_metrics(names, extractor, dataset, num_classes=None):
    from ganzoo.data import MIXTURES

    names = list(names)
    unknown = [m for m in names if m not in METRICS]
    if unknown:
        raise ValueError(f"Unknown metric {', '.join(map(repr, unknown))}. Choose from: {', '.join(METRICS)}.")
    if "is" in names and not extractor.has_probabilities:
        raise ValueError(
            f"The Inception Score needs class probabilities, which the {extractor.name!r} "
            "features do not have; use features 'digits' or 'inception', or drop 'is'."
        )
    if "conditional_accuracy" in names:
        if not num_classes:
            raise ValueError("conditional_accuracy scores class-conditional generators (cgan); this one takes no labels.")
        if not _classifies(extractor):
            raise ValueError(
                f"conditional_accuracy needs a classifier of the dataset's classes as features: 'digits' on "
                f"digits, or a Keras model with outputs (features, class probabilities); not {extractor.name!r}."
            )
    if "swd" in names and dataset in MIXTURES:
        raise ValueError("swd compares image patches; the 2D mixtures have none. Use mode_coverage.")
    if "mode_coverage" in names and dataset not in MIXTURES:
        raise ValueError(f"mode_coverage is defined for the mixtures {sorted(MIXTURES)}, not {dataset!r}.")
    return names


def extract(extractor, batches, total, label, progress=True, keep_samples=False):
    """Run `extractor` over an iterable of sample batches (NumPy, tensors, or
    `(samples, labels)` tuples), at most `total` samples, with a progress bar."""
    features, probabilities, samples, labels = [], [], [], []
    bar = keras.utils.Progbar(total, unit_name=label) if progress else None
    seen = 0
    for batch in batches:
        if isinstance(batch, (tuple, list)):
            batch, batch_labels = batch[0], (batch[1] if len(batch) > 1 else None)
            if batch_labels is not None:
                labels.append(np.asarray(batch_labels)[: total - seen])
        batch = np.asarray(batch, "float32")[: total - seen]
        f, p = extractor(batch)
        features.append(f)
        if p is not None:
            probabilities.append(p)
        if keep_samples:
            samples.append(batch)
        seen += len(batch)
        if bar:
            bar.update(seen)
        if seen >= total:
            break
    if not features:
        raise ValueError(f"No {label} samples to evaluate.")
    return Features(
        np.concatenate(features),
        np.concatenate(probabilities) if probabilities else None,
        np.concatenate(samples) if keep_samples else None,
        np.concatenate(labels) if labels else None,
    )


def real_batches(dataset, data_shape, n, split="test", batch_size=250, seed=0):
    """Batches of real samples shaped like the generator's, unshuffled."""
    from ganzoo import data

    if len(data_shape) == 1:
        if dataset not in data.MIXTURES:
            raise ValueError(f"A generator of vectors {list(data_shape)} can only be evaluated on {sorted(data.MIXTURES)}.")
        # A fresh draw, not the training stream (seeded differently).
        samples = data.mixture_samples(dataset, n, seed=10_000 + seed)
        return (samples[i : i + batch_size] for i in range(0, n, batch_size))
    return data.load(
        dataset, image_size=data_shape[0], channels=data_shape[-1], batch_size=batch_size,
        split=split, shuffle=False, drop_remainder=False, num_examples=n,
    ).as_numpy_iterator()


def generated_batches(sampler, n, batch_size=250, seed=0):
    """Batches of `n` samples for latent vectors drawn from `seed`. A
    conditional sampler is asked for every class in turn (equal numbers of
    each) and yields `(samples, labels)`."""
    rng = np.random.default_rng(seed)
    for start in range(0, n, batch_size):
        z = rng.standard_normal((min(batch_size, n - start), sampler.latent_dim)).astype("float32")
        if sampler.num_classes:
            labels = (start + np.arange(len(z))) % sampler.num_classes
            yield np.asarray(sampler.generate(z, labels.astype("int32"))), labels
        else:
            yield np.asarray(sampler.generate(z))


def generated_features(extractor, sampler, n, names, batch_size=250, seed=0, progress=True):
    """`Features` of `n` samples of `sampler`, keeping the samples when mode coverage needs them."""
    batches = generated_batches(sampler, n, batch_size, seed)
    keep = any(name in SAMPLE_METRICS for name in names)
    return extract(extractor, batches, n, "generated", progress, keep_samples=keep)


def compute_metrics(names, real, fake, mixture=None, seed=0, kid_subsets=100, kid_subset_size=1000):
    """The metrics `names` from two `Features`, as a flat dict of floats."""
    results = {}
    # Precision/recall and density/coverage assume equally many samples of
    # each kind (their k-NN radii depend on the sample size).
    m = min(len(real.features), len(fake.features))
    for name in names:
        if name == "fid":
            results["fid"] = distances.frechet_distance(real.features, fake.features)
        elif name == "kid":
            results["kid"], results["kid_std"] = distances.kernel_distance(
                real.features, fake.features, num_subsets=kid_subsets, subset_size=kid_subset_size, seed=seed
            )
        elif name == "is":
            results["is"], results["is_std"] = distances.inception_score(fake.probabilities)
        elif name == "precision_recall":
            results["precision"], results["recall"] = distances.precision_recall(
                real.features[:m], fake.features[:m], k=3
            )
        elif name == "density_coverage":
            results["density"], results["coverage"] = distances.density_coverage(
                real.features[:m], fake.features[:m], k=5
            )
        elif name == "mode_coverage":
            results.update(mode_coverage(fake.samples[:MODE_COVERAGE_SAMPLES], mixture))
        elif name == "swd":
            results.update(multiscale_swd(real.samples, fake.samples, seed=seed))
        elif name == "conditional_accuracy":
            results["conditional_accuracy"] = distances.conditional_accuracy(fake.probabilities, fake.labels)
    return results


def evaluate(
    generator,
    dataset="digits",
    metrics=None,
    n=None,
    features=None,
    split="test",
    seed=0,
    batch_size=250,
    weights=None,
    progress=True,
):
    """Score a generator against real data.

    Args:
        generator: a `ganzoo.GAN`, or a `Sampler` (see `ganzoo.metrics.load_sampler`).
        dataset: the real data: `digits`, `ring`, `grid`, a folder or a TFDS name.
        metrics: names from `METRICS`; default: all that apply.
        n: generated samples (default 10,000 for images, 2,500 for mixtures);
            real samples are at most `n` from `split`.
        features: `digits`, `inception`, `raw`, or a Keras model; default
            `digits` on digits, `raw` for vectors, `inception` otherwise.
        split: the real split; `test` holds images the GAN never saw.
        seed: seed of the latent noise and of KID's subsets.
        weights: path of the Inception weights file.

    Returns:
        `{"metrics": {...}, "protocol": {...}}`: the numbers, and everything
        needed to reproduce them (sample counts, split, extractor and its
        weights' hash, image size, seed).
    """
    from ganzoo import __version__
    from ganzoo.data import MIXTURES

    sampler = as_sampler(generator)
    data_shape = tuple(sampler.data_shape)
    n = int(n or (MODE_COVERAGE_SAMPLES if dataset in MIXTURES else 10_000))
    if n < 2:
        raise ValueError(f"n must be at least 2, got {n}.")
    extractor = get_extractor(features or default_features(dataset, data_shape), weights=weights)
    names = check_metrics(
        metrics or default_metrics(dataset, bool(sampler.num_classes), extractor), extractor, dataset, sampler.num_classes
    )
    real = extract(extractor, real_batches(dataset, data_shape, n, split, batch_size, seed), n, "real", progress,
                   keep_samples="swd" in names)
    fake = generated_features(extractor, sampler, n, names, batch_size, seed, progress)
    results = compute_metrics(names, real, fake, mixture=dataset, seed=seed)
    kid_subset_size = min(1000, len(real.features), len(fake.features))  # what kernel_distance used
    protocol = {
        "generator": sampler.source,
        "dataset": dataset,
        "split": None if dataset in MIXTURES else split,
        "n_real": len(real.features),
        "n_generated": len(fake.features),
        "features": extractor.name,
        "feature_dim": int(real.features.shape[1]),
        "weights_sha256": extractor.weights_sha256,
        "data_shape": list(data_shape),
        "seed": seed,
        "metrics": names,
        **{name: settings for name, settings in {
            "kid": {"subsets": 100, "subset_size": kid_subset_size, "kernel": "(x.y/d + 1)^3"},
            "precision_recall": {"k": 3, "n": min(len(real.features), len(fake.features))},
            "density_coverage": {"k": 5, "n": min(len(real.features), len(fake.features))},
            "mode_coverage": {"n": min(MODE_COVERAGE_SAMPLES, n), "high_quality": "within 3 std"},
            "conditional_accuracy": {"labels": f"0..{(sampler.num_classes or 1) - 1} in turn, equal counts"},
        }.items() if name in names},
        "ganzoo_version": __version__,
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }
    return {"metrics": results, "protocol": protocol}


@dataclass
class Sampler:
    """A generator as the metrics see it: `generate(z) -> samples`, or
    `generate(z, labels)` when `num_classes` is set (conditional)."""

    generate: callable
    latent_dim: int
    data_shape: tuple
    source: str = "in-memory model"
    num_classes: int = None


def as_sampler(generator):
    """A `Sampler` from a `ganzoo.GAN`, a run folder or a SavedModel folder."""
    import tensorflow as tf

    if isinstance(generator, Sampler):
        return generator
    if isinstance(generator, (str, os.PathLike)):
        return load_sampler(generator)
    if getattr(generator, "network_kind", None) == "translation":
        from ganzoo.metrics.translation import as_translator

        return as_translator(generator)
    if hasattr(generator, "generator") and hasattr(generator, "latent_dim"):
        model = generator
        # One compiled graph for every batch, instead of eager layer calls.
        compiled = tf.function(lambda inputs: model(inputs, training=False), reduce_retracing=True)

        def generate(z, labels=None):
            return compiled(model.generator_inputs(z, labels)).numpy()

        return Sampler(generate, model.latent_dim, tuple(model.data_shape), model.name, model.num_classes)
    raise TypeError(f"Expected a ganzoo GAN, a run folder or a SavedModel folder, got {type(generator).__name__}.")


def load_sampler(path):
    """A `Sampler` from a run folder (its `model.keras`) or a SavedModel; for
    translation models (cyclegan) a `ganzoo.metrics.translation.Translator`."""
    import tensorflow as tf

    path = Path(path)
    if (path / RUN_MODEL_FILE).exists():
        import ganzoo  # noqa: F401  (registers the model classes for load_model)

        sampler = as_sampler(keras.models.load_model(path / RUN_MODEL_FILE))
        sampler.source = os.fspath(path)
        return sampler
    if (path / "saved_model.pb").exists():
        from ganzoo.export import load_serving

        loaded, info = load_serving(path)
        if "a2b" in loaded.signatures:
            return _saved_translator(loaded, path)
        serve = loaded.signatures["serving_default"]
        if "latent_dim" not in info:
            raise ValueError(f"{path}: its serving_default signature takes no latent vector 'z'.")
        shape = info.get("data_shape") or serve.structured_outputs["images"].shape[1:]
        if "labels" not in serve.structured_input_signature[1]:
            return Sampler(
                lambda z: serve(z=tf.constant(z))["images"].numpy(), info["latent_dim"], tuple(shape), os.fspath(path)
            )
        if not info.get("num_classes"):
            raise ValueError(f"{path}: a conditional SavedModel without num_classes in assets/ganzoo.json.")

        def generate(z, labels):
            return serve(z=tf.constant(z, tf.float32), labels=tf.constant(labels, tf.int32))["images"].numpy()

        return Sampler(generate, info["latent_dim"], tuple(shape), os.fspath(path), info["num_classes"])
    raise FileNotFoundError(
        f"{path} is neither a run folder (with {RUN_MODEL_FILE}) nor a SavedModel (with saved_model.pb)."
    )


def _saved_translator(loaded, path):
    import tensorflow as tf

    from ganzoo.metrics.translation import Translator
    from ganzoo.models.base import in_batches

    signatures = {direction: loaded.signatures[direction] for direction in ("a2b", "b2a")}

    def translate(images, direction="a2b", batch_size=128):
        serve = signatures[direction]
        return in_batches(lambda rows: serve(images=tf.constant(rows))["images"], np.asarray(images, "float32"), batch_size)

    shape = tuple(signatures["a2b"].structured_input_signature[1]["images"].shape[1:])
    return Translator(translate, shape, os.fspath(path))
