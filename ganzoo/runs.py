"""The run folder: its layout, its record and its resume state.

    RUN/run.json                  settings, epochs, status ("running", "finished", "stopped: ...")
    RUN/checkpoints/state.json    the last completed epoch and the checkpoint that holds it
    RUN/checkpoints/epoch-N.weights.h5
    RUN/model.keras               the model after the last completed epoch
    RUN/history.json              one record per epoch: losses and in-training metrics
    RUN/samples/epoch_NNN.png     the sample grid per epoch
    RUN/logs/                     TensorBoard
    RUN/evaluation/*.json         what `ganzoo evaluate` wrote
    RUN/saved_model/1/            the final export (TF Serving's layout)

This module is the only code that writes or parses these files. Every write
goes to a temporary name first and is then renamed, so a kill at any moment
leaves the previous complete copy; a checkpoint is written before
`state.json` points to it, and the older one is removed only after.
"""

import contextlib
import errno
import json
import math
import os
import shutil
from pathlib import Path

from ganzoo import __version__, files
from ganzoo.files import PARTIAL

RUN_FILE = "run.json"
MODEL_FILE = "model.keras"
HISTORY_FILE = "history.json"
CHECKPOINTS = "checkpoints"
STATE_FILE = "state.json"
LEGACY_WEIGHTS = "latest.weights.h5"  # where ganzoo 0.1's BackupAndRestore kept a finished run's state
SAMPLES = "samples"
LOGS = "logs"
EVALUATION = "evaluation"
EXPORT_DIR = "saved_model"  # a run's export: RUN/saved_model/1


class RunError(ValueError):
    """A run folder that cannot be used as asked; the message says what to do."""


class DiskFullError(RunError):
    """No room for the next checkpoint. The last good one is kept: free some
    space and run the same command again."""


def is_run(path):
    """Whether `path` is a folder written by ganzoo: its run.json is ganzoo's
    (settings, status and the ganzoo version), not another tool's file of that name."""
    return _read_record(path) is not None


def _read_record(path):
    """run.json as a dict if it is ganzoo's, else None."""
    try:
        record = json.loads((Path(path) / RUN_FILE).read_text())
    except (OSError, ValueError):
        return None
    if isinstance(record, dict) and isinstance(record.get("settings"), dict) and {"status", "ganzoo_version"} <= set(record):
        return record
    return None


def _only_leftovers(path):
    """Whether everything in `path` is what a killed or failed ganzoo write left (so it counts as empty)."""
    return all(child.name.startswith((".ganzoo-probe-", f".{RUN_FILE}{PARTIAL}")) for child in path.iterdir())


