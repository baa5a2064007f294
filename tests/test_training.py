"""ganzoo.train from Python: a model you built, your strategy, your data, the run folder's rules."""

import numpy as np
import pytest
import tensorflow as tf

import ganzoo
from ganzoo import distribute, runs

from conftest import tiny_model, tiny_settings

QUIET = dict(verbose=0, eval_every=0)


def test_a_model_you_built_trains_into_a_run(tmp_path):
    model = tiny_model("vanilla")
    run = ganzoo.train(model, dataset="ring", epochs=2, out=tmp_path / "run", batch_size=64, **QUIET)
    assert run.model is model and run.status == "finished" and [h["epoch"] for h in run.history] == [1, 2]
    assert (run.export_path / "saved_model.pb").exists() and run.settings["model"] == "vanilla"
    assert (run.path / "samples" / "epoch_002.png").exists()
    assert runs.RunFolder(run.path).epochs_done() == 2
    with pytest.raises(TypeError, match="a model you built has its options"):
        ganzoo.train(model, out=tmp_path / "other", latent_dim=3, **QUIET)


def test_train_inside_the_callers_strategy_scope(tmp_path, capsys):
    strategy = distribute.get_strategy("mirrored")  # the two logical CPUs of conftest
    with strategy.scope():
        run = ganzoo.train("vanilla", dataset="ring", epochs=1, out=tmp_path / "run", batch_size=64, verbose=1,
                           eval_every=0, **tiny_settings("vanilla"))
    assert "2 replica(s)" in capsys.readouterr().out
    assert isinstance(run.model.generator.weights[0].value, tf.distribute.DistributedValues)


def test_an_in_memory_dataset_and_the_callers_callbacks(tmp_path):
    import keras

    seen = []
    points = np.random.default_rng(0).normal(size=(256, 2)).astype("float32")
    run = ganzoo.train("vanilla", dataset=tf.data.Dataset.from_tensor_slices(points).batch(64), epochs=1,
                       out=tmp_path / "run", callbacks=[keras.callbacks.LambdaCallback(
                           on_epoch_end=lambda epoch, logs: seen.append(sorted(logs)))],
                       **QUIET, **tiny_settings("vanilla"))
    assert run.settings["dataset"] == "in-memory tf.data.Dataset" and seen == [["d_fake", "d_loss", "d_real", "g_loss"]]
    with pytest.raises(ValueError, match="pass dataset="):
        run.evaluate()


def test_resume_true_trains_a_finished_run_further(tmp_path):
    options = dict(dataset="ring", out=tmp_path / "run", batch_size=64, **QUIET, **tiny_settings("vanilla"))
    first = int(ganzoo.train("vanilla", epochs=1, **options).model.g_optimizer.iterations)
    with pytest.raises(runs.RunError, match="holds a finished run"):
        ganzoo.train("vanilla", epochs=2, **options)
    run = ganzoo.train("vanilla", epochs=2, resume=True, **options)
    assert [h["epoch"] for h in run.history] == [1, 2]
    assert int(run.model.g_optimizer.iterations) == 2 * first  # restored, then one more epoch
    with pytest.raises(runs.RunError, match="holds a run"):
        ganzoo.train("vanilla", epochs=3, resume=False, **options)


@pytest.mark.parametrize("bad, message", [
    (dict(epochs=0), "epochs must be a positive integer, got 0"),
    (dict(batch_size=0), "batch_size must be a positive integer"),
    (dict(image_size=-16), "image_size must be a positive integer"),
    (dict(eval_every=-1), "eval_every must be 0"),
    (dict(resume="yes"), "resume must be 'auto', True or False"),
])
def test_bad_arguments_fail_before_any_work(tmp_path, bad, message):
    with pytest.raises(ValueError, match=message):
        ganzoo.train("vanilla", **{"out": tmp_path / "run", "verbose": 0, **bad})
    assert not (tmp_path / "run").exists()


