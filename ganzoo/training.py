"""`ganzoo.train`: everything `ganzoo train` does, from Python.

    run = ganzoo.train("dcgan", epochs=75, out="runs/dcgan")
    run.history[-1]["fid"], run.export_path
    run.evaluate(metrics=["fid", "kid"])

The run folder (`ganzoo.runs`) is checked first, so an existing run is never
overwritten by accident; a killed run continues with the same call; the
entry's own callbacks (evaluation, schedules) come from the model's
`training_callbacks` hook; the NaN stop, sample grids, TensorBoard, history,
model file and checkpoint follow in one fixed order; the SavedModel is
exported at the end.
"""

import hashlib
import json
import os
import shutil
import tempfile
import time
from pathlib import Path

import keras
import tensorflow as tf

from ganzoo import callbacks as callbacks_lib
from ganzoo import distribute, loading, registry, runs, xla
from ganzoo.metrics.evaluation import evaluate as evaluate_generator

IN_MEMORY = "in-memory tf.data.Dataset"


class Run:
    """A run folder and what training it produced.

    Attributes:
        path: the run folder.
        model: the trained model (loaded from `model.keras` on first use
            when the `Run` comes from `open_run`).
        history: one dict per completed epoch (losses, in-training metrics),
            across resumed sessions.
        export_path: the SavedModel version folder, or None before the end.
        settings, status, epochs: as `run.json` records them.
    """

    def __init__(self, path, model=None):
        self.folder = runs.RunFolder(path)
        self.path = self.folder.path
        self._model = model
        self.folder.record()  # fails clearly if `path` is no run

    def __repr__(self):
        return f"Run({str(self.path)!r}, status={self.status!r}, epochs={len(self.history)}/{self.epochs})"

    @property
    def model(self):
        if self._model is None:
            self._model = loading.open_model(self.path)
        return self._model

    @property
    def history(self):
        return self.folder.history()

    @property
    def settings(self):
        return self.folder.settings()

    @property
    def status(self):
        return self.folder.record()["status"]

    @property
    def epochs(self):
        return self.folder.record()["epochs"]

    @property
    def export_path(self):
        path = self.folder.export_path()
        return path if (path / "saved_model.pb").exists() else None

    def evaluate(self, dataset=None, **kwargs):
        """`ganzoo.metrics.evaluate` of the run's model against `dataset`
        (default: the data it trained on); keyword arguments as there."""
        dataset = dataset or self.settings["dataset"]
        if dataset == IN_MEMORY:
            raise ValueError("This run trained on an in-memory dataset: pass dataset= (a name or a folder).")
        return evaluate_generator(self.model, dataset, **kwargs)


def open_run(path):
    """An existing run folder as a `Run`."""
    return Run(path)


def train(name_or_model, dataset=None, epochs=None, out=None, resume="auto", strategy=None, callbacks=(), *,
          force=False, batch_size=None, image_size=None, seed=0, eval_every=None, mixed_precision=False,
          jit_compile=None, verbose="auto", skip_corrupt=False, preset=None, **overrides):
    """Train an entry (or a model you built) into a run folder; returns a `Run`.

    Args:
        name_or_model: a registry name (`ganzoo.list_models()`), or a built
            and compiled ganzoo model (then `overrides` must be empty).
        dataset: a dataset name or image folder as `ganzoo.data.load` takes,
            or a `tf.data.Dataset` (default: the entry's `train:` dataset).
        epochs: total epochs (default: the entry's).
        out: the run folder (default `runs/<name>`).
        resume: "auto" continues an unfinished run with the same settings and
            refuses a finished one; True also trains a finished run further,
            up to `epochs`; False refuses any existing run.
        strategy: a `tf.distribute.Strategy`, a name for
            `ganzoo.distribute.get_strategy`, or None: the caller's
            `strategy.scope()` if inside one, else "auto".
        callbacks: more Keras callbacks; they run after the entry's own
            (so they see the in-training metrics) and before the run's files
            are written.
        force: delete a previous run in `out` (only a folder ganzoo wrote).
        batch_size, image_size, eval_every: as `ganzoo train`'s flags
            (default: the entry's `train:` section).
        seed: seed of weights, noise and shuffling.
        mixed_precision: mixed_float16 on GPU, mixed_bfloat16 on CPU and TPU.
        jit_compile: XLA on or off (default: the entry's).
        verbose: `fit`'s progress bar setting.
        skip_corrupt: image folders: skip unreadable files with a warning.
        preset: a paper's setting of the entry (`ganzoo.list_presets()`):
            its model, compile and train sections replace the defaults'.
        **overrides: model options as `ganzoo.load` takes them.

    Returns:
        The `Run`; None on a non-chief worker of a multi-worker cluster,
        which writes nothing of the run.
    """
    return start(name_or_model, dataset, epochs, out, resume, strategy, callbacks, force=force,
                 batch_size=batch_size, image_size=image_size, seed=seed, eval_every=eval_every,
                 mixed_precision=mixed_precision, jit_compile=jit_compile, verbose=verbose, overrides=overrides,
                 skip_corrupt=skip_corrupt, preset=preset)


