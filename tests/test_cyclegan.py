"""CycleGAN: networks, history pool, losses, schedule, unpaired data, export, metrics, command."""

import json

import keras
import numpy as np
import pytest
import tensorflow as tf
import tensorflow_datasets as tfds
from PIL import Image

import ganzoo
from ganzoo import callbacks, cli, data, losses
from ganzoo.layers import ImageHistoryPool, ReflectionPadding2D
from ganzoo.metrics.translation import evaluate_translation
from ganzoo.samplers import Translator

from conftest import tiny_settings, batch_for, tiny_model

TINY_CYCLEGAN_ARGS = ["cyclegan", "--epochs", "1", "--batch-size", "8", "--image-size", "16"] + [
    arg for key, value in tiny_settings("cyclegan")["network_args"].items()
    for arg in ("--set", f"network_args.{key}={value}")
] + ["--set", "pool_size=4", "--set", "jit_compile=false"]


def values(variables):
    return [v.numpy().copy() for v in variables]


def unchanged(before, variables):
    return all(np.array_equal(b, v.numpy()) for b, v in zip(before, variables))


def test_the_four_networks_have_the_paper_shapes():
    model = tiny_model("cyclegan")
    for generator in (model.generator_ab, model.generator_ba):
        assert generator.input_shape == generator.output_shape == (None, 16, 16, 3)
    for discriminator in (model.discriminator_a, model.discriminator_b):
        assert discriminator.output_shape == (None, 4, 4, 1)  # 2 stride-2 layers: 16 -> 4 patches
    names = {model.generator_ab.name, model.generator_ba.name, model.discriminator_a.name, model.discriminator_b.name}
    assert names == {"generator_a2b", "generator_b2a", "discriminator_a", "discriminator_b"}
    norms = [layer for layer in model.generator_ab.layers if isinstance(layer, keras.layers.GroupNormalization)]
    assert norms and all(layer.groups == layer.gamma.shape[0] for layer in norms)  # one group per channel
    assert any(isinstance(layer, ReflectionPadding2D) for layer in model.generator_ab.layers)
    images = model.translate(batch_for(model, 3)[0], "b2a")
    assert images.shape == (3, 16, 16, 3) and -1 <= images.min() and images.max() <= 1


def test_reflection_padding_mirrors_the_border():
    x = np.arange(9, dtype="float32").reshape(1, 3, 3, 1)
    padded = ReflectionPadding2D(1)(x).numpy()[0, :, :, 0]
    np.testing.assert_array_equal(padded[0], [4, 3, 4, 5, 4])
    assert ReflectionPadding2D(3).compute_output_shape((None, 8, 8, 2)) == (None, 14, 14, 2)


def test_history_pool_fills_then_mixes_new_and_old_images():
    pool = ImageHistoryPool((2, 2, 1), capacity=50, seed=0)
    first = np.arange(50, dtype="float32")[:, None, None, None] * np.ones((50, 2, 2, 1), "float32")
    np.testing.assert_array_equal(pool(first).numpy(), first)  # filling: all pass through
    assert int(pool.count.numpy()) == 50
    np.testing.assert_array_equal(np.sort(pool.images.numpy()[:, 0, 0, 0]), np.arange(50))
    new = first + 100
    returned = pool(new).numpy()[:, 0, 0, 0]
    from_pool, passed = returned < 100, returned >= 100
    assert 10 < from_pool.sum() < 40 and passed.sum() == 50 - from_pool.sum()  # about half each
    stored = pool.images.numpy()[:, 0, 0, 0]
    assert int(pool.count.numpy()) == 50 and (stored >= 100).sum() >= 1  # the pool took new images in
    assert set(returned[from_pool]) <= set(range(50))  # old images come back unchanged


def test_history_pool_of_size_zero_passes_through():
    x = np.ones((3, 2, 2, 1), "float32")
    np.testing.assert_array_equal(ImageHistoryPool((2, 2, 1), capacity=0)(x).numpy(), x)