def test_force_deletes_only_a_ganzoo_run(tmp_path):
    mine = tmp_path / "project"
    mine.mkdir()
    (mine / "notes.txt").write_text("mine")
    with pytest.raises(runs.RunError, match="not a ganzoo run.*will not write into or delete it"):
        ganzoo.train("vanilla", dataset="ring", epochs=1, out=mine, force=True, **QUIET)
    assert (mine / "notes.txt").read_text() == "mine"
    (tmp_path / "file").write_text("x")
    with pytest.raises(runs.RunError, match="is a file"):
        ganzoo.train("vanilla", dataset="ring", epochs=1, out=tmp_path / "file", **QUIET)


class Killed(BaseException):
    """What the process would see of SIGKILL: nothing after this point runs."""


def _weights(model):
    return [w.numpy().copy() for w in model.weights]


@pytest.mark.parametrize("where", ["weights", "state"])
def test_a_kill_during_a_checkpoint_leaves_the_previous_one(tmp_path, monkeypatch, where):
    """Killed while the weights are written, or after they are renamed and
    before state.json points to them: the resume loads the last complete epoch."""
    folder = runs.RunFolder(tmp_path / "run")
    model = tiny_model("vanilla")
    folder.save_checkpoint(model, 1)
    good = _weights(model)
    for w in model.generator.weights:
        w.assign(w.numpy() + 1.0)
    if where == "weights":
        def save_weights(path):
            open(path, "wb").write(b"\x89HDF\r\n")  # the first bytes of an h5 file, then the kill
            raise Killed
        monkeypatch.setattr(model, "save_weights", save_weights)
    else:
        original = runs._write_atomically

        def write(path, text):
            if path.name == runs.STATE_FILE:
                raise Killed
            original(path, text)
        monkeypatch.setattr(runs, "_write_atomically", write)
    with pytest.raises(Killed):
        folder.save_checkpoint(model, 2)
    monkeypatch.undo()
    assert folder.epochs_done() == 1
    fresh = tiny_model("vanilla")
    assert folder.restore(fresh) == 1
    assert all(np.array_equal(a, b) for a, b in zip(good, _weights(fresh)))
    folder.save_checkpoint(fresh, 2)  # the next checkpoint clears what the kill left
    assert sorted(p.name for p in folder.checkpoints.iterdir()) == ["epoch-2.weights.h5", "state.json"]


def test_a_finished_run_of_ganzoo_0_1_trains_further(tmp_path):
    options = dict(dataset="ring", out=tmp_path / "run", batch_size=64, **QUIET, **tiny_settings("vanilla"))
    run = ganzoo.train("vanilla", epochs=1, **options)
    # ganzoo 0.1 kept a finished run's state in BackupAndRestore's latest.weights.h5.
    (run.path / "checkpoints" / "epoch-1.weights.h5").rename(run.path / "checkpoints" / "latest.weights.h5")
    (run.path / "checkpoints" / "state.json").unlink()
    assert runs.RunFolder(run.path).epochs_done() == 1
    again = ganzoo.train("vanilla", epochs=2, resume=True, **options)
    assert [h["epoch"] for h in again.history] == [1, 2]
    assert sorted(p.name for p in (run.path / "checkpoints").iterdir()) == ["epoch-2.weights.h5", "state.json"]


def test_a_resume_rebuilds_the_model_you_built(tmp_path):
    options = dict(dataset="ring", out=tmp_path / "run", batch_size=64, **QUIET)
    ganzoo.train(tiny_model("vanilla", latent_dim=3), epochs=1, **options)
    with pytest.raises(runs.RunError, match="other settings.*model_config"):
        ganzoo.train("vanilla", epochs=2, resume=True, **options, **tiny_settings("vanilla"))
    run = ganzoo.train(tiny_model("vanilla", latent_dim=3), epochs=2, resume=True, **options)
    assert [h["epoch"] for h in run.history] == [1, 2]
    with pytest.raises(ValueError, match="compile your model with jit_compile"):
        ganzoo.train(tiny_model("pggan"), out=tmp_path / "pg", jit_compile=True, **QUIET)


