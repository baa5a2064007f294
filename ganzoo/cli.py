"""The `ganzoo` command: list, train, sample, evaluate, export, serve."""

import argparse
import json
import shutil
import sys
import time
from pathlib import Path

from ganzoo.metrics.evaluation import METRICS, MODE_COVERAGE_SAMPLES, RUN_MODEL_FILE as MODEL_FILE

RUN_FILE = "run.json"
EXPORT_DIR = "saved_model"  # a run's export: <run>/saved_model/1 (TF Serving layout)


class UsageError(Exception):
    """A mistake in the command; printed without a traceback."""


def main(argv=None):
    parser = _parser()
    args = parser.parse_args(argv)
    if args.version:
        from ganzoo import __version__

        print(__version__)
        return 0
    if not getattr(args, "command", None):
        parser.print_help()
        return 2
    try:
        return args.run(args) or 0
    except (UsageError, FileExistsError, FileNotFoundError, ValueError, TypeError, RuntimeError) as error:
        print(f"ganzoo {args.command}: error: {error}", file=sys.stderr)
        return 2


def _parser():
    parser = argparse.ArgumentParser(prog="ganzoo", description="A GAN model zoo for TensorFlow / Keras 3.")
    parser.add_argument("--version", action="store_true", help="print the version and exit")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    p = commands.add_parser("list", help="list the registered models")
    p.set_defaults(run=cmd_list)

    p = commands.add_parser("train", help="train a model; resumes a killed run with the same command")
    p.add_argument("name", help="registry name (see `ganzoo list`)")
    p.add_argument("--dataset", help="digits, ring, grid, a folder of images, or a TFDS name (default: the model's)")
    p.add_argument("--epochs", type=int, help="total epochs (default: the model's)")
    p.add_argument("--batch-size", type=int, help="global batch size (default: the model's)")
    p.add_argument("--image-size", type=int, help="side of the training images (default: the model's)")
    p.add_argument("--out", help="run folder (default: runs/NAME)")
    p.add_argument("--seed", type=int, default=0, help="seed of weights, noise and shuffling (default 0)")
    p.add_argument("--strategy", default="auto",
                   help="auto (several GPUs: mirrored), default, mirrored, multiworker (TF_CONFIG) or tpu")
    p.add_argument("--mixed-precision", action="store_true",
                   help="compute in mixed_float16 on GPU, mixed_bfloat16 on CPU/TPU; weights stay float32")
    p.add_argument("--jit", action=argparse.BooleanOptionalAction, default=None,
                   help="compile the training step with XLA (default: the model's jit_compile)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override a model option, e.g. --set latent_dim=64 (repeatable; values are YAML)")
    p.add_argument("--eval-every", type=int, metavar="N",
                   help="score the generator every N epochs into history.json and TensorBoard (0: never; "
                        "default: the model's, on digits and the 2D mixtures)")
    p.add_argument("--resume", action="store_true", help="continue a finished run up to --epochs")
    p.add_argument("--force", action="store_true", help="delete an existing run folder and start over")
    p.set_defaults(run=cmd_train)

    p = commands.add_parser("sample", help="write a grid of samples from a run or a SavedModel")
    p.add_argument("source", help="a run folder, a SavedModel folder, or a model name for its shipped "
                                  "pretrained export (saved_models/NAME)")
    p.add_argument("--n", type=int, help="number of samples (default 64); for a conditional model, "
                                         "samples per class (default 8)")
    p.add_argument("--labels", help="conditional models: comma-separated classes, one row each "
                                    "(default: every class)")
    p.add_argument("--input", help="translation models: a folder of images to translate, shown before/after "
                                   "(default: held-out digits_style test digits)")
    p.add_argument("--direction", default="a2b", choices=("a2b", "b2a"),
                   help="translation models: a2b (G) or b2a (F) (default a2b)")
    p.add_argument("--seed", type=int, default=0, help="noise seed (default 0)")
    p.add_argument("--out", default="samples.png", help="PNG file to write (default samples.png)")
    p.add_argument("--force", action="store_true", help="overwrite --out if it exists")
    p.set_defaults(run=cmd_sample)

    p = commands.add_parser("evaluate", help="score a run or a SavedModel: FID, KID, IS, precision/recall, ...")
    p.add_argument("source", help="a run folder or a SavedModel folder")
    p.add_argument("--dataset", help="real data: digits, ring, grid, a folder or a TFDS name (default: the run's)")
    p.add_argument("--metrics", help=f"comma-separated, from: {', '.join(METRICS)} (default: all that apply)")
    p.add_argument("--n", type=int, help="generated samples (default 10000; 2500 on ring and grid)")
    p.add_argument("--split", default="test", help="split of the real data (default test: images the GAN never saw)")
    p.add_argument("--features", help="digits, inception, raw or a .keras model (default: digits on digits, "
                                      "raw for vectors, inception otherwise)")
    p.add_argument("--weights", help="InceptionV3 weights file (default: the Keras cache, ~/.keras/models)")
    p.add_argument("--seed", type=int, default=0, help="seed of the noise and of KID's subsets (default 0)")
    p.add_argument("--batch-size", type=int, default=250, help="batch of feature extraction (default 250)")
    p.add_argument("--out", help="JSON file (default: RUN/evaluation/DATASET-FEATURES.json, or "
                                 "evaluation-DATASET-FEATURES.json for a SavedModel)")
    p.add_argument("--force", action="store_true", help="overwrite --out if it exists")
    p.set_defaults(run=cmd_evaluate)

    p = commands.add_parser("export", help="export a run's model as a SavedModel for TF Serving")
    p.add_argument("run_dir", help="a run folder written by `ganzoo train`")
    p.add_argument("--out", required=True,
                   help="a base folder: writes OUT/NAME/N, N the next free version (TF Serving's layout); "
                        "or a version folder such as saved_models/dcgan/3")
    p.add_argument("--name", help="model name under OUT (default: the run's model, e.g. dcgan)")
    p.add_argument("--format", choices=("savedmodel", "tflite"), default="savedmodel",
                   help="tflite: also write VERSION/model.tflite (every signature), where the converter supports "
                        "the generator")
    p.add_argument("--force", action="store_true", help="replace an explicit version folder if it exists")
    p.set_defaults(run=cmd_export)

    p = commands.add_parser("serve", help="serve SavedModels with TF Serving's REST API")
    p.add_argument("base_dir", help="a folder of models in TF Serving's layout: BASE/NAME/VERSION/")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1: this machine only)")
    p.add_argument("--port", type=int, default=8501, help="port (default 8501, TF Serving's REST port)")
    p.add_argument("--max-batch", type=int, default=1024, help="largest batch a request may ask for (default 1024)")
    p.add_argument("--max-body-mb", type=float, default=16.0, help="largest request body in MB (default 16)")
    p.set_defaults(run=cmd_serve)
    return parser


