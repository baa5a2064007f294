import numpy as np
import pytest
import tensorflow as tf
import tensorflow_datasets as tfds
from PIL import Image

import ganzoo


def first(ds):
    return next(iter(ds))


def test_digits_images_in_range():
    ds = ganzoo.data.load("digits", image_size=32, batch_size=64, seed=0)
    batch = first(ds)
    assert batch.shape == (64, 32, 32, 1) and batch.dtype == tf.float32
    assert float(tf.reduce_min(batch)) >= -1 and float(tf.reduce_max(batch)) <= 1
    assert float(tf.reduce_min(batch)) < -0.9 and float(tf.reduce_max(batch)) > 0.9
    assert sum(1 for _ in ds) == 1437 // 64  # the train split, drop_remainder


@pytest.mark.parametrize("make", [
    lambda: ganzoo.data.load("digits", image_size=16),
    lambda: ganzoo.data.load("ring"),
    lambda: ganzoo.data.load_unpaired("digits_style", image_size=16),
], ids=["digits", "ring", "unpaired"])
def test_pipelines_do_without_the_autotuning_thread(make):
    # Deleting an iterator waits for that thread's next wake-up, and fit
    # deletes one at every epoch end: up to seconds lost per epoch.
    ds = make()
    assert ds.options().autotune.enabled is False
    assert first(ds) is not None


def test_digits_native_size_labels_and_channels():
    images, labels = first(ganzoo.data.load("digits", batch_size=16, with_labels=True, channels=3))
    assert images.shape == (16, 8, 8, 3) and labels.dtype == tf.int32
    assert set(labels.numpy()) <= set(range(10))


def test_shuffling_is_seeded():
    a = first(ganzoo.data.load("digits", batch_size=8, seed=1))
    b = first(ganzoo.data.load("digits", batch_size=8, seed=1))
    c = first(ganzoo.data.load("digits", batch_size=8, seed=2))
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


def test_ring_matches_its_definition():
    points = np.concatenate(list(ganzoo.data.load("ring", batch_size=512, seed=0).as_numpy_iterator()))
    assert points.shape == (25600, 2)
    radius = np.linalg.norm(points, axis=1)
    assert abs(radius.mean() - 1) < 0.01 and radius.std() < 0.02
    angles = np.round(np.arctan2(points[:, 1], points[:, 0]) / (2 * np.pi / 8)) % 8
    counts = np.bincount(angles.astype(int), minlength=8)
    assert counts.min() > 0.8 * 25600 / 8


def test_grid_matches_its_definition():
    points = first(ganzoo.data.load("grid", batch_size=5000, seed=0)).numpy()
    nearest = np.clip(np.round(points / 2) * 2, -4, 4)
    assert (points - nearest).std() == pytest.approx(0.05, rel=0.1)
    assert len({tuple(p) for p in nearest}) == 25


def test_folder_of_images(tmp_path):
    rng = np.random.default_rng(0)
    for cls in ("cats", "dogs"):
        (tmp_path / cls).mkdir()
        for i in range(3):
            Image.fromarray(rng.integers(0, 256, (20, 20, 3), dtype=np.uint8)).save(tmp_path / cls / f"{i}.png")
    images = first(ganzoo.data.load(str(tmp_path), image_size=16, batch_size=6))
    assert images.shape == (6, 16, 16, 3)
    assert float(tf.reduce_min(images)) >= -1 and float(tf.reduce_max(images)) <= 1
    images, labels = first(ganzoo.data.load(str(tmp_path), batch_size=6, with_labels=True, channels=1))
    assert images.shape == (6, 20, 20, 1) and sorted(labels.numpy()) == [0, 0, 0, 1, 1, 1]


def test_empty_folder_is_a_clear_error(tmp_path):
    with pytest.raises(ValueError, match="No images"):
        ganzoo.data.load(str(tmp_path))


def test_tfds_through_mock_data():
    with tfds.testing.mock_data(num_examples=20):
        images = first(ganzoo.data.load("mnist", image_size=16, batch_size=10))
        images_labels = first(ganzoo.data.load("mnist", batch_size=10, with_labels=True))
    assert images.shape == (10, 16, 16, 1)
    assert float(tf.reduce_min(images)) >= -1 and float(tf.reduce_max(images)) <= 1
    assert images_labels[0].shape == (10, 28, 28, 1) and images_labels[1].shape == (10,)


def test_tfds_not_on_disk_and_offline_fails_with_the_offline_choices(tmp_path, monkeypatch):
    real_load = tfds.load

    def offline_load(name, download=True, **kwargs):
        if download:
            raise ConnectionError("no network")
        return real_load(name, download=False, **kwargs)

    monkeypatch.setattr(tfds, "load", offline_load)
    with pytest.raises(RuntimeError, match=r"'mnist' is not on disk.*digits, ring, grid"):
        ganzoo.data.load("mnist", data_dir=str(tmp_path))


def test_unknown_dataset_names_the_choices():
    with pytest.raises(ValueError, match=r"Unknown dataset 'no_such_set'.*digits, ring, grid"):
        ganzoo.data.load("no_such_set")


