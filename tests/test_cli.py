"""The `ganzoo` command, run in-process (fast) and once as a killed subprocess."""

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from PIL import Image

import ganzoo
from ganzoo import cli
from ganzoo.runs import RunFolder

TINY_DCGAN = ["dcgan", "--epochs", "1", "--batch-size", "32", "--image-size", "16",
              "--set", "network_args.filters=4", "--set", "latent_dim=8", "--no-jit"]


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "dcgan"
    assert cli.main(["train", *TINY_DCGAN, "--out", str(out), "--eval-every", "1"]) == 0
    return out


def test_train_writes_the_run(run_dir):
    assert json.loads((run_dir / "run.json").read_text())["status"] == "finished"
    assert Image.open(run_dir / "samples" / "epoch_001.png").size[0] > 64
    history = json.loads((run_dir / "history.json").read_text())
    assert [h["epoch"] for h in history] == [1] and np.isfinite(history[0]["d_loss"])
    assert history[0]["fid"] > 0 and "kid" in history[0]  # --eval-every 1
    assert (run_dir / "model.keras").exists()
    assert (run_dir / "saved_model" / "1" / "saved_model.pb").exists()
    assert any((run_dir / "logs" / "train").iterdir())


def test_train_refuses_to_overwrite(run_dir, capsys):
    assert cli.main(["train", *TINY_DCGAN, "--out", str(run_dir)]) == 2
    assert "holds a finished run" in capsys.readouterr().err
    other = TINY_DCGAN[:1] + ["--dataset", "ring"] + TINY_DCGAN[1:]
    assert cli.main(["train", *other, "--out", str(run_dir)]) == 2
    assert "other settings (dataset" in capsys.readouterr().err
    assert (run_dir / "model.keras").exists()


def test_train_refuses_a_foreign_folder(tmp_path, capsys):
    (tmp_path / "notes.txt").write_text("mine")
    assert cli.main(["train", *TINY_DCGAN, "--out", str(tmp_path)]) == 2
    assert "not a ganzoo run" in capsys.readouterr().err
    assert (tmp_path / "notes.txt").read_text() == "mine"


def test_resume_trains_further(run_dir, tmp_path):
    copy = tmp_path / "copy"
    import shutil

    shutil.copytree(run_dir, copy)
    args = [a if a != "1" else "2" for a in TINY_DCGAN]  # --epochs 2
    assert cli.main(["train", *args, "--out", str(copy), "--resume"]) == 0
    history = json.loads((copy / "history.json").read_text())
    assert [h["epoch"] for h in history] == [1, 2]


def test_sample_from_run_and_saved_model(run_dir, tmp_path):
    a, b = tmp_path / "a.png", tmp_path / "b.png"
    assert cli.main(["sample", str(run_dir), "--n", "16", "--out", str(a)]) == 0
    assert cli.main(["sample", str(run_dir / "saved_model" / "1"), "--n", "16", "--out", str(b)]) == 0
    # Same seed, same noise, same network: the two pictures agree.
    diff = np.abs(np.asarray(Image.open(a), float) - np.asarray(Image.open(b), float))
    assert np.asarray(Image.open(a)).shape == (4 * 66 + 2,) * 2 and diff.max() <= 1
    assert cli.main(["sample", str(run_dir), "--out", str(a)]) == 2  # exists
    assert cli.main(["sample", str(tmp_path), "--out", str(tmp_path / "c.png")]) == 2


def test_export_and_saved_model_cli(run_dir, tmp_path):
    out = tmp_path / "serving" / "dcgan" / "1"
    assert cli.main(["export", str(run_dir), "--out", str(out)]) == 0
    assert cli.main(["export", str(run_dir), "--out", str(out)]) == 2
    assert cli.main(["export", str(run_dir), "--out", str(out), "--force"]) == 0
    tool = os.path.join(os.path.dirname(sys.executable), "saved_model_cli")
    shown = subprocess.run([tool, "show", "--dir", str(out), "--all"], capture_output=True, text=True, check=True)
    assert "signature_def['serving_default']" in shown.stdout
    assert "inputs['z']" in shown.stdout and "shape: (-1, 8)" in shown.stdout
    assert "outputs['images']" in shown.stdout and "shape: (-1, 16, 16, 1)" in shown.stdout
    z = str([[0.5] * 8] * 2)  # saved_model_cli takes Python literals only
    ran = subprocess.run(
        [tool, "run", "--dir", str(out), "--tag_set", "serve", "--signature_def", "serving_default",
         "--input_exprs", f"z={z}"], capture_output=True, text=True, check=True,
    )
    assert "Result for output key images" in ran.stdout