# ---------------------------------------------------------------- list
def cmd_list(args):
    from ganzoo import registry

    for name in registry.list_models():
        config = registry.model_config(name)
        print(f"{name:10s} {config.get('description', '')}\n{'':10s} {config.get('paper', '')}")


# --------------------------------------------------------------- train
def cmd_train(args):
    import keras

    from ganzoo import distribute, registry

    config = registry.model_config(args.name)  # fails early on an unknown name
    defaults = config.get("train", {})
    overrides = _parse_overrides(args.set)
    registry.resolve_config(args.name, **overrides)  # fails early on a bad option
    settings = {
        "model": args.name,
        "dataset": args.dataset or defaults.get("dataset", "digits"),
        "batch_size": args.batch_size or defaults.get("batch_size", 64),
        "image_size": args.image_size or defaults.get("image_size"),
        "seed": args.seed,
        "overrides": overrides,
    }
    epochs = args.epochs or defaults.get("epochs", 10)
    for flag, value in (("--epochs", epochs), ("--batch-size", settings["batch_size"])):
        if value < 1:
            raise UsageError(f"{flag} must be at least 1, got {value}.")
    if args.eval_every is not None and args.eval_every < 0:
        raise UsageError(f"--eval-every must be 0 (never) or positive, got {args.eval_every}.")
    # First: MultiWorkerMirroredStrategy must exist before any other TF op.
    strategy = distribute.get_strategy(args.strategy)
    previous_policy = keras.mixed_precision.global_policy()
    if args.mixed_precision:
        keras.mixed_precision.set_global_policy(distribute.mixed_precision_policy())
        settings["precision"] = keras.mixed_precision.global_policy().name
    try:
        return _train(args, config, settings, overrides, epochs, strategy)
    finally:  # the policy is process-wide; leave it as it was
        keras.mixed_precision.set_global_policy(previous_policy)


