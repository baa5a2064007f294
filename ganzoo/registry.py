"""The model registry: entries as data.

An entry is a YAML file of defaults plus the class that implements it:

    class:       module:ClassName of the implementation (inherited through extends)
    extends:     another entry whose YAML this one deep-merges onto
    paper, description
    model:       constructor arguments (data_shape, latent_dim, network, ...)
    compile:     loss, g_optimizer, d_optimizer, jit_compile, ...
    train:       defaults of `ganzoo train` / `ganzoo.train` (dataset, epochs, batch_size, ...)
    tiny:        small overrides the registry-wide tests train with

A preset is a YAML file that extends an entry for a paper's setting
(`zoo_configs/presets/<entry>/<preset>.yaml`: `extends: <entry>`, the
sections it changes, and `target`, the paper's table and number), chosen
with `--preset NAME` or `ganzoo.load(name, preset=...)`.

Entries come from three places: the YAML files of `zoo_configs/` (the zoo's
own), `@register_model` in the caller's code, and packages that declare an
entry point in the group `ganzoo.models` (name = registry name, value = the
module that registers it, with `<name>.yaml` beside it). Listing and reading
entries imports neither TensorFlow nor the model classes: `ganzoo list` stays
fast, and a class is imported when a model is built.
"""

import copy
import difflib
import math
import fnmatch
import importlib
import importlib.util
import inspect
import sys
import warnings
from importlib import metadata
from pathlib import Path

import yaml

_PACKAGE_DIR = Path(__file__).resolve().parent
# Wheels carry the YAML files inside the package; a source checkout (and an
# editable install) keeps them at the top of the repository.
CONFIG_DIRS = (_PACKAGE_DIR / "zoo_configs", _PACKAGE_DIR.parent / "zoo_configs")
PLUGIN_GROUP = "ganzoo.models"
SECTIONS = ("model", "compile", "train", "tiny")
TOP_LEVEL_KEYS = ("class", "extends", "paper", "description", *SECTIONS)
PRESET_DIRS = tuple(directory / "presets" for directory in CONFIG_DIRS)
PRESET_KEYS = ("extends", "paper", "description", "target", "data", "gpu_time", "model", "compile", "train")
# `ganzoo train`'s settings every entry has; a class adds its own in `train_options`.
TRAIN_KEYS = {
    "dataset": "digits",
    "batch_size": 64,
    "epochs": 10,
    "image_size": None,
    "eval_every": 0,
}
# `keras.Model.compile` options that a GAN passes through.
KERAS_COMPILE_KEYS = ("jit_compile", "run_eagerly", "steps_per_execution")

_REGISTERED = {}  # name -> (class, config dict or path), from register_model
_YAML_CACHE = {}


def register_model(name, config=None):
    """Class decorator: register a `ganzoo.GAN` subclass as `name`.

    Args:
        name: the registry name used by `load` and `ganzoo train`.
        config: a dict or the path of a YAML file with the defaults; a
            relative path is taken from the folder of the module that defines
            the class. By default `<name>.yaml` beside that module (or in its
            `zoo_configs/` folder).
    """

    def decorator(cls):
        import keras

        _REGISTERED[name] = (cls, config)
        # `.keras` files name the class; registering it lets load_model find it.
        return keras.saving.register_keras_serializable(package="ganzoo")(cls)

    return decorator


def unregister_model(name):
    """Remove an entry added with `register_model` (tests, notebooks)."""
    _REGISTERED.pop(name, None)


def list_models(pattern="*"):
    """Sorted registry names matching a shell-style `pattern`."""
    return sorted(n for n in _all_names() if fnmatch.fnmatch(n, pattern))


def model_config(name, preset=None):
    """The entry's defaults as a dict, `extends` resolved (a fresh copy); with
    `preset`, that preset's sections merged onto them."""
    config = copy.deepcopy(_resolved(name, ()))
    if preset is None:
        return config
    own = preset_config(name, preset)
    return _merge_entry(config, {key: own[key] for key in ("model", "compile", "train") if key in own})


def list_presets(name=None):
    """`{entry: [preset, ...]}` of every entry with presets, or one entry's list."""
    found = {}
    for directory in PRESET_DIRS:
        if directory.is_dir():
            for path in sorted(directory.glob("*/*.yaml")):
                found.setdefault(path.parent.name, set()).add(path.stem)
    if name is not None:
        _raw(name)  # an unknown entry is an error, not "no presets"
        return sorted(found.get(name, ()))
    return {entry: sorted(names) for entry, names in sorted(found.items())}


