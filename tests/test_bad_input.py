"""Ordinary mistakes get a message that names the problem and the fix, exit
code 2, no traceback, and destroy nothing."""

import shutil
import socket

import pytest
from PIL import Image

from ganzoo import cli

from test_cli import TINY_DCGAN


def ganzoo(*args):
    """`(exit code, stderr)` of the command, argparse's own exits included."""
    try:
        return cli.main([str(a) for a in args]), None
    except SystemExit as stop:  # argparse: usage errors exit 2 by themselves
        return stop.code, None


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "dcgan"
    assert cli.main(["train", *TINY_DCGAN, "--out", str(out), "--eval-every", "0"]) == 0
    return out


def _folder(tmp_path, corrupt):
    folder = tmp_path / "images"
    folder.mkdir()
    for i in range(0 if corrupt == "all" else 3):
        Image.new("L", (16, 16), 200).save(folder / f"good{i}.png")
    (folder / "zz_broken.png").write_bytes(b"not an image at all")
    return folder


def _port_in_use():
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    return listener


CASES = {
    # name: (arguments, with {tmp} for a fresh folder and {run} for a trained run; what the message says)
    "epochs 0": (["train", "dcgan", "--epochs", "0"], "--epochs: must be from 1 to 1000000, got 0"),
    "batch size 0": (["train", "dcgan", "--batch-size", "0"], "--batch-size: must be from 1 to 65536"),
    "image size 0": (["train", "dcgan", "--image-size", "0"], "--image-size: must be from 1 to 4096"),
    "image size -16": (["train", "dcgan", "--image-size", "-16"], "--image-size: must be from 1 to 4096"),
    "latent_dim true": (["train", "dcgan", "--set", "latent_dim=true", "--out", "{tmp}/r"],
                        "latent_dim must be a positive integer (at most 65536), got True"),
    "latent_dim 1e9": (["train", "dcgan", "--set", "latent_dim=1000000000", "--out", "{tmp}/r"],
                       "latent_dim must be a positive integer (at most 65536)"),
    "g_optimizer 5": (["train", "dcgan", "--set", "g_optimizer=5", "--out", "{tmp}/r"],
                      "g_optimizer must be an optimizer name such as 'adam' or a mapping"),
    "unknown option": (["train", "dcgan", "--set", "latent_dims=3"], "no option 'latent_dims'"),
    "out is a file": (["train", "dcgan", "--out", "{tmp}/file"], "is a file, not a folder"),
    "out under a file": (["train", "dcgan", "--out", "{tmp}/file/run"], "Cannot create the run folder"),
    "out under /proc": (["train", "dcgan", "--out", "/proc/ganzoo-run"], "Cannot create the run folder /proc/ganzoo-run"),
    "force on a project": (["train", "dcgan", "--force", "--out", "{tmp}/project"], "is not a ganzoo run"),
    "missing dataset folder": (["train", "dcgan", "--dataset", "{tmp}/nope", "--out", "{tmp}/r"],
                               "is not a folder: give a folder of images that exists"),
    "one corrupt image": (["train", "dcgan", "--dataset", "{tmp}/images", "--out", "{tmp}/r", "--epochs", "1"],
                          "zz_broken.png"),
    "all images corrupt": (["train", "dcgan", "--dataset", "{tmp}/images", "--out", "{tmp}/r"],
                           "1 of 1 files under"),
    "truncated model.keras": (["sample", "{run}", "--out", "{tmp}/s.png"], "may be truncated"),
    "corrupt saved_model.pb": (["evaluate", "{run}/saved_model/1", "--dataset", "digits", "--n", "10",
                                "--out", "{tmp}/e.json"], "cannot be loaded as a SavedModel"),
    "sample 100000": (["sample", "{run}", "--n", "100000"], "--n: must be from 1 to 1024"),
    "port in use": (["serve", "{tmp}", "--port", "{port}"], "is in use"),
    "grpc port in use": (["serve", "{tmp}", "--port", "0", "--grpc-port", "{port}"], "Port {port} on 127.0.0.1 is in use"),
    "bad version policy": (["serve", "{tmp}", "--version-policy", "newest"], "A version policy is latest, latest:N, all"),
    "bad version label": (["serve", "{tmp}", "--version-label", "stable=1"], "expected NAME:LABEL=VERSION"),
    "batch larger than the data": (["train", "vanilla", "--batch-size", "65536", "--out", "{tmp}/r"],
                                   "is larger than the dataset ring: not one full batch"),
    "batch packing cannot split": (["train", "vanilla", "--set", "pack=3", "--out", "{tmp}/r"],
                                   "pack=3 needs each replica's batch to be a multiple of 3"),
    "negative learning rate": (["train", "dcgan", "--set", "g_optimizer.learning_rate=-1", "--out", "{tmp}/r"],
                               "learning_rate must be a positive number"),
    "malformed --set": (["train", "dcgan", "--set", "network_args=[filters, 4", "--out", "{tmp}/r"],
                        "is not valid YAML"),
    "force on another tool's run.json": (["train", "dcgan", "--force", "--out", "{tmp}/project"],
                                         "is not a ganzoo run"),
}


@pytest.mark.parametrize("case", CASES)
def test_a_bad_input_is_a_clear_error(case, run_dir, tmp_path, capsys):
    arguments, expected = CASES[case]
    (tmp_path / "file").write_text("a file")
    project = tmp_path / "project"
    (project / "src").mkdir(parents=True)
    (project / "notes.txt").write_text("mine")
    run = run_dir
    if case == "force on another tool's run.json":
        (project / "run.json").write_text('{"experiment": "sacred", "status": "COMPLETED"}')
    if "corrupt" in case and "image" in case:
        _folder(tmp_path, "all" if case.startswith("all") else "one")
    if case.startswith("truncated") or case.startswith("corrupt saved"):
        run = tmp_path / "damaged"
        shutil.copytree(run_dir, run)
        damaged = run / "model.keras" if case.startswith("truncated") else run / "saved_model" / "1" / "saved_model.pb"
        damaged.write_bytes(damaged.read_bytes()[:200])
    listener = _port_in_use() if case.endswith("port in use") else None
    port = listener.getsockname()[1] if listener else 0
    try:
        code, _ = ganzoo(*[a.format(tmp=tmp_path, run=run, port=port) for a in arguments])
    finally:
        if listener:
            listener.close()
    err = capsys.readouterr().err
    assert code == 2, err
    assert expected.format(port=port) in err and "Traceback" not in err
    assert (project / "notes.txt").read_text() == "mine" and (project / "src").is_dir()  # nothing destroyed
    assert (tmp_path / "file").read_text() == "a file"
    assert not (tmp_path / "r").exists()  # a run that failed before training leaves no folder


def test_force_with_out_dot_in_a_project_deletes_nothing(tmp_path, monkeypatch, capsys):
    (tmp_path / "src").mkdir()
    (tmp_path / "notes.txt").write_text("mine")
    monkeypatch.chdir(tmp_path)
    code, _ = ganzoo("train", *TINY_DCGAN, "--force", "--out", ".")
    assert code == 2 and "is not a ganzoo run" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt", "src"]


def test_debug_shows_the_traceback(capsys):
    assert cli.main(["--debug", "train", "dcgan", "--set", "latent_dims=3"]) == 2
    err = capsys.readouterr().err
    assert "Traceback" in err and "no option 'latent_dims'" in err