def _train(args, config, settings, overrides, epochs, strategy):
    import keras
    import tensorflow as tf

    from ganzoo import callbacks, data, distribute, registry

    defaults = config.get("train", {})
    chief = distribute.is_chief(strategy)
    out = Path(args.out or Path("runs") / args.name)
    if chief:
        done = _prepare_run_dir(out, settings, epochs, args)
        files = out
    else:  # writes nothing in the run: its copies go to a folder deleted at the end
        done = 0 if args.force else _epochs_done(out)
        files = _worker_folder(out, fresh=args.force)

    keras.utils.set_random_seed(args.seed)
    model_shape = tuple(overrides.get("data_shape", config["model"]["data_shape"]))
    is_image = len(model_shape) == 3
    model_class = registry.model_class(args.name)
    conditional, translation = model_class.conditional, model_class.network_kind == "translation"
    loader = dict(
        image_size=settings["image_size"] or (model_shape[0] if is_image else None),
        channels=model_shape[-1] if is_image else None,
        batch_size=settings["batch_size"],
        seed=args.seed,
    )
    if args.jit and strategy.num_replicas_in_sync > 1 and not tf.config.list_logical_devices("GPU"):
        raise UsageError(
            "--jit with several CPU replicas fails: XLA cannot use variables placed on another logical device. "
            "Drop --jit, or use one device (--strategy default)."
        )
    with strategy.scope():
        if translation:
            augment = {key: defaults[key] for key in ("jitter", "flip") if key in defaults}
            dataset = data.load_unpaired(settings["dataset"], **loader, **augment)
        else:
            dataset = data.load(settings["dataset"], **loader, with_labels=conditional)
        if isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
            # In-memory datasets have no files to split between workers.
            options = tf.data.Options()
            options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
            dataset = dataset.with_options(options)
        images_spec = dataset.element_spec[0] if conditional or translation else dataset.element_spec
        model_args = {**overrides, "data_shape": tuple(images_spec.shape[1:])}
        if conditional and "num_classes" not in overrides:
            model_args["num_classes"] = data.num_classes(settings["dataset"]) or config["model"]["num_classes"]
        if args.jit is not None:
            model_args["jit_compile"] = args.jit
        model = registry.load(args.name, **model_args)
    data_shape = model.data_shape
    print(
        f"Training {args.name} on {settings['dataset']} {list(data_shape)} for {epochs} epochs "
        f"(batch {settings['batch_size']}, {strategy.num_replicas_in_sync} replica(s)"
        + (f", {settings['precision']}" if args.mixed_precision else "")
        + (", XLA" if model.jit_compile else "")
        + f") -> {out}"
        + (f", resuming after epoch {done}" if done else "")
        + ("" if chief else " (a non-chief worker: the chief writes the run)"),
        flush=True,
    )
    if chief:
        _write_run(out, settings, epochs, "running")
    if translation:
        evaluation = _translation_callbacks(settings["dataset"], args.eval_every, defaults, epochs)
        fixed = next(iter(data.load_unpaired(
            settings["dataset"], image_size=data_shape[0], channels=data_shape[-1], batch_size=8, shuffle=False,
            split="test" if settings["dataset"] in data.UNPAIRED_DATASETS else "train", jitter=False, flip=False,
        )))
        grid = callbacks.SampleGrid(files / "samples", log_dir=files / "logs" / "samples", translate=fixed)
    else:
        evaluation = _evaluation_callback(
            settings["dataset"], args.eval_every, defaults.get("eval_every", 0), conditional
        )
        grid = callbacks.SampleGrid(files / "samples", log_dir=files / "logs" / "samples")
    started = time.time()
    try:
        model.fit(
            dataset,
            epochs=epochs,
            shuffle=False,
            # The NaN check goes first, so a broken batch stops the run before
            # anything of its epoch is written; the backup goes last: an epoch
            # it records as done has its samples, history and model file.
            callbacks=[
                callbacks.StopOnNonFiniteLoss(backup_dir=out / "checkpoints"),
                grid,
                *evaluation,  # before the loggers, which record what it adds to the logs
                callbacks.HistoryFile(files / "history.json"),
                keras.callbacks.TensorBoard(files / "logs"),
                keras.callbacks.ModelCheckpoint(files / MODEL_FILE),
                keras.callbacks.BackupAndRestore(files / "checkpoints", delete_checkpoint=False),
            ],
        )
    except callbacks.NonFiniteLossError:
        if chief:
            _write_run(out, settings, epochs, "stopped: non-finite loss")
        raise
    finally:
        if not chief:
            shutil.rmtree(files, ignore_errors=True)
    if isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        # Equal on every worker when they trained in step: an easy check of a cluster.
        print(f"Worker weights fingerprint: {_fingerprint(model.weights)}", flush=True)
    if chief:
        export_path = model.export(out / EXPORT_DIR / "1", overwrite=True)
        _write_run(out, settings, epochs, "finished", seconds=round(time.time() - started, 1))
        print(f"Done in {time.time() - started:.0f}s. Samples: {out / 'samples'}; SavedModel: {export_path}")