def start(name_or_model, dataset=None, epochs=None, out=None, resume="auto", strategy=None, callbacks=(), *,
          force=False, batch_size=None, image_size=None, seed=0, eval_every=None, mixed_precision=False,
          jit_compile=None, verbose="auto", overrides=None, skip_corrupt=False, preset=None):
    """`train` with the model options as one dict, so that an option may
    share a name with an argument of `train` (`--set seed=3`)."""
    overrides = dict(overrides or {})
    model = None if isinstance(name_or_model, str) else name_or_model
    if model is not None and overrides:
        raise TypeError(f"Options {sorted(overrides)} go to ganzoo.load; a model you built has its options already.")
    name = name_or_model if model is None else model.name
    known = name in registry.list_models()
    if preset is not None and model is not None:
        raise TypeError("preset= chooses an entry's settings; a model you built has its settings already.")
    if "preset" in overrides:
        raise ValueError("A preset is chosen with --preset NAME (preset=), not as a model option (--set preset=...).")
    if model is None:
        registry.resolve_config(name, preset=preset, **overrides)  # an unknown name, preset or option fails first
    options = {**(registry.train_settings(name, preset) if known else registry.TRAIN_KEYS),
               "skip_corrupt": skip_corrupt}
    in_memory = isinstance(dataset, tf.data.Dataset)
    if isinstance(dataset, os.PathLike):
        dataset = os.fspath(dataset)
    if dataset is None and options["dataset"] is None:
        raise ValueError(f"{name}{f' --preset {preset}' if preset else ''} trains on your own images: give "
                         "--dataset FOLDER (dataset=).")
    settings = {
        "model": name,
        "dataset": IN_MEMORY if in_memory else (dataset if dataset is not None else options["dataset"]),
        "batch_size": _positive("batch_size", batch_size if batch_size is not None else options["batch_size"]),
        "image_size": _positive("image_size", image_size) if image_size is not None else options["image_size"],
        "seed": seed,
        "overrides": overrides,
    }
    if preset is not None:
        settings["preset"] = preset
    if model is None and known:
        # The entry's YAML as this run starts: a resume rebuilds from it, so
        # a later change of the defaults (a new ganzoo) does not change a run.
        entry = registry.model_config(name, preset)
        settings["entry_defaults"] = json.loads(json.dumps(
            {section: entry.get(section, {}) for section in ("model", "compile")}, default=str))
    if model is not None:
        # What the entry's name and overrides say for a model from ganzoo.load:
        # a resume must rebuild the same model.
        settings["model_config"] = json.loads(json.dumps(model.get_config(), default=str))
        if jit_compile is not None:
            raise ValueError("jit_compile= applies to a model ganzoo builds; compile your model with "
                             "jit_compile=... instead.")
    epochs = _positive("epochs", epochs if epochs is not None else options["epochs"])
    if eval_every is not None and (isinstance(eval_every, bool) or not isinstance(eval_every, int) or eval_every < 0):
        raise ValueError(f"eval_every must be 0 (never) or a positive integer, got {eval_every!r}.")
    # First: MultiWorkerMirroredStrategy must exist before any other TF op.
    strategy = _strategy(strategy)
    if jit_compile and strategy.num_replicas_in_sync > 1 and not tf.config.list_logical_devices("GPU"):
        raise ValueError(
            "XLA (--jit) with several CPU replicas fails: XLA cannot use variables placed on another logical "
            "device. Drop it, or use one device (--strategy default)."
        )
    previous_policy = keras.mixed_precision.global_policy()
    if mixed_precision:
        if model is not None:
            raise ValueError("mixed_precision=True sets the policy a model is built under: build your model "
                             "after keras.mixed_precision.set_global_policy(...) instead.")
        keras.mixed_precision.set_global_policy(distribute.mixed_precision_policy())
        settings["precision"] = keras.mixed_precision.global_policy().name
    try:
        return _train(name, model, dataset, epochs, out, resume, force, strategy, callbacks, settings, options,
                      eval_every, jit_compile, verbose)
    finally:  # the policy is process-wide; leave it as it was
        keras.mixed_precision.set_global_policy(previous_policy)


