"""SavedModel export with named serving signatures for TF Serving."""

import errno
import json
import os
import shutil
from pathlib import Path

import keras

from ganzoo import files


def export_model(model, filepath, overwrite=False, verbose=False):
    """Write `model` as a SavedModel at `filepath`.

    The signatures come from `model.serving_endpoints()` (for every entry at
    least `serving_default`, returning a dict with `images`); only the weights
    of `model.exported_networks()` are written. TF Serving expects the layout
    `<base>/<model_name>/<version>/`, e.g. `saved_models/dcgan/1`.

    An existing non-empty `filepath` is an error unless `overwrite=True`.
    """
    path = Path(filepath)
    if path.exists() and (not path.is_dir() or any(path.iterdir())) and not overwrite:
        raise FileExistsError(
            f"{path} already exists. Choose another path (the next version "
            f"number, e.g. {next_version_path(path.parent.parent, path.parent.name)}) or pass "
            "overwrite=True (--force on the command line) to replace it."
        )
    # Written beside the target and renamed into place: a kill leaves either
    # the old export or the new one, never half of one (TF Serving would load it).
    path.parent.mkdir(parents=True, exist_ok=True)
    _recover(path)
    partial = path.with_name(f".{path.name}.partial-{os.getpid()}")
    shutil.rmtree(partial, ignore_errors=True)
    try:
        _write_archive(model, partial, verbose)
        files.sync_tree(partial)
    except BaseException as error:
        shutil.rmtree(partial, ignore_errors=True)
        if "No space left on device" in str(error) and not isinstance(error, OSError):  # TensorFlow's own error
            raise OSError(errno.ENOSPC, "No space left on device", os.fspath(path)) from None
        raise
    if path.exists():
        # A directory cannot be renamed over another: move the old one aside
        # first. A kill between the two renames is undone by `_recover`.
        old = path.with_name(f".{path.name}.replaced-{os.getpid()}")
        if path.is_dir():
            path.replace(old)
        else:
            path.unlink()
        partial.replace(path)
        shutil.rmtree(old, ignore_errors=True)
    else:
        partial.replace(path)
    files.sync_dir(path.parent)
    for stale in path.parent.glob(f".{path.name}.partial-*"):  # what earlier, killed exports left
        shutil.rmtree(stale, ignore_errors=True)
    return path


def _recover(path):
    """After a kill between moving an old export aside and moving the new one
    in, the old one is put back, so a version folder is never missing."""
    if path.exists():
        for stale in path.parent.glob(f".{path.name}.replaced-*"):
            shutil.rmtree(stale, ignore_errors=True)
        return
    for aside in sorted(path.parent.glob(f".{path.name}.replaced-*")):
        if (aside / "saved_model.pb").exists():
            aside.replace(path)
            return


def _write_archive(model, path, verbose):
    archive = keras.export.ExportArchive()
    # No `archive.track(network)`: the endpoints track the variables they use,
    # and tracking the Keras variables as well writes every value twice (a
    # 4.9 MB generator became a 9.8 MB export). The named collections, of
    # the same underlying tf.Variables, let `ganzoo.load(name,
    # pretrained=True)` put the weights back (`weights_<i>`: network i).
    for index, network in enumerate(model.exported_networks()):
        archive.add_variable_collection(f"weights_{index}", [v.value for v in network.weights])
    for name, (function, input_signature) in model.serving_endpoints().items():
        archive.add_endpoint(name=name, fn=_with_uint8(function), input_signature=input_signature)
    archive.write_out(os.fspath(path), verbose=verbose)
    # A small description next to the graph so tools need not parse it.
    (path / "assets").mkdir(exist_ok=True)
    (path / "assets" / "ganzoo.json").write_text(
        json.dumps(
            {
                "model": model.name,
                "class": type(model).__name__,
                "latent_dim": model.latent_dim,
                "data_shape": list(model.data_shape),
                "num_classes": model.num_classes,
                "signatures": sorted(model.serving_endpoints()),
            },
            indent=2,
        )
    )


