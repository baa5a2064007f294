"""The `ganzoo` command: list, train, sample, evaluate, stats, fid, export, serve.

Argument parsing and printing only: the work is the library's
(`ganzoo.training`, `ganzoo.loading`, `ganzoo.metrics`, `ganzoo.serving`).
TensorFlow is imported by the commands that need it, so `ganzoo --help` and
`ganzoo list` answer at once.
"""

import argparse
import errno
import os
import sys
import traceback
from pathlib import Path

from ganzoo import registry, runs

RESIZE_MODES = ("clean", "legacy_tensorflow", "legacy_pytorch")  # ganzoo.metrics.fid_inception's, without TF


class UsageError(Exception):
    """A mistake in the command; printed without a traceback."""


def main(argv=None):
    try:
        return _main(argv)
    except BrokenPipeError:  # `ganzoo list | head -3`: the reader left; nothing is wrong
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0


def _main(argv):
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
    except BrokenPipeError:  # the reader of our output left: `main` handles it
        raise
    except (UsageError, OSError, ValueError, TypeError, RuntimeError) as error:
        if args.debug:
            traceback.print_exc()
        print(f"ganzoo {args.command}: error: {_message(error)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"ganzoo {args.command}: interrupted", file=sys.stderr)
        return 130
    except Exception as error:  # noqa: BLE001 - a bug, not a mistake of the user's: say where to look
        if args.debug:
            traceback.print_exc()
        print(f"ganzoo {args.command}: internal error: {type(error).__name__}: {_message(error)}\n"
              f"Run it again as `ganzoo --debug {args.command} ...` for the traceback, and please report it.", file=sys.stderr)
        return 1


def _message(error):
    """The error's message, its first lines only (TensorFlow's run to pages)."""
    text = str(error).strip() or type(error).__name__
    if isinstance(error, OSError) and error.strerror and error.filename:
        text = f"{error.strerror}: {error.filename}"
    lines = text.splitlines()
    return "\n".join(lines[:6]) + ("\n..." if len(lines) > 6 else "")


MAX_PICTURE = 1024  # samples in one picture of `ganzoo sample`: more is no longer a picture


def bounded(low, high, kind=int):
    """An argparse type: a `kind` number in [low, high], or argparse's usage error naming both."""

    def parse(text):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {'an integer' if kind is int else 'a number'}, got {text!r}") from None
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"must be from {low} to {high}, got {text}")
        return value

    parse.__name__ = kind.__name__
    return parse