def _fingerprint(variables):
    import hashlib

    digest = hashlib.sha256()
    for variable in variables:
        digest.update(variable.numpy().tobytes())
    return digest.hexdigest()[:16]


def _worker_folder(out, fresh):
    """A non-chief worker's scratch copy of the run, holding the chief's last
    backup so that a resumed run restores the same weights on every worker."""
    import tempfile

    folder = Path(tempfile.mkdtemp(prefix="ganzoo-worker-"))
    if not fresh and (out / "checkpoints").is_dir():
        shutil.copytree(out / "checkpoints", folder / "checkpoints")
    return folder


def _translation_callbacks(dataset, asked, defaults, epochs):
    """The paper's learning-rate decay, and label preservation on digits_style."""
    from ganzoo import callbacks
    from ganzoo.data import UNPAIRED_DATASETS

    chosen = [callbacks.LinearDecay(epochs, defaults.get("decay_from", 0.5))]
    every = asked if asked is not None else defaults.get("eval_every", 0)
    if every and dataset in UNPAIRED_DATASETS:
        chosen.append(callbacks.TranslationEvaluation(every))
    return chosen


def _evaluation_callback(dataset, asked, default, conditional=False):
    """The in-training evaluation: on when asked, or by the model's default on
    the datasets whose feature extractor needs no download."""
    from ganzoo import callbacks
    from ganzoo.data import MIXTURES

    every = asked if asked is not None else (default if dataset == "digits" or dataset in MIXTURES else 0)
    if not every:
        return []
    metrics = ("mode_coverage",) if dataset in MIXTURES else ("fid", "kid", "swd")
    if conditional and dataset == "digits":  # the digits classifier knows the classes
        metrics += ("conditional_accuracy",)
    n = MODE_COVERAGE_SAMPLES if dataset in MIXTURES else 1000
    return [callbacks.EvaluationCallback(dataset, metrics=metrics, every=every, n=n)]


def _parse_overrides(pairs):
    overrides = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise UsageError(f"--set takes KEY=VALUE, got {pair!r}.")
        target = overrides
        *parents, leaf = key.split(".")
        for parent in parents:
            target = target.setdefault(parent, {})
        target[leaf] = _yaml_value(value)
    return overrides


def _yaml_value(text):
    """A `--set` value as YAML, except that `1e-4` is a number: YAML 1.1 reads
    exponents without a dot (1.0e-4) only, and a learning rate as a string
    would fail far from the command line."""
    import yaml

    value = yaml.safe_load(text)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return value
    return value


def _prepare_run_dir(out, settings, epochs, args):
    """Check the run folder; returns the epochs already done (0 for a new run)."""
    run_file = out / RUN_FILE
    if out.exists() and args.force:
        shutil.rmtree(out)
    if not out.exists() or not any(out.iterdir()):
        out.mkdir(parents=True, exist_ok=True)
        return 0
    if not run_file.exists():
        raise UsageError(
            f"{out} exists and is not a ganzoo run. Choose another --out, or pass --force to delete it."
        )
    run = json.loads(run_file.read_text())
    wanted = json.loads(json.dumps(settings))  # as run.json stores it (tuples become lists)
    if run["settings"] != wanted:
        changed = [k for k in wanted if run["settings"].get(k) != wanted[k]]
        raise UsageError(
            f"{out} holds a run with other settings ({', '.join(changed)} differ: "
            f"{ {k: run['settings'].get(k) for k in changed} }). Choose another --out, or pass "
            "--force to delete it and start over."
        )
    done = _epochs_done(out)
    if run["status"] == "finished":
        if not args.resume:
            raise UsageError(
                f"{out} holds a finished run ({done} epochs). Pass --resume --epochs N (N > {done}) "
                "to train it further, --out for a new run, or --force to start over."
            )
        if epochs <= done:
            raise UsageError(f"{out} is already trained for {done} epochs; pass --epochs N with N > {done}.")
    elif done:
        print(f"{out}: an unfinished run stopped after epoch {done}; resuming it.", flush=True)
    return done