def test_a_resume_may_lower_the_learning_rates_and_uses_them(tmp_path):
    options = dict(dataset="ring", out=tmp_path / "run", batch_size=64, **QUIET)
    tiny = tiny_settings("vanilla")
    ganzoo.train("vanilla", epochs=1, **options, **tiny)
    run = ganzoo.train("vanilla", epochs=2, resume=True, g_optimizer={"learning_rate": 1e-5}, **options, **tiny)
    assert float(run.model.g_optimizer.learning_rate) == pytest.approx(1e-5)  # not the checkpoint's 1e-4
    assert float(run.model.d_optimizer.learning_rate) == pytest.approx(1e-4)
    assert run.settings["overrides"]["g_optimizer"] == {"learning_rate": 1e-5}
    with pytest.raises(runs.RunError, match="latent_dim differ.*may change only d_optimizer.learning_rate"):
        ganzoo.train("vanilla", epochs=3, resume=True, **options, **{**tiny, "latent_dim": 3})


def test_a_full_disk_stops_the_run_and_the_same_call_resumes(tmp_path, monkeypatch):
    options = dict(dataset="ring", out=tmp_path / "run", batch_size=64, **QUIET, **tiny_settings("vanilla"))
    ganzoo.train("vanilla", epochs=1, **options)
    real = runs.shutil.disk_usage
    monkeypatch.setattr(runs.shutil, "disk_usage", lambda path: real(path)._replace(free=1000))
    with pytest.raises(runs.DiskFullError, match=r"has 0\.0 MB free; the next checkpoint needs about .* MB.*"
                                                 r"after epoch 1\) is kept.*same command again"):
        ganzoo.train("vanilla", epochs=3, resume=True, **options)
    folder = runs.RunFolder(tmp_path / "run")
    assert folder.record()["status"] == "stopped: disk full" and folder.epochs_done() == 1
    monkeypatch.undo()
    run = ganzoo.train("vanilla", epochs=3, resume=True, **options)
    assert [h["epoch"] for h in run.history] == [1, 2, 3] and run.status == "finished"


def test_a_write_that_fails_with_enospc_is_a_disk_full_error(tmp_path, monkeypatch):
    import errno

    folder = runs.RunFolder(tmp_path / "run")
    model = tiny_model("vanilla")
    folder.save_checkpoint(model, 1)

    def full(path):
        raise OSError(errno.ENOSPC, "No space left on device")
    monkeypatch.setattr(model, "save_weights", full)
    with pytest.raises(runs.DiskFullError, match="is full"):
        folder.save_checkpoint(model, 2)
    assert folder.epochs_done() == 1 and sorted(p.name for p in folder.checkpoints.iterdir()) == [
        "epoch-1.weights.h5", "state.json"]


def test_force_never_deletes_the_working_folder(tmp_path, monkeypatch):
    options = dict(dataset="ring", batch_size=64, **QUIET, **tiny_settings("vanilla"))
    ganzoo.train("vanilla", epochs=1, out=tmp_path / "run", **options)
    monkeypatch.chdir(tmp_path / "run")
    with pytest.raises(runs.RunError, match="holds the working folder"):
        ganzoo.train("vanilla", epochs=1, out=".", force=True, **options)
    assert (tmp_path / "run" / "run.json").exists() and (tmp_path / "run" / "model.keras").exists()


def test_a_folder_holding_only_a_failed_writes_leftovers_is_empty(tmp_path):
    out = tmp_path / "run"
    out.mkdir()
    (out / ".run.json.partial-123").write_text('{"sett')  # a first run.json write that a full disk cut short
    run = ganzoo.train("vanilla", dataset="ring", epochs=1, out=out, batch_size=256, **QUIET, **tiny_settings("vanilla"))
    assert run.status == "finished" and not (out / ".run.json.partial-123").exists()