def _parser():
    parser = argparse.ArgumentParser(prog="ganzoo", description="A GAN model zoo for TensorFlow / Keras 3.")
    parser.add_argument("--version", action="store_true", help="print the version and exit")
    parser.add_argument("--debug", action="store_true", help="show the traceback of an error")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    p = commands.add_parser("list", help="list the registered models (and their presets)")
    p.add_argument("--presets", action="store_true", help="list each entry's presets for real datasets, with the "
                                                          "paper's number each should reach")
    p.set_defaults(run=cmd_list)

    p = commands.add_parser("train", help="train a model; resumes a killed run with the same command")
    p.add_argument("name", help="registry name (see `ganzoo list`)")
    p.add_argument("--dataset", help="digits, ring, grid, a folder of images, or a TFDS name (default: the model's)")
    p.add_argument("--preset", help="a paper's setting for a real dataset, e.g. `ganzoo train sngan --preset cifar10` "
                                    "(`ganzoo list --presets`; docs/reproduce.md)")
    p.add_argument("--epochs", type=bounded(1, 10**6), help="total epochs (default: the model's)")
    p.add_argument("--batch-size", type=bounded(1, 65536), help="global batch size (default: the model's)")
    p.add_argument("--image-size", type=bounded(1, 4096), help="side of the training images (default: the model's)")
    p.add_argument("--out", help="run folder (default: runs/NAME)")
    p.add_argument("--seed", type=bounded(0, 2**32 - 1), default=0, help="seed of weights, noise and shuffling (default 0)")
    p.add_argument("--strategy", default="auto",
                   help="auto (several GPUs: mirrored), default, mirrored, multiworker (TF_CONFIG) or tpu")
    p.add_argument("--mixed-precision", action="store_true",
                   help="compute in mixed_float16 on GPU, mixed_bfloat16 on CPU/TPU; weights stay float32")
    p.add_argument("--jit", action=argparse.BooleanOptionalAction, default=None,
                   help="compile the training step with XLA (default: the model's jit_compile)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override a model option, e.g. --set latent_dim=64 (repeatable; values are YAML)")
    p.add_argument("--eval-every", type=bounded(0, 10**6), metavar="N",
                   help="score the generator every N epochs into history.json and TensorBoard (0: never; "
                        "default: the model's, on digits and the 2D mixtures)")
    p.add_argument("--resume", action="store_true", help="continue a finished run up to --epochs")
    p.add_argument("--force", action="store_true", help="delete an existing run (only a folder ganzoo wrote) and start over")
    p.add_argument("--skip-corrupt", action="store_true",
                   help="image folders: skip files that cannot be read, with a warning (default: name them and stop)")
    p.set_defaults(run=cmd_train)

    p = commands.add_parser("sample", help="write a grid of samples from a run or a SavedModel")
    p.add_argument("source", help="a run folder, a SavedModel folder, or a model name for its shipped "
                                  "pretrained export (saved_models/NAME)")
    p.add_argument("--n", type=bounded(1, MAX_PICTURE), help="number of samples (default 64, at most 1024); for a conditional model, "
                                         "samples per class (default 8)")
    p.add_argument("--labels", help="conditional models: comma-separated classes, one row each "
                                    "(default: every class)")
    p.add_argument("--input", help="translation models: a folder of images to translate, shown before/after "
                                   "(default: held-out digits_style test digits)")
    p.add_argument("--direction", choices=("a2b", "b2a"),
                   help="translation models: a2b (G) or b2a (F) (default a2b)")
    p.add_argument("--seed", type=bounded(0, 2**32 - 1), default=0, help="noise seed (default 0)")
    p.add_argument("--out", default="samples.png", help="PNG file to write (default samples.png)")
    p.add_argument("--force", action="store_true", help="overwrite --out if it exists")
    p.set_defaults(run=cmd_sample)

    p = commands.add_parser("evaluate", help="score a run or a SavedModel: FID, KID, IS, precision/recall, ...")
    p.add_argument("source", help="a run folder or a SavedModel folder")
    p.add_argument("--dataset", help="real data: digits, ring, grid, a folder or a TFDS name (default: the run's)")
    p.add_argument("--metrics", help="comma-separated metric names, e.g. fid,kid,swd (default: all that apply; "
                                      "an unknown name lists the choices)")
    p.add_argument("--n", type=bounded(2, 10**7), help="generated samples (default 10000; 2500 on ring and grid)")
    p.add_argument("--split", default="test", help="split of the real data (default test: images the GAN never saw)")
    p.add_argument("--features", help="digits, fid_inception, inception, raw or a .keras model (default: digits on "
                                      "digits, raw for vectors, fid_inception otherwise)")
    p.add_argument("--weights", help="the Inception weights file (fid_inception: pt_inception-2015-12-05-6726825d.pth, "
                                     "default: looked for in ~/.cache/ganzoo and torch hub's checkpoints)")
    p.add_argument("--resize", choices=RESIZE_MODES,
                   help="fid_inception's resizing, as the tool that defines it: clean (clean-fid, the default), "
                        "legacy_tensorflow (TTUR, torch-fidelity) or legacy_pytorch (pytorch-fid)")
    p.add_argument("--reference-stats", metavar="FILE.npz",
                   help="compare with these mu/sigma (from `ganzoo stats`, TTUR or pytorch-fid) instead of --dataset")
    p.add_argument("--seed", type=bounded(0, 2**32 - 1), default=0, help="seed of the noise and of KID's subsets (default 0)")
    p.add_argument("--batch-size", type=bounded(2, 65536), default=250, help="batch of feature extraction (default 250)")
    p.add_argument("--out", help="JSON file (default: RUN/evaluation/DATASET-FEATURES.json, or "
                                 "evaluation-DATASET-FEATURES.json for a SavedModel)")
    p.add_argument("--force", action="store_true", help="overwrite --out if it exists")
    p.set_defaults(run=cmd_evaluate)

    p = commands.add_parser("stats", help="reference statistics (mu, sigma) of real images, for FID against them")
    p.add_argument("source", help="a folder of images (read at their own size, as pytorch-fid reads them) or a "
                                  "dataset name (digits, a TFDS name)")
    p.add_argument("--out", required=True, metavar="FILE.npz", help="where to write mu and sigma (TTUR's layout)")
    p.add_argument("--features", default="fid_inception", help="fid_inception (default), inception, digits or a "
                                                                ".keras model")
    p.add_argument("--weights", help="the Inception weights file (see `ganzoo evaluate --help`)")
    p.add_argument("--resize", choices=RESIZE_MODES, help="fid_inception's resizing (default clean)")
    p.add_argument("--image-size", type=bounded(1, 4096),
                   help="resize the source's images to this side first, as a generator of that size draws them "
                        "(default: their own size)")
    p.add_argument("--split", default="train", help="split of a dataset (default train)")
    p.add_argument("--n", type=bounded(2, 10**8), help="at most this many images (default: all)")
    p.add_argument("--batch-size", type=bounded(1, 65536), default=50, help="batch of feature extraction (default 50)")
    p.add_argument("--force", action="store_true", help="replace --out if it exists")
    p.set_defaults(run=cmd_stats)

    p = commands.add_parser("fid", help="the FID between two reference-statistics files (`ganzoo stats`, TTUR, pytorch-fid)")
    p.add_argument("stats", nargs=2, metavar="FILE.npz")
    p.set_defaults(run=cmd_fid)

    p = commands.add_parser("export", help="export a run's model as a SavedModel for TF Serving")
    p.add_argument("run_dir", help="a run folder written by `ganzoo train`")
    p.add_argument("--out", required=True,
                   help="a base folder: writes OUT/NAME/N, N the next free version (TF Serving's layout); "
                        "or a version folder such as saved_models/dcgan/3")
    p.add_argument("--name", help="model name under OUT (default: the run's model, e.g. dcgan)")
    p.add_argument("--format", choices=("savedmodel", "tflite", "onnx"), default="savedmodel",
                   help="tflite: also write VERSION/model.tflite (every signature), where the converter supports "
                        "the generator; onnx: also VERSION/onnx/SIGNATURE.onnx, checked with onnxruntime "
                        "(pip install 'ganzoo[onnx]')")
    p.add_argument("--force", action="store_true", help="replace an explicit version folder if it exists")
    p.set_defaults(run=cmd_export)

    p = commands.add_parser("serve", help="serve SavedModels with TF Serving's REST and gRPC APIs")
    p.add_argument("base_dir", help="a folder of models in TF Serving's layout: BASE/NAME/VERSION/")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1: this machine only)")
    p.add_argument("--port", type=bounded(0, 65535), default=8501, help="REST port (default 8501, TF Serving's)")
    p.add_argument("--grpc-port", type=bounded(0, 65535), help="also serve TF Serving's gRPC API on this port "
                   "(TF Serving's is 8500); needs: pip install --no-deps tensorflow-serving-api")
    p.add_argument("--max-batch", type=bounded(1, 2**20), default=1024, help="largest batch a request may ask for (default 1024)")
    p.add_argument("--max-body-mb", type=bounded(0.001, 4096.0, float), default=16.0, help="largest request body in MB (default 16)")
    p.add_argument("--version-policy", type=version_policy, default="latest",
                   help="which versions to serve: latest (default), latest:N, all, or numbers such as 1,3")
    p.add_argument("--version-label", action="append", default=[], metavar="NAME:LABEL=N", type=version_label,
                   help="a version label for /labels/LABEL and gRPC's version_label (repeatable)")
    p.add_argument("--poll-seconds", type=bounded(0.05, 3600.0, float), default=1.0,
                   help="how often to look for new or fixed versions (default 1)")
    batching = p.add_argument_group("dynamic batching (TF Serving's batching parameters)")
    batching.add_argument("--batching", action="store_true", help="join concurrent requests into one call")
    batching.add_argument("--max-batch-size", type=bounded(1, 2**20), default=1000,
                          help="examples per joined call (default 1000)")
    batching.add_argument("--batch-timeout-micros", type=bounded(0, 10**7), default=0,
                          help="how long a batch waits to fill (default 0: it holds what queued meanwhile)")
    batching.add_argument("--num-batch-threads", type=bounded(0, 1024), default=0,
                          help="joined calls at once (default 0: one per CPU core)")
    batching.add_argument("--max-enqueued-batches", type=bounded(1, 10**6), default=10,
                          help="batches that may wait before requests get UNAVAILABLE (default 10)")
    p.set_defaults(run=cmd_serve)
    return parser


