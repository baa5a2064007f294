"""`jit_compile: auto`, decided by measurement on the machine that trains.

Whether XLA speeds a GAN's step depends on the machine, not on the device
type: on one AVX-512 CPU it measured 0.73-1.08x, on an AVX2-only one 1.4-1.5x
(issue 22 of this project). So at the start of `ganzoo.train`, a run whose
entry says `auto` (and no `--jit`/`--no-jit`) times a few steps of a
throwaway copy of the model each way on the run's first batch and keeps the
faster. The choice is cached per machine, TensorFlow version, entry, sample
shape, batch, replicas, precision and model settings (`$GANZOO_CACHE/xla_choices.json`), so
only a run's first start pays for it (two traces, a few seconds), and it is
recorded in `run.json` (`xla`) and printed.

`GANZOO_XLA_PROBE=0` turns the measurement off (then `auto` is Keras' rule:
XLA on GPU, off on CPU); the test suite does, to keep its runs short.
"""

import hashlib
import json
import os
import platform
import time
from pathlib import Path

import tensorflow as tf

from ganzoo.files import write_atomically

CACHE_FILE = "xla_choices.json"
# XLA must be clearly faster: within 5 % is noise, and the plain graph traces sooner.
MARGIN = 0.95
WARMUP_STEPS = 2
TIMED_STEPS = 10


def enabled():
    return os.environ.get("GANZOO_XLA_PROBE", "1").strip().lower() not in ("0", "false", "no", "off")


def machine_signature():
    """What makes one machine's timings another's: CPU model and flags, accelerators."""
    cpu = platform.processor() or platform.machine()
    flags = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name") and cpu in (platform.machine(), ""):
                cpu = line.split(":", 1)[1].strip()
            elif line.startswith("flags"):
                flags = line.split(":", 1)[1].strip()
                break
    except OSError:  # not Linux: the processor name is all there is
        pass
    gpus = []
    for device in tf.config.list_physical_devices("GPU"):
        try:
            gpus.append(tf.config.experimental.get_device_details(device).get("device_name", device.name))
        except (ValueError, RuntimeError):
            gpus.append(device.name)
    digest = hashlib.sha256(flags.encode()).hexdigest()[:12]
    return f"{cpu} (flags {digest}) {os.cpu_count()} cpus" + (f", {', '.join(gpus)}" if gpus else "")


def threads():
    """TensorFlow's intra-op threads, which change which mode is faster (XLA's
    fusion pays more where a thread has more ops of its own to run)."""
    return tf.config.threading.get_intra_op_parallelism_threads() or os.environ.get("TF_NUM_INTRAOP_THREADS", "default")


def cache_key(entry, data_shape, batch_size, replicas, precision, config=None):
    """The cache's key; `config` (the model's `get_config()`) tells apart runs
    of one entry with different overrides (width, clusters, augmentation)."""
    parts = [machine_signature(), tf.__version__, str(entry), "x".join(map(str, data_shape)),
             f"batch {batch_size}", f"{replicas} replicas", str(precision), f"threads {threads()}"]
    if config is not None:
        settings = {k: v for k, v in config.items() if k not in ("seed", "name", "trainable", "dtype")}
        parts.append(hashlib.sha256(json.dumps(settings, sort_keys=True, default=str).encode()).hexdigest()[:12])
    return "|".join(parts)


def seconds_per_step(model, dataset, warmup=WARMUP_STEPS, steps=TIMED_STEPS):
    """Wall seconds of one `fit` step of `model` on `dataset` (one batch,
    repeated), after `warmup` steps that trace and compile."""
    repeated = dataset.repeat()
    model.fit(repeated, steps_per_epoch=warmup, epochs=1, shuffle=False, verbose=0)
    start = time.perf_counter()
    model.fit(repeated, steps_per_epoch=steps, epochs=1, shuffle=False, verbose=0)
    return (time.perf_counter() - start) / steps


def choose(build, dataset, key, cache_dir=None, measure=None, log=print):
    """`(use_xla, record)`: XLA or not for `key`, from the cache or measured.

    Args:
        build: `build(jit_compile) -> model`, a fresh compiled copy to time
            (the run's own model is never stepped).
        dataset: one batch of the run's data, as a `tf.data.Dataset`.
        key: `cache_key(...)`.
        measure: `measure(model, dataset) -> seconds per step` (tests stub it).
    """
    measure = measure or seconds_per_step
    path = _cache_path(cache_dir)
    cached = _read(path).get(key)
    if cached is not None:
        record = {**cached, "source": f"measured earlier on this machine ({path})"}
        log(f"XLA {'on' if record['xla'] else 'off'}: {_describe(record)}")
        return record["xla"], record
    timings, errors = {}, {}
    for xla in (False, True):
        try:
            timings[xla] = measure(build(xla), dataset)
        except Exception as error:  # an op without an XLA kernel: XLA is not an option
            if not xla:
                raise
            errors[xla] = f"{type(error).__name__}: {str(error).splitlines()[0][:160] if str(error) else ''}"
    use_xla = True in timings and timings[True] < MARGIN * timings[False]
    record = {"xla": bool(use_xla), "seconds_per_step": {"off": timings[False], "on": timings.get(True)},
              "source": "measured at the start of this run"}
    if errors:
        record["xla_error"] = errors[True]
    log(f"XLA {'on' if use_xla else 'off'}: {_describe(record)}")
    entries = _read(path)
    entries[key] = {k: v for k, v in record.items() if k != "source"}
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        write_atomically(path, json.dumps(entries, indent=1))
    except OSError:  # a read-only home: the choice still holds for this run
        pass
    return use_xla, record


def _describe(record):
    seconds = record["seconds_per_step"]
    if seconds.get("on") is None:
        return f"{seconds['off'] * 1e3:.0f} ms a step without it; XLA failed ({record.get('xla_error', '')})"
    return (f"{seconds['off'] * 1e3:.0f} ms a step without, {seconds['on'] * 1e3:.0f} ms with "
            f"({seconds['off'] / seconds['on']:.2f}x), {record['source']}")


def _cache_path(cache_dir=None):
    return Path(cache_dir or os.environ.get("GANZOO_CACHE") or Path.home() / ".cache" / "ganzoo") / CACHE_FILE


def _read(path):
    try:
        entries = json.loads(path.read_text())
    except (OSError, ValueError):  # none yet, or a damaged file: measure again
        return {}
    return entries if isinstance(entries, dict) else {}
