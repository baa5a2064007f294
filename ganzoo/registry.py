"""The model registry: `register_model`, `list_models`, `load`.

Each entry is a `GAN` subclass plus a YAML file of defaults in `zoo_configs/`:

    paper:   the reference
    model:   constructor arguments (data_shape, latent_dim, network, ...)
    compile: loss, g_optimizer, d_optimizer
    train:   defaults of `ganzoo train` (dataset, epochs, batch_size, ...)

`load(name, **overrides)` merges overrides into `model` and `compile`; the keys
of those two sections are exactly the keys an entry accepts.
"""

import copy
import difflib
import fnmatch
from pathlib import Path

import keras
import yaml

_MODELS = {}
_PACKAGE_DIR = Path(__file__).resolve().parent
# Wheels carry the YAML files inside the package; a source checkout (and an
# editable install) keeps them at the top of the repository.
CONFIG_DIRS = (_PACKAGE_DIR / "zoo_configs", _PACKAGE_DIR.parent / "zoo_configs")
_CONFIG_SECTIONS = ("model", "compile")


def register_model(name, config=None):
    """Class decorator: register a `GAN` subclass as `name`.

    Args:
        name: the registry name used by `load` and `ganzoo train`.
        config: a dict or the path of a YAML file with the defaults; by default
            `zoo_configs/<name>.yaml`.
    """

    def decorator(cls):
        _MODELS[name] = (cls, config)
        # `.keras` files name the class; registering it lets load_model find it.
        return keras.saving.register_keras_serializable(package="ganzoo")(cls)

    return decorator


def list_models(pattern="*"):
    """Sorted registry names matching a shell-style `pattern`."""
    return sorted(n for n in _MODELS if fnmatch.fnmatch(n, pattern))


def model_class(name):
    _check_name(name)
    return _MODELS[name][0]


def model_config(name):
    """The entry's defaults as a dict (a fresh copy; safe to modify)."""
    _check_name(name)
    config = _MODELS[name][1]
    if isinstance(config, dict):
        return copy.deepcopy(config)
    return copy.deepcopy(_read_yaml(Path(config) if config else _find_yaml(name)))


def load(name, pretrained=False, **overrides):
    """A built and compiled model from the entry's YAML defaults and `overrides`.

    Overrides deep-merge into the defaults, so
    `load("dcgan", g_optimizer={"learning_rate": 1e-4})` keeps Adam's betas.
    Changing `network` drops the YAML's `network_args` unless new ones are given.
    Create the model inside `strategy.scope()` to train it distributed.

    `pretrained=True` takes the shapes and the generator weights of the
    shipped export in `saved_models/<name>/` (`ganzoo.pretrained`), for
    sampling or fine-tuning; the discriminator starts fresh.
    """
    if pretrained:
        from ganzoo import pretrained as pretrained_lib

        shipped = pretrained_lib.shape_overrides(name)
        clash = [k for k, v in overrides.items() if k in shipped and _as_tuple(v) != _as_tuple(shipped[k])]
        if clash:
            raise ValueError(f"The pretrained {name!r} was trained with {', '.join(f'{k}={shipped[k]}' for k in clash)}; "
                             f"pretrained=True cannot change {', '.join(sorted(clash))}.")
        model = load(name, **{**overrides, **shipped})
        return pretrained_lib.restore(model, name)
    config = resolve_config(name, **overrides)
    model = model_class(name)(name=name, **config["model"])
    compile_args = dict(config["compile"])
    model.compile(
        g_optimizer=make_optimizer(compile_args.pop("g_optimizer")),
        d_optimizer=make_optimizer(compile_args.pop("d_optimizer")),
        **compile_args,
    )
    return model


def _as_tuple(value):
    """data_shape as a tuple, whether it came as a list or a tuple."""
    return tuple(value) if isinstance(value, (list, tuple)) else value


def resolve_config(name, **overrides):
    """The entry's config with `overrides` merged and validated."""
    config = model_config(name)
    for section in _CONFIG_SECTIONS:
        config.setdefault(section, {})
    allowed = {key: section for section in _CONFIG_SECTIONS for key in config[section]}
    unknown = sorted(set(overrides) - set(allowed))
    if unknown:
        raise TypeError(
            f"{name!r} has no option {', '.join(map(repr, unknown))}. "
            f"Options of {name!r}: {', '.join(sorted(allowed))}."
        )
    model_args = config["model"]
    if "network" in overrides and overrides["network"] != model_args.get("network"):
        model_args["network_args"] = {}
    for key, value in overrides.items():
        section = config[allowed[key]]
        if isinstance(value, dict) and isinstance(section.get(key), dict):
            section[key] = _deep_merge(section[key], value)
        else:
            section[key] = value
    if "data_shape" in model_args:
        model_args["data_shape"] = tuple(model_args["data_shape"])
    return config


def make_optimizer(spec):
    """An optimizer from `{"type": "adam", "learning_rate": ..., ...}`, a name or an instance."""
    if isinstance(spec, keras.optimizers.Optimizer) or isinstance(spec, str):
        return keras.optimizers.get(spec)
    spec = dict(spec)
    kind = spec.pop("type", None)
    if kind is None:
        raise ValueError(f"Optimizer settings need a 'type' such as 'adam': got {spec}.")
    try:
        return keras.optimizers.get({"class_name": kind, "config": spec})
    except (TypeError, ValueError) as error:
        raise ValueError(f"Cannot make optimizer {kind!r} with {spec}: {error}") from None


def _deep_merge(base, update):
    merged = dict(base)
    for key, value in update.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def _check_name(name):
    if name in _MODELS:
        return
    close = difflib.get_close_matches(str(name), list(_MODELS), n=1)
    hint = f" Did you mean {close[0]!r}?" if close else ""
    raise ValueError(f"Unknown model {name!r}.{hint} Available: {', '.join(list_models())}.")


def _find_yaml(name):
    for directory in CONFIG_DIRS:
        path = directory / f"{name}.yaml"
        if path.exists():
            return path
    raise FileNotFoundError(
        f"No config for {name!r}: looked for {name}.yaml in "
        f"{' and '.join(str(d) for d in CONFIG_DIRS)}. Pass config= to register_model."
    )


_YAML_CACHE = {}


def _read_yaml(path):
    key = (path, path.stat().st_mtime_ns)
    if key not in _YAML_CACHE:
        try:
            config = yaml.safe_load(path.read_text())
        except yaml.YAMLError as error:
            mark = getattr(error, "problem_mark", None)
            where = f"{path}:{mark.line + 1}" if mark else str(path)
            problem = getattr(error, "problem", None) or str(error)
            raise ValueError(f"{where}: invalid YAML: {problem}") from None
        if not isinstance(config, dict):
            raise ValueError(f"{path}: expected a mapping with 'model' and 'compile' sections.")
        _YAML_CACHE[key] = config
    return _YAML_CACHE[key]
