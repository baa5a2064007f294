"""The stabilisers every noise entry can turn on: generator EMA, DiffAugment
and ADA, R1 (lazy too) and spectral normalisation."""

import numpy as np
import pytest
import tensorflow as tf
import keras

import ganzoo
from ganzoo import augment, layers, losses, runs

from conftest import batch_for, tiny_model, tiny_settings
from test_distribute import mirrored
from test_models import values

ALL = "color,translation,cutout"
IMAGES = np.random.default_rng(0).uniform(-1, 1, (6, 16, 16, 2)).astype("float32")


# ------------------------------------------------------------------- EMA
def test_ema_update_and_warm_up_against_hand_computed_values():
    model = tiny_model("dcgan", ema_decay=0.9)
    average = values(model.ema_generator.weights)
    np.testing.assert_array_equal(average[0], model.generator.weights[0].numpy())  # starts as G
    for w in model.generator.weights:
        w.assign(w + 1.0)
    raw = values(model.generator.weights)
    # Warm-up: before any G step t = 0 and the decay is min(0.9, 1/10) = 0.1.
    assert float(model.average_decay()) == pytest.approx(0.1)
    model.update_average()
    for new, old, w in zip(model.ema_generator.weights, average, raw):
        np.testing.assert_allclose(new.numpy(), 0.1 * old + 0.9 * w, rtol=1e-6, atol=1e-6)
    model.g_optimizer.iterations.assign(20)  # (1 + 20) / (10 + 20) = 0.7
    assert float(model.average_decay()) == pytest.approx(0.7)
    model.g_optimizer.iterations.assign(1000)  # then the configured decay
    assert float(model.average_decay()) == pytest.approx(0.9)


def test_fit_moves_the_average_toward_the_trained_generator():
    model = tiny_model("dcgan", ema_decay=0.5)
    start = values(model.ema_generator.weights)
    model.fit(tf.data.Dataset.from_tensor_slices(batch_for(model, 16)).batch(8), epochs=1, verbose=0)
    assert all(not np.array_equal(a, b.numpy()) for a, b in zip(start, model.ema_generator.weights))
    # The average is not trained: no optimizer holds it.
    assert not model.ema_generator.trainable_weights
    assert {id(v) for v in model.generator_variables()} == {id(v) for v in model.generator.trainable_weights}


@pytest.mark.parametrize("name", ["dcgan", "cgan"])
def test_generate_and_export_use_the_average(name, tmp_path):
    model = tiny_model(name, ema_decay=0.99)
    for w in model.ema_generator.weights:  # make the two generators differ
        w.assign(w + 0.05)
    z = model.sample_latent(4, seed=0)
    inputs = model.generator_inputs(z)
    expected = model.ema_generator(inputs if not isinstance(inputs, tuple) else list(inputs), training=False)
    raw = model.generator(inputs if not isinstance(inputs, tuple) else list(inputs), training=False)
    assert not np.allclose(expected, raw)
    np.testing.assert_allclose(model.generate_from(z), expected, atol=1e-6)
    model.export(tmp_path / "export")
    serve = tf.saved_model.load(str(tmp_path / "export")).signatures["serving_default"]
    args = {"z": tf.constant(z)} if not model.conditional else {"z": tf.constant(z), "labels": tf.constant(inputs[1])}
    np.testing.assert_allclose(serve(**args)["images"], expected, atol=1e-5)


def test_the_average_is_saved_and_resumed(tmp_path):
    options = dict(dataset="digits", out=tmp_path / "run", batch_size=64, verbose=0, eval_every=0,
                   ema_decay=0.9, augment=ALL, augment_probability=0.0, ada_target=0.6, ada_images=500,
                   **tiny_settings("dcgan"))
    run = ganzoo.train("dcgan", epochs=1, **options)
    average, probability = values(run.model.ema_generator.weights), float(run.model.augment_p)
    assert 0 < probability <= 1  # ADA moved p in the first epoch (22 steps of 64 images, 500 per unit)
    fresh = ganzoo.load("dcgan", **{k: v for k, v in options.items() if k not in ("dataset", "out", "batch_size",
                                                                                 "verbose", "eval_every")})
    assert runs.RunFolder(run.path).restore(fresh) == 1
    for a, b in zip(average, fresh.ema_generator.weights):
        np.testing.assert_array_equal(a, b.numpy())
    assert float(fresh.augment_p) == probability
    reloaded = keras.saving.load_model(run.path / "model.keras")
    assert float(reloaded.augment_p) == probability
    np.testing.assert_array_equal(average[0], reloaded.ema_generator.weights[0].numpy())
    resumed = ganzoo.train("dcgan", epochs=2, resume=True, **options)
    assert int(resumed.model.g_optimizer.iterations) == 2 * int(run.model.g_optimizer.iterations)