class RunFolder:
    """One run folder. `RunFolder(path).prepare(...)` before training; the
    training callbacks call `save_checkpoint`, `save_model` and
    `append_history`; `restore` puts the last checkpoint into a model."""

    def __init__(self, path):
        self.path = Path(path)

    def __repr__(self):
        return f"RunFolder({os.fspath(self.path)!r})"

    # ------------------------------------------------------------ paths
    @property
    def model_file(self):
        return self.path / MODEL_FILE

    @property
    def history_file(self):
        return self.path / HISTORY_FILE

    @property
    def checkpoints(self):
        return self.path / CHECKPOINTS

    @property
    def samples(self):
        return self.path / SAMPLES

    @property
    def logs(self):
        return self.path / LOGS

    @property
    def evaluation(self):
        return self.path / EVALUATION

    def export_path(self, version=1):
        return self.path / EXPORT_DIR / str(version)

    # ------------------------------------------------------------ record
    def record(self):
        """run.json as a dict; RunError if the folder is not a run."""
        record = _read_record(self.path)
        if record is None:
            raise RunError(f"{self.path} is not a run folder (it has no {RUN_FILE}). Train one with `ganzoo train`.")
        return record

    def settings(self):
        return self.record()["settings"]

    def write_record(self, settings, epochs, status, **extra):
        record = {"settings": settings, "epochs": epochs, "status": status, "ganzoo_version": __version__, **extra}
        _write_atomically(self.path / RUN_FILE, json.dumps(record, indent=2))

    def history(self):
        """history.json: one dict per completed epoch ([] before the first)."""
        return json.loads(self.history_file.read_text()) if self.history_file.exists() else []

    def append_history(self, epoch, logs):
        append_history(self.history_file, epoch, logs)

    # ------------------------------------------------------- the state
    def epochs_done(self):
        """The last epoch whose checkpoint is complete (0 if none)."""
        state = self._state()
        return state["epoch"] if state else 0

    def _state(self):
        """`{"epoch", "weights"}` of the last complete checkpoint, or None."""
        path = self.checkpoints / STATE_FILE
        if path.exists():
            return json.loads(path.read_text())
        if (self.checkpoints / LEGACY_WEIGHTS).exists():
            # A run of ganzoo 0.1 (Keras' BackupAndRestore): its weights file is
            # ours to read; the epoch it holds is known only for a finished run.
            record = self.record()
            if record["status"] == "finished":
                return {"epoch": record["epochs"], "weights": LEGACY_WEIGHTS}
            raise RunError(f"{self.path} holds an unfinished run of an older ganzoo (Keras BackupAndRestore "
                           "files), which this version cannot resume. Finish it with that version, or start "
                           "over (--force; force=True in ganzoo.train).")
        return None

    def save_checkpoint(self, model, epoch):
        """Weights and optimizer state after `epoch` (1-based), then the state
        file that points to them, then the removal of older checkpoints and of
        what an earlier kill left half-written."""
        self.checkpoints.mkdir(parents=True, exist_ok=True)
        name = f"epoch-{epoch}.weights.h5"
        _save_atomically(model.save_weights, self.checkpoints / name, state_bytes(model))
        _write_atomically(self.checkpoints / STATE_FILE, json.dumps({"epoch": epoch, "weights": name}))
        for old in (*self.checkpoints.glob("epoch-*.weights.h5"), self.checkpoints / LEGACY_WEIGHTS):
            if old.name != name and old.exists():
                old.unlink()
        self.remove_partial_files()

    def remove_partial_files(self):
        """The temporary files of writes a kill interrupted (only ganzoo's own names)."""
        for folder in (self.path, self.checkpoints):
            for pattern in ("partial-*.weights.h5", "partial-*.keras", f".*{PARTIAL}*"):
                for leftover in folder.glob(pattern):
                    if leftover.is_file():
                        leftover.unlink()

    def restore(self, model):
        """Load the last checkpoint into `model`; returns its epoch (0: none)."""
        state = self._state()
        if not state:
            return 0
        path = self.checkpoints / state["weights"]
        if not path.exists():
            raise RunError(f"{self.checkpoints / STATE_FILE} names {state['weights']}, which is missing. If another "
                           "process is training this run, wait for it; if the file was deleted, start over "
                           "(--force; force=True in ganzoo.train).")
        try:
            model.load_weights(path)
        except OSError as error:  # h5py: truncated or damaged (ganzoo renames only complete files here)
            raise RunError(f"The checkpoint {path} cannot be read ({str(error).splitlines()[0]}): it was damaged "
                           "after ganzoo wrote it. Start over with --force (force=True).") from None
        except ValueError as error:
            raise RunError(f"The checkpoint {path} does not fit this model ({error}); was the run trained with "
                           "other options? Choose another --out (out=), or start over with --force.") from None
        return state["epoch"]

    def save_model(self, model):
        """The whole model (config, weights, optimizers) as model.keras."""
        _save_atomically(model.save, self.model_file, state_bytes(model))

    def _check_writable(self):
        if not os.access(self.path, os.W_OK | os.X_OK):
            raise RunError(f"{self.path} is not writable: choose an --out (out=) you can write to.")
        probe = self.path / f".ganzoo-probe-{os.getpid()}"
        try:  # os.access trusts permissions; read-only mounts and /proc say otherwise only on a write
            probe.write_text("")
        except OSError as error:
            probe.unlink(missing_ok=True)
            raise RunError(f"Cannot write into {self.path}: {error.strerror or error}. Choose an --out (out=) "
                           "you can write to.") from None
        probe.unlink()

    def _delete_run(self):
        """Everything in the run, run.json last: a kill midway leaves a folder
        that is still a run, which --force can delete again."""
        for child in self.path.iterdir():
            if child.name == RUN_FILE:
                continue
            if child.is_dir() and not child.is_symlink():
                shutil.rmtree(child)
            else:
                child.unlink()
        (self.path / RUN_FILE).unlink()

    # --------------------------------------------------------- starting
    def prepare(self, settings, epochs, resume="auto", force=False):
        """Check the folder before training; returns the epochs already done.

        A new or empty folder starts a run. A run with the same settings
        continues: an unfinished one always (`resume="auto"` or True), a
        finished one only with `resume=True` and more `epochs`. `force`
        deletes a previous run (only a folder ganzoo wrote) and starts over.
        `resume=False` refuses any existing run.
        """
        if resume not in ("auto", True, False):
            raise RunError(f"resume must be 'auto', True or False, got {resume!r}.")
        if self.path.exists() and not self.path.is_dir():
            raise RunError(f"{self.path} is a file, not a folder: choose another --out (out=).")
        if self.path.is_dir() and _only_leftovers(self.path):
            for leftover in self.path.iterdir():
                leftover.unlink()
        if self.path.exists() and any(self.path.iterdir()) and not is_run(self.path):
            raise RunError(
                f"{self.path} exists and is not a ganzoo run (no {RUN_FILE}); ganzoo will not write into "
                "or delete it. Choose another --out (out=)."
            )
        if force and is_run(self.path):
            here = Path.cwd().resolve()
            if self.path.resolve() in (here, *here.parents):
                raise RunError(f"--force would delete {self.path}, which holds the working folder {here}. "
                               "Run from outside it, or give another --out (out=).")
            self._delete_run()
        if not self.path.exists() or not any(self.path.iterdir()):
            try:
                self.path.mkdir(parents=True, exist_ok=True)
            except OSError as error:
                raise RunError(f"Cannot create the run folder {self.path}: {error.strerror or error}. Choose an "
                               "--out (out=) in a folder you can write to.") from None
            self._check_writable()
            return 0
        self._check_writable()
        record = self.record()
        wanted = json.loads(json.dumps(settings))  # as run.json stores it (tuples become lists)
        before, after = _flat(record["settings"]), _flat(wanted)
        changed = [k for k in sorted({*before, *after}) if before.get(k, _MISSING) != after.get(k, _MISSING)]
        if any(key not in RESUMABLE_CHANGES for key in changed):
            shown = {_option(k): before.get(k) for k in changed}
            raise RunError(
                f"{self.path} holds a run with other settings ({', '.join(map(_option, changed))} differ: {shown}). "
                f"A resumed run may change only {', '.join(sorted(map(_option, RESUMABLE_CHANGES)))} (--set) and "
                "--eval-every. Choose "
                "another --out (out=), or pass --force (force=True) to delete it and start over."
            )
        for key in changed:
            print(f"{self.path}: continuing with {_option(key)} {before.get(key)} -> {after.get(key)}.", flush=True)
        done = self.epochs_done()
        self.remove_partial_files()
        if resume is False:
            raise RunError(f"{self.path} holds a run ({done} epochs). Choose another --out (out=), or pass --force "
                           "(force=True) to start over.")
        if record["status"] == "finished":
            if resume != True:  # noqa: E712  ("auto" is truthy)
                raise RunError(
                    f"{self.path} holds a finished run ({done} epochs). Pass --resume --epochs N (resume=True, "
                    f"epochs=N; N > {done}) to train it further, --out (out=) for a new run, or --force "
                    "(force=True) to start over."
                )
            if epochs <= done:
                raise RunError(f"{self.path} is already trained for {done} epochs; pass --epochs N (epochs=N) "
                               f"with N > {done}.")
        return done


