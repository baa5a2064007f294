"""Metrics of unpaired translation (CycleGAN) on `digits_style`.

- `label_preservation_a2b`: a classifier trained on real domain-B digits
  recognises G(a) as a's digit; `label_preservation_b2a` likewise for F(b)
  with a classifier trained on domain A.
- `style_error`: mean |G(a) - style(a)|, the distance of a translation from
  the known style transform of its input (digits_style only: photographs
  have no such ground truth).
- `cycle_error_a`, `cycle_error_b`: mean |F(G(a)) - a| and |G(F(b)) - b|, a
  diagnostic of how much content the round trip keeps.

All errors are in pixel units of [-1, 1] images, on the held-out test digits.
"""

import json
import os

import numpy as np
import tensorflow as tf

from ganzoo import __version__, data
from ganzoo.loading import as_sampler
from ganzoo.metrics.features import build_classifier, cache_dir, classifier_accuracy, train_classifier
from ganzoo.samplers import Translator

TRANSLATION_METRICS = (
    "label_preservation_a2b", "label_preservation_b2a", "style_error", "cycle_error_a", "cycle_error_b",
)
DOMAIN_CLASSIFIER_VERSION = 1


def domain_classifiers(image_size=32, cache=None, verbose=True):
    """Classifiers of the digits in domain A and in domain B of digits_style,
    each trained the same way on that domain's rendering of the train split
    and cached; returns `({"a": model, "b": model}, info)` with their
    accuracies on the held-out test digits."""
    directory = cache_dir(cache)
    stem = f"digits_style_classifiers_v{DOMAIN_CLASSIFIER_VERSION}_{image_size}"
    info_file = directory / f"{stem}.json"
    files = {domain: directory / f"{stem}_{domain}.weights.h5" for domain in "ab"}
    if info_file.exists() and all(f.exists() for f in files.values()):
        models = {}
        for domain, path in files.items():
            models[domain] = build_classifier((image_size, image_size, 3), 10)
            models[domain].load_weights(path)
        return models, json.loads(info_file.read_text())
    if verbose:
        print(f"Training the digits_style domain classifiers once (cached in {directory}) ...", flush=True)
    train = _both_renderings("train", image_size)
    test = _both_renderings("test", image_size)
    models, info = {}, {"trained_on": "digits train split, rendered in each domain"}
    directory.mkdir(parents=True, exist_ok=True)
    for domain in "ab":
        models[domain] = train_classifier(train[domain], train["labels"], num_classes=10)
        info[f"test_accuracy_{domain}"] = classifier_accuracy(models[domain], test[domain], test["labels"])
        partial = files[domain].with_name(f"partial-{os.getpid()}.weights.h5")
        models[domain].save_weights(partial)
        partial.replace(files[domain])
    info_file.write_text(json.dumps(info, indent=2))
    if verbose:
        print(f"Domain classifiers: A {info['test_accuracy_a']:.1%}, B {info['test_accuracy_b']:.1%} "
              "on the held-out test digits.", flush=True)
    return models, info


def _both_renderings(split, image_size):
    """Every digit of `split` in both domains (the classifiers need all the
    labels of each domain, not the disjoint halves the GAN trains on)."""
    images, labels = data.digits_arrays(split)
    images = tf.clip_by_value(tf.image.resize(images, (image_size, image_size), antialias=True), 0, 1)
    a = np.repeat(images.numpy(), 3, axis=-1)
    b = data.digits_style(images).numpy()
    return {"a": a * 2 - 1, "b": b * 2 - 1, "labels": labels}


def evaluate_translation(model, n=None, cache=None, batch_size=128):
    """The translation metrics of a CycleGAN (or run folder, SavedModel,
    `Translator`) on digits_style's test digits: `{"metrics", "protocol"}`."""
    translator = as_sampler(model)
    if not isinstance(translator, Translator):
        raise TypeError(f"{translator.source} generates from noise: score it with ganzoo.metrics.evaluate.")
    image_size = translator.data_shape[0]
    a, b, labels = data.digits_style_test(image_size)
    if n is not None:
        a, b, labels = a[:n], b[:n], labels[:n]
    classifiers, info = domain_classifiers(image_size, cache)
    fake_b = translator.translate(a, "a2b")
    fake_a = translator.translate(b, "b2a")
    metrics = {
        "label_preservation_a2b": classifier_accuracy(classifiers["b"], fake_b, labels, batch_size),
        "label_preservation_b2a": classifier_accuracy(classifiers["a"], fake_a, labels, batch_size),
        # On the test split b is the known style of a, so G(a) can be compared with it.
        "style_error": float(np.abs(fake_b - b).mean()),
        "cycle_error_a": float(np.abs(translator.translate(fake_b, "b2a") - a).mean()),
        "cycle_error_b": float(np.abs(translator.translate(fake_a, "a2b") - b).mean()),
    }
    protocol = {
        "generator": translator.source,
        "dataset": "digits_style",
        "split": "test",
        "n": int(len(a)),
        "classifier_test_accuracy": {"a": info["test_accuracy_a"], "b": info["test_accuracy_b"]},
        "reference_style_error_of_identity": float(np.abs(a - b).mean()),
        "data_shape": list(translator.data_shape),
        "ganzoo_version": __version__,
    }
    return {"metrics": metrics, "protocol": protocol}


def translation_pairs(translator, images, direction):
    """Rows for a before/after grid: the inputs, then their translations."""
    return np.concatenate([images, translator.translate(images, direction)])