# ---------------------------------------------------------- augmentation
def fixed(value):
    """A `uniform(shape)` that always draws `value`."""
    return lambda shape: tf.fill((len(IMAGES), *shape), value)


@pytest.mark.parametrize("policy", ["color", "translation", "cutout", ALL])
def test_augmentations_keep_shape_and_range_and_pass_gradients(policy):
    x = tf.constant(IMAGES)
    with tf.GradientTape() as tape:
        tape.watch(x)
        y = augment.augment(x, policy, seed=keras.random.SeedGenerator(1))
        loss = tf.reduce_sum(y * tf.random.stateless_normal(y.shape, (1, 2)))
    gradient = tape.gradient(loss, x)
    assert y.shape == x.shape and float(tf.reduce_min(y)) >= -1 and float(tf.reduce_max(y)) <= 1
    assert np.isfinite(gradient.numpy()).all() and float(tf.reduce_max(tf.abs(gradient))) > 0


def test_probability_zero_is_the_identity():
    np.testing.assert_array_equal(augment.augment(tf.constant(IMAGES), ALL, probability=0.0, seed=3), IMAGES)


def test_translation_shifts_by_whole_pixels_and_fills_with_zero():
    # uniform 0 -> shift -reach (reach = 2 at 16 px): row i shows source row i + 2.
    y = augment.translation(tf.constant(IMAGES), fixed(0.0)).numpy()
    expected = np.zeros_like(IMAGES)
    expected[:, :-2, :-2] = IMAGES[:, 2:, 2:]
    np.testing.assert_array_equal(y, expected)
    np.testing.assert_array_equal(augment.translation(tf.constant(IMAGES), fixed(0.5)), IMAGES)  # shift 0


def test_cutout_zeroes_a_square_of_half_the_side():
    y = augment.cutout(tf.constant(IMAGES), fixed(0.5)).numpy()  # centre 8 of 16: rows and columns 4..11
    assert (y[:, 4:12, 4:12] == 0).all()
    mask = np.ones(IMAGES.shape, bool)
    mask[:, 4:12, 4:12] = False
    np.testing.assert_array_equal(y[mask], IMAGES[mask])


def test_unknown_augmentations_are_named():
    with pytest.raises(ValueError, match="Unknown augmentation 'cutot'. Did you mean 'cutout'"):
        augment.parse_policy("translation,cutot")
    with pytest.raises(ValueError, match="augment transforms images"):
        tiny_model("vanilla", augment="cutout")
    with pytest.raises(ValueError, match="need augment="):
        tiny_model("dcgan", augment=None, ada_target=0.6)


def test_options_that_do_not_fit_the_entry_are_refused():
    with pytest.raises(ValueError, match="batch norm mixes"):
        tiny_model("dcgan", r1_weight=1.0)  # dcgan's D has batch norm
    with pytest.raises(ValueError, match="Wasserstein critic"):
        tiny_model("wgan_gp", augment="cutout", ada_target=0.6)
    with pytest.raises(ValueError, match="ema_decay must lie in"):
        tiny_model("dcgan", ema_decay=1.0)
    with pytest.raises(ValueError, match="r1_every must be a positive integer"):
        tiny_model("wgan_gp", r1_weight=1.0, r1_every=0)


SPECTRAL = {"network_args": {"discriminator_norm": "spectral"}}


@pytest.mark.parametrize("settings", [
    dict(augment=ALL, ema_decay=0.9),
    dict(augment=ALL, augment_probability=0.5, ada_target=0.6, ada_images=100),
    dict(r1_weight=1.0, augment="translation", **SPECTRAL),
    dict(r1_weight=2.0, r1_every=2, **SPECTRAL),  # the second step is between lazy steps
])
def test_one_and_two_replicas_keep_every_variable_equal(settings):
    """Two SGD steps on 1 and on 2 replicas: every weight the same after,
    the average, the power-iteration vectors, p and the noise state included."""
    assert_same_update_on_two_replicas("dcgan", settings)