def test_an_export_moved_aside_by_a_kill_is_put_back(tmp_path):
    model = tiny_model("vanilla")
    version = model.export(tmp_path / "vanilla" / "1")
    aside = version.with_name(".1.replaced-999")
    version.replace(aside)  # killed between moving the old export aside and moving the new one in
    assert ganzoo.export.versions(tmp_path / "vanilla") == []
    ganzoo.export.export_model(model, tmp_path / "vanilla" / "1", overwrite=True)
    assert ganzoo.export.versions(tmp_path / "vanilla") == [1]
    assert sorted(p.name for p in (tmp_path / "vanilla").iterdir()) == ["1"]  # nothing hidden is left


def test_a_resume_keeps_a_rate_a_callback_lowered(tmp_path):
    import keras

    options = dict(dataset="ring", out=tmp_path / "run", batch_size=256, **QUIET, **tiny_settings("vanilla"))

    class Lower(keras.callbacks.Callback):  # as ReduceLROnPlateau would
        def on_epoch_begin(self, epoch, logs=None):
            self.model.g_optimizer.learning_rate = 1e-6

    ganzoo.train("vanilla", epochs=1, callbacks=[Lower()], **options)
    run = ganzoo.train("vanilla", epochs=2, resume=True, **options)
    assert float(run.model.g_optimizer.learning_rate) == pytest.approx(1e-6)  # the checkpoint's, not the YAML's


def test_a_resume_rebuilds_the_entry_as_it_was_when_the_run_began(tmp_path, monkeypatch):
    from ganzoo import registry

    options = dict(dataset="ring", out=tmp_path / "run", batch_size=64, **QUIET, **tiny_settings("vanilla"))
    first = ganzoo.train("vanilla", epochs=1, **options)
    recorded = runs.RunFolder(first.path).settings()["entry_defaults"]
    assert recorded["model"]["network"] == "mlp" and "compile" in recorded
    # A newer ganzoo ships other defaults for the entry: the run goes on as it began.
    original = registry.model_config

    def newer(name, preset=None):
        config = original(name, preset)
        if name == "vanilla":
            config["model"]["d_steps"] = 3
            config["model"]["ema_decay"] = 0.9
            config["compile"]["loss"] = "hinge"
        return config

    monkeypatch.setattr(registry, "model_config", newer)
    assert ganzoo.load("vanilla").d_steps == 3
    resumed = ganzoo.train("vanilla", epochs=2, resume=True, **options)
    assert resumed.model.d_steps == 1 and not resumed.model.ema_decay
    assert resumed.model.gan_loss == first.model.gan_loss == "non_saturating"
    assert [h["epoch"] for h in resumed.history] == [1, 2]


def test_a_run_of_a_ganzoo_that_did_not_record_its_yaml_resumes_from_its_model_file(tmp_path, monkeypatch):
    import json

    from ganzoo import registry

    options = dict(dataset="ring", out=tmp_path / "run", batch_size=64, **QUIET, **tiny_settings("vanilla"))
    ganzoo.train("vanilla", epochs=1, **options)
    record_file = tmp_path / "run" / "run.json"
    record = json.loads(record_file.read_text())
    del record["settings"]["entry_defaults"]  # as ganzoo 0.1 wrote it
    record_file.write_text(json.dumps(record))
    original = registry.model_config

    def newer(name, preset=None):
        config = original(name, preset)
        if name == "vanilla":
            config["model"]["ema_decay"] = 0.9  # a default added since: the checkpoint has no average
        return config

    monkeypatch.setattr(registry, "model_config", newer)
    resumed = ganzoo.train("vanilla", epochs=2, resume=True, **options)
    assert not resumed.model.ema_decay and [h["epoch"] for h in resumed.history] == [1, 2]
    assert "entry_defaults" not in json.loads(record_file.read_text())["settings"]  # the record stays as it was