def preset_config(name, preset):
    """The preset's own YAML (a fresh copy), checked."""
    if not isinstance(preset, str) or not preset:
        raise ValueError(f"preset must be a preset's name, got {preset!r}.")
    path = next((d / name / f"{preset}.yaml" for d in PRESET_DIRS if (d / name / f"{preset}.yaml").is_file()), None)
    if path is None:
        known = list_presets(name)
        close = difflib.get_close_matches(preset, known, n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        raise ValueError(f"{name!r} has no preset {preset!r}.{hint} "
                         + (f"Its presets: {', '.join(known)}." if known else f"{name!r} has no presets."))
    config = copy.deepcopy(_read_yaml(path))
    _check_keys(str(path), "a preset", config, PRESET_KEYS)
    if config.get("extends") != name:
        raise ValueError(f"{path}: a preset of {name!r} must say 'extends: {name}', not {config.get('extends')!r}.")
    return config


def model_class(name):
    """The class that implements `name` (imported now if it was not)."""
    config = _resolved(name, ())
    if name in _plugins() and name not in _REGISTERED:
        try:
            loaded = _plugins()[name].load()  # importing the module registers its class
        except Exception as error:  # a plugin's own import error, whatever it is
            raise ValueError(f"The plugin entry {name!r} ({_plugins()[name].value}) fails to import: "
                             f"{type(error).__name__}: {error}") from error
        if name not in _REGISTERED and isinstance(loaded, type):
            register_model(name, config=_raw_path(name))(loaded)
    if name in _REGISTERED:
        return _REGISTERED[name][0]
    spec = config.get("class")
    if not spec:
        raise ValueError(f"Entry {name!r} names no class: add 'class: module:ClassName' to its YAML, "
                         "'extends: <entry>', or register one with ganzoo.register_model.")
    module_name, _, attribute = spec.partition(":")
    try:
        return getattr(importlib.import_module(module_name), attribute)
    except (ImportError, AttributeError) as error:
        raise ValueError(f"Entry {name!r}: cannot import its class {spec!r} ({error}).") from None


def import_all():
    """Import every entry's class, so `keras.models.load_model` finds them in
    `.keras` files. A broken plugin is skipped with a warning: it must not
    stop the other entries from loading."""
    for name in list_models():
        try:
            model_class(name)
        except (ValueError, ImportError, OSError) as error:
            if name not in _plugins():
                raise
            warnings.warn(f"ganzoo: skipping the plugin entry {name!r}: {error}", stacklevel=2)


def train_settings(name, preset=None):
    """The entry's (or preset's) `train:` section with the defaults of `TRAIN_KEYS` filled in."""
    return {**TRAIN_KEYS, **model_config(name, preset).get("train", {})}


def tiny_overrides(name):
    """The entry's `tiny:` section: the overrides of the registry-wide tests."""
    return model_config(name).get("tiny", {})


def resolve_config(name, defaults=None, preset=None, **overrides):
    """The entry's config with `overrides` merged and every section validated.

    An override goes to `model` if the class's constructor takes it, else to
    `compile`; a key neither takes is an error naming the keys that are.
    `defaults`: `{"model": ..., "compile": ...}` in place of the YAML's
    (a run's record of the YAML it began with); `preset`: a preset's YAML
    merged onto the entry's (`list_presets`).
    """
    if defaults is not None and preset is not None:
        raise ValueError("defaults (a run's record) already hold the preset they began with; pass one of them.")
    config = model_config(name, preset)
    if defaults is not None:
        config.update(copy.deepcopy({section: defaults.get(section, {}) for section in ("model", "compile")}))
    cls = model_class(name)
    for section in ("model", "compile"):
        config.setdefault(section, {})
    validate(name, config, cls)
    model_keys, compile_keys = constructor_options(cls), compile_options(cls)
    allowed = {**{key: "compile" for key in compile_keys}, **{key: "model" for key in model_keys}}
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
            section[key] = deep_merge(section[key], value)
        else:
            section[key] = value
    if "data_shape" in model_args:
        model_args["data_shape"] = tuple(model_args["data_shape"])
    for key in ("g_optimizer", "d_optimizer"):
        spec = config["compile"].get(key)
        if spec is not None and not isinstance(spec, (str, dict)) and type(spec).__module__.split(".")[0] != "keras":
            raise ValueError(f"{key} must be an optimizer name such as 'adam' or a mapping such as "
                             f"{{type: adam, learning_rate: 2.0e-4}}; got {spec!r}.")
    return config


def build(name, defaults=None, preset=None, **overrides):
    """A built and compiled model from the entry's defaults (or `defaults`,
    as `resolve_config` takes them, or a preset's) and `overrides`."""
    config = resolve_config(name, defaults, preset, **overrides)
    try:
        model = model_class(name)(name=name, **config["model"])
    except Exception as error:  # TensorFlow's ResourceExhaustedError, or MemoryError: the networks do not fit
        if type(error).__name__ not in ("ResourceExhaustedError", "MemoryError", "OutOfMemoryError"):
            raise
        raise ValueError(
            f"Building {name!r} ran out of memory ({type(error).__name__}): its networks do not fit this machine. "
            "Make them smaller: latent_dim, data_shape (--image-size) or network_args (e.g. filters)."
        ) from None
    compile_args = dict(config["compile"])
    model.compile(
        g_optimizer=make_optimizer(compile_args.pop("g_optimizer", "adam")),
        d_optimizer=make_optimizer(compile_args.pop("d_optimizer", "adam")),
        **compile_args,
    )
    return model


def validate(name, config, cls):
    """Every section's keys against what the entry accepts."""
    where = _source(name)
    _check_keys(where, "the top level", config, TOP_LEVEL_KEYS)
    for section in SECTIONS:
        if not isinstance(config.get(section, {}), dict):
            raise ValueError(f"{where}: '{section}' must be a mapping, got {config[section]!r}.")
    _check_keys(where, "model", config.get("model", {}), constructor_options(cls))
    _check_keys(where, "compile", config.get("compile", {}), compile_options(cls))
    _check_keys(where, "train", config.get("train", {}), (*TRAIN_KEYS, *getattr(cls, "train_options", ())))
    _check_keys(where, "tiny", config.get("tiny", {}), (*constructor_options(cls), *compile_options(cls)))


def constructor_options(cls):
    """The constructor arguments of `cls` and of its ganzoo bases it passes `**kwargs` to."""
    names = []
    for klass in cls.__mro__:
        if klass.__module__.split(".")[0] == "keras" or "__init__" not in vars(klass):
            continue
        parameters = inspect.signature(vars(klass)["__init__"]).parameters.values()
        names += [p.name for p in parameters if p.name != "self" and p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL)]
        if not any(p.kind == p.VAR_KEYWORD for p in parameters):
            break
    return tuple(dict.fromkeys(n for n in names if n not in ("name", "trainable", "dtype")))