def test_each_loss_term_against_hand_computed_values():
    model = tiny_model("cyclegan", identity_weight=0.5)  # the paper's; the digits default is 0
    a, b = (tf.constant(x) for x in batch_for(model, 4))
    run = lambda network, x: network(x, training=False).numpy()  # noqa: E731
    fake_b, fake_a = run(model.generator_ab, a), run(model.generator_ba, b)
    adversarial = np.mean((run(model.discriminator_b, fake_b) - 1) ** 2) + np.mean(
        (run(model.discriminator_a, fake_a) - 1) ** 2
    )
    cycle = np.mean(np.abs(run(model.generator_ba, fake_b) - a)) + np.mean(np.abs(run(model.generator_ab, fake_a) - b))
    identity = np.mean(np.abs(run(model.generator_ba, a) - a)) + np.mean(np.abs(run(model.generator_ab, b) - b))
    total, _, got_cycle, got_identity = model.generator_losses(a, b, training=False)
    np.testing.assert_allclose(got_cycle, cycle, rtol=1e-5)
    np.testing.assert_allclose(got_identity, identity, rtol=1e-5)
    np.testing.assert_allclose(total, adversarial + 10 * cycle + 10 * 0.5 * identity, rtol=1e-5)
    d = lambda network, real, fake: 0.5 * np.mean((run(network, real) - 1) ** 2) + 0.5 * np.mean(run(network, fake) ** 2)  # noqa: E731
    expected_d = d(model.discriminator_a, a, fake_a) + d(model.discriminator_b, b, fake_b)
    got_d = model.discriminator_losses(a, b, tf.constant(fake_a), tf.constant(fake_b), training=False)
    np.testing.assert_allclose(got_d, expected_d, rtol=1e-5)
    assert float(losses.cycle_consistency_loss(np.zeros(4), np.array([1.0, -1.0, 0.5, 0.5]))) == 0.75


def test_a_generator_step_leaves_the_discriminators_untouched_and_vice_versa():
    model = tiny_model("cyclegan")
    a, b = (tf.constant(x) for x in batch_for(model, 4))
    d_before, g_before = values(model.discriminator_variables()), values(model.generator_variables())
    _, (fake_a, fake_b), _, _ = model.generator_step(a, b)
    assert unchanged(d_before, model.discriminator_variables())
    assert not unchanged(g_before, model.generator_variables())
    g_after = values(model.generator_variables())
    model.discriminator_step(a, b, fake_a, fake_b)
    assert unchanged(g_after, model.generator_variables())
    assert not unchanged(d_before, model.discriminator_variables())
    # One optimizer over both generators, one over both discriminators.
    assert len(model.g_optimizer.variables) > 2 * len(model.generator_ab.trainable_variables)


def test_fit_tracks_every_loss_and_fills_the_pools():
    model = tiny_model("cyclegan")
    history = model.fit(tf.data.Dataset.from_tensor_slices(batch_for(model, 16)).batch(4), epochs=1, verbose=0)
    assert set(history.history) == {"d_loss", "g_loss", "cycle_loss", "identity_loss"}
    assert all(np.isfinite(v[-1]) for v in history.history.values())
    assert int(model.pool_a.count.numpy()) == int(model.pool_b.count.numpy()) == 4


def test_linear_decay_values():
    schedule = callbacks.LinearDecay(200, decay_from=0.5)
    assert [schedule.factor(e) for e in (0, 99)] == [1.0, 1.0]
    assert schedule.factor(100) == pytest.approx(1 - 1 / 101)
    assert schedule.factor(199) == pytest.approx(1 / 101)
    model = tiny_model("cyclegan", g_optimizer={"learning_rate": 1e-3})
    decay = callbacks.LinearDecay(4, decay_from=0.5)
    history = model.fit(tf.data.Dataset.from_tensor_slices(batch_for(model, 4)).batch(4), epochs=4, verbose=0,
                        callbacks=[decay]).history
    np.testing.assert_allclose(history["learning_rate"], [1e-3, 1e-3, 1e-3 * 2 / 3, 1e-3 / 3], rtol=1e-5)
    assert float(model.d_optimizer.learning_rate) == pytest.approx(2e-4 / 3)