def _with_uint8(function):
    """`function` with a second output `images_uint8`: the images mapped from
    [-1, 1] to [0, 255] and rounded, for clients that want pictures."""
    import tensorflow as tf

    def serve(*inputs):
        outputs = dict(function(*inputs))
        pixels = (tf.clip_by_value(outputs["images"], -1.0, 1.0) + 1.0) * 127.5
        return {**outputs, "images_uint8": tf.cast(tf.round(pixels), tf.uint8)}

    return serve


def versions(model_dir):
    """The version numbers under `<base>/<name>/` that hold a SavedModel, ascending."""
    folder = Path(model_dir)
    if not folder.is_dir():
        return []
    # ASCII digits only: "²".isdigit() is True, and int("²") fails.
    return sorted(int(p.name) for p in folder.iterdir()
                  if p.name.isascii() and p.name.isdigit() and (p / "saved_model.pb").is_file())


def next_version_path(base, name):
    """`<base>/<name>/<N>`, N one more than any version folder there (even an
    unfinished one), so an export never lands on an existing version."""
    folder = Path(base) / name
    taken = [int(p.name) for p in folder.iterdir() if p.name.isdigit()] if folder.is_dir() else []
    return folder / str(max(taken, default=0) + 1)


def load_serving(path):
    """Load a SavedModel written by `export_model`; returns `(loaded, info)`.

    `info` has `latent_dim` and `data_shape`, read from the signature itself so
    that any SavedModel with a `z` input works.
    """
    import tensorflow as tf

    path = Path(path)
    if not (path / "saved_model.pb").exists():
        raise FileNotFoundError(
            f"{path} is not a SavedModel (no saved_model.pb). Give the version "
            "folder, e.g. saved_models/dcgan/1, or a run folder."
        )
    try:
        loaded = tf.saved_model.load(os.fspath(path))
    except Exception as error:  # a corrupt or truncated saved_model.pb or variables file
        first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise ValueError(f"{path} cannot be loaded as a SavedModel ({first}). It may be truncated or corrupt: "
                         "export it again (ganzoo export RUN --out BASE).") from None
    if "serving_default" not in loaded.signatures:
        raise ValueError(f"{path} has no serving_default signature: it is not a ganzoo export.")
    serve = loaded.signatures["serving_default"]
    inputs = serve.structured_input_signature[1]
    info = {}
    meta = path / "assets" / "ganzoo.json"
    if meta.exists():
        info.update(json.loads(meta.read_text()))
    if "z" in inputs:
        info["latent_dim"] = int(inputs["z"].shape[-1])
    return loaded, info


def write_tflite(saved_model_dir, filename="model.tflite"):
    """Convert every signature of a SavedModel to a TFLite model inside it.

    Uses TFLite's built-in ops only, so the file runs on the plain TFLite
    runtime; a generator with ops it lacks raises
    ValueError naming them, and the SavedModel stays as it is.
    """
    import tensorflow as tf

    path = Path(saved_model_dir) / filename
    converter = tf.lite.TFLiteConverter.from_saved_model(os.fspath(saved_model_dir))
    try:
        files.write_atomically(path, converter.convert())  # a kill leaves no half-written model.tflite
    except Exception as error:  # the converter raises ConverterError with MLIR details
        text = str(error)
        unsupported = next((line.strip() for line in text.splitlines() if "TF Select ops:" in line), "")
        raise ValueError(
            f"TFLite cannot convert {saved_model_dir} with its built-in ops"
            + (f" ({unsupported})" if unsupported else "")
            + "; the SavedModel is written and serves as usual."
        ) from None
    return path