# ---------------------------------------------------------------- list
def cmd_list(args):
    if args.presets:
        for name, presets in registry.list_presets().items():
            for preset in presets:
                config = registry.preset_config(name, preset)
                target = config.get("target", {})
                print(f"{name} --preset {preset}\n    {config.get('description', '')}\n    target: "
                      f"{target.get('metric', '')} {target.get('value', '')} ({target.get('source', '')})")
        return
    for name in registry.list_models():
        try:
            config = registry.model_config(name)
        except (ValueError, OSError) as error:  # a broken plugin: say so, and list the others
            print(f"{name:10s} (cannot be used: {error})")
            continue
        print(f"{name:10s} {config.get('description', '')}\n{'':10s} {config.get('paper', '')}")


# --------------------------------------------------------------- train
def cmd_train(args):
    from ganzoo import training

    training.start(
        args.name, dataset=args.dataset, epochs=args.epochs, out=args.out,
        resume=True if args.resume else "auto", strategy=args.strategy, force=args.force,
        batch_size=args.batch_size, image_size=args.image_size, seed=args.seed, eval_every=args.eval_every,
        mixed_precision=args.mixed_precision, jit_compile=args.jit, overrides=_parse_overrides(args.set),
        skip_corrupt=args.skip_corrupt, preset=args.preset,
    )


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

    try:
        value = yaml.safe_load(text)
    except yaml.YAMLError as error:
        problem = getattr(error, "problem", None) or "not valid YAML"
        raise UsageError(f"--set value {text!r} is not valid YAML ({problem}); quote it or write it as "
                         "KEY=VALUE with a number, a word, [a, list] or {key: value}.") from None
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return value
    return value