def state_bytes(model):
    """About what a checkpoint of `model` takes on disk: its variables and its optimizers' slots, plus headroom."""
    variables = list(model.variables)
    for optimizer in (getattr(model, "g_optimizer", None), getattr(model, "d_optimizer", None)):
        variables += list(getattr(optimizer, "variables", []))
    raw = sum(math.prod(int(d) for d in v.shape) * _itemsize(v.dtype) for v in variables)
    return int(raw * 1.1) + 2**20


def _itemsize(dtype):
    name = str(getattr(dtype, "name", dtype))
    return 8 if "64" in name else 2 if "16" in name else 1 if name in ("bool", "int8", "uint8") else 4


# What a resumed run may change: they shape no network and no saved state.
RESUMABLE_CHANGES = frozenset({
    "overrides.g_optimizer.learning_rate",
    "overrides.d_optimizer.learning_rate",
    "overrides.jit_compile",
})
_MISSING = object()


def _flat(settings, prefix=""):
    """Nested settings as `{"overrides.g_optimizer.learning_rate": ..., ...}`."""
    flat = {}
    for key, value in settings.items():
        if isinstance(value, dict):  # an empty one adds nothing: {} and a missing section are the same
            flat.update(_flat(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def saved_model_options(path):
    """The constructor options in a `.keras` file's config (None if there is
    no readable file): what a run of an older ganzoo was built with."""
    import zipfile

    try:
        with zipfile.ZipFile(path) as archive:
            config = json.loads(archive.read("config.json"))["config"]
    except (OSError, KeyError, ValueError, zipfile.BadZipFile):
        return None
    return {key: value for key, value in config.items() if key not in ("name", "trainable", "dtype")}


def learning_rates_changed(before, after):
    """Whether the learning-rate settings differ between two settings dicts."""
    old, new = _flat(before), _flat(after)
    return any(old.get(key, _MISSING) != new.get(key, _MISSING) for key in RESUMABLE_CHANGES if "learning_rate" in key)


def _option(key):
    """A settings key as the user sets it: `g_optimizer.learning_rate`, not `overrides.g_optimizer...`."""
    return key.removeprefix("overrides.")


def write_json(path, value):
    """`value` as indented JSON at `path`, written atomically."""
    _write_atomically(Path(path), json.dumps(value, indent=2))


def append_history(path, epoch, logs):
    """Record `logs` for `epoch` (1-based) in the JSON list at `path`,
    dropping records of later epochs that a resumed run is redoing."""
    path = Path(path)
    history = json.loads(path.read_text()) if path.exists() else []
    history = [h for h in history if h["epoch"] < epoch]
    history.append({"epoch": epoch, **{k: float(v) for k, v in (logs or {}).items()}})
    _write_atomically(path, json.dumps(history, indent=1))


def _write_atomically(path, text):
    path.parent.mkdir(parents=True, exist_ok=True)
    with disk_errors(path):
        files.write_atomically(path, text)


def _save_atomically(save, path, size):
    """`save(partial)` then rename to `path`; `partial` keeps Keras' suffix
    (`.weights.h5`, `.keras`), which `save` requires."""
    suffix = "".join(path.suffixes)
    partial = path.with_name(f"partial-{os.getpid()}{suffix}")
    # Checked first: h5py on a full disk can fail in ways that leave no file, or crash.
    check_free_space(path.parent, size)
    with disk_errors(partial):
        try:
            save(partial)
            files.fsync_file(partial)
        except BaseException:
            partial.unlink(missing_ok=True)
            raise
        files.commit(partial, path)


@contextlib.contextmanager
def disk_errors(path):
    """A full disk (or quota) while writing `path`, as `DiskFullError`."""
    try:
        yield
    except OSError as error:
        if error.errno in (errno.ENOSPC, errno.EDQUOT):
            raise DiskFullError(f"The disk holding {path.parent} is full ({error.strerror}); free some space.") from None
        raise


def check_free_space(folder, needed):
    """`DiskFullError` if the disk of `folder` has less than `needed` bytes free."""
    free = shutil.disk_usage(folder).free
    if free < needed:
        raise DiskFullError(f"The disk holding {folder} has {_megabytes(free)} free; the next checkpoint needs "
                            f"about {_megabytes(needed)}.")


def _megabytes(n):
    return f"{n / 2**20:.1f} MB"
