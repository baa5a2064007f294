"""Shared test set-up: CPU only, two logical CPU devices, seeded, tiny models."""

import os

os.environ.setdefault("CUDA_VISIBLE_DEVICES", "-1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# `jit_compile: auto` times XLA against plain graphs at a run's first start; the tests' many short runs
# use Keras' rule instead (tests/test_xla.py checks the measurement).
os.environ["GANZOO_XLA_PROBE"] = "0"

import tensorflow as tf  # noqa: E402

# Two logical CPUs so MirroredStrategy can be tested; must precede any TF op.
_cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(_cpu, [tf.config.LogicalDeviceConfiguration()] * 2)

import keras  # noqa: E402
import pytest  # noqa: E402

import ganzoo  # noqa: E402

from ganzoo import registry  # noqa: E402


def tiny_settings(name):
    """The entry's `tiny:` section: the same code paths, a fraction of the work."""
    return registry.tiny_overrides(name)


def tiny_model(name, **overrides):
    """A small, deterministic (no XLA) instance of a registry entry."""
    return ganzoo.load(name, **{**tiny_settings(name), "jit_compile": False, "seed": 1, **overrides})


def batch_for(model, n=8, seed=0):
    """Random samples shaped for `model`; `(samples, labels)` for conditional
    models, `(a_images, b_images)` for translation models."""
    import numpy as np

    rng = np.random.default_rng(seed)
    samples = rng.uniform(-1, 1, (n, *model.data_shape)).astype("float32")
    if model.conditional:
        return samples, (np.arange(n) % model.num_classes).astype("int32")
    if model.network_kind == "translation":  # (domain A, domain B)
        return samples, rng.uniform(-1, 1, samples.shape).astype("float32")
    return samples


@pytest.fixture(autouse=True)
def _seeded():
    keras.utils.set_random_seed(0)
    yield


@pytest.fixture(scope="session", autouse=True)
def digits_cache(tmp_path_factory):
    """One digits classifier for the whole session, trained on first use,
    in a fresh cache so the tests never depend on a user's ~/.cache."""
    path = tmp_path_factory.mktemp("ganzoo_cache")
    previous = os.environ.get("GANZOO_CACHE")
    os.environ["GANZOO_CACHE"] = str(path)
    yield path
    if previous is None:
        os.environ.pop("GANZOO_CACHE", None)
    else:
        os.environ["GANZOO_CACHE"] = previous
