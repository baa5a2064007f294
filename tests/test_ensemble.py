"""Against mode collapse: an ensemble of discriminators (GMAN) and packing (PacGAN)."""

import math

import keras
import numpy as np
import pytest
import tensorflow as tf

import ganzoo
from ganzoo.models.base import combine_ensemble, pack_samples

from conftest import batch_for, tiny_model
from test_stabilizers import assert_same_update_on_two_replicas


def test_the_ensembles_generator_loss_against_hand_computed_values():
    losses = [tf.constant(1.0), tf.constant(2.0), tf.constant(4.0)]
    assert float(combine_ensemble(losses, "mean")) == pytest.approx(7 / 3)
    weights = [math.exp(0.5 * v) for v in (1.0, 2.0, 4.0)]
    soft = sum(w * v for w, v in zip(weights, (1.0, 2.0, 4.0))) / sum(weights)
    assert float(combine_ensemble(losses, "softmax", 0.5)) == pytest.approx(soft, rel=1e-6)
    assert float(combine_ensemble(losses, "softmax", 0.0)) == pytest.approx(7 / 3)  # lambda 0: the mean
    assert float(combine_ensemble(losses, "softmax", 100.0)) == pytest.approx(4.0)  # large: the hardest D
    assert float(combine_ensemble(losses[:1], "softmax")) == 1.0


def test_each_discriminator_of_an_ensemble_learns_as_it_would_alone():
    """One D step: D_1 of a 2-ensemble moves exactly as the same D alone, on
    the same fakes (their losses add, their variables are disjoint)."""
    real = batch_for(tiny_model("dcgan"), 8)
    plain = dict(augment=None, ema_decay=None)  # augmentation would draw other noise for the second D
    ensemble = tiny_model("dcgan", discriminators=2, **plain)
    alone = tiny_model("dcgan", **plain)
    first, second = ensemble.discriminators
    alone.generator.set_weights(ensemble.generator.get_weights())
    alone.discriminator.set_weights(second.get_weights())
    before = [w.numpy().copy() for w in first.weights]
    ensemble.discriminator_step(tf.constant(real))
    alone.discriminator_step(tf.constant(real))
    for mine, theirs in zip(second.weights, alone.discriminator.weights):
        np.testing.assert_allclose(mine.numpy(), theirs.numpy(), rtol=1e-5, atol=1e-6)
    assert not all(np.array_equal(b, w.numpy()) for b, w in zip(before, first.weights))
    assert not np.allclose(first.trainable_weights[0].numpy(), second.trainable_weights[0].numpy())  # apart


@pytest.mark.parametrize("settings", [dict(discriminators=3), dict(discriminators=2, ensemble="softmax", pack=2),
                                      dict(pack=4)])
def test_a_generator_step_leaves_every_discriminator_unchanged(settings):
    model = tiny_model("dcgan", **settings)
    before = [w.numpy().copy() for judge in model.discriminators for w in judge.weights]
    g_before = [w.numpy().copy() for w in model.generator.trainable_weights]
    model.generator_step(8)
    after = [w.numpy() for judge in model.discriminators for w in judge.weights]
    assert all(np.array_equal(b, a) for b, a in zip(before, after))
    assert not all(np.array_equal(b, w.numpy()) for b, w in zip(g_before, model.generator.trainable_weights))


def test_packing_groups_consecutive_samples_on_the_last_axis():
    vectors = tf.reshape(tf.range(12.0), (6, 2))  # six 2-d samples
    np.testing.assert_array_equal(pack_samples(vectors, 3).numpy(), [[0, 1, 2, 3, 4, 5], [6, 7, 8, 9, 10, 11]])
    images = tf.random.normal((4, 5, 5, 3))
    packed = pack_samples(images, 2).numpy()
    assert packed.shape == (2, 5, 5, 6)
    np.testing.assert_array_equal(packed[1, ..., 3:], images[3].numpy())  # sample j of a group: channels 3j..3j+2
    np.testing.assert_array_equal(packed[0, ..., :3], images[0].numpy())
    with pytest.raises(tf.errors.InvalidArgumentError, match="multiple of 2"):
        pack_samples(tf.zeros((3, 2)), 2)