def test_bad_arguments():
    with pytest.raises(ValueError, match="batch_size"):
        ganzoo.data.load("digits", batch_size=0)
    with pytest.raises(ValueError, match="no labels"):
        ganzoo.data.load("ring", with_labels=True)
    with pytest.raises(ValueError, match="channels"):
        ganzoo.data.load("digits", channels=2)


def test_digits_splits_are_disjoint_and_stratified():
    train, train_labels = ganzoo.data.digits_arrays("train")
    test, test_labels = ganzoo.data.digits_arrays("test")
    assert len(train) == 1437 and len(test) == 360 and len(ganzoo.data.digits_arrays("all")[0]) == 1797
    assert set(np.bincount(test_labels)) <= {35, 36, 37}  # stratified
    train_rows = {row.tobytes() for row in train}
    assert sum(row.tobytes() in train_rows for row in test) < 5  # the data set has a few duplicate images
    with pytest.raises(ValueError, match="train, test, all"):
        ganzoo.data.load("digits", split="validation")


def _square(path, size, value, mode="L"):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new(mode, (size, size), value).save(path)


def _images(ds):
    return np.concatenate(list(ds.as_numpy_iterator()))


def test_a_folder_of_mixed_sizes_is_resized_to_the_asked_size(tmp_path):
    _square(tmp_path / "a_tiny.png", 4, 255)  # listed first: it must not set the size of the others
    for i in range(3):
        _square(tmp_path / f"b{i}.png", 64, 255)
    images = _images(ganzoo.data.load(str(tmp_path), image_size=32, batch_size=4, shuffle=False))
    assert images.shape == (4, 32, 32, 1) and np.allclose(images, 1.0, atol=1e-3)


def test_without_a_size_the_most_common_one_is_chosen_and_said(tmp_path, capsys):
    _square(tmp_path / "a_tiny.png", 4, 0)
    for i in range(3):
        _square(tmp_path / f"b{i}.png", 16, 255, mode="RGB")
    images = _images(ganzoo.data.load(str(tmp_path), batch_size=4, shuffle=False))
    assert images.shape == (4, 16, 16, 3)  # the common size; RGB because one file is
    assert "resizing all to the most common, 16x16 (3 of 4 files)" in capsys.readouterr().out


def test_a_huge_image_first_is_shrunk_on_its_own(tmp_path):
    _square(tmp_path / "a_huge.jpg", 6000, (255, 255, 255), mode="RGB")  # JPEG: decoded at 1/8 scale
    _square(tmp_path / "b_small.png", 32, 0)
    images = _images(ganzoo.data.load(str(tmp_path), image_size=32, batch_size=2, shuffle=False, channels=1))
    assert images.shape == (2, 32, 32, 1)
    assert images[0].min() > 0.95 and images[1].max() < -0.95


def test_a_corrupt_file_is_named_or_skipped(tmp_path):
    for i in range(3):
        _square(tmp_path / f"good{i}.png", 8, 255)
    (tmp_path / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"garbage" * 10)
    with pytest.raises(ValueError, match=r"broken\.png.*skip_corrupt=True"):
        ganzoo.data.load(str(tmp_path), batch_size=2)
    with pytest.warns(UserWarning, match=r"Skipped 1 unreadable file.*broken\.png"):
        ds = ganzoo.data.load(str(tmp_path), batch_size=3, skip_corrupt=True, shuffle=False)
    assert _images(ds).shape == (3, 8, 8, 1)


def test_a_truncated_file_is_named(tmp_path):
    _square(tmp_path / "good.png", 64, 128)
    whole = (tmp_path / "good.png").read_bytes()
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 64), dtype="uint8")).save(tmp_path / "cut.png")
    (tmp_path / "cut.png").write_bytes((tmp_path / "cut.png").read_bytes()[:200])
    assert len(whole) > 0
    with pytest.raises(ValueError, match=r"cut\.png cannot be decoded"):
        ganzoo.data.load(str(tmp_path), batch_size=1)


def test_a_folder_that_does_not_exist_is_not_a_tfds_name(tmp_path):
    with pytest.raises(FileNotFoundError, match="is not a folder"):
        ganzoo.data.load(str(tmp_path / "missing"))
    with pytest.raises(ValueError, match="image_size must be an integer from 1 to 4096"):
        ganzoo.data.load("digits", image_size=100_000)


def test_sixteen_bit_images_are_scaled_not_clipped(tmp_path):
    Image.fromarray(np.full((8, 8), 32768, "uint16")).save(tmp_path / "mid.png")  # mid grey in 16 bits
    image = _images(ganzoo.data.load(str(tmp_path), batch_size=1))
    assert np.allclose(image, 0.0, atol=0.01)  # [-1, 1]: mid grey, not white


def test_an_image_past_pils_pixel_limit_is_named(tmp_path, monkeypatch):
    _square(tmp_path / "bomb.png", 64, 255)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)  # 64x64 is over twice the limit: PIL refuses it
    with pytest.raises(ValueError, match=r"bomb\.png: DecompressionBombError"):
        ganzoo.data.load(str(tmp_path), batch_size=1)


def test_tfds_names_with_hyphens_are_tfds_names(tmp_path):
    with pytest.raises((ValueError, RuntimeError), match="imagenette/320px-v2") as raised:
        ganzoo.data.load("imagenette/320px-v2", data_dir=str(tmp_path))
    assert "is not a folder" not in str(raised.value)