def assert_same_update_on_two_replicas(name, settings, atol=1e-6):
    """Two SGD steps of `name` with `settings` on 1 and on 2 replicas leave
    every variable (and the noise state) the same, up to float32 sums;
    returns the two runs' histories."""
    settings = dict(settings, g_optimizer="sgd", d_optimizer="sgd")
    single = tiny_model(name, **settings)
    with mirrored().scope():
        double = tiny_model(name, **settings)
    double.set_weights(single.get_weights())
    data = tf.data.Dataset.from_tensor_slices(batch_for(single, 32)).batch(16)
    histories = [model.fit(data, epochs=1, verbose=0).history for model in (single, double)]
    assert int(single.g_optimizer.iterations) == 2
    for a, b in zip(single.weights, double.weights):
        np.testing.assert_allclose(b.numpy(), a.numpy(), rtol=1e-4, atol=atol, err_msg=a.path)
    np.testing.assert_array_equal(single.seed_generator.state.numpy(), double.seed_generator.state.numpy())
    return histories


def test_adaptive_probability_follows_the_sign_of_real_scores():
    model = tiny_model("dcgan", augment=ALL, augment_probability=0.5, ada_target=0.6, ada_images=800)
    model.adapt_augmentation(tf.ones((8, 1)), 8)  # r_t = 1 > 0.6: D is overfitting, p rises by 8 / 800
    assert float(model.augment_p) == pytest.approx(0.51)
    model.adapt_augmentation(-tf.ones((8, 1)), 8)
    model.adapt_augmentation(-tf.ones((8, 1)), 8)
    assert float(model.augment_p) == pytest.approx(0.49)
    for _ in range(60):
        model.adapt_augmentation(-tf.ones((8, 1)), 8)
    assert float(model.augment_p) == 0.0  # kept in [0, 1]
    assert augment.overfitting(tf.constant([[0.6], [0.4]]), "least_squares") == 0.0  # boundary at 0.5


def test_augmentation_reaches_both_steps():
    model = tiny_model("dcgan", augment="cutout")
    seen = []
    discriminate = model.discriminate
    model.discriminate = lambda x, labels=None, training=True: seen.append(x) or discriminate(x, labels, training)
    real = tf.constant(batch_for(model))
    model.discriminator_step(real)
    model.generator_step(8)
    assert len(seen) == 3  # real and fake in the D step, fake in the G step
    assert not (real.numpy() == 0).any()
    # Exact zeros come only from the cut-out square (tanh outputs are never exactly 0 here).
    assert all((s.numpy() == 0).any(axis=(1, 2, 3)).all() for s in seen)


# -------------------------------------------------------------------- R1
def test_r1_of_a_linear_discriminator():
    w = np.array([[1.0], [-2.0], [0.5]], "float32")
    critic = lambda x, training=True: tf.matmul(x, w) + 3.0  # noqa: E731
    real = tf.constant(np.random.default_rng(0).normal(size=(5, 3)).astype("float32"))
    # grad_x D = w for every sample: gamma / 2 * |w|^2 = 10 / 2 * 5.25.
    assert float(losses.r1_penalty(critic, real, weight=10.0)) == pytest.approx(26.25, rel=1e-6)


def test_lazy_r1_acts_every_kth_step_with_k_times_the_weight():
    model = tiny_model("dcgan", r1_weight=1.0, r1_every=3, **SPECTRAL)
    real = tf.constant(batch_for(model))
    variables = model.discriminator_variables()
    with tf.GradientTape() as tape:
        penalty = model.real_penalty(real, weight=3.0)  # k * gamma
    # None: a variable R1 does not reach (D's output bias); the lazy path gives zeros.
    expected = [np.zeros(v.shape) if g is None else g.numpy() for g, v in zip(tape.gradient(penalty, variables), variables)]
    for step, due in [(0, True), (1, False), (2, False), (3, True)]:
        model.d_optimizer.iterations.assign(step)
        lazy = model.lazy_penalty_gradients(real)
        for g, e in zip(lazy, expected):
            np.testing.assert_allclose(g, e if due else np.zeros_like(e), rtol=1e-5, atol=1e-7)
    assert float(penalty) > 0 and any(np.abs(e).max() > 0 for e in expected)


# ---------------------------------------------------- spectral normalisation
def test_sigma_of_a_known_matrix():
    matrix = np.diag([3.0, 2.0, 1.0]).astype("float32") @ np.linalg.qr(np.random.default_rng(0).normal(size=(3, 3)))[0]
    sigma, u = layers.spectral_norm(matrix.astype("float32"), np.ones((1, 3), "float32"), iterations=50)
    assert float(sigma) == pytest.approx(3.0, rel=1e-5)
    np.testing.assert_allclose(np.abs(u.numpy() @ matrix.T @ matrix), 9.0 * np.abs(u.numpy()), rtol=1e-4)


