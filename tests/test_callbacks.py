import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

import ganzoo
from ganzoo import visualize

from conftest import batch_for, tiny_model


def test_sample_grid_every_n_epochs_with_tensorboard(tmp_path):
    model = tiny_model("dcgan")
    data = tf.data.Dataset.from_tensor_slices(batch_for(model, 16)).batch(8)
    grid = ganzoo.callbacks.SampleGrid(tmp_path / "s", every=2, n=9, log_dir=tmp_path / "tb")
    model.fit(data, epochs=4, verbose=0, callbacks=[grid])
    assert sorted(p.name for p in (tmp_path / "s").iterdir()) == ["epoch_002.png", "epoch_004.png"]
    picture = np.asarray(Image.open(tmp_path / "s" / "epoch_004.png"))
    assert picture.shape == (3 * 66 + 2,) * 2  # 3x3 cells of 16px enlarged to 64, 2px gaps
    assert any((tmp_path / "tb").iterdir())


def test_sample_grid_draws_2d_points(tmp_path):
    model = tiny_model("vanilla")
    data = tf.data.Dataset.from_tensor_slices(batch_for(model, 16)).batch(8)
    model.fit(data, epochs=1, verbose=0, callbacks=[ganzoo.callbacks.SampleGrid(tmp_path)])
    picture = np.asarray(Image.open(tmp_path / "epoch_001.png"))
    assert picture.shape == (512, 512, 3) and (picture != 255).any()


def test_grid_pixels_map_minus_one_to_black_and_one_to_white():
    images = np.stack([-np.ones((4, 4, 1)), np.ones((4, 4, 1))])
    picture = np.asarray(visualize.image_grid(images, min_cell=4, padding=0))
    assert picture.shape == (4, 8)
    assert (picture[:, :4] == 0).all() and (picture[:, 4:] == 255).all()


def test_bad_pictures_are_clear_errors():
    with pytest.raises(ValueError, match="only images and 2D points"):
        visualize.picture(np.zeros((3, 5)))
    with pytest.raises(ValueError, match="every, n and per_class must be positive"):
        ganzoo.callbacks.SampleGrid("x", every=0)


def test_import_without_tensorflow_names_the_extra():
    code = "import sys; sys.modules['tensorflow'] = None; import ganzoo; ganzoo.load('dcgan')"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode != 0
    assert "pip install 'ganzoo[cpu]'" in result.stderr and "ganzoo[gpu]" in result.stderr