def test_a_packed_discriminator_sees_m_samples_and_gives_one_logit_per_group():
    model = tiny_model("vanilla", pack=2)
    assert model.discriminator.judge.input_shape[-1] == 2 * model.data_shape[-1]
    assert model.discriminate(tf.zeros((8, *model.data_shape))).shape == (4, 1)
    assert len(tiny_model("vanilla", pack=2, discriminators=2).discriminators) == 2
    with pytest.raises(ValueError, match="unconditional"):
        tiny_model("cgan", pack=2)


def test_load_with_an_ensemble_and_packing_just_works():
    model = ganzoo.load("vanilla", discriminators=3, pack=2, **{"network_args": {"hidden_units": [8]}})
    assert len(model.discriminators) == 3 and model.pack == 2
    with pytest.raises(ValueError, match="ensemble must be one of mean, softmax"):
        ganzoo.load("vanilla", discriminators=2, ensemble="max")
    with pytest.raises(ValueError, match="arbitrary offset"):
        tiny_model("wgan_gp", discriminators=2, ensemble="softmax")


@pytest.mark.parametrize("settings", [dict(discriminators=2, ensemble="softmax"), dict(pack=2)])
def test_one_and_two_replicas_make_the_same_update(settings):
    assert_same_update_on_two_replicas("vanilla", settings, atol=2e-6)  # float32 sums in another order


def test_save_and_resume_keep_the_ensemble(tmp_path):
    model = tiny_model("wgan_gp", discriminators=2, pack=2)  # mean: softmax is refused with this loss
    data = tf.data.Dataset.from_tensor_slices(batch_for(model, 16)).batch(8)
    model.fit(data, epochs=1, verbose=0)
    model.save(tmp_path / "m.keras")
    loaded = keras.models.load_model(tmp_path / "m.keras")
    assert loaded.discriminator_count == 2 and loaded.pack == 2 and len(loaded.discriminators) == 2
    for a, b in zip(model.weights, loaded.weights):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    for a, b in zip(model.d_optimizer.variables, loaded.d_optimizer.variables):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    model.fit(data, epochs=1, verbose=0)
    loaded.fit(data, epochs=1, verbose=0)
    for a, b in zip(model.weights, loaded.weights):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-5, atol=1e-6)


def test_every_critic_of_a_wgan_ensemble_is_clipped():
    model = tiny_model("wgan", discriminators=2)
    assert all(v.constraint is not None for judge in model.discriminators for v in judge.trainable_variables)


def test_packing_leaves_no_unpacked_discriminator_behind():
    model = tiny_model("vanilla", pack=2)
    assert [type(layer).__name__ for layer in model.layers] == ["Functional", "Packed"]  # G and the packed D
    assert model.discriminator.judge.input_shape[-1] == 2 * model.data_shape[-1]


def test_packed_penalties_take_one_norm_and_one_alpha_per_group():
    """R1 and the gradient penalty of a packed critic are those of the packed input."""
    from ganzoo import losses

    weights = tf.constant([[1.0], [2.0], [3.0], [4.0]])  # a linear critic on packed 2 x 2-d inputs

    def critic(x, training=True):
        return pack_samples(x, 2) @ weights

    real = tf.random.normal((6, 2))
    # the gradient of every group is w: R1 = gamma / 2 * ||w||^2 = 0.5 * 30
    assert float(losses.r1_penalty(critic, real, weight=1.0, group=2)) == pytest.approx(15.0)
    alpha = tf.constant([[0.1], [0.9], [0.3], [0.7], [0.5], [0.2]])
    penalty = losses.gradient_penalty(critic, real, tf.zeros_like(real), alpha, weight=1.0, group=2)
    assert float(penalty) == pytest.approx((math.sqrt(30.0) - 1) ** 2, rel=1e-5)
