"""Streaming evaluation: features of real and generated samples, batch by
batch, then every requested metric, with the protocol recorded beside them.

    result = ganzoo.metrics.evaluate(model, "digits", metrics=["fid", "kid"])
    result["metrics"]["fid"], result["protocol"]["n_real"]
"""

import datetime
from dataclasses import dataclass

import keras
import numpy as np

from ganzoo import __version__, data
from ganzoo.loading import as_sampler
from ganzoo.metrics import distances, stats
from ganzoo.metrics.features import get_extractor
from ganzoo.metrics.mixtures import mode_coverage
from ganzoo.metrics.swd import multiscale_swd
from ganzoo.metrics.translation import evaluate_translation
from ganzoo.samplers import Translator, default_features  # noqa: F401  (default_features: re-exported)

# Each metric name and the keys it adds to the results (`register_metric` fills it).
METRICS = {}
SAMPLE_METRICS = []  # computed from the samples, not from features
_COMPUTE = {}
IMAGE_METRICS = ("fid", "kid", "is", "precision_recall", "density_coverage", "swd")
MIXTURE_METRICS = ("mode_coverage", "fid", "kid", "precision_recall", "density_coverage")
MODE_COVERAGE_SAMPLES = 2500  # the protocol of VEEGAN / GDPP, Table 1


@dataclass
class Features:
    """Features of one sample set, and class probabilities where the extractor has them."""

    features: np.ndarray
    probabilities: np.ndarray = None
    samples: np.ndarray = None  # kept only for 2D mixtures (mode coverage)
    labels: np.ndarray = None  # the classes a conditional generator was asked for


def default_metrics(dataset, conditional=False, extractor=None):
    if dataset in data.MIXTURES:
        return MIXTURE_METRICS
    if extractor is None or not _classifies(extractor):
        return IMAGE_METRICS
    return IMAGE_METRICS + ("confident_share",) + (("conditional_accuracy",) if conditional else ())


def _classifies(extractor):
    """Whether the extractor's probabilities are over the dataset's own classes
    (ImageNet's are not the classes of a conditional GAN's data)."""
    return extractor.has_probabilities and extractor.name not in ("inception", "fid_inception")


def check_metrics(names, extractor, dataset, num_classes=None):
    names = list(names)
    unknown = [m for m in names if m not in METRICS]
    if unknown:
        raise ValueError(f"Unknown metric {', '.join(map(repr, unknown))}. Choose from: {', '.join(METRICS)}.")
    if "confident_share" in names and not _classifies(extractor):
        raise ValueError(
            f"confident_share needs a classifier of the dataset's classes as features ('digits' on digits), "
            f"not {extractor.name!r}."
        )
    if "is" in names and not extractor.has_probabilities:
        raise ValueError(
            f"The Inception Score needs class probabilities, which the {extractor.name!r} "
            "features do not have; use features 'digits' or 'fid_inception', or drop 'is'."
        )
    if "conditional_accuracy" in names:
        if not num_classes:
            raise ValueError("conditional_accuracy scores class-conditional generators (cgan); this one takes no labels.")
        if not _classifies(extractor):
            raise ValueError(
                f"conditional_accuracy needs a classifier of the dataset's classes as features: 'digits' on "
                f"digits, or a Keras model with outputs (features, class probabilities); not {extractor.name!r}."
            )
    if "swd" in names and dataset in data.MIXTURES:
        raise ValueError("swd compares image patches; the 2D mixtures have none. Use mode_coverage.")
    if "mode_coverage" in names and dataset not in data.MIXTURES:
        raise ValueError(f"mode_coverage is defined for the mixtures {sorted(data.MIXTURES)}, not {dataset!r}.")
    return names