# -------------------------------------------------------------- sample
def cmd_sample(args):
    out = Path(args.out)
    if out.exists() and not args.force:
        raise UsageError(f"{out} exists; choose another --out or pass --force to overwrite it.")
    if args.n is not None and args.n < 1:
        raise UsageError(f"--n must be at least 1, got {args.n}.")
    from ganzoo import loading

    path = loading.resolve_source(args.source)
    if path != Path(args.source):
        print(f"Using the pretrained {args.source} in {path}", flush=True)
    sampler = loading.open_sampler(path)
    labels = _parse_labels(args.labels) if args.labels else None
    inputs = _images(args.input, sampler.data_shape, args.n or 8) if args.input else None
    picture, what = sampler.picture(n=args.n, seed=args.seed, labels=labels, inputs=inputs, direction=args.direction)
    out.parent.mkdir(parents=True, exist_ok=True)
    picture.save(out)
    print(f"Wrote {what} to {out}")


def _images(folder, data_shape, n):
    """Up to `n` images from `folder`, shaped as `data_shape`."""
    import numpy as np

    from ganzoo import data

    if not Path(folder).is_dir():
        raise UsageError(f"--input {folder} is not a folder of images.")
    batches = data.load(folder, image_size=data_shape[0], channels=data_shape[-1], batch_size=n,
                        shuffle=False, drop_remainder=False).take(1)
    return np.concatenate(list(batches.as_numpy_iterator()))