def _epochs_done(out):
    metadata = out / "checkpoints" / "training_metadata.json"
    return json.loads(metadata.read_text())["epoch"] if metadata.exists() else 0


def _write_run(out, settings, epochs, status, **extra):
    from ganzoo import __version__

    record = {"settings": settings, "epochs": epochs, "status": status, "ganzoo_version": __version__, **extra}
    (out / RUN_FILE).write_text(json.dumps(record, indent=2))


# -------------------------------------------------------------- sample
def cmd_sample(args):
    from ganzoo import visualize

    out = Path(args.out)
    if out.exists() and not args.force:
        raise UsageError(f"{out} exists; choose another --out or pass --force to overwrite it.")
    if args.n is not None and args.n < 1:
        raise UsageError(f"--n must be at least 1, got {args.n}.")
    from ganzoo.metrics import load_sampler
    from ganzoo.models.base import latent_noise

    sampler = load_sampler(_resolve_source(args.source))
    if getattr(sampler, "translate", None):
        if args.labels:
            raise UsageError(f"{args.source} translates images: it takes --input, not --labels.")
        inputs = _images_to_translate(args.input, args.direction, sampler.data_shape, args.n or 8)
        picture = visualize.before_after(inputs, sampler.translate(inputs, args.direction))
        what = f"{len(inputs)} images before and after {args.direction}"
    elif args.input:
        raise UsageError(f"{args.source} generates from noise: --input is for translation models (cyclegan).")
    elif sampler.num_classes:
        classes = _parse_labels(args.labels, sampler.num_classes)
        per_class = args.n or 8
        picture = visualize.class_grid(sampler.generate, sampler.latent_dim, classes, per_class, args.seed)
        what = f"{per_class} samples of each of the classes {', '.join(map(str, classes))} (a row each)"
    else:
        if args.labels:
            raise UsageError(f"{args.source} is not a conditional model: it takes no --labels.")
        n = args.n or 64
        picture = visualize.picture(sampler.generate(latent_noise(n, sampler.latent_dim, args.seed)))
        what = f"{n} samples"
    out.parent.mkdir(parents=True, exist_ok=True)
    picture.save(out)
    print(f"Wrote {what} to {out}")


def _resolve_source(source):
    """A run folder or SavedModel as given, or, for a registry name that is no
    folder here, the shipped pretrained export (`ganzoo sample dcgan`)."""
    from ganzoo import pretrained, registry

    if Path(source).exists() or source not in registry.list_models():
        return source
    path = pretrained.pretrained_path(source)
    print(f"Using the pretrained {source} in {path}", flush=True)
    return path


def _images_to_translate(folder, direction, data_shape, n):
    """Up to `n` images from `folder`, or from digits_style's held-out test digits."""
    import numpy as np

    from ganzoo import data

    if folder is None:
        from ganzoo.metrics.translation import held_out_domains

        a, b, _ = held_out_domains(data_shape[0])
        return (a if direction == "a2b" else b)[:n]
    if not Path(folder).is_dir():
        raise UsageError(f"--input {folder} is not a folder of images.")
    batches = data.load(folder, image_size=data_shape[0], channels=data_shape[-1], batch_size=n,
                        shuffle=False, drop_remainder=False).take(1)
    return np.concatenate(list(batches.as_numpy_iterator()))


def _parse_labels(text, num_classes):
    if not text:
        return list(range(num_classes))
    try:
        labels = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise UsageError(f"--labels takes comma-separated class numbers such as 0,1,2; got {text!r}.") from None
    bad = [label for label in labels if not 0 <= label < num_classes]
    if not labels or bad:
        raise UsageError(
            f"--labels must be classes in 0..{num_classes - 1}; got {text!r}"
            + (f" ({', '.join(map(str, bad))} out of range)." if bad else ".")
        )
    return labels


def _load_run_model(run_dir):
    import keras

    return keras.models.load_model(Path(run_dir) / MODEL_FILE)