def _train(name, model, dataset, epochs, out, resume, force, strategy, extra_callbacks, settings, options,
           eval_every, jit_compile, verbose):
    folder = runs.RunFolder(out if out is not None else Path("runs") / name)
    chief = distribute.is_chief(strategy)
    new_folder = not folder.path.exists()
    # Read before anything is written: did this call change the run's learning rates?
    previous = folder.settings() if runs.is_run(folder.path) and not force else settings
    if previous is not settings and "entry_defaults" in settings:
        options["legacy_defaults"] = _continue_as_recorded(name, folder, previous, settings, verbose)
    rates_changed = runs.learning_rates_changed(previous, settings)
    done, files = _claim(folder, chief, settings, epochs, resume, force)
    try:
        return _fit(name, model, dataset, epochs, folder, chief, done, files, strategy, extra_callbacks, settings,
                    options, eval_every, jit_compile, verbose, rates_changed)
    except BaseException:
        if new_folder and folder.path.is_dir() and not any(folder.path.iterdir()):
            folder.path.rmdir()  # a run that failed before writing anything leaves no folder behind
        raise


def _fit(name, model, dataset, epochs, folder, chief, done, files, strategy, extra_callbacks, settings, options,
         eval_every, jit_compile, verbose, rates_changed=False):
    keras.utils.set_random_seed(settings["seed"])
    dataset_name = None if settings["dataset"] == IN_MEMORY else settings["dataset"]
    with strategy.scope():
        cls = type(model) if model is not None else registry.model_class(name)
        train_data = dataset if dataset_name is None else _training_data(cls, name, model, settings, options)
        if isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
            # In-memory datasets have no files to split between workers.
            shard = tf.data.Options()
            shard.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
            train_data = train_data.with_options(shard)
        if int(train_data.cardinality()) == 0:
            raise ValueError(f"--batch-size {settings['batch_size']} (batch_size=) is larger than the dataset "
                             f"{settings['dataset']}: not one full batch. Choose a smaller batch.")
        xla_record, probe = None, False
        if model is None:
            defaults = _defaults(settings, options)
            model = _build_model(cls, name, train_data, dataset_name, settings, jit_compile, defaults)
            probe = _requested_jit(name, settings, defaults, jit_compile) == "auto"
        model.check_batch_size(settings["batch_size"], strategy.num_replicas_in_sync)  # before any step runs
        if probe:
            xla_record = _choose_xla(cls, name, model, train_data, dataset_name, settings, defaults, strategy, verbose)
    extra = {"xla": xla_record} if xla_record else {}
    if verbose:
        print(_announcement(name, model, settings, epochs, strategy, folder, done, chief), flush=True)
    # The entry's callbacks read the optimizers' initial state: before the restore.
    entry_callbacks = model.training_callbacks(dataset_name, epochs, eval_every, options)
    if done:
        rates = model.learning_rates()  # as asked now, before the restore brings back the checkpoint's
        folder.restore(model)
        if rates_changed:  # only then: a rate a callback lowered (ReduceLROnPlateau) is the checkpoint's to keep
            _set_learning_rates(model, rates)
    if chief:
        folder.write_record(settings, epochs, "running", **extra)
    started = time.time()
    try:
        with runs.disk_errors(folder.path):  # a full disk in any write: the samples, TensorBoard, the export
            model.fit(
                train_data,
                epochs=epochs,
                initial_epoch=done,
                shuffle=False,
                verbose=verbose,
                # The NaN check goes first, so a broken batch stops the run before
                # anything of its epoch is written; the run's files go last: an
                # epoch whose checkpoint is recorded has its samples, history and
                # model file.
                callbacks=[
                    callbacks_lib.StopOnNonFiniteLoss(backup_dir=folder.checkpoints),
                    callbacks_lib.SampleGrid(files.samples, log_dir=files.logs / "samples",
                                             dataset=dataset_name if dataset_name is not None else train_data),
                    *entry_callbacks,  # before the loggers, which record what they add to the logs
                    *extra_callbacks,
                    keras.callbacks.TensorBoard(files.logs),
                    RunRecorder(files),
                ],
            )
            if isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
                # Equal on every worker when they trained in step: an easy check of a cluster.
                print(f"Worker weights fingerprint: {_fingerprint(model.weights)}", flush=True)
            if chief:  # the run's own export, replacing one an earlier, killed try left
                model.export(folder.export_path(), overwrite=True)
    except callbacks_lib.NonFiniteLossError:
        if chief:
            folder.write_record(settings, epochs, "stopped: non-finite loss", **extra)
        raise
    except runs.DiskFullError as error:
        if chief:
            try:  # run.json is small, and may still fit
                folder.write_record(settings, epochs, "stopped: disk full", **extra)
            except (OSError, runs.RunError):
                pass
        done = folder.epochs_done()
        kept = f"the last good checkpoint (after epoch {done}) is kept" if done else "no epoch had a checkpoint yet"
        raise runs.DiskFullError(
            f"{error} Training stopped; {kept}. Free some space and run the same command again (without "
            "--force): it " + ("resumes from there." if done else "starts the run.")
        ) from None
    except tf.errors.ResourceExhaustedError as error:
        if "No space left" in str(error):
            raise runs.DiskFullError(f"The disk holding {folder.path} is full: free some space and run the same "
                                     "command again (without --force).") from None
        raise ValueError(f"Training ran out of memory ({str(error).splitlines()[0][:200]}): lower --batch-size, "
                         "--image-size or the networks' width (--set network_args.filters=...).") from None
    finally:
        if not chief:
            shutil.rmtree(files.path, ignore_errors=True)
    if not chief:
        return None
    seconds = round(time.time() - started, 1)
    folder.write_record(settings, epochs, "finished", seconds=seconds, **extra)
    if verbose:
        print(f"Done in {seconds:.0f}s. Samples: {folder.samples}; SavedModel: {folder.export_path()}", flush=True)
    return Run(folder.path, model)


