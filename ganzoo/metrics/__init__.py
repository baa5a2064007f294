"""Metrics that tell whether a GAN is any good.

Computed from features or samples, so they need no network weights:

    frechet_distance(real_features, fake_features)          # FID on any features
    kernel_distance(real_features, fake_features)           # KID: (mean, std) over subsets
    inception_score(class_probabilities)                    # (mean, std) over splits
    precision_recall(real_features, fake_features, k=3)     # Kynkaanniemi et al. 2019
    density_coverage(real_features, fake_features, k=5)     # Naeem et al. 2020
    mode_coverage(samples, mixture="grid")                  # the 2D mixtures
    conditional_accuracy(class_probabilities, labels)       # cgan: asked class recognised

Feature extractors (`get_extractor`: `digits`, `inception`, `raw`, a Keras
model) and streaming evaluation of a generator (`evaluate`) build on them;
a new metric is one function decorated with `register_metric`.
"""

from ganzoo.metrics.distances import (
    conditional_accuracy,
    density_coverage,
    feature_statistics,
    frechet_distance,
    frechet_distance_from_statistics,
    inception_score,
    kernel_distance,
    precision_recall,
)
from ganzoo.loading import as_sampler, open_sampler as load_sampler
from ganzoo.metrics.evaluation import METRICS, evaluate, register_metric
from ganzoo.metrics.features import (
    FeatureExtractor,
    classifier_accuracy,
    digits_classifier,
    get_extractor,
    train_classifier,
)
from ganzoo.metrics.mixtures import mode_coverage
from ganzoo.metrics import translation  # noqa: F401  (cyclegan: label preservation, style and cycle error)
from ganzoo.metrics.translation import evaluate_translation
from ganzoo.samplers import Sampler, Translator

__all__ = [
    "METRICS",
    "FeatureExtractor",
    "Sampler",
    "Translator",
    "evaluate_translation",
    "register_metric",
    "as_sampler",
    "classifier_accuracy",
    "conditional_accuracy",
    "density_coverage",
    "digits_classifier",
    "evaluate",
    "feature_statistics",
    "frechet_distance",
    "frechet_distance_from_statistics",
    "get_extractor",
    "inception_score",
    "kernel_distance",
    "load_sampler",
    "mode_coverage",
    "precision_recall",
    "train_classifier",
]
