"""Shipped pretrained models: `ganzoo.load(name, pretrained=True)`, `ganzoo sample NAME`."""

import json

import numpy as np
import pytest
import tensorflow as tf

import ganzoo
from ganzoo import cli, pretrained

SHIPPED = pretrained._DEFAULT_DIR
SHIPPED_NAMES = sorted(p.name for p in SHIPPED.iterdir() if ganzoo.export.versions(p)) if SHIPPED.is_dir() else []


@pytest.fixture(scope="module")
def published(tmp_path_factory):
    """A tiny dcgan run published into a fresh pretrained folder."""
    from test_cli import TINY_DCGAN

    folder = tmp_path_factory.mktemp("pretrained")
    run = folder / "run"
    assert cli.main(["train", *TINY_DCGAN, "--out", str(run), "--eval-every", "0"]) == 0
    root = folder / "models"
    path = pretrained.publish(run, root, note="test")
    return root, path


def test_publish_writes_a_version_and_metadata(published):
    root, path = published
    assert path == root / "dcgan" / "1" and (path / "saved_model.pb").exists()
    meta = json.loads((root / "dcgan" / "metadata.json").read_text())
    assert meta["steps"] == 1437 // 32 and meta["epochs"] == 1 and meta["dataset"] == "digits"
    assert meta["command"] == ("ganzoo train dcgan --batch-size 32 --image-size 16 --set network_args.filters=4 "
                               "--set latent_dim=8") and meta["note"] == "test"


def test_pretrained_model_generates_what_the_export_serves(published, monkeypatch):
    root, path = published
    monkeypatch.setenv("GANZOO_PRETRAINED", str(root))
    model = ganzoo.load("dcgan", pretrained=True)
    assert model.latent_dim == 8 and model.data_shape == (16, 16, 1)
    z = np.random.default_rng(0).standard_normal((4, 8)).astype("float32")
    served = tf.saved_model.load(str(path)).signatures["serving_default"](z=tf.constant(z))["images"]
    np.testing.assert_allclose(model.generate_from(z), served.numpy(), atol=1e-5)
    with pytest.raises(ValueError, match="latent_dim=8"):
        ganzoo.load("dcgan", pretrained=True, latent_dim=16)


def test_sample_by_name_needs_no_training(published, monkeypatch, tmp_path, capsys):
    root, _ = published
    monkeypatch.setenv("GANZOO_PRETRAINED", str(root))
    out = tmp_path / "s.png"
    assert cli.main(["sample", "dcgan", "--n", "4", "--out", str(out)]) == 0
    assert out.exists() and "pretrained dcgan" in capsys.readouterr().out
    assert cli.main(["sample", "wgan", "--out", str(tmp_path / "w.png")]) == 2
    assert "No pretrained 'wgan'" in capsys.readouterr().err


@pytest.mark.parametrize("name", SHIPPED_NAMES)
def test_shipped_model_is_small_documented_and_loads(name):
    folder = SHIPPED / name
    meta = json.loads((folder / "metadata.json").read_text())
    for key in ("dataset", "steps", "wall_time_seconds", "metrics", "command", "trained_with_ganzoo"):
        assert key in meta, key
    size = sum(f.stat().st_size for f in folder.rglob("*") if f.is_file())
    assert size < 5 * 2**20
    model = ganzoo.load(name, pretrained=True)
    if model.network_kind == "translation":
        images = np.zeros((2, *model.data_shape), "float32")
        assert np.isfinite(model.translate(images)).all()
    elif len(model.data_shape) == 3:  # images in [-1, 1]; vectors (vanilla's ring) are unbounded
        assert np.abs(model.generate(4, seed=0)).max() <= 1.0 + 1e-6
    else:
        assert np.isfinite(model.generate(4, seed=0)).all()


def test_shipped_models_together_stay_small():
    total = sum(f.stat().st_size for f in SHIPPED.rglob("*") if f.is_file()) if SHIPPED.is_dir() else 0
    assert total < 25 * 2**20
