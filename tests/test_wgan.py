"""WGAN and WGAN-GP: the penalty, the clipping, n_critic, replicas."""

import keras
import numpy as np
import pytest
import tensorflow as tf

import ganzoo
from ganzoo import losses

from conftest import batch_for, tiny_model
from test_distribute import assert_two_replicas_match_one

MLP = dict(network="mlp", data_shape=(2,), latent_dim=4, network_args={"hidden_units": [16, 16]})


def linear_critic(w):
    inputs = keras.Input((len(w),))
    dense = keras.layers.Dense(1, use_bias=False)
    critic = keras.Model(inputs, dense(inputs))
    dense.kernel.assign(np.asarray(w, "float32")[:, None])
    return critic


@pytest.mark.parametrize("w", [[3.0, 4.0], [0.6, 0.0], [1.0, 0.0]])
def test_gradient_penalty_of_a_linear_critic(w):
    # D(x) = w.x has gradient w everywhere: the penalty is lambda (|w| - 1)^2.
    rng = np.random.default_rng(0)
    real, fake = rng.standard_normal((8, 2)), rng.standard_normal((8, 2))
    alpha = rng.uniform(size=(8, 1))
    penalty = losses.gradient_penalty(linear_critic(w), tf.constant(real, tf.float32),
                                      tf.constant(fake, tf.float32), tf.constant(alpha, tf.float32), weight=10.0)
    assert float(penalty) == pytest.approx(10 * (np.linalg.norm(w) - 1) ** 2, abs=1e-4)


def test_gradient_penalty_has_a_finite_gradient_at_zero():
    critic = linear_critic([0.0, 0.0])
    x = tf.ones((4, 2))
    with tf.GradientTape() as tape:
        penalty = losses.gradient_penalty(critic, x, -x, tf.fill((4, 1), 0.5))
    gradient = tape.gradient(penalty, critic.trainable_variables)[0]
    assert float(penalty) == pytest.approx(10.0, abs=1e-4) and np.isfinite(gradient.numpy()).all()


def test_wgan_gp_adds_the_penalty_to_the_critic_loss():
    model = tiny_model("wgan_gp", **MLP)
    real, fake = tf.constant(batch_for(model)), tf.constant(batch_for(model, seed=1))
    real_logits, fake_logits = model.discriminator(real), model.discriminator(fake)
    total = float(model.discriminator_loss(real, fake, real_logits, fake_logits))
    wasserstein = float(losses.wasserstein_discriminator_loss(real_logits, fake_logits))
    assert total > wasserstein  # the penalty is positive for a freshly initialised critic
    model_without = tiny_model("wgan_gp", **MLP, gp_weight=0.0)
    model_without.set_weights(model.get_weights())
    assert float(model_without.discriminator_loss(real, fake, real_logits, fake_logits)) == pytest.approx(wasserstein)


@pytest.mark.parametrize("clip_value", [0.01, 0.05])
def test_clipping_keeps_every_critic_weight_in_bounds(clip_value):
    model = tiny_model("wgan", clip_value=clip_value)
    assert max(float(np.abs(v.numpy()).max()) for v in model.discriminator.trainable_variables) > clip_value
    data = tf.data.Dataset.from_tensor_slices(batch_for(model, 16)).batch(8)
    model.fit(data, epochs=1, verbose=0)
    for variable in model.discriminator.trainable_variables:
        assert np.abs(variable.numpy()).max() <= clip_value + 1e-7, variable.path
    assert max(float(np.abs(v.numpy()).max()) for v in model.generator.trainable_variables) > clip_value


@pytest.mark.parametrize("name", ["wgan", "wgan_gp"])
def test_the_critic_takes_n_critic_steps_per_generator_step(name):
    model = tiny_model(name, d_steps=5)  # the papers' n_critic (wgan's digits YAML takes 1)
    data = tf.data.Dataset.from_tensor_slices(batch_for(model, 24)).batch(8)
    model.fit(data, epochs=1, verbose=0)
    assert int(model.d_optimizer.iterations) == 5 * int(model.g_optimizer.iterations) == 15


def test_defaults_follow_the_papers():
    wgan, gp = ganzoo.load("wgan"), ganzoo.load("wgan_gp")
    # The paper's method; its c = 0.01 tripled, its 5e-5 quadrupled and its n_critic 5 cut
    # to 1 on digits, so that a 10-minute run draws digits (zoo_configs/wgan.yaml).
    assert wgan.clip_value == 0.03 and wgan.gan_loss == "wasserstein"
    assert isinstance(wgan.d_optimizer, keras.optimizers.RMSprop)
    assert float(wgan.d_optimizer.learning_rate) == pytest.approx(2e-4) and wgan.d_steps == 1
    assert wgan.clusters == 20 and gp.clusters == 20  # self-conditioned on digits, as dcgan
    assert gp.gp_weight == 10.0 and gp.d_steps == 5 and isinstance(gp.d_optimizer, keras.optimizers.Adam)
    assert (gp.d_optimizer.beta_1, gp.d_optimizer.beta_2) == (0.5, 0.9)
    assert not any(isinstance(layer, keras.layers.BatchNormalization) for layer in gp.discriminator.layers)


def test_wgan_gp_refuses_a_batch_norm_critic():
    with pytest.raises(ValueError, match="discriminator_norm"):
        ganzoo.load("wgan_gp", network_args={"discriminator_norm": "batch"})


@pytest.mark.parametrize("loss", ["hinge", "wasserstein", "least_squares"])
def test_other_entries_take_any_loss(loss):
    model = tiny_model("dcgan", loss=loss)
    data = tf.data.Dataset.from_tensor_slices(batch_for(model, 16)).batch(8)
    assert np.isfinite(model.fit(data, epochs=1, verbose=0).history["d_loss"]).all()


@pytest.mark.parametrize("name, d_steps", [("wgan_gp", 1), ("wgan_gp", 5), ("wgan", 5)])
def test_two_replicas_make_the_same_update_as_one(name, d_steps):
    # The critic loss and the penalty are divided by the number of replicas,
    # and each replica takes its rows of the global batch's interpolation weights.
    assert_two_replicas_match_one(name, atol=1e-6, **MLP, d_steps=d_steps)