def extract(extractor, batches, total, label, progress=True, keep_samples=False):
    """Run `extractor` over an iterable of sample batches (NumPy, tensors, or
    `(samples, labels)` tuples), at most `total` samples (None: all), with a
    progress bar. uint8 batches stay uint8 (the reference FID network
    quantises floats to them; other extractors take either)."""
    features, probabilities, samples, labels = [], [], [], []
    bar = keras.utils.Progbar(total, unit_name=label) if progress else None
    seen = 0
    for batch in batches:
        left = None if total is None else total - seen
        if isinstance(batch, (tuple, list)):
            batch, batch_labels = batch[0], (batch[1] if len(batch) > 1 else None)
            if batch_labels is not None:
                labels.append(np.asarray(batch_labels)[:left])
        batch = np.asarray(batch)
        batch = (batch if batch.dtype == np.uint8 else batch.astype("float32"))[:left]
        f, p = extractor(batch)
        features.append(f)
        if p is not None:
            probabilities.append(p)
        if keep_samples:
            samples.append(batch)
        seen += len(batch)
        if bar:
            bar.update(seen)
        if total is not None and seen >= total:
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
    if len(data_shape) == 1:
        if dataset not in data.MIXTURES:
            raise ValueError(f"A generator of vectors {list(data_shape)} can only be evaluated on {sorted(data.MIXTURES)}.")
        # A fresh draw, not the training stream (seeded differently).
        samples = data.mixture_samples(dataset, n, seed=10_000 + seed)
        return (samples[i : i + batch_size] for i in range(0, n, batch_size))
    return data.load(
        dataset, image_size=data_shape[0], channels=data_shape[-1], batch_size=batch_size,
        split=split, shuffle=False, drop_remainder=False, num_examples=n, cache=False,
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


def register_metric(name, keys=None, samples=False):
    """Decorator: `compute(real, fake, context) -> {key: float}` as metric `name`.

    `real` and `fake` are `Features`; `context` has `mixture` (the dataset
    name) and `seed`. `keys` are what it adds to the results (default
    `(name,)`); `samples=True` keeps the samples themselves in `Features`.
    """

    def decorator(compute):
        METRICS[name] = tuple(keys or (name,))
        _COMPUTE[name] = compute
        if samples and name not in SAMPLE_METRICS:
            SAMPLE_METRICS.append(name)
        return compute

    return decorator


IS_SHUFFLE_SEED = 2020  # torch-fidelity's: IS on the reference network is computed as it computes it


def compute_metrics(names, real, fake, mixture=None, seed=0, extractor_name=None):
    """The metrics `names` from two `Features`, as a flat dict of floats."""
    results = {}
    context = {"mixture": mixture, "seed": seed, "is_shuffle_seed": None}
    if extractor_name == "fid_inception":
        context["is_shuffle_seed"] = IS_SHUFFLE_SEED
    for name in names:
        results.update(_COMPUTE[name](real, fake, context))
    return results


def _paired(real, fake):
    """Equally many of each kind: precision/recall and density/coverage
    assume it (their k-NN radii depend on the sample size)."""
    m = min(len(real.features), len(fake.features))
    return real.features[:m], fake.features[:m]


@register_metric("fid")
def _fid(real, fake, context):
    return {"fid": distances.frechet_distance(real.features, fake.features)}


@register_metric("kid", keys=("kid", "kid_std"))
def _kid(real, fake, context):
    mean, std = distances.kernel_distance(real.features, fake.features, num_subsets=100, subset_size=1000,
                                          seed=context["seed"])
    return {"kid": mean, "kid_std": std}


@register_metric("is", keys=("is", "is_std"))
def _inception_score(real, fake, context):
    mean, std = distances.inception_score(fake.probabilities, shuffle_seed=context["is_shuffle_seed"])
    return {"is": mean, "is_std": std}


@register_metric("precision_recall", keys=("precision", "recall"))
def _precision_recall(real, fake, context):
    precision, recall = distances.precision_recall(*_paired(real, fake), k=3)
    return {"precision": precision, "recall": recall}


@register_metric("density_coverage", keys=("density", "coverage"))
def _density_coverage(real, fake, context):
    density, coverage = distances.density_coverage(*_paired(real, fake), k=5)
    return {"density": density, "coverage": coverage}


@register_metric("mode_coverage", keys=("modes", "total_modes", "high_quality", "kl"), samples=True)
def _mode_coverage(real, fake, context):
    return mode_coverage(fake.samples[:MODE_COVERAGE_SAMPLES], context["mixture"])


@register_metric("swd", samples=True)  # and swd_<resolution> per pyramid level
def _swd(real, fake, context):
    return multiscale_swd(real.samples, fake.samples, seed=context["seed"])


@register_metric("confident_share", keys=("confident_share", "real_confident_share", "min_class_share",
                                          "max_class_share"))  # and class_share_<k> per class
def _confident_share(real, fake, context):
    confident, shares = distances.class_shares(fake.probabilities)
    results = {"confident_share": confident, "real_confident_share": distances.class_shares(real.probabilities)[0],
               "min_class_share": float(shares.min()), "max_class_share": float(shares.max())}
    return {**results, **{f"class_share_{k}": float(share) for k, share in enumerate(shares)}}


@register_metric("conditional_accuracy")
def _conditional_accuracy(real, fake, context):
    return {"conditional_accuracy": distances.conditional_accuracy(fake.probabilities, fake.labels)}


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
    resize=None,
    reference_stats=None,
):
    """Score a generator against real data.

    A translation model (cyclegan) is scored by `evaluate_translation` on
    `digits_style`.

    Args:
        generator: a ganzoo model, a run folder, a SavedModel folder, or a
            `Sampler` / `Translator` (`ganzoo.samplers`).
        dataset: the real data: `digits`, `ring`, `grid`, a folder or a TFDS name.
        metrics: names from `METRICS`; default: all that apply.
        n: generated samples (default 10,000 for images, 2,500 for mixtures);
            real samples are at most `n` from `split`.
        features: `digits`, `fid_inception`, `inception`, `raw`, or a Keras
            model; default `digits` on digits, `raw` for vectors,
            `fid_inception` otherwise.
        split: the real split; `test` holds images the GAN never saw.
        seed: seed of the latent noise and of KID's subsets.
        weights: path of the Inception weights file.
        resize: `fid_inception`'s resize mode (`clean`, `legacy_tensorflow`,
            `legacy_pytorch`; see `ganzoo.metrics.fid_inception`).
        reference_stats: an `.npz` of `mu` and `sigma` (`ganzoo stats`,
            TTUR, pytorch-fid) to compare with instead of `dataset`: FID, and
            IS where the features classify.

    Returns:
        `{"metrics": {...}, "protocol": {...}}`: the numbers, and everything
        needed to reproduce them (sample counts, split, extractor and its
        weights' hash, resize mode, image size, seed).
    """
    sampler = as_sampler(generator)
    if isinstance(sampler, Translator):
        if reference_stats is not None:
            raise ValueError("Translation models are scored on digits_style's labels, not against reference statistics.")
        if dataset not in data.UNPAIRED_DATASETS:
            raise ValueError(
                f"Translation metrics need labelled domains with a known style transform: dataset "
                f"{' or '.join(data.UNPAIRED_DATASETS)}, not {dataset!r}."
            )
        return evaluate_translation(sampler, n=n)
    data_shape = tuple(sampler.data_shape)
    n = int(n or (MODE_COVERAGE_SAMPLES if dataset in data.MIXTURES else 10_000))
    if n < 2:
        raise ValueError(f"n must be at least 2, got {n}.")
    if reference_stats is not None:
        return _against_statistics(sampler, reference_stats, metrics, n, features, seed, batch_size, weights, resize,
                                   progress)
    extractor = get_extractor(features or default_features(dataset, data_shape), weights=weights, resize=resize)
    names = check_metrics(
        metrics or default_metrics(dataset, bool(sampler.num_classes), extractor), extractor, dataset, sampler.num_classes
    )
    real = extract(extractor, real_batches(dataset, data_shape, n, split, batch_size, seed), n, "real", progress,
                   keep_samples=any(name in SAMPLE_METRICS for name in names))
    fake = generated_features(extractor, sampler, n, names, batch_size, seed, progress)
    results = compute_metrics(names, real, fake, mixture=dataset, seed=seed, extractor_name=extractor.name)
    kid_subset_size = min(1000, len(real.features), len(fake.features))  # what kernel_distance used
    protocol = {
        "generator": sampler.source,
        "dataset": dataset,
        "split": None if dataset in data.MIXTURES else split,
        "n_real": len(real.features),
        "n_generated": len(fake.features),
        **_extractor_protocol(extractor, real.features.shape[1]),
        "data_shape": list(data_shape),
        "seed": seed,
        "metrics": names,
        **{name: settings for name, settings in {
            "kid": {"subsets": 100, "subset_size": kid_subset_size, "kernel": "(x.y/d + 1)^3",
                    "rng": f"RandomState({seed}), real first (torch-fidelity's draws with input1 = real)"},
            "is": {"splits": 10, "shuffle_seed": IS_SHUFFLE_SEED if extractor.name == "fid_inception" else None},
            "precision_recall": {"k": 3, "n": min(len(real.features), len(fake.features))},
            "density_coverage": {"k": 5, "n": min(len(real.features), len(fake.features))},
            "mode_coverage": {"n": min(MODE_COVERAGE_SAMPLES, n), "high_quality": "within 3 std"},
            "conditional_accuracy": {"labels": f"0..{(sampler.num_classes or 1) - 1} in turn, equal counts"},
        }.items() if name in names},
        **_stamp(),
    }
    return {"metrics": results, "protocol": protocol}


