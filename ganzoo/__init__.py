"""ganzoo: a GAN model zoo for TensorFlow / Keras 3.

    import ganzoo
    model = ganzoo.load("dcgan")
    model.fit(ganzoo.data.load("digits", image_size=32), epochs=5)
    model.export("saved_models/dcgan/1")
"""

__version__ = "0.1.0"

import os

# ganzoo trains with tf.data and tf.distribute and exports SavedModels, so the
# Keras backend must be TensorFlow; choose it before Keras is first imported.
os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

try:
    import tensorflow  # noqa: F401
except ImportError as error:  # pragma: no cover - exercised by hand only
    raise ImportError(
        "ganzoo needs TensorFlow, which is not installed. Install ganzoo with "
        "the extra for your machine: pip install 'ganzoo[cpu]' (CPU only) or "
        "pip install 'ganzoo[gpu]' (NVIDIA GPU with CUDA)."
    ) from error

import keras

if keras.backend.backend() != "tensorflow":
    raise ImportError(
        f"ganzoo needs the TensorFlow backend of Keras, but KERAS_BACKEND is "
        f"{keras.backend.backend()!r}. Unset KERAS_BACKEND or set it to "
        "'tensorflow'."
    )

from ganzoo import callbacks, data, distribute, losses, metrics, networks  # noqa: E402
from ganzoo import models  # noqa: E402,F401  (importing registers the entries)
from ganzoo.models.base import GAN  # noqa: E402
from ganzoo.registry import list_models, load, register_model  # noqa: E402

__all__ = [
    "GAN",
    "callbacks",
    "data",
    "distribute",
    "list_models",
    "load",
    "losses",
    "metrics",
    "networks",
    "register_model",
]