def test_evaluate_a_run_and_a_saved_model(run_dir, tmp_path, capsys):
    out = tmp_path / "eval.json"
    args = ["evaluate", str(run_dir), "--n", "100", "--metrics", "fid,kid,is", "--out", str(out)]
    assert cli.main(args) == 0
    printed = capsys.readouterr().out
    assert "fid" in printed and "100 generated" in printed and f"Wrote {out}" in printed
    result = json.loads(out.read_text())
    assert result["metrics"]["fid"] > 0 and result["protocol"]["dataset"] == "digits"  # the run's dataset
    assert result["protocol"]["n_real"] == 100 and result["protocol"]["features"] == "digits"
    assert cli.main(args) == 2 and "exists" in capsys.readouterr().err  # never overwritten silently
    assert cli.main([*args, "--force"]) == 0
    # The SavedModel generates the same samples from the same seed: the same FID.
    saved = ["evaluate", str(run_dir / "saved_model" / "1"), "--n", "100", "--metrics", "fid,kid,is"]
    assert cli.main([*saved, "--out", str(tmp_path / "b.json")]) == 2
    assert "--dataset" in capsys.readouterr().err
    assert cli.main([*saved, "--dataset", "digits", "--out", str(tmp_path / "b.json")]) == 0
    again = json.loads((tmp_path / "b.json").read_text())
    assert again["metrics"]["fid"] == pytest.approx(result["metrics"]["fid"], rel=1e-3)
    assert cli.main(["evaluate", str(run_dir), "--metrics", "mode_coverage", "--out", str(tmp_path / "c.json")]) == 2
    assert "mixtures" in capsys.readouterr().err


def test_bad_commands(capsys):
    assert cli.main(["train", "dcgn"]) == 2
    assert "Did you mean 'dcgan'" in capsys.readouterr().err
    assert cli.main(["train", "dcgan", "--set", "num_classes=3"]) == 2
    assert "no option 'num_classes'" in capsys.readouterr().err
    assert cli.main(["train", "dcgan", "--set", "oops"]) == 2
    assert cli.main(["list"]) == 0
    assert "Radford" in capsys.readouterr().out


# The same tiny run through the Python API: ganzoo.train(name, **what TINY_DCGAN says).
TRAIN_CALL = ("import ganzoo; ganzoo.train('dcgan', epochs={epochs}, out={out!r}, batch_size=32, image_size=16, "
              "network_args={{'filters': 4}}, latent_dim=8, jit_compile=False)")


def _train_command(how, out, epochs):
    if how == "cli":
        command = [sys.executable, "-m", "ganzoo.cli", "train", *TINY_DCGAN, "--out", str(out)]
        command[command.index("--epochs") + 1] = str(epochs)
        return command
    return [sys.executable, "-c", TRAIN_CALL.format(epochs=epochs, out=str(out))]