def write_onnx(saved_model_dir, opset=17, atol=1e-4):
    """Convert every signature of a SavedModel to `VERSION/onnx/<signature>.onnx`
    with tf2onnx, and check each with onnxruntime against the SavedModel.

    The batch dimension stays dynamic (named `batch`). An input whose name
    is also an output's (cyclegan's `images`) is renamed `<name>_in`, since
    ONNX names are unique in a graph. Integer `labels` below zero are mapped
    out of range, so ONNX's Gather (which wraps negative indices) errors as
    the SavedModel's range assertion does, which tf2onnx drops. A signature
    that does not convert, or whose outputs differ by more than `atol`,
    raises ValueError; nothing is left of it. Returns `{signature: (path, max
    abs difference)}`.
    """
    try:
        import onnx
        import onnxruntime
        import tf2onnx
    except ImportError as error:
        raise ImportError(f'ONNX export needs tf2onnx, onnx and onnxruntime: pip install "ganzoo[onnx]" '
                          f"({error.name} is missing).") from None
    import numpy as np
    import tensorflow as tf

    loaded = tf.saved_model.load(os.fspath(saved_model_dir))  # kept alive: the signatures use its variables
    folder = Path(saved_model_dir) / "onnx"
    folder.mkdir(exist_ok=True)
    written = {}
    for name, signature in sorted(loaded.signatures.items()):
        specs = signature.structured_input_signature[1]
        keys = sorted(specs)
        outputs = set(signature.structured_outputs)
        onnx_names = [f"{key}_in" if key in outputs else key for key in keys]

        def call(*args, signature=signature, keys=keys):
            inputs = dict(zip(keys, args))
            if "labels" in inputs and inputs["labels"].dtype.is_integer:
                inputs["labels"] = tf.where(inputs["labels"] < 0, inputs["labels"].dtype.max, inputs["labels"])
            return signature(**inputs)

        input_signature = [tf.TensorSpec(specs[k].shape, specs[k].dtype, name=n) for k, n in zip(keys, onnx_names)]
        try:
            proto, _ = tf2onnx.convert.from_function(tf.function(call), input_signature=input_signature, opset=opset)
            for value in [*proto.graph.input, *proto.graph.output]:
                dims = value.type.tensor_type.shape.dim
                if dims and not dims[0].HasField("dim_value"):
                    dims[0].dim_param = "batch"
            onnx.checker.check_model(proto)
            data = proto.SerializeToString()
            session = onnxruntime.InferenceSession(data, providers=["CPUExecutionProvider"])
        except Exception as error:  # tf2onnx writes unconvertible ops into the graph rather than raising
            raise ValueError(f"Signature {name} of {saved_model_dir} does not convert to ONNX: "
                             f"{str(error).strip().splitlines()[0][:300]}") from None
        feeds = _sample_inputs(specs, np.random.default_rng(0))
        expected = {k: v.numpy() for k, v in signature(**{k: tf.constant(v) for k, v in feeds.items()}).items()}
        got = dict(zip([o.name for o in session.get_outputs()],
                       session.run(None, {n: feeds[k] for k, n in zip(keys, onnx_names)})))
        difference = max(float(np.max(np.abs(got[k].astype(np.float64) - expected[k].astype(np.float64))))
                         for k in expected if expected[k].dtype.kind == "f")
        if difference > atol:
            raise ValueError(f"Signature {name}: the ONNX outputs differ from the SavedModel's by {difference:.2e} "
                             f"(more than {atol:g}); not written.")
        path = folder / f"{name}.onnx"
        files.write_atomically(path, data)
        written[name] = (path, difference)
    return written


def _sample_inputs(specs, rng, batch=4):
    """A batch for each input: normal floats, class ids 0..3 for integers."""
    import numpy as np

    feeds = {}
    for key, spec in specs.items():
        shape = [batch if d is None else d for d in spec.shape]
        dtype = spec.dtype.as_numpy_dtype
        if spec.dtype.is_integer:
            feeds[key] = (np.arange(int(np.prod(shape))) % 3).reshape(shape).astype(dtype)
        else:
            feeds[key] = np.clip(rng.standard_normal(shape), -1, 1).astype(dtype)
    return feeds