def _continue_as_recorded(name, folder, previous, settings, verbose):
    """A resume rebuilds the entry from the YAML the run began with, not
    today's. Returns the defaults of a run that did not record them (from its
    model.keras; the settings stay as recorded), or None."""
    today, legacy = settings["entry_defaults"], None
    if "entry_defaults" in previous:
        settings["entry_defaults"] = previous["entry_defaults"]
    else:  # a run of a ganzoo that did not record its YAML
        del settings["entry_defaults"]
        recorded = runs.saved_model_options(folder.model_file)
        if recorded is None:
            return None
        legacy = {"model": recorded, "compile": today.get("compile", {})}
    now = legacy or settings["entry_defaults"]
    differ = sorted(k for k in {**today["model"], **now["model"]} if today["model"].get(k) != now["model"].get(k))
    if differ and verbose:
        print(f"{folder.path} continues with {name}'s options as the run began; today's YAML differs in "
              f"{', '.join(differ)}.", flush=True)
    return legacy


def _claim(folder, chief, settings, epochs, resume, force):
    """`(epochs done, the folder this process writes)`: the run itself on the
    chief; on another worker a scratch folder deleted at the end (it runs the
    same callbacks, whose reads of synchronised variables are collective)."""
    if chief:
        return folder.prepare(settings, epochs, resume=resume, force=force), folder
    return (0 if force else folder.epochs_done()), runs.RunFolder(tempfile.mkdtemp(prefix="ganzoo-worker-"))


def _training_data(cls, name, model, settings, options):
    """The entry's pipeline for the run's dataset, shaped as the model or its YAML says."""
    shape = tuple(model.data_shape if model is not None else
                  settings["overrides"].get("data_shape", (_defaults(settings, options) or {}).get("model", {}).get(
                      "data_shape", registry.model_config(name)["model"]["data_shape"])))
    image = len(shape) == 3
    return cls.training_data(
        settings["dataset"], settings["batch_size"], image_size=settings["image_size"] or (shape[0] if image else None),
        channels=shape[-1] if image else None, seed=settings["seed"], options=options,
    )


def _defaults(settings, options):
    """The entry's YAML as the run recorded it (or as a legacy run's model.keras says), or None: today's."""
    return settings.get("entry_defaults") or options.get("legacy_defaults")


