"""`jit_compile: auto` picks XLA where it measured faster and not where it measured slower."""

import json

import pytest

import ganzoo
from ganzoo import xla
from conftest import tiny_settings


def stub(seconds):
    """A `measure` that says `seconds[jit_compile]` per step, and records what it timed."""
    timed = []

    def measure(model, dataset):
        timed.append(bool(model.jit_compile))
        value = seconds[bool(model.jit_compile)]
        if isinstance(value, Exception):
            raise value
        return value

    measure.timed = timed
    return measure


def choose(seconds, tmp_path, key="k"):
    built = []

    def build(on):
        built.append(on)
        return ganzoo.load("vanilla", **tiny_settings("vanilla"), jit_compile=on)

    return xla.choose(build, None, key, cache_dir=tmp_path, measure=stub(seconds), log=lambda *a: None), built


def test_faster_xla_is_chosen_slower_or_failing_xla_is_not(tmp_path):
    (use, record), built = choose({False: 0.10, True: 0.05}, tmp_path / "a")
    assert use is True and record["seconds_per_step"] == {"off": 0.10, "on": 0.05} and built == [False, True]
    (use, _), _ = choose({False: 0.10, True: 0.12}, tmp_path / "b")
    assert use is False
    (use, _), _ = choose({False: 0.10, True: 0.098}, tmp_path / "c")  # within the 5 % margin: not worth it
    assert use is False
    (use, record), _ = choose({False: 0.10, True: RuntimeError("no XLA kernel for op Foo")}, tmp_path / "d")
    assert use is False and "no XLA kernel" in record["xla_error"]


def test_the_choice_is_cached_per_key(tmp_path):
    choose({False: 0.10, True: 0.05}, tmp_path, key="machine|entry")
    (use, record), built = choose({False: 0.01, True: 1.0}, tmp_path, key="machine|entry")
    assert use is True and built == [] and "earlier" in record["source"]  # not measured again
    (use, _), built = choose({False: 0.01, True: 1.0}, tmp_path, key="machine|other entry")
    assert use is False and built == [False, True]
    cache = json.loads((tmp_path / xla.CACHE_FILE).read_text())
    assert set(cache) == {"machine|entry", "machine|other entry"}


def test_a_run_measures_records_and_uses_the_choice(tmp_path, monkeypatch):
    monkeypatch.setenv("GANZOO_XLA_PROBE", "1")
    monkeypatch.setenv("GANZOO_CACHE", str(tmp_path / "cache"))
    measured = stub({False: 0.2, True: 0.1})
    monkeypatch.setattr(xla, "seconds_per_step", measured)
    run = ganzoo.train("vanilla", "ring", epochs=1, out=tmp_path / "run", verbose=0, strategy="default",
                       **{**tiny_settings("vanilla"), "jit_compile": "auto"})
    record = json.loads((tmp_path / "run" / "run.json").read_text())
    assert record["xla"]["xla"] is True and record["xla"]["seconds_per_step"] == {"off": 0.2, "on": 0.1}
    assert run.model.jit_compile is True and measured.timed == [False, True]
    # --no-jit wins over the measurement, and is not measured
    ganzoo.train("vanilla", "ring", epochs=1, out=tmp_path / "run2", verbose=0, strategy="default",
                 jit_compile=False, **tiny_settings("vanilla"))
    assert "xla" not in json.loads((tmp_path / "run2" / "run.json").read_text())


def test_the_machine_signature_names_the_cpu():
    signature = xla.machine_signature()
    assert "flags" in signature and "cpus" in signature
    assert xla.cache_key("dcgan", (32, 32, 1), 64, 1, "float32").count("|") == 7


def test_the_cache_key_tells_thread_counts_apart(monkeypatch):
    # A choice timed at one thread (benchmarks/budget.py) is not a default run's.
    monkeypatch.setattr(xla.tf.config.threading, "get_intra_op_parallelism_threads", lambda: 0)
    monkeypatch.setenv("TF_NUM_INTRAOP_THREADS", "1")
    one = xla.cache_key("dcgan", (32, 32, 1), 64, 1, "float32")
    monkeypatch.delenv("TF_NUM_INTRAOP_THREADS")
    assert one != xla.cache_key("dcgan", (32, 32, 1), 64, 1, "float32")
    monkeypatch.setattr(xla.tf.config.threading, "get_intra_op_parallelism_threads", lambda: 2)
    assert "threads 2" in xla.cache_key("dcgan", (32, 32, 1), 64, 1, "float32")


def test_the_cache_key_tells_overrides_apart_but_not_seeds():
    def key(**config):
        return xla.cache_key("dcgan", (32, 32, 1), 64, 1, "float32", config={"latent_dim": 100, **config})

    assert key(clusters=20) != key(clusters=0)
    assert key(clusters=20, seed=1) == key(clusters=20, seed=2)


@pytest.mark.parametrize("value,expected", [("0", False), ("off", False), ("1", True), ("", True)])
def test_the_probe_can_be_turned_off(monkeypatch, value, expected):
    monkeypatch.setenv("GANZOO_XLA_PROBE", value)
    assert xla.enabled() is expected
