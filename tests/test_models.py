"""Behaviour every registry entry must have; parametrised over `list_models()`."""

import random

import numpy as np
import pytest
import tensorflow as tf
import keras

import ganzoo

from conftest import batch_for, tiny_model

ENTRIES = ganzoo.list_models()
# Entries that generate from noise (all but image-to-image translation).
NOISE_ENTRIES = [n for n in ENTRIES if ganzoo.registry.model_class(n).network_kind != "translation"]
# pggan's train step (every level behind a switch, with a double backprop)
# takes about 30 s to trace; tests/test_pggan.py covers its fit, save/load
# and resume, so the whole-registry fit tests leave it out.
FIT_ENTRIES = [n for n in ENTRIES if n != "pggan"]


def values(variables):
    return [v.numpy().copy() for v in variables]


def changed(before, variables):
    return [not np.array_equal(b, v.numpy()) for b, v in zip(before, variables)]


@pytest.mark.parametrize("name", NOISE_ENTRIES)
def test_discriminator_step_changes_only_the_discriminator(name):
    model = tiny_model(name)
    g, d = values(model.generator.trainable_variables), values(model.discriminator.trainable_variables)
    model.discriminator_step(*model.unpack_batch(tf.nest.map_structure(tf.constant, batch_for(model))))
    assert not any(changed(g, model.generator.trainable_variables))
    moved = changed(d, model.discriminator.trainable_variables)
    if model.network_kind == "progressive":  # at 4x4 the larger blocks are not in use yet
        assert any(moved)
    elif model.gan_loss in ("wasserstein", "hinge"):
        # E[D(fake)] - E[D(real)] cancels the critic's output bias: its gradient is 0
        # (for the hinge loss while every logit is inside the margins, as at the start).
        assert moved == [True] * (len(moved) - 1) + [False]
    else:
        assert all(moved)


@pytest.mark.parametrize("name", NOISE_ENTRIES)
def test_generator_step_changes_only_the_generator(name):
    model = tiny_model(name)
    g, d = values(model.generator.trainable_variables), values(model.discriminator.variables)
    model.generator_step(8)
    moved = changed(g, model.generator.trainable_variables)
    assert any(moved) if model.network_kind == "progressive" else all(moved)
    # Not even the discriminator's batch-norm statistics: its state changes only in its own step.
    assert not any(changed(d, model.discriminator.variables))


@pytest.mark.parametrize("name", [n for n in NOISE_ENTRIES if n in FIT_ENTRIES])
def test_fit_reports_finite_losses_and_counts_d_steps(name):
    model = tiny_model(name, d_steps=3)
    data = tf.data.Dataset.from_tensor_slices(batch_for(model, 32)).batch(8)
    history = model.fit(data, epochs=2, verbose=0)
    assert {"d_loss", "g_loss", "d_real", "d_fake"} <= set(history.history)
    assert all(np.isfinite(v).all() for v in history.history.values())
    assert int(model.d_optimizer.iterations) == 3 * int(model.g_optimizer.iterations) == 3 * 8


def test_trackers_reset_each_epoch():
    model = tiny_model("vanilla")
    data = tf.data.Dataset.from_tensor_slices(batch_for(model, 16)).batch(8)
    model.fit(data, epochs=1, verbose=0)
    assert int(model.d_loss_tracker.count) == 2
    model.fit(data, epochs=1, verbose=0)
    assert int(model.d_loss_tracker.count) == 2


@pytest.mark.parametrize("name", ENTRIES)
def test_a_seed_gives_the_same_initial_weights_whatever_ran_before(name):
    first = tiny_model(name)
    random.random()  # what an earlier test, or the user, may have drawn
    tiny_model("dcgan", seed=7)
    second, other = tiny_model(name), tiny_model(name, seed=2)
    for a, b in zip(first.weights, second.weights):
        np.testing.assert_array_equal(a.numpy(), b.numpy(), err_msg=a.path)
    assert any(not np.array_equal(a.numpy(), b.numpy()) for a, b in zip(first.weights, other.weights))


def test_kernels_of_one_shape_start_apart():
    """A shared initializer instance started every cyclegan residual block alike."""
    model = tiny_model("cyclegan", network_args={"filters": 4, "residual_blocks": 3})
    kernels = [v.numpy() for v in model.generator_ab.weights if v.path.endswith("kernel") and v.shape[:2] == (3, 3)]
    same_shape = [k for k in kernels if k.shape == kernels[-1].shape]
    assert len(same_shape) >= 2
    assert not np.array_equal(same_shape[0], same_shape[1])


@pytest.mark.parametrize("name", ENTRIES)
def test_no_two_kernels_of_an_entry_start_equal(name):
    """One initializer per layer: before it, G and D kernels of one shape
    (and every cyclegan residual block) started with the same values."""
    model = tiny_model(name)
    averaged = {id(v) for v in getattr(model, "ema_generator", keras.Model()).weights}  # G's copy by design
    kernels = {}
    for variable in model.weights:
        if variable.path.endswith("kernel") and np.prod(variable.shape) > 1 and id(variable) not in averaged:
            kernels.setdefault(tuple(variable.shape), []).append(variable)
    pairs = [(a, b) for group in kernels.values() for i, a in enumerate(group) for b in group[i + 1:]]
    if not pairs:
        pytest.skip(f"no two of {name}'s tiny kernels share a shape")
    for a, b in pairs:
        assert not np.array_equal(a.numpy(), b.numpy()), f"{a.path} and {b.path} start equal"