def _build_model(cls, name, train_data, dataset_name, settings, jit_compile, defaults=None):
    """The entry built for the data: its sample shape (and, for cgan, its classes)."""
    data_shape = tuple(_first_spec(train_data.element_spec).shape[1:])
    model_args = {**cls.options_from_data(dataset_name), **settings["overrides"], "data_shape": data_shape}
    if jit_compile is not None:
        model_args["jit_compile"] = jit_compile
    return registry.build(name, defaults, **model_args)


def _requested_jit(name, settings, defaults, jit_compile):
    """What the run asks of XLA: the --jit/--no-jit flag, else --set jit_compile, else the entry's YAML."""
    if jit_compile is not None:
        return jit_compile
    if "jit_compile" in settings["overrides"]:
        return settings["overrides"]["jit_compile"]
    compile_section = (defaults or registry.model_config(name)).get("compile", {})
    return compile_section.get("jit_compile", "auto")


def _choose_xla(cls, name, model, train_data, dataset_name, settings, defaults, strategy, verbose):
    """`jit_compile: auto` decided by timing (`ganzoo.xla`); sets the model's
    jit_compile and returns what run.json records of the choice."""
    log = print if verbose else (lambda *args, **kwargs: None)
    gpu = bool(tf.config.list_logical_devices("GPU"))
    if not xla.enabled():
        return {"xla": bool(model.jit_compile), "source": "Keras' auto (XLA on GPU only): GANZOO_XLA_PROBE=0"}
    if isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy) or (
            strategy.num_replicas_in_sync > 1 and not gpu):
        # Workers would have to agree on the timing; XLA cannot place variables on several CPU devices.
        return {"xla": bool(model.jit_compile), "source": "Keras' auto: not measured with this strategy"}
    key = xla.cache_key(name, model.data_shape, settings["batch_size"], strategy.num_replicas_in_sync,
                        keras.mixed_precision.global_policy().name, config=model.get_config())
    first = train_data.take(1).cache()

    def build(on):
        probe = _build_model(cls, name, train_data, dataset_name, settings, on, defaults)
        if getattr(probe, "clusters", 0):  # timing the step needs no real clusters: skip k-means
            probe.clusters_fitted.assign(1)
        return probe

    use_xla, record = xla.choose(build, first, key, log=log)
    model.jit_compile = use_xla
    return record


def _announcement(name, model, settings, epochs, strategy, folder, done, chief):
    return (
        f"Training {name} on {settings['dataset']} {list(model.data_shape)} for {epochs} epochs "
        f"(batch {settings['batch_size']}, {strategy.num_replicas_in_sync} replica(s)"
        + (f", {settings['precision']}" if "precision" in settings else "")
        + (", XLA" if model.jit_compile else "")
        + f") -> {folder.path}"
        + (f", resuming after epoch {done}" if done else "")
        + ("" if chief else " (a non-chief worker: the chief writes the run)")
    )


class RunRecorder(keras.callbacks.Callback):
    """At each epoch's end: the history record, model.keras, then the
    checkpoint that marks the epoch done (`ganzoo.runs.RunFolder`)."""

    def __init__(self, folder):
        super().__init__()
        self.folder = folder

    def on_epoch_end(self, epoch, logs=None):
        self.folder.append_history(epoch + 1, logs)
        self.folder.save_model(self.model)
        self.folder.save_checkpoint(self.model, epoch + 1)


def _set_learning_rates(model, rates):
    for optimizer, rate in zip((model.g_optimizer, model.d_optimizer), rates):
        try:
            optimizer.learning_rate = rate
        except TypeError:  # a schedule: it computes its own rate from the restored step
            pass


def _strategy(strategy):
    if strategy is None:
        # Inside the caller's `strategy.scope()`, train with that strategy.
        return tf.distribute.get_strategy() if tf.distribute.has_strategy() else distribute.get_strategy("auto")
    if isinstance(strategy, str):
        return distribute.get_strategy(strategy)
    return strategy


def _positive(flag, value):
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{flag} must be a positive integer, got {value!r}.")
    return value


def _first_spec(spec):
    """The samples' spec in a dataset element: `x`, `(x, ...)` or `{"image": x, ...}`."""
    while isinstance(spec, (tuple, list, dict)):
        spec = spec.get("image", next(iter(spec.values()))) if isinstance(spec, dict) else spec[0]
    return spec


def _fingerprint(variables):
    digest = hashlib.sha256()
    for variable in variables:
        digest.update(variable.numpy().tobytes())
    return digest.hexdigest()[:16]
