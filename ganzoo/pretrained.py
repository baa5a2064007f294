"""The small pretrained models shipped in `saved_models/<name>/`.

Each is a TF Serving version folder (`saved_models/<name>/1/`) written by
`ganzoo export` from a `ganzoo train <name>` run with the YAML defaults on
the offline dataset, plus `saved_models/<name>/metadata.json`: the dataset,
steps, wall time, metrics, the command that reproduces it and the ganzoo
version. `ganzoo.load(name, pretrained=True)` builds the entry with the
export's shapes and puts the exported networks' weights back; finding and
opening them is `ganzoo.loading`'s job, publishing a run is this module's.
"""

import json
from pathlib import Path

from ganzoo import __version__, loading, registry, runs
from ganzoo.export import next_version_path
from ganzoo.loading import (  # noqa: F401  (the public names of this module)
    pretrained_metadata as metadata,
    pretrained_overrides as shape_overrides,
    pretrained_path,
    pretrained_root,
    restore_pretrained as restore,
)

_DEFAULT_DIR = loading.DEFAULT_PRETRAINED_DIR


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

    folder = runs.RunFolder(run_dir)
    run = folder.record()
    if run["status"] != "finished":
        raise ValueError(f"{run_dir} is not a finished run (status {run['status']!r}).")
    model = loading.open_model(run_dir)
    settings = run["settings"]
    name = settings["model"]
    target = model.export(next_version_path(root or pretrained_root(), name))
    if evaluation is None:
        found = sorted(folder.evaluation.glob("*.json"))
        evaluation = found[0] if len(found) == 1 else None
    scores = json.loads(Path(evaluation).read_text()) if evaluation else {}
    defaults = {**registry.train_settings(name), "seed": 0}
    command = f"ganzoo train {name}" + "".join(
        f" --{key.replace('_', '-')} {settings[key]}"
        for key in ("dataset", "batch_size", "image_size", "seed")
        if settings.get(key) is not None and settings[key] != defaults.get(key)
    ) + "".join(f" --set {key}={json.dumps(value)}" for key, value in _flatten(settings.get("overrides", {})))
    record = {
        "model": name,
        "version": int(target.name),
        "dataset": settings["dataset"],
        "data_shape": list(model.data_shape),
        "overrides": settings.get("overrides", {}),
        "entry_defaults": settings.get("entry_defaults"),  # the YAML as the run began
        "epochs": run["epochs"],
        "steps": int(model.g_optimizer.iterations.numpy()),
        "wall_time_seconds": run.get("seconds"),
        "metrics": scores.get("metrics", {}),
        "evaluation_protocol": scores.get("protocol", {}),
        "command": command,
        "evaluate_command": f"ganzoo evaluate runs/{name}",
        "trained_with_ganzoo": run.get("ganzoo_version"),
        "published_with_ganzoo": __version__,
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