def test_spectral_dense_divides_by_sigma_and_learns_through_it():
    layer = layers.SpectralDense(3, use_bias=False, power_iterations=30)
    x = tf.constant(np.random.default_rng(1).normal(size=(4, 5)).astype("float32"))
    layer(x)
    kernel = layer.kernel.numpy()
    sigma = np.linalg.svd(kernel, compute_uv=False)[0]
    with tf.GradientTape() as tape:
        y = layer(x, training=True)
        total = tf.reduce_sum(y)
    np.testing.assert_allclose(y, x.numpy() @ kernel / sigma, rtol=1e-4, atol=1e-5)
    np.testing.assert_array_equal(layer.kernel.numpy(), kernel)  # the kernel stays W: a reparametrisation
    # Through sigma: the gradient of sum(W / sigma x) is not (sum x) / sigma alone.
    gradient = tape.gradient(total, layer.kernel).numpy()
    naive = np.tile(x.numpy().sum(axis=0)[:, None], (1, 3)) / sigma
    assert not np.allclose(gradient, naive, rtol=1e-3)


def test_power_iteration_state_moves_only_in_training_mode():
    layer = layers.SpectralConv2D(4, 3, padding="same")
    x = tf.constant(IMAGES)
    layer(x)
    u = layer.power_u.numpy().copy()
    layer(x, training=False)
    np.testing.assert_array_equal(layer.power_u.numpy(), u)
    with keras.StatelessScope():
        layer(x, training=True)
    np.testing.assert_array_equal(layer.power_u.numpy(), u)
    layer(x, training=True)
    assert not np.array_equal(layer.power_u.numpy(), u)


@pytest.mark.parametrize("settings", [
    dict(network_args={"discriminator_norm": "spectral"}),
    dict(network_args={"discriminator_norm": "spectral"}, augment=ALL, ema_decay=0.9, r1_weight=1.0, r1_every=2),
])
def test_the_generator_step_leaves_every_discriminator_variable_alone(settings):
    model = tiny_model("dcgan", **settings)
    assert any(v.name == "power_u" for v in model.discriminator.variables)
    d = values(model.discriminator.variables)
    model.generator_step(8)
    for before, v in zip(d, model.discriminator.variables):
        np.testing.assert_array_equal(before, v.numpy())
    model.discriminator_step(tf.constant(batch_for(model)))
    moved = {v.name for before, v in zip(d, model.discriminator.variables) if not np.array_equal(before, v.numpy())}
    assert "power_u" in moved and "kernel" in moved


def test_the_sngan_discriminator_is_spectrally_normalised_everywhere():
    model = tiny_model("sngan")
    weighted = [layer for layer in model.discriminator.layers if layer.weights]
    assert weighted and all(isinstance(layer, (layers.SpectralConv2D, layers.SpectralDense)) for layer in weighted)
    assert model.gan_loss == "hinge"


def test_power_iteration_vectors_are_saved_and_loaded(tmp_path):
    model = tiny_model("dcgan", **SPECTRAL)
    model.discriminator_step(tf.constant(batch_for(model)))  # u moves away from its initial value
    model.save(tmp_path / "model.keras")
    model.save_weights(tmp_path / "model.weights.h5")
    fresh = tiny_model("dcgan", **SPECTRAL)
    fresh.load_weights(tmp_path / "model.weights.h5")
    for other in (ganzoo.load_model(tmp_path / "model.keras"), fresh):
        us = [(a, b) for a, b in zip(model.discriminator.weights, other.discriminator.weights) if a.name == "power_u"]
        assert us and all(np.array_equal(a.numpy(), b.numpy()) for a, b in us)


def test_wgan_gp_penalises_the_critic_as_it_is_trained_on_augmented_inputs():
    """The penalty is on D(augment(x_hat)), which the critic's loss reads, not
    on D(x_hat): a critic penalised on plain interpolates is free on the
    augmented images it is trained on."""
    model = tiny_model("wgan_gp", augment="translation")
    real, fake = batch_for(model, 4, seed=0), batch_for(model, 4, seed=1)
    alpha = tf.fill((4, 1, 1, 1), 0.3)
    model.replica_random = lambda *args, **kwargs: alpha
    model.augmented = lambda x: x[:, :, ::-1, :] * 0.5  # a fixed stand-in for the random policy
    zeros = tf.zeros((4, 1))  # the Wasserstein term is then 0: what is left is the penalty
    penalty = float(model.discriminator_loss(real, fake, zeros, zeros))
    on_augmented = losses.gradient_penalty(lambda x, training: model.discriminator(model.augmented(x), training=training),
                                           real, fake, alpha)
    plain = losses.gradient_penalty(model.discriminator, real, fake, alpha)
    assert penalty == pytest.approx(float(on_augmented), rel=1e-5)
    assert penalty != pytest.approx(float(plain), rel=1e-2)
