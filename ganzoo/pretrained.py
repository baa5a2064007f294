"""The small pretrained models shipped in `saved_models/<name>/`.

Each is a TF Serving version folder (`saved_models/<name>/1/`) written by
`ganzoo export` from a `ganzoo train <name>` run with the YAML defaults on
the offline dataset, plus `saved_models/<name>/metadata.json`: the dataset,
steps, wall time, metrics, the command that reproduces it and the ganzoo
version. `ganzoo.load(name, pretrained=True)` builds the entry with the
export's shapes and puts the exported networks' weights back.
"""

import json
import os
from pathlib import Path

from ganzoo.export import versions

# A source checkout (and an editable install) keeps them at the top of the
# repository; GANZOO_PRETRAINED points elsewhere.
_DEFAULT_DIR = Path(__file__).resolve().parent.parent / "saved_models"


def pretrained_root():
    return Path(os.environ.get("GANZOO_PRETRAINED", _DEFAULT_DIR))


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


def metadata(name):
    """`saved_models/<name>/metadata.json` as a dict ({} if absent)."""
    path = pretrained_root() / name / "metadata.json"
    return json.loads(path.read_text()) if path.exists() else {}


def shape_overrides(name):
    """The options the export was trained with: the run's `--set` overrides
    (metadata.json) and its shapes (`assets/ganzoo.json`)."""
    info = json.loads((pretrained_path(name) / "assets" / "ganzoo.json").read_text())
    overrides = {**metadata(name).get("overrides", {}), "data_shape": tuple(info["data_shape"])}
    if info.get("latent_dim") is not None:
        overrides["latent_dim"] = info["latent_dim"]
    if info.get("num_classes") is not None:
        overrides["num_classes"] = info["num_classes"]
    return overrides


def restore(model, name):
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


def publish(run_dir, root=None, evaluation=None, note=None):
    """Export a finished run as `<root>/<name>/<next version>/` with its
    `metadata.json`; returns the version folder.

    Args:
        run_dir: a folder written by `ganzoo train`.
        root: where to publish (default `pretrained_root()`).
        evaluation: the JSON file `ganzoo evaluate` wrote for the run
            (default: the run's only `evaluation/*.json`, if one).
        note: free text kept in the metadata.
    """
    import keras

    import ganzoo
    from ganzoo.export import next_version_path

    run_dir = Path(run_dir)
    run = json.loads((run_dir / "run.json").read_text())
    if run["status"] != "finished":
        raise ValueError(f"{run_dir} is not a finished run (status {run['status']!r}).")
    model = keras.models.load_model(run_dir / "model.keras")
    settings = run["settings"]
    name = settings["model"]
    target = model.export(next_version_path(root or pretrained_root(), name))
    if evaluation is None:
        found = sorted((run_dir / "evaluation").glob("*.json"))
        evaluation = found[0] if len(found) == 1 else None
    scores = json.loads(Path(evaluation).read_text()) if evaluation else {}
    command = f"ganzoo train {name}" + "".join(
        f" --{key.replace('_', '-')} {settings[key]}"
        for key in ("dataset", "batch_size", "image_size", "seed")
        if settings.get(key) is not None and settings[key] != _train_default(name, key)
    ) + "".join(f" --set {key}={json.dumps(value)}" for key, value in _flatten(settings.get("overrides", {})))
    record = {
        "model": name,
        "version": int(target.name),
        "dataset": settings["dataset"],
        "data_shape": list(model.data_shape),
        "overrides": settings.get("overrides", {}),
        "epochs": run["epochs"],
        "steps": int(model.g_optimizer.iterations.numpy()),
        "wall_time_seconds": run.get("seconds"),
        "metrics": scores.get("metrics", {}),
        "evaluation_protocol": scores.get("protocol", {}),
        "command": command,
        "evaluate_command": f"ganzoo evaluate runs/{name}",
        "trained_with_ganzoo": run.get("ganzoo_version"),
        "published_with_ganzoo": ganzoo.__version__,
        "size_mb": round(sum(f.stat().st_size for f in target.rglob("*") if f.is_file()) / 2**20, 2),
    }
    if note:
        record["note"] = note
    (target.parent / "metadata.json").write_text(json.dumps(record, indent=2))
    return target


def _flatten(options, prefix=""):
    for key, value in options.items():
        if isinstance(value, dict):
            yield from _flatten(value, f"{prefix}{key}.")
        else:
            yield f"{prefix}{key}", value


def _train_default(name, key):
    from ganzoo import registry

    defaults = registry.model_config(name).get("train", {})
    return {"dataset": defaults.get("dataset", "digits"), "batch_size": defaults.get("batch_size", 64),
            "image_size": defaults.get("image_size"), "seed": 0}.get(key)