def test_translate_checks_its_input():
    model = tiny_model("cyclegan")
    with pytest.raises(ValueError, match="'a2b' or 'b2a'"):
        model.translate(np.zeros((1, 16, 16, 3)), "ab")
    with pytest.raises(ValueError, match=r"shape \[16, 16, 3\]"):
        model.translate(np.zeros((1, 8, 8, 3)))
    with pytest.raises(TypeError, match="translate"):
        model.generate(4)


def test_single_domain_or_labelled_data_is_a_clear_error():
    model = tiny_model("cyclegan")
    a, _ = batch_for(model, 8)
    for dataset in (tf.data.Dataset.from_tensor_slices(a), tf.data.Dataset.from_tensor_slices((a, np.arange(8)))):
        with pytest.raises(ValueError, match="load_unpaired"):
            model.fit(dataset.batch(4), epochs=1, verbose=0)
    with pytest.raises(ValueError, match="single domain"):
        data.load_unpaired("digits")


def test_export_has_both_directions(tmp_path):
    model = tiny_model("cyclegan")
    path = model.export(tmp_path / "cyclegan" / "1")
    loaded = tf.saved_model.load(str(path))
    assert {"a2b", "b2a", "serving_default"} <= set(loaded.signatures)
    a, b = batch_for(model, 3)
    for direction, images in (("a2b", a), ("b2a", b)):
        spec = loaded.signatures[direction].structured_input_signature[1]["images"]
        assert spec.shape.as_list() == [None, 16, 16, 3]
        out = loaded.signatures[direction](images=tf.constant(images))["images"].numpy()
        np.testing.assert_allclose(out, model.translate(images, direction), atol=1e-5)
    translator = ganzoo.metrics.load_sampler(path)
    np.testing.assert_allclose(translator.translate(b, "b2a"), model.translate(b, "b2a"), atol=1e-5)


def test_save_load_keeps_the_pools(tmp_path):
    model = tiny_model("cyclegan")
    model.fit(tf.data.Dataset.from_tensor_slices(batch_for(model, 8)).batch(4), epochs=1, verbose=0)
    model.save(tmp_path / "m.keras")
    loaded = keras.models.load_model(tmp_path / "m.keras")
    np.testing.assert_array_equal(loaded.pool_b.images.numpy(), model.pool_b.images.numpy())
    assert int(loaded.pool_b.count.numpy()) == 4 and loaded.cycle_weight == 10.0


# ------------------------------------------------------------------ data
def test_digits_style_domains_are_disjoint_and_styled():
    (a, a_labels), (b, b_labels) = data.digits_style_arrays("train", 16)
    assert a.shape[1:] == b.shape[1:] == (16, 16, 3) and len(a) + len(b) == 1437
    assert abs(len(a) - len(b)) <= 1 and set(a_labels) == set(b_labels) == set(range(10))
    # No digit of A appears in B: compare B with the style of every A digit.
    styled_a = data.digits_style(a[..., :1]).numpy().reshape(len(a), -1)
    distances = np.abs(styled_a[:, None, :] - b.reshape(len(b), -1)[None]).mean(axis=2)
    assert distances.min() > 1e-3
    assert np.all(a[..., 0] == a[..., 2])  # A is grey
    assert b[..., 2].mean() > b[..., 0].mean() - 0.2 and b.mean() > 0.5  # B: light paper, blue ink
    ds = data.load_unpaired("digits_style", image_size=16, batch_size=8, seed=0)
    first_a, first_b = next(iter(ds))
    assert first_a.shape == first_b.shape == (8, 16, 16, 3)
    assert -1 <= float(tf.reduce_min(first_a)) and float(tf.reduce_max(first_b)) <= 1
    assert int(ds.cardinality()) == 719 // 8


def _write_images(folder, n, value):
    folder.mkdir(parents=True)
    for i in range(n):
        Image.fromarray(np.full((12, 12, 3), value + i, "uint8")).save(folder / f"{i}.png")