# ------------------------------------------------------------ evaluate
def cmd_evaluate(args):
    from ganzoo import metrics

    source = Path(args.source)
    run_file = source / RUN_FILE
    dataset = args.dataset
    if dataset is None and run_file.exists():
        dataset = json.loads(run_file.read_text())["settings"]["dataset"]
    if dataset is None:
        raise UsageError(f"{source} is not a run folder: say which real data to compare with, e.g. --dataset digits.")
    names = [m.strip() for m in args.metrics.split(",") if m.strip()] if args.metrics else None
    for flag, value in (("--n", args.n), ("--batch-size", args.batch_size)):
        if value is not None and value < 2:
            raise UsageError(f"{flag} must be at least 2, got {value}.")
    sampler = metrics.load_sampler(source)
    if getattr(sampler, "translate", None):
        return _evaluate_translation(sampler, source, dataset, args)
    features = args.features or metrics.evaluation.default_features(dataset, sampler.data_shape)
    stem = f"{Path(str(dataset)).name}-{Path(str(features)).stem}.json"
    out = Path(args.out) if args.out else (
        source / "evaluation" / stem if run_file.exists() else Path(f"evaluation-{stem}")
    )
    if out.exists() and not args.force:
        raise UsageError(f"{out} exists; choose another --out or pass --force to overwrite it.")
    result = metrics.evaluate(
        sampler, dataset, metrics=names, n=args.n, features=features, split=args.split,
        seed=args.seed, batch_size=args.batch_size, weights=args.weights,
    )
    protocol = result["protocol"]
    print(
        f"\n{source} against {dataset}"
        + (f" ({protocol['split']} split)" if protocol["split"] else "")
        + f": {protocol['n_generated']} generated, {protocol['n_real']} real, {protocol['features']} features"
    )
    for key, value in result["metrics"].items():
        print(f"  {key:20s} {value:.4f}" if isinstance(value, float) else f"  {key:20s} {value}")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2))
    print(f"Wrote {out}")


def _evaluate_translation(translator, source, dataset, args):
    from ganzoo.data import UNPAIRED_DATASETS
    from ganzoo.metrics.translation import evaluate_translation

    if dataset not in UNPAIRED_DATASETS:
        raise UsageError(
            f"Translation metrics need labelled domains with a known style transform: --dataset "
            f"{' or '.join(UNPAIRED_DATASETS)}, not {dataset!r}."
        )
    out = Path(args.out) if args.out else (
        source / "evaluation" / f"{dataset}.json" if (source / RUN_FILE).exists() else Path(f"evaluation-{dataset}.json")
    )
    if out.exists() and not args.force:
        raise UsageError(f"{out} exists; choose another --out or pass --force to overwrite it.")
    result = evaluate_translation(translator, n=args.n)
    print(f"\n{source} on {dataset} (test split, {result['protocol']['n']} digits per domain)")
    for key, value in result["metrics"].items():
        print(f"  {key:24s} {value:.4f}")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2))
    print(f"Wrote {out}")


# -------------------------------------------------------------- export
def cmd_export(args):
    from ganzoo import export

    run_dir = Path(args.run_dir)
    if not (run_dir / MODEL_FILE).exists():
        raise UsageError(f"{run_dir} is not a run folder: it has no {MODEL_FILE}. Train one with `ganzoo train`.")
    model = _load_run_model(run_dir)
    out = Path(args.out)
    if out.name.isdigit():  # an explicit version folder
        if args.name:
            raise UsageError(f"--out {out} is a version folder already; --name is for a base folder.")
        target = out
    else:
        target = export.next_version_path(out, args.name or model.name)
    path = model.export(target, overwrite=args.force)
    print(f"Exported {run_dir} to {path} (TF Serving: --model_base_path={path.parent.resolve()} "
          f"--model_name={path.parent.name})")
    if args.format == "tflite":
        print(f"Wrote {export.write_tflite(path)}")


# --------------------------------------------------------------- serve
def cmd_serve(args):
    from ganzoo import serving

    if not Path(args.base_dir).is_dir():
        raise UsageError(f"{args.base_dir} is not a folder. Export models into it with "
                         f"`ganzoo export RUN --out {args.base_dir}`.")
    server = serving.make_server(args.base_dir, host=args.host, port=args.port, max_batch=args.max_batch,
                                 max_body_bytes=int(args.max_body_mb * 2**20))
    models = ", ".join(server.repository.names()) or "none yet"
    print(f"Serving {args.base_dir} ({models}) at http://{args.host}:{server.server_port}/v1/models/NAME "
          "(Ctrl-C stops)", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


if __name__ == "__main__":
    sys.exit(main())