def compile_options(cls):
    parameters = inspect.signature(cls.compile).parameters
    return tuple(dict.fromkeys([*(p for p in parameters if p not in ("self", "kwargs")), *KERAS_COMPILE_KEYS]))


def make_optimizer(spec):
    """An optimizer from `{"type": "adam", "learning_rate": ..., ...}`, a name or an instance.

    `decay_steps: N` in the mapping decays the learning rate linearly to 0
    over N updates of that optimizer (WGAN-GP's CIFAR-10 schedule).
    """
    import keras

    if isinstance(spec, (keras.optimizers.Optimizer, str)):
        return keras.optimizers.get(spec)
    if not isinstance(spec, dict):
        raise ValueError(f"Optimizer settings must be a name such as 'adam' or a mapping with a 'type'; got {spec!r}.")
    spec = dict(spec)
    rate = spec.get("learning_rate")
    if rate is not None and (isinstance(rate, bool) or not isinstance(rate, (int, float)) or not 0 < rate < math.inf):
        raise ValueError(f"learning_rate must be a positive number (such as 2.0e-4), got {rate!r}.")
    kind = spec.pop("type", None)
    if kind is None:
        raise ValueError(f"Optimizer settings need a 'type' such as 'adam': got {spec}.")
    steps = spec.pop("decay_steps", None)
    if steps is not None:
        if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
            raise ValueError(f"decay_steps must be a positive number of updates, got {steps!r}.")
        spec["learning_rate"] = keras.optimizers.schedules.PolynomialDecay(
            spec.get("learning_rate", 1e-3), steps, end_learning_rate=0.0, power=1.0)
    try:
        return keras.optimizers.get({"class_name": kind, "config": spec})
    except (TypeError, ValueError) as error:
        raise ValueError(f"Cannot make optimizer {kind!r} with {spec}: {error}") from None


def deep_merge(base, update):
    """`base` with `update` merged in, nested mappings merged key by key."""
    merged = dict(base)
    for key, value in update.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


# ------------------------------------------------------------ sources
def _builtin_files():
    """`{name: path}` of the zoo's own YAML files (the first folder wins)."""
    found = {}
    for directory in CONFIG_DIRS:
        if directory.is_dir():
            for path in sorted(directory.glob("*.yaml")):
                found.setdefault(path.stem, path)
    return found


_PLUGINS = None