@pytest.mark.parametrize("seed", [-3, 2**32, 1.5, True])
def test_a_seed_outside_the_command_lines_range_is_refused(seed):
    with pytest.raises(ValueError, match="seed must be"):
        tiny_model("dcgan", seed=seed)


@pytest.mark.parametrize("name", NOISE_ENTRIES)
def test_generate_shapes_range_and_determinism(name):
    model = tiny_model(name)
    images = model.generate(5, seed=3)
    assert images.shape == (5, *model.data_shape) and images.dtype == np.float32
    if len(model.data_shape) == 3:
        assert images.min() >= -1 and images.max() <= 1
    np.testing.assert_array_equal(images, model.generate(5, seed=3))
    assert not np.array_equal(images, model.generate(5, seed=4))
    np.testing.assert_allclose(model(model.generator_inputs(model.sample_latent(5, seed=3))), images, atol=1e-6)
    with pytest.raises(ValueError, match="n must be at least 1"):
        model.generate(0)
    with pytest.raises(ValueError, match=r"z must have shape"):
        model.generate_from(np.zeros((2, model.latent_dim + 1)))


def test_evaluate_runs_test_step():
    model = tiny_model("vanilla")
    data = tf.data.Dataset.from_tensor_slices(batch_for(model, 16)).batch(8)
    before = values(model.trainable_variables)
    logs = model.evaluate(data, verbose=0, return_dict=True)
    assert set(logs) == {"d_loss", "g_loss", "d_real", "d_fake"}
    assert not any(changed(before, model.trainable_variables))


@pytest.mark.parametrize("name", FIT_ENTRIES)
def test_save_load_keeps_weights_and_optimizer_state(name, tmp_path):
    model = tiny_model(name)
    data = tf.data.Dataset.from_tensor_slices(batch_for(model, 16)).batch(8)
    model.fit(data, epochs=1, verbose=0)
    model.save(tmp_path / "m.keras")
    loaded = keras.models.load_model(tmp_path / "m.keras")
    assert type(loaded) is type(model) and loaded.get_config() == model.get_config()
    for a, b in zip(model.weights, loaded.weights):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    for opt in ("g_optimizer", "d_optimizer"):
        original, restored = getattr(model, opt).variables, getattr(loaded, opt).variables
        assert int(getattr(loaded, opt).iterations) == int(getattr(model, opt).iterations) >= 2
        for a, b in zip(original, restored):
            np.testing.assert_array_equal(a.numpy(), b.numpy())
    # Training resumes where it stopped: one more epoch gives the same weights.
    model.fit(data, epochs=1, verbose=0)
    loaded.fit(data, epochs=1, verbose=0)
    for a, b in zip(model.trainable_weights, loaded.trainable_weights):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("name", ENTRIES)
def test_export_then_serve_matches_generate(name, tmp_path):
    model = tiny_model(name)
    path = model.export(tmp_path / name / "1")
    serve = tf.saved_model.load(str(path)).signatures["serving_default"]
    if model.network_kind == "translation":
        images = batch_for(model, 4)[0]
        feed, expected = {"images": images}, model.translate(images)
    else:
        inputs = model.generator_inputs(model.sample_latent(4, seed=7))
        feed = {"z": inputs[0], "labels": inputs[1]} if model.conditional else {"z": inputs}
        expected = model.generate(4, seed=7)
    out = serve(**{key: tf.constant(value) for key, value in feed.items()})
    assert set(out) == {"images", "images_uint8"}
    np.testing.assert_allclose(out["images"].numpy(), expected, atol=1e-5)
    pixels = np.round((np.clip(out["images"].numpy(), -1, 1) + 1) * 127.5)
    np.testing.assert_array_equal(out["images_uint8"].numpy(), pixels.astype(np.uint8))
    with pytest.raises(FileExistsError, match="overwrite=True"):
        model.export(path)
    model.export(path, overwrite=True)


def test_compile_rejects_a_shared_optimizer():
    model = tiny_model("vanilla")
    shared = keras.optimizers.Adam()
    with pytest.raises(ValueError, match="two optimizer objects"):
        model.compile(g_optimizer=shared, d_optimizer=shared)
    with pytest.raises(TypeError, match="g_optimizer and d_optimizer"):
        model.compile(optimizer="adam")


def test_unpack_batch_accepts_common_layouts():
    model = tiny_model("vanilla")
    x, y = tf.zeros((2, 2)), tf.zeros(2)
    for data in (x, (x,), {"image": x}):
        assert model.unpack_batch(data) == (x, None)
    for data in ((x, y), {"image": x, "label": y}):
        samples, labels = model.unpack_batch(data)
        assert samples is x and labels is y
