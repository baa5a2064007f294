"""One home for opening things: an entry by name (`load`), a run folder, a
SavedModel, or a shipped pretrained export, returned as a model, a `Sampler`
or a `Translator`.

Pretrained exports live in `saved_models/<name>/<version>/` (TF Serving's
layout) with `saved_models/<name>/metadata.json`; `GANZOO_PRETRAINED` points
elsewhere. `ganzoo.pretrained.publish` writes them.
"""

import json
import os
from pathlib import Path

import numpy as np

from ganzoo import registry, runs
from ganzoo.arrays import in_batches
from ganzoo.export import load_serving, versions
from ganzoo.samplers import Sampler, Translator

# A source checkout (and an editable install) keeps them at the top of the repository.
DEFAULT_PRETRAINED_DIR = Path(__file__).resolve().parent.parent / "saved_models"


def load(name, pretrained=False, preset=None, **overrides):
    """A built and compiled model from the entry's YAML defaults and `overrides`.

    Overrides deep-merge into the defaults, so
    `load("dcgan", g_optimizer={"learning_rate": 1e-4})` keeps Adam's betas.
    Changing `network` drops the YAML's `network_args` unless new ones are given.
    Create the model inside `strategy.scope()` to train it distributed.

    `pretrained=True` takes the shapes and the generator weights of the
    shipped export in `saved_models/<name>/`, for sampling or fine-tuning;
    the discriminator starts fresh.

    `preset`: a paper's setting for a real dataset (`ganzoo.list_presets()`,
    docs/reproduce.md), e.g. `load("sngan", preset="cifar10")`.
    """
    if not pretrained:
        return registry.build(name, preset=preset, **overrides)
    if preset is not None:
        raise ValueError(f"The shipped {name!r} was trained on the offline digits, not with preset {preset!r}: "
                         "pretrained=True takes no preset.")
    shipped = pretrained_overrides(name)
    clash = [k for k, v in overrides.items() if k in shipped and _as_tuple(v) != _as_tuple(shipped[k])]
    if clash:
        raise ValueError(f"The pretrained {name!r} was trained with {', '.join(f'{k}={shipped[k]}' for k in clash)}; "
                         f"pretrained=True cannot change {', '.join(sorted(clash))}.")
    # Built from the YAML the export was trained with, if its metadata has it:
    # a later change of the defaults must not break restoring its weights.
    model = registry.build(name, pretrained_metadata(name).get("entry_defaults"), **{**overrides, **shipped})
    return restore_pretrained(model, name)


def open_model(run_dir):
    """The model of a run folder (its model.keras: config, weights, optimizers)."""
    folder = runs.RunFolder(run_dir)
    if not folder.model_file.exists():
        raise FileNotFoundError(
            f"{run_dir} is not a run folder with a trained model (no {runs.MODEL_FILE}). Train one with `ganzoo train`."
        )
    return load_model(folder.model_file)


def load_model(path):
    """`keras.models.load_model` of a ganzoo `.keras` file (or a run folder's),
    with every entry's class registered first."""
    import keras

    path = Path(path)
    if path.is_dir():
        return open_model(path)
    registry.import_all()  # the classes that model.keras names
    if not path.is_file():
        raise FileNotFoundError(f"{path} does not exist.")
    try:
        return keras.models.load_model(path)
    except Exception as error:  # a zip Keras cannot read: truncated, or not a .keras file
        raise ValueError(f"{path} cannot be read as a Keras model ({type(error).__name__}: "
                         f"{str(error).splitlines()[0] if str(error) else ''}). It may be truncated (a copy cut "
                         "short, a full disk): copy it again, or retrain the run.") from None


def open_sampler(source):
    """A `Sampler` (or `Translator`) from a run folder, a SavedModel folder,
    or a registry name with a shipped pretrained export."""
    path = resolve_source(source)
    if (path / runs.MODEL_FILE).exists():
        sampler = open_model(path).sampler()
        sampler.source = os.fspath(path)
        return sampler
    if (path / "saved_model.pb").exists():
        return _saved_model_sampler(path)
    raise FileNotFoundError(
        f"{path} is neither a run folder (with {runs.MODEL_FILE}) nor a SavedModel (with saved_model.pb)."
    )