def _plugins():
    """`{name: entry point}` of installed packages' `ganzoo.models` group."""
    global _PLUGINS
    if _PLUGINS is None:
        _PLUGINS = {ep.name: ep for ep in metadata.entry_points(group=PLUGIN_GROUP)}
    return _PLUGINS


def _all_names():
    return {*_builtin_files(), *_plugins(), *_REGISTERED}


def _raw(name):
    """The entry's own config (before `extends`), from wherever it is defined."""
    if name in _REGISTERED:
        cls, config = _REGISTERED[name]
        if isinstance(config, dict):
            return config
        return _read_yaml(_config_path(name, config, _module_dir(cls)))
    builtin = _builtin_files()
    if name in builtin:
        return _read_yaml(builtin[name])
    if name in _plugins():
        path = _raw_path(name)
        if path is not None:
            return _read_yaml(path)
        _plugins()[name].load()  # no YAML beside the module: it must register a config itself
        if name in _REGISTERED:
            return _raw(name)
        raise ValueError(
            f"The plugin entry {name!r} ({_plugins()[name].value}) has no {name}.yaml beside its module "
            "and registers no model of that name with ganzoo.register_model."
        )
    close = difflib.get_close_matches(str(name), sorted(_all_names()), n=1)
    hint = f" Did you mean {close[0]!r}?" if close else ""
    raise ValueError(f"Unknown model {name!r}.{hint} Available: {', '.join(list_models())}.")


def _resolved(name, chain):
    if name in chain:
        raise ValueError(f"Entries extend each other in a loop: {' -> '.join((*chain, name))}.")
    raw = _raw(name)
    parent = raw.get("extends")
    if not parent:
        return raw
    base = _resolved(parent, (*chain, name))
    return _merge_entry(base, {key: value for key, value in raw.items() if key != "extends"})


def _merge_entry(base, own):
    """`own` deep-merged onto `base`; a new `network` drops the base's
    `network_args` (they were the other network's)."""
    model = own.get("model", {})
    if "network" in model and model["network"] != base.get("model", {}).get("network"):
        base = {**base, "model": {k: v for k, v in base.get("model", {}).items() if k != "network_args"}}
    return deep_merge(base, own)


def _source(name):
    if name in _REGISTERED:
        cls, config = _REGISTERED[name]
        return "its register_model config" if isinstance(config, dict) else str(_config_path(name, config, _module_dir(cls)))
    builtin = _builtin_files()
    if name in builtin:
        return str(builtin[name])
    return f"the config of {name!r}"


def _raw_path(name):
    """The YAML beside a plugin's module (found without importing it), or None."""
    return _beside(name, _spec_dir(_plugins()[name].module))


def _module_dir(cls):
    module = sys.modules.get(cls.__module__)
    path = getattr(module, "__file__", None)
    return Path(path).resolve().parent if path else Path.cwd()


def _spec_dir(module_name):
    try:
        spec = importlib.util.find_spec(module_name)
    except ImportError as error:  # a parent package is missing or fails to import
        spec, reason = None, str(error)
    else:
        reason = "no such module"
    if spec is None or not spec.origin:
        raise ValueError(
            f"The ganzoo plugin module {module_name!r} cannot be found ({reason}): reinstall the package that "
            "declares it in the 'ganzoo.models' entry-point group, or uninstall it."
        )
    return Path(spec.origin).resolve().parent


def _beside(name, directory):
    for candidate in (directory / f"{name}.yaml", directory / "zoo_configs" / f"{name}.yaml"):
        if candidate.exists():
            return candidate
    return None


def _config_path(name, config, module_dir):
    if config is not None:
        path = Path(config)
        return path if path.is_absolute() else module_dir / path
    found = _beside(name, module_dir) or _builtin_files().get(name)
    if found is None:
        raise FileNotFoundError(
            f"No config for {name!r}: looked for {name}.yaml in {module_dir} and its zoo_configs/ folder. "
            "Pass config= to register_model."
        )
    return found


def _read_yaml(path):
    path = Path(path)
    try:
        key = (path, path.stat().st_mtime_ns)
    except FileNotFoundError:
        raise FileNotFoundError(f"The entry config {path} does not exist.") from None
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


def _check_keys(where, section, given, valid):
    unknown = sorted(set(given) - set(valid))
    if unknown:
        close = difflib.get_close_matches(unknown[0], list(valid), n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise ValueError(
            f"{where}: unknown key{'s' if len(unknown) > 1 else ''} {', '.join(map(repr, unknown))} in "
            f"{section}{hint}. Valid keys there: {', '.join(sorted(valid))}."
        )