def _parse_labels(text):
    try:
        labels = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise UsageError(f"--labels takes comma-separated class numbers such as 0,1,2; got {text!r}.") from None
    if not labels:
        raise UsageError(f"--labels takes comma-separated class numbers such as 0,1,2; got {text!r}.")
    return labels


# ------------------------------------------------------------ evaluate
def cmd_evaluate(args):
    source = Path(args.source)
    is_run = runs.is_run(source)
    reference = args.reference_stats
    if reference and args.dataset:
        raise UsageError("Give --dataset or --reference-stats, not both: the statistics are the real data.")
    dataset = args.dataset or (runs.RunFolder(source).settings()["dataset"] if is_run else None)
    if dataset is None and not reference:
        raise UsageError(f"{source} is not a run folder: say which real data to compare with, e.g. --dataset digits "
                         "(or --reference-stats FILE.npz).")
    names = [m.strip() for m in args.metrics.split(",") if m.strip()] if args.metrics else None
    for flag, value in (("--n", args.n), ("--batch-size", args.batch_size)):
        if value is not None and value < 2:
            raise UsageError(f"{flag} must be at least 2, got {value}.")
    from ganzoo import loading, metrics

    sampler = loading.open_sampler(source)
    features = args.features or (None if reference else sampler.default_features(dataset))
    stem = (Path(reference).stem if reference else Path(str(dataset)).name) + (
        f"-{Path(str(features)).stem}" if features else "") + ".json"
    out = Path(args.out) if args.out else (
        runs.RunFolder(source).evaluation / stem if is_run else Path(f"evaluation-{stem}")
    )
    if out.exists() and not args.force:
        raise UsageError(f"{out} exists; choose another --out or pass --force to overwrite it.")
    result = metrics.evaluate(
        sampler, dataset, metrics=names, n=args.n, features=features, split=args.split,
        seed=args.seed, batch_size=args.batch_size, weights=args.weights, resize=args.resize,
        reference_stats=reference,
    )
    protocol = result["protocol"]
    if "n_generated" in protocol:
        real = f"{protocol['n_real']} real" if protocol.get("n_real") is not None else "reference statistics"
        counts = f"{protocol['n_generated']} generated, {real}, {protocol['features']} features"
    else:
        counts = f"{protocol['n']} per domain"
    if protocol.get("resize"):
        counts += f", resize {protocol['resize']}"
    split = f" ({protocol['split']} split)" if protocol.get("split") else ""
    print(f"\n{source} against {reference or dataset}{split}: {counts}")
    for key, value in result["metrics"].items():
        print(f"  {key:24s} {value:.4f}" if isinstance(value, float) else f"  {key:24s} {value}")
    runs.write_json(out, result)
    print(f"Wrote {out}")


def cmd_stats(args):
    out = Path(args.out)
    if out.suffix != ".npz":
        raise UsageError(f"--out must name an .npz file (TTUR's and pytorch-fid's layout), got {out}.")
    if out.exists() and not args.force:
        raise UsageError(f"{out} exists; choose another --out or pass --force to replace it.")
    if args.resize and args.features != "fid_inception":
        raise UsageError("--resize is a choice of --features fid_inception.")
    from ganzoo.metrics import evaluation, stats

    result = evaluation.reference_statistics(
        args.source, features=args.features, weights=args.weights, resize=args.resize, image_size=args.image_size,
        split=args.split, n=args.n, batch_size=args.batch_size,
    )
    stats.save(out, result, force=args.force)
    mode = f", resize {result['resize']}" if result.get("resize") else ""
    print(f"{args.source}: {result['n']} images, {result['features']} features ({len(result['mu'])}-d){mode}\n"
          f"Wrote {out} (mu, sigma)")