@pytest.mark.slow
@pytest.mark.parametrize("how", ["cli", "python"])
def test_a_killed_run_resumes_with_the_same_command(tmp_path, how):
    out = tmp_path / "killed"
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": "-1"}
    process = subprocess.Popen(_train_command(how, out, 40), env=env, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    folder = RunFolder(out)
    deadline = time.time() + 120
    while time.time() < deadline and process.poll() is None:
        try:
            if folder.epochs_done() >= 2:
                break
        except (ValueError, OSError):  # state.json renamed in between: look again
            pass
        time.sleep(0.2)
    process.send_signal(signal.SIGKILL)
    process.wait()
    done = folder.epochs_done()
    assert 2 <= done < 40 and folder.record()["status"] == "running"
    # finish quickly: same run, one epoch more
    result = subprocess.run(_train_command(how, out, done + 1), env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    assert f"resuming after epoch {done}" in result.stdout
    history = json.loads((out / "history.json").read_text())
    assert [h["epoch"] for h in history] == list(range(1, done + 2))
    # The grid series, the optimizers' step counters and the noise stream go on.
    assert sorted(p.name for p in (out / "samples").glob("epoch_*.png")) == [
        f"epoch_{e:03d}.png" for e in range(1, done + 2)
    ]
    # One checkpoint is kept, and no partial file is left behind.
    assert sorted(p.name for p in (out / "checkpoints").iterdir()) == [f"epoch-{done + 1}.weights.h5", "state.json"]
    model = ganzoo.loading.open_model(out)
    steps = 1437 // 32  # full batches of the 1,437 digits of the train split
    assert int(model.g_optimizer.iterations) == int(model.d_optimizer.iterations) == (done + 1) * steps


def test_python_and_command_line_write_the_same_run(run_dir, tmp_path):
    """ganzoo.train with the same settings writes the same files as `ganzoo train`."""
    run = ganzoo.train("dcgan", epochs=1, out=tmp_path / "py", batch_size=32, image_size=16, eval_every=1,
                       network_args={"filters": 4}, latent_dim=8, jit_compile=False, verbose=0)

    def files(root):
        return sorted(str(p.relative_to(root)) for p in root.rglob("*") if "logs" not in p.parts)

    assert files(run.path) == files(run_dir)
    assert run.settings == json.loads((run_dir / "run.json").read_text())["settings"]
    assert run.status == "finished" and run.export_path == run.path / "saved_model" / "1"
    assert [h["epoch"] for h in run.history] == [1] and run.history[0]["fid"] > 0
    assert run.model.latent_dim == 8
    reopened = ganzoo.open_run(run.path)
    assert reopened.evaluate(n=50, metrics=["fid"])["metrics"]["fid"] > 0


def test_set_values_are_yaml_and_exponents_are_numbers():
    overrides = cli._parse_overrides(["g_optimizer.learning_rate=1e-4", "network_args.filters=8",
                                      "network=mlp", "seed=null", "jit_compile=false"])
    assert overrides == {"g_optimizer": {"learning_rate": 1e-4}, "network_args": {"filters": 8},
                         "network": "mlp", "seed": None, "jit_compile": False}


def test_jit_flag_compiles_the_step(tmp_path, capsys):
    # (pggan compiles too since its steps hold no level switch: tests/test_pggan.py)
    assert cli.main(["train", *TINY_DCGAN[:-1], "--jit", "--strategy", "default", "--out", str(tmp_path / "x"),
                     "--eval-every", "0"]) == 0
    assert ", XLA)" in capsys.readouterr().out


def test_a_nan_loss_stops_the_run_with_a_clear_message(tmp_path, capsys):
    out = tmp_path / "nan"
    assert cli.main(["train", "vanilla", "--dataset", "ring", "--epochs", "2", "--out", str(out), "--eval-every", "0",
                     "--set", "d_optimizer.learning_rate=1e30"]) == 2
    error = capsys.readouterr().err
    assert "became nan in epoch 1, batch 1" in error and "no checkpoint" in error
    assert "half the present ones: --set g_optimizer.learning_rate=5e-05 --set d_optimizer.learning_rate=5e+29" in error
    assert json.loads((out / "run.json").read_text())["status"] == "stopped: non-finite loss"
    assert not (out / "checkpoints").exists() and not (out / "saved_model").exists()
    # The advice can be followed: the same command with lower rates runs.
    assert cli.main(["train", "vanilla", "--dataset", "ring", "--epochs", "1", "--out", str(out), "--eval-every", "0",
                     "--set", "d_optimizer.learning_rate=1e-4", "--set", "network_args.hidden_units=[8]"]) == 2
    error = capsys.readouterr().err
    assert "network_args.hidden_units differ" in error and "may change only d_optimizer.learning_rate" in error
    assert cli.main(["train", "vanilla", "--dataset", "ring", "--epochs", "1", "--out", str(out), "--eval-every", "0",
                     "--set", "d_optimizer.learning_rate=1e-4"]) == 0
    assert "continuing with d_optimizer.learning_rate 1e+30 -> 0.0001" in capsys.readouterr().out
    assert json.loads((out / "run.json").read_text())["status"] == "finished"
