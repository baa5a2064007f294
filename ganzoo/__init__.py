"""ganzoo: a GAN model zoo for TensorFlow / Keras 3.

    import ganzoo
    model = ganzoo.load("dcgan")
    model.fit(ganzoo.data.load("digits", image_size=32), epochs=5)
    model.export("saved_models/dcgan/1")

    run = ganzoo.train("dcgan", epochs=75, out="runs/dcgan")   # what `ganzoo train` does

Importing ganzoo is cheap: TensorFlow is imported on first use of a name that
needs it (`load`, `train`, `data`, `GAN`, ...), so `ganzoo --help` and
`ganzoo list` start in a fraction of a second.
"""

__version__ = "0.1.0"

import importlib
import os

# ganzoo trains with tf.data and tf.distribute and exports SavedModels, so the
# Keras backend must be TensorFlow; choose it before Keras is first imported.
os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

# name -> (module, attribute or None for the module itself)
_LAZY = {
    "AdversarialModel": ("ganzoo.models.base", "AdversarialModel"),
    "GAN": ("ganzoo.models.base", "GAN"),
    "Run": ("ganzoo.training", "Run"),
    "load": ("ganzoo.loading", "load"),
    "load_model": ("ganzoo.loading", "load_model"),
    "train": ("ganzoo.training", "train"),
    "open_run": ("ganzoo.training", "open_run"),
    "list_models": ("ganzoo.registry", "list_models"),
    "list_presets": ("ganzoo.registry", "list_presets"),
    "register_model": ("ganzoo.registry", "register_model"),
    **{module: (f"ganzoo.{module}", None) for module in (
        "callbacks", "data", "distribute", "export", "layers", "loading", "losses", "metrics", "models",
        "networks", "pretrained", "registry", "runs", "samplers", "training", "visualize",
    )},
}
_LIGHT = ("ganzoo.registry", "ganzoo.runs")  # need no TensorFlow
_MODULES = {name for name, (_, attribute) in _LAZY.items() if attribute is None}

__all__ = sorted(_LAZY)


def __getattr__(name):
    if name not in _LAZY:
        raise AttributeError(f"module 'ganzoo' has no attribute {name!r}")
    module_name, attribute = _LAZY[name]
    if module_name not in _LIGHT:
        _require_tensorflow()
    module = importlib.import_module(module_name)
    value = module if attribute is None else getattr(module, attribute)
    if name not in _MODULES and module_name not in _LIGHT:
        # A user's first `ganzoo.load`, `ganzoo.GAN`, ...: register every
        # entry's class, so `keras.models.load_model` reads ganzoo's .keras
        # files. Not for submodules, which ganzoo's own modules import while
        # others are half-initialised.
        importlib.import_module("ganzoo.registry").import_all()
    globals()[name] = value
    return value


def __dir__():
    return sorted({*globals(), *_LAZY})


def _require_tensorflow():
    try:
        import tensorflow  # noqa: F401
    except ImportError as error:
        raise ImportError(
            "ganzoo needs TensorFlow, which is not installed. Install ganzoo with "
            "the extra for your machine: pip install 'ganzoo[cpu]' (CPU only) or "
            "pip install 'ganzoo[gpu]' (NVIDIA GPU with CUDA)."
        ) from error
    import keras

    if keras.backend.backend() != "tensorflow":
        raise ImportError(
            f"ganzoo needs the TensorFlow backend of Keras, but KERAS_BACKEND is "
            f"{keras.backend.backend()!r}. Unset KERAS_BACKEND or set it to 'tensorflow'."
        )
