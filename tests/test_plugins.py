"""A GAN from another package: an entry point in the `ganzoo.models` group
makes it an entry that every command sees."""

import json
import os
import subprocess
import sys
import textwrap

import pytest

PLUGIN_MODULE = '''
"""A tiny out-of-tree GAN: the noise GAN on the MLP network, with a hinge loss."""
import ganzoo


@ganzoo.register_model("tinygan", config="zoo_configs/tinygan.yaml")  # relative to this file
class TinyGAN(ganzoo.GAN):
    """Goodfellow et al. 2014 with the hinge loss of Lim & Ye 2017, as a plugin."""

    default_network = "mlp"
'''

PLUGIN_YAML = '''
paper: Lim & Ye 2017, Geometric GAN, arXiv:1705.02894
description: a plugin's MLP GAN with the hinge loss
model:
  data_shape: [2]
  latent_dim: 2
  network: mlp
  network_args: {hidden_units: [32, 32]}
  seed: null
compile:
  loss: hinge
  jit_compile: false
  g_optimizer: {type: adam, learning_rate: 1.0e-3, beta_1: 0.5}
  d_optimizer: {type: adam, learning_rate: 1.0e-3, beta_1: 0.5}
train:
  dataset: ring
  batch_size: 128
  epochs: 2
  eval_every: 0
tiny:
  network_args: {hidden_units: [8]}
'''


@pytest.fixture(scope="module")
def plugin_path(tmp_path_factory):
    """A package on a path of its own, with the dist-info that pip would write
    for `[project.entry-points."ganzoo.models"] tinygan = "tinygan_pkg.models"`."""
    root = tmp_path_factory.mktemp("site")
    package = root / "tinygan_pkg"
    (package / "zoo_configs").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "models.py").write_text(textwrap.dedent(PLUGIN_MODULE))
    (package / "zoo_configs" / "tinygan.yaml").write_text(PLUGIN_YAML)
    info = root / "tinygan_pkg-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: tinygan-pkg\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text("[ganzoo.models]\ntinygan = tinygan_pkg.models\n")
    return root


def ganzoo_command(plugin_path, cwd, *args):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(plugin_path), os.environ.get("PYTHONPATH", "")]),
           "CUDA_VISIBLE_DEVICES": "-1"}
    result = subprocess.run([sys.executable, "-m", "ganzoo.cli", *args], cwd=cwd, env=env,
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout


@pytest.mark.slow
def test_a_plugin_entry_lists_trains_samples_evaluates_and_exports(plugin_path, tmp_path):
    elsewhere = tmp_path / "elsewhere"  # not the plugin's folder: its config is found from its module
    elsewhere.mkdir()
    listed = ganzoo_command(plugin_path, elsewhere, "list")
    assert "tinygan" in listed and "Lim & Ye 2017" in listed and "dcgan" in listed
    printed = ganzoo_command(plugin_path, elsewhere, "train", "tinygan", "--out", "run")
    assert "Training tinygan on ring [2] for 2 epochs" in printed
    run = elsewhere / "run"
    assert json.loads((run / "run.json").read_text())["status"] == "finished"
    assert len(json.loads((run / "history.json").read_text())) == 2
    ganzoo_command(plugin_path, elsewhere, "sample", "run", "--out", "grid.png")
    assert (elsewhere / "grid.png").stat().st_size > 0
    scored = ganzoo_command(plugin_path, elsewhere, "evaluate", "run", "--n", "500", "--metrics", "mode_coverage")
    assert "modes" in scored
    result = json.loads((run / "evaluation" / "ring-raw.json").read_text())
    assert result["metrics"]["total_modes"] == 8 and result["protocol"]["generator"] == "run"
    ganzoo_command(plugin_path, elsewhere, "export", "run", "--out", "serving")
    assert (elsewhere / "serving" / "tinygan" / "1" / "saved_model.pb").exists()


def test_a_plugin_is_listed_without_importing_it(plugin_path, tmp_path):
    code = ("import sys; from ganzoo import registry; assert 'tinygan' in registry.list_models(); "
            "assert registry.model_config('tinygan')['compile']['loss'] == 'hinge'; "
            "assert 'tinygan_pkg.models' not in sys.modules and 'tensorflow' not in sys.modules")
    env = {**os.environ, "PYTHONPATH": str(plugin_path)}
    result = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_a_broken_plugin_is_named_and_the_others_still_work(tmp_path):
    info = tmp_path / "gone-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: gone\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text("[ganzoo.models]\ngonegan = gone_pkg.models\n")
    env = {**os.environ, "PYTHONPATH": str(tmp_path)}
    result = subprocess.run([sys.executable, "-m", "ganzoo.cli", "list"], env=env, capture_output=True, text=True)
    assert result.returncode == 0 and result.stderr == ""
    assert "gonegan    (cannot be used: The ganzoo plugin module 'gone_pkg.models' cannot be found" in result.stdout
    assert "Radford" in result.stdout
    code = ("import warnings, ganzoo.registry as r; warnings.simplefilter('error'); "
            "r.import_all()")
    result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert "skipping the plugin entry 'gonegan'" in result.stderr
