"""Progressive growing: schedule, fade-in, the paper's layers, EMA, resume, export."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from ganzoo.layers import EqualizedConv2D, EqualizedDense, MinibatchStdDev, PixelNormalization
from ganzoo.models import pggan

from conftest import batch_for, tiny_model


def test_progress_schedule_values():
    model = tiny_model("pggan", data_shape=(16, 16, 1), fade_images=100, stable_images=50)  # levels 4, 8, 16
    assert model.levels == 2 and model.total_images == 50 + 2 * 150
    seen = [0, 49, 50, 100, 150, 175, 200, 250, 300, 350, 10_000]
    expected = [0, 0, 0, 0.5, 1, 1, 1, 1.5, 2, 2, 2]
    np.testing.assert_allclose([float(model.progress_at(n)) for n in seen], expected, atol=1e-6)
    assert model.phase(0.5) == (8, 0.5) and model.phase(1.0) == (8, 1.0) and model.phase(2.0) == (16, 1.0)


def test_fade_in_blends_the_upsampled_lower_level_with_the_new_block():
    generator = tiny_model("pggan", data_shape=(16, 16, 1)).generator
    z = np.random.default_rng(0).standard_normal((2, generator.latent_dim)).astype("float32")
    low, mid, high = (x.numpy() for x in generator.level_images(z))  # 4, 8, 16
    up = lambda x: x.repeat(2, axis=1).repeat(2, axis=2)  # noqa: E731
    np.testing.assert_allclose(generator(z, progress=1.0), up(mid), atol=1e-5)  # alpha 0 of level 2
    np.testing.assert_allclose(generator(z, progress=2.0), high, atol=1e-5)  # alpha 1
    np.testing.assert_allclose(generator(z, progress=1.25), 0.25 * high + 0.75 * up(mid), atol=1e-5)
    np.testing.assert_allclose(generator(z, progress=0.0), up(up(low)), atol=1e-5)


def test_real_images_are_shown_at_the_current_resolution():
    images = np.random.default_rng(0).uniform(-1, 1, (2, 16, 16, 1)).astype("float32")
    shown = pggan.grow(pggan.pyramid(images, 3), 1.0).numpy()
    pooled = images.reshape(2, 8, 2, 8, 2, 1).mean(axis=(2, 4))
    np.testing.assert_allclose(shown, pooled.repeat(2, axis=1).repeat(2, axis=2), atol=1e-6)
    np.testing.assert_allclose(pggan.grow(pggan.pyramid(images, 3), 2.0), images, atol=1e-6)


def test_pixel_norm_against_hand_computed_values():
    x = np.array([[[[3.0, 4.0]]]], "float32")
    np.testing.assert_allclose(PixelNormalization()(x), x / np.sqrt(12.5 + 1e-8), rtol=1e-6)


def test_minibatch_stddev_against_hand_computed_values():
    x = np.random.default_rng(1).standard_normal((8, 2, 2, 3)).astype("float32")
    out = MinibatchStdDev(group_size=4)(x).numpy()
    assert out.shape == (8, 2, 2, 4)
    np.testing.assert_array_equal(out[..., :3], x)
    for start in (0, 4):  # images 0-3 and 4-7
        group = x[start : start + 4]
        expected = np.sqrt(group.var(axis=0) + 1e-8).mean()
        np.testing.assert_allclose(out[start : start + 4, :, :, 3], expected, rtol=1e-5)


def test_equalized_learning_rate_scales_unit_weights_by_he_constant():
    dense = EqualizedDense(5)
    x = np.ones((1, 8), "float32")
    y = dense(x).numpy()
    np.testing.assert_allclose(y, x @ dense.kernel.numpy() * np.sqrt(2 / 8), rtol=1e-5)
    assert 0.7 < dense.kernel.numpy().std() < 1.3  # stored weights ~ N(0, 1)
    conv = EqualizedConv2D(4, 3)
    conv(np.zeros((1, 5, 5, 2), "float32"))
    assert conv.scale == pytest.approx(np.sqrt(2 / (3 * 3 * 2)))


def test_ema_follows_the_generator():
    model = tiny_model("pggan", ema_decay=0.9)
    before = [w.numpy().copy() for w in model.ema_generator.weights]
    model.generator_step(8)
    decay = float(model.average_decay())
    assert decay == pytest.approx(2 / 11)  # warming up: (1 + t) / (10 + t) after t = 1 step
    model.update_average()
    for average, old, new in zip(model.ema_generator.weights, before, model.generator.weights):
        np.testing.assert_allclose(average.numpy(), decay * old + (1 - decay) * new.numpy(), rtol=1e-5, atol=1e-7)
    model.g_optimizer.iterations.assign(1000)
    assert float(model.average_decay()) == pytest.approx(0.9)  # then the configured decay


def test_a_step_at_4x4_trains_only_the_blocks_in_use():
    model = tiny_model("pggan")
    assert float(model.progress) == 0
    generator, discriminator = model.generator, model.discriminator
    unused = generator.second_convs[-1].weights + generator.to_rgb[-1].weights + discriminator.from_rgb[-1].weights
    used = [generator.project.kernel, generator.to_rgb[0].kernel, discriminator.from_rgb[0].kernel]
    assert generator.sizes == [4, 8]
    before_unused, before_used = [w.numpy().copy() for w in unused], [w.numpy().copy() for w in used]
    model.fit(tf.data.Dataset.from_tensor_slices(batch_for(model, 8)).batch(8), epochs=1, verbose=0)
    assert all(np.array_equal(b, w.numpy()) for b, w in zip(before_unused, unused))  # 8x8 not in use yet
    assert not any(np.array_equal(b, w.numpy()) for b, w in zip(before_used, used))


def test_fit_grows_through_every_phase_and_logs_resolution_and_alpha():
    model = tiny_model("pggan", fade_images=16, stable_images=16)
    data = tf.data.Dataset.from_tensor_slices(batch_for(model, 16)).batch(8)
    history = model.fit(data, epochs=4, verbose=0).history  # 64 images: past 16 + 32
    assert history["resolution"] == [4.0, 8.0, 8.0, 8.0]
    assert history["alpha"][1] == 1.0 and float(model.progress) == 1.0
    assert all(np.isfinite(v).all() for v in history.values())


def test_resume_mid_phase_continues_the_schedule(tmp_path):
    model = tiny_model("pggan", fade_images=32, stable_images=16)
    data = tf.data.Dataset.from_tensor_slices(batch_for(model, 8)).batch(8)
    model.fit(data, epochs=4, verbose=0)  # 32 images: halfway through fading in 8x8
    assert float(model.progress) == pytest.approx(0.5)
    model.save(tmp_path / "m.keras")
    loaded = keras.models.load_model(tmp_path / "m.keras")
    assert float(loaded.progress) == pytest.approx(0.5) and loaded.phase() == (8, 0.5)
    np.testing.assert_allclose(loaded.generate(3, seed=1), model.generate(3, seed=1), atol=1e-6)
    model.fit(data, epochs=1, verbose=0)
    loaded.fit(data, epochs=1, verbose=0)
    assert float(loaded.progress) == float(model.progress) == pytest.approx(0.75)


def test_export_serves_the_final_resolution(tmp_path):
    model = tiny_model("pggan", fade_images=8, stable_images=8)
    model.fit(tf.data.Dataset.from_tensor_slices(batch_for(model, 8)).batch(8), epochs=3, verbose=0)
    assert float(model.progress) == 1.0
    serve = tf.saved_model.load(str(model.export(tmp_path / "1"))).signatures["serving_default"]
    z = model.sample_latent(3, seed=2)
    images = serve(z=tf.constant(z))["images"].numpy()
    assert images.shape == (3, 8, 8, 1)
    np.testing.assert_allclose(images, model.generate(3, seed=2), atol=1e-5)
    # Not blocky: a fully grown 8x8 image is not a 2x-upsampled 4x4 one.
    assert not np.allclose(images[:, ::2, ::2], images[:, 1::2, 1::2])


def test_swd_is_small_for_one_distribution_and_grows_with_a_shift():
    from ganzoo.metrics.swd import laplacian_pyramid, multiscale_swd

    rng = np.random.default_rng(0)
    smooth = lambda n: np.tanh(np.cumsum(rng.standard_normal((n, 32, 32, 3)), axis=2) / 4)  # noqa: E731
    real, same, other = smooth(200), smooth(200), smooth(200)
    near = multiscale_swd(real, same)
    far = multiscale_swd(real, np.clip(other + 0.5, -1, 1))
    assert set(near) == {"swd_32", "swd_16", "swd_8", "swd"}
    assert near["swd"] == pytest.approx(np.mean([near["swd_32"], near["swd_16"], near["swd_8"]]))
    assert far["swd"] > 5 * near["swd"] and all(far[k] > near[k] for k in near)
    levels = laplacian_pyramid(real)
    assert [level.shape[1] for level in levels] == [32, 16, 8]


def test_evaluate_reports_swd_per_level(digits_cache):
    from ganzoo.metrics import Sampler, evaluate
    from ganzoo.metrics.features import digits_images

    train, _ = digits_images("train")
    result = evaluate(Sampler(lambda z: train[: len(z)], 4, (32, 32, 1)), "digits", n=300,
                      metrics=["swd"], progress=False)
    assert {"swd", "swd_32", "swd_16", "swd_8"} <= set(result["metrics"])
    noise = evaluate(Sampler(lambda z: np.zeros((len(z), 32, 32, 1), "float32"), 4, (32, 32, 1)), "digits",
                     n=300, metrics=["swd"], progress=False)
    assert noise["metrics"]["swd"] > 3 * result["metrics"]["swd"]


def test_gradient_penalty_measures_the_norm_at_the_current_resolution():
    from ganzoo import losses

    small = tf.constant(np.random.default_rng(0).uniform(-1, 1, (4, 4, 4, 1)).astype("float32"))
    weights = tf.constant(np.random.default_rng(1).standard_normal((4, 4, 1)).astype("float32"))
    critic_small = lambda x, training=True: tf.reduce_sum(x * weights, axis=[1, 2, 3])  # noqa: E731
    critic_large = lambda x, training=True: critic_small(pggan.downsample(pggan.downsample(x)))  # noqa: E731
    up = lambda x: tf.repeat(tf.repeat(x, 4, axis=1), 4, axis=2)  # noqa: E731
    alpha = np.full((4, 1, 1, 1), 0.3, "float32")
    expected = losses.gradient_penalty(critic_small, small, -small, alpha)
    got = losses.gradient_penalty(critic_large, up(small), up(-small), alpha, norm_scale=4.0)
    np.testing.assert_allclose(got, expected, rtol=1e-5)
    # Unscaled, the norm on the large image is 4 times smaller: another penalty.
    assert abs(float(losses.gradient_penalty(critic_large, up(small), up(-small), alpha)) - float(expected)) > 1


def test_each_level_has_its_own_step_and_it_equals_the_switch_step():
    """fit's per-level steps (no tf.switch_case) update exactly as the step
    that switches levels inside one graph, through a level change."""
    import functools

    data = tf.data.Dataset.from_tensor_slices(batch_for(tiny_model("pggan"), 16)).batch(8)
    per_level = tiny_model("pggan", fade_images=16, stable_images=16)
    switched = tiny_model("pggan", fade_images=16, stable_images=16)
    switched.make_train_function = functools.partial(keras.Model.make_train_function, switched)
    switched.set_weights(per_level.get_weights())
    for model in (per_level, switched):
        model.fit(data, epochs=3, verbose=0)  # 48 images: 4x4, then fading in 8x8
    assert float(per_level.progress) == float(switched.progress) == 1.0
    for mine, theirs in zip(per_level.weights, switched.weights):
        np.testing.assert_allclose(mine.numpy(), theirs.numpy(), rtol=0, atol=1e-5, err_msg=mine.path)


@pytest.mark.slow
def test_pggan_trains_with_xla_through_a_level_change():
    model = tiny_model("pggan", fade_images=16, stable_images=16, jit_compile=True)
    data = tf.data.Dataset.from_tensor_slices(batch_for(model, 16)).batch(8)
    history = model.fit(data, epochs=3, verbose=0).history
    assert history["resolution"] == [4.0, 8.0, 8.0]
    assert all(np.isfinite(v).all() for v in history.values())