def as_sampler(generator):
    """A `Sampler` or `Translator` from one, from a ganzoo model (its
    `sampler()`), or from a path as `open_sampler` takes."""
    if isinstance(generator, (Sampler, Translator)):
        return generator
    if isinstance(generator, (str, os.PathLike)):
        return open_sampler(generator)
    if callable(getattr(generator, "sampler", None)):
        return generator.sampler()
    raise TypeError(f"Expected a ganzoo model, a run folder or a SavedModel folder, got {type(generator).__name__}.")


def resolve_source(source):
    """A run folder or SavedModel as given, or, for a registry name that is no
    folder here, the shipped pretrained export (`ganzoo sample dcgan`)."""
    path = Path(source)
    if path.exists() or str(source) not in registry.list_models():
        return path
    return pretrained_path(str(source))


def _saved_model_sampler(path):
    import tensorflow as tf

    loaded, info = load_serving(path)
    if "a2b" in loaded.signatures:
        signatures = {direction: loaded.signatures[direction] for direction in ("a2b", "b2a")}

        def translate(images, direction="a2b", batch_size=128):
            serve = signatures[direction]
            return in_batches(lambda rows: serve(images=tf.constant(rows))["images"], np.asarray(images, "float32"),
                              batch_size)

        shape = tuple(signatures["a2b"].structured_input_signature[1]["images"].shape[1:])
        return Translator(translate, shape, os.fspath(path))
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


# --------------------------------------------------------- pretrained
def pretrained_root():
    return Path(os.environ.get("GANZOO_PRETRAINED", DEFAULT_PRETRAINED_DIR))


def pretrained_path(name):
    """The newest version folder of `name`'s pretrained export."""
    root = pretrained_root()
    found = versions(root / name)
    if not found:
        shipped = sorted(p.name for p in root.iterdir() if versions(p)) if root.is_dir() else []
        raise FileNotFoundError(
            f"No pretrained {name!r} in {root}. Shipped: {', '.join(shipped) or 'none'}. Train one with "
            f"`ganzoo train {name}` and export it with `ganzoo export runs/{name} --out {root}`, or set "
            "GANZOO_PRETRAINED to a folder of exports."
        )
    return root / name / str(found[-1])


def pretrained_metadata(name):
    """`saved_models/<name>/metadata.json` as a dict ({} if absent)."""
    path = pretrained_root() / name / "metadata.json"
    return json.loads(path.read_text()) if path.exists() else {}


def pretrained_overrides(name):
    """The options the export was trained with: the run's `--set` overrides
    (metadata.json) and its shapes (`assets/ganzoo.json`)."""
    info = json.loads((pretrained_path(name) / "assets" / "ganzoo.json").read_text())
    overrides = {**pretrained_metadata(name).get("overrides", {}), "data_shape": tuple(info["data_shape"])}
    if info.get("latent_dim") is not None:
        overrides["latent_dim"] = info["latent_dim"]
    if info.get("num_classes") is not None:
        overrides["num_classes"] = info["num_classes"]
    return overrides


def restore_pretrained(model, name):
    """Put the weights of `name`'s pretrained export into `model`."""
    import tensorflow as tf

    path = pretrained_path(name)
    loaded = tf.saved_model.load(os.fspath(path))
    weights = []
    for index in range(len(model.exported_networks())):
        collection = getattr(loaded, f"weights_{index}", None)
        if collection is None:
            raise ValueError(f"{path} was exported without weight collections (an older ganzoo); "
                             "export it again with this version.")
        weights.append([variable.numpy() for variable in collection])
    model.restore_exported(weights)
    return model


def _as_tuple(value):
    """data_shape as a tuple, whether it came as a list or a tuple."""
    return tuple(value) if isinstance(value, (list, tuple)) else value