def cmd_fid(args):
    from ganzoo.metrics import stats
    from ganzoo.metrics.distances import frechet_distance_from_statistics

    (mu_a, sigma_a, info_a), (mu_b, sigma_b, info_b) = (stats.load(path) for path in args.stats)
    for key in ("features", "resize", "weights_sha256"):
        if info_a.get(key) and info_b.get(key) and info_a[key] != info_b[key]:
            raise UsageError(f"The two files differ in {key} ({info_a[key]} and {info_b[key]}): their FID would "
                             "compare different measurements. Make both with the same --features, --resize, --weights.")
    if len(mu_a) != len(mu_b):
        raise UsageError(f"The files hold statistics of {len(mu_a)}-d and {len(mu_b)}-d features.")
    print(f"FID {frechet_distance_from_statistics(mu_a, sigma_a, mu_b, sigma_b):.4f}")


# -------------------------------------------------------------- export
def cmd_export(args):
    from ganzoo import export, loading

    run_dir = Path(args.run_dir)
    model = loading.open_model(run_dir)
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
    if args.format == "onnx":
        try:
            written = export.write_onnx(path)
        except ImportError as error:
            raise UsageError(f"{error} The SavedModel at {path} is written.") from None
        for signature, (onnx_path, difference) in written.items():
            print(f"Wrote {onnx_path} ({signature}; onnxruntime within {difference:.1e} of the SavedModel)")


# --------------------------------------------------------------- serve
def version_policy(text):
    from ganzoo.serving.repository import VersionPolicy  # no TensorFlow: parsing stays fast

    try:
        return VersionPolicy.parse(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def version_label(text):
    name, _, rest = text.partition(":")
    label, _, number = rest.partition("=")
    if not (name and label and number.isascii() and number.isdigit()):
        raise argparse.ArgumentTypeError(f"expected NAME:LABEL=VERSION such as dcgan:stable=1, got {text!r}")
    return name, label, int(number)


def cmd_serve(args):
    if not Path(args.base_dir).is_dir():
        raise UsageError(f"{args.base_dir} is not a folder. Export models into it with "
                         f"`ganzoo export RUN --out {args.base_dir}`.")
    from ganzoo import serving

    labels = {}
    for name, label, number in args.version_label:
        labels.setdefault(name, {})[label] = number
    batching = None
    if args.batching:
        batching = serving.BatchingParameters(args.max_batch_size, args.batch_timeout_micros, args.num_batch_threads,
                                              args.max_enqueued_batches)
    try:
        server = serving.make_server(args.base_dir, host=args.host, port=args.port, grpc_port=args.grpc_port,
                                     max_batch=args.max_batch, max_body_bytes=int(args.max_body_mb * 2**20),
                                     batching=batching, policy=args.version_policy, labels=labels,
                                     poll_seconds=args.poll_seconds)
    except ImportError as error:  # gRPC without tensorflow-serving-api's protos
        raise UsageError(str(error)) from None
    except OSError as error:
        port = args.grpc_port if "gRPC" in str(error) else args.port
        if error.errno == errno.EADDRINUSE:
            raise UsageError(f"Port {port} on {args.host} is in use (another server?): stop it, or choose "
                             "another port.") from None
        if error.errno in (errno.EACCES, errno.EADDRNOTAVAIL):
            raise UsageError(f"Cannot listen on {args.host}:{port} ({error.strerror}): choose another "
                             "--host or a port above 1023.") from None
        raise
    states = [f"{name} {version}: {state.state}" + (f" ({state.error_message})" if state.error_message else "")
              for name in server.repository.names() for version, state in server.repository.status(name)]
    grpc = f", gRPC on {args.host}:{server.grpc_port}" if server.grpc_port else ""
    print(f"Serving {args.base_dir} at http://{args.host}:{server.server_port}/v1/models/NAME{grpc} "
          f"({'; '.join(states) or 'no models yet'}). Ctrl-C stops.", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


if __name__ == "__main__":
    sys.exit(main())