def test_unpaired_folders(tmp_path):
    _write_images(tmp_path / "trainA", 3, 10)
    _write_images(tmp_path / "trainB", 5, 200)
    a, b = next(iter(data.load_unpaired(str(tmp_path), image_size=8, batch_size=5, shuffle=False, jitter=False)))
    assert a.shape == b.shape == (5, 8, 8, 3)
    assert float(tf.reduce_max(a)) < 0 < float(tf.reduce_min(b))  # dark A, light B: never mixed up
    two = data.load_unpaired(str(tmp_path / "trainA"), str(tmp_path / "trainB"), image_size=8, batch_size=2)
    assert int(two.cardinality()) == 5 // 2  # the larger domain sets the epoch
    with pytest.raises(ValueError, match="same folder"):
        data.load_unpaired(str(tmp_path / "trainA"), str(tmp_path / "trainA"))
    with pytest.raises(ValueError, match="no testA/ and testB/"):
        data.load_unpaired(str(tmp_path), split="test")


def test_unpaired_tfds_through_mock_data():
    with tfds.testing.mock_data(num_examples=6):
        a, b = next(iter(data.load_unpaired("cycle_gan/horse2zebra", image_size=32, batch_size=3)))
    assert a.shape == b.shape == (3, 32, 32, 3)
    assert -1 <= float(tf.reduce_min(a)) and float(tf.reduce_max(b)) <= 1


# --------------------------------------------------------------- metrics
def test_translation_metrics_of_the_known_style_and_of_a_label_scrambler(digits_cache):
    a_test, b_test, _ = data.digits_style_test(16)

    def known(images, direction):  # the exact style one way, the paired test digits the other
        if direction == "a2b":
            return data.digits_style((images[..., :1] + 1) / 2).numpy() * 2 - 1
        return a_test[: len(images)]

    def scrambled(images, direction):
        return np.roll(known(images, direction), 1, axis=0)

    good = evaluate_translation(Translator(known, (16, 16, 3)), cache=digits_cache)["metrics"]
    bad = evaluate_translation(Translator(scrambled, (16, 16, 3)), cache=digits_cache)["metrics"]
    assert good["label_preservation_a2b"] >= 0.95 and good["label_preservation_b2a"] >= 0.95
    assert good["style_error"] < 1e-5
    assert bad["label_preservation_a2b"] < 0.3 and bad["style_error"] > 0.2


@pytest.fixture(scope="module")
def cyclegan_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "cyclegan"
    assert cli.main(["train", *TINY_CYCLEGAN_ARGS, "--out", str(out), "--eval-every", "1"]) == 0
    return out


def test_train_cyclegan_writes_before_after_grids_and_metrics(cyclegan_run):
    history = json.loads((cyclegan_run / "history.json").read_text())
    assert {"label_preservation_a2b", "label_preservation_b2a", "style_error", "learning_rate"} <= set(history[0])
    grid = Image.open(cyclegan_run / "samples" / "epoch_001.png")
    assert grid.size == (8 * 66 + 2, 4 * 66 + 2)  # A, G(A), B, F(B) rows of 8
    signatures = json.loads((cyclegan_run / "saved_model" / "1" / "assets" / "ganzoo.json").read_text())["signatures"]
    assert signatures == ["a2b", "b2a", "serving_default"]


def test_sample_input_folder_and_evaluate(cyclegan_run, tmp_path, capsys):
    _write_images(tmp_path / "mine", 3, 50)
    out = tmp_path / "before_after.png"
    assert cli.main(["sample", str(cyclegan_run), "--input", str(tmp_path / "mine"), "--out", str(out)]) == 0
    assert Image.open(out).size == (3 * 66 + 2, 2 * 66 + 2)
    assert cli.main(["sample", str(cyclegan_run), "--labels", "1", "--out", str(tmp_path / "x.png")]) == 2
    assert "(--input), not labels (--labels)" in capsys.readouterr().err
    report = tmp_path / "e.json"
    assert cli.main(["evaluate", str(cyclegan_run / "saved_model" / "1"), "--dataset", "digits_style",
                     "--n", "40", "--out", str(report)]) == 0
    assert "label_preservation_b2a" in capsys.readouterr().out
    assert json.loads(report.read_text())["protocol"]["n"] == 40