def _extractor_protocol(extractor, feature_dim):
    """What the protocol says of the features: name, width, weights, and the resize mode of fid_inception."""
    protocol = {"features": extractor.name, "feature_dim": int(feature_dim), "weights_sha256": extractor.weights_sha256}
    if getattr(extractor, "resize", None):
        protocol["resize"] = extractor.resize
        protocol["quantized"] = "uint8 (round((x + 1) * 127.5)) before resizing"
    return protocol


def _stamp():
    return {"ganzoo_version": __version__,
            "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")}


STATISTICS_METRICS = ("fid", "is")  # what mu and sigma (and the samples' own classes) allow


def _against_statistics(sampler, path, names, n, features, seed, batch_size, weights, resize, progress):
    """FID (and IS) of `sampler` against a reference-statistics file."""
    from ganzoo.metrics.features import EXTRACTORS

    mu, sigma, info = stats.load(path)
    recorded_features, recorded_resize = info.get("features"), info.get("resize")
    if features is None:  # the file's own features where it names a built-in extractor, else the reference FID's
        features = recorded_features if recorded_features in EXTRACTORS else "fid_inception"
    if resize is None and features == "fid_inception":
        resize = recorded_resize
        if resize is None:
            raise ValueError(f"{path} does not say how its images were resized (files of pytorch-fid and TTUR do "
                             "not): pass --resize legacy_pytorch for pytorch-fid's, legacy_tensorflow for TTUR's "
                             "or torch-fidelity's, clean for clean-fid's.")
    extractor = get_extractor(features, weights=weights, resize=resize)
    if recorded_features and recorded_features != extractor.name:
        raise ValueError(f"{path} holds statistics of {recorded_features!r} features, not {extractor.name!r}: "
                         f"use --features {recorded_features}.")
    used_resize = getattr(extractor, "resize", None)
    if recorded_resize and used_resize and recorded_resize != used_resize:
        raise ValueError(f"{path} was made with --resize {recorded_resize}; evaluating with {used_resize} would "
                         f"compare differently resized images. Use --resize {recorded_resize}.")
    if info.get("weights_sha256") and extractor.weights_sha256 and info["weights_sha256"] != extractor.weights_sha256:
        raise ValueError(f"{path} was made with other feature weights (sha256 {info['weights_sha256'][:12]}...) than "
                         f"{getattr(extractor, 'weights_path', 'these')} ({extractor.weights_sha256[:12]}...): pass "
                         "the same --weights file.")
    names = list(names or (STATISTICS_METRICS if extractor.has_probabilities else ("fid",)))
    others = [name for name in names if name not in STATISTICS_METRICS]
    if others:
        raise ValueError(f"{', '.join(others)} need real images, and reference statistics hold only mu and sigma; "
                         f"against --reference-stats choose from {', '.join(STATISTICS_METRICS)}, or give --dataset "
                         "instead.")
    check_metrics(names, extractor, None)
    fake = generated_features(extractor, sampler, n, names, batch_size, seed, progress)
    if fake.features.shape[1] != len(mu):
        raise ValueError(f"{path} holds statistics of {len(mu)}-d features; {extractor.name} gives "
                         f"{fake.features.shape[1]}-d ones. Use the features it was made with.")
    results = {"fid": distances.frechet_distance_from_statistics(mu, sigma, *distances.feature_statistics(fake.features))}
    if "is" in names:  # from the samples alone, as compute_metrics scores it against real data
        results.update(compute_metrics(["is"], None, fake, seed=seed, extractor_name=extractor.name))
    protocol = {
        "generator": sampler.source,
        "reference_stats": str(path),
        "reference": {k: info[k] for k in ("source", "split", "n", "image_size") if k in info},
        "n_real": info.get("n"),
        "n_generated": len(fake.features),
        **_extractor_protocol(extractor, fake.features.shape[1]),
        "data_shape": list(sampler.data_shape),
        "seed": seed,
        "metrics": [name for name in names],
        **_stamp(),
    }
    return {"metrics": {k: v for k, v in results.items() if k.split("_")[0] in names}, "protocol": protocol}


def reference_statistics(source, features="fid_inception", weights=None, resize=None, image_size=None, split="train",
                         n=None, batch_size=50, progress=True):
    """`mu`, `sigma` and what made them, for `stats.save`: of a folder of images
    (read as pytorch-fid reads them, at their own size) or a dataset (at
    `image_size`, or its own size)."""
    from pathlib import Path

    extractor = get_extractor(features, weights=weights, resize=resize)
    info = {"source": str(source), "features": extractor.name, "weights_sha256": extractor.weights_sha256}
    if getattr(extractor, "resize", None):
        info["resize"] = extractor.resize
    if Path(str(source)).is_dir() and not image_size:
        total = stats.count_folder_images(source)
        batches = stats.folder_images(source, batch_size)
        info["read"] = "PIL, RGB, own size (as pytorch-fid reads a folder)"
    else:
        total = None  # all of the split, or n
        batches = data.load(source, image_size=image_size, batch_size=batch_size, split=split, shuffle=False,
                            drop_remainder=False, num_examples=n, cache=False).as_numpy_iterator()
        info.update(split=split, image_size=image_size)
    total = min(total, n) if n and total else (n or total)
    features = extract(extractor, batches, total, "real", progress)
    return stats.compute(features.features, info)
