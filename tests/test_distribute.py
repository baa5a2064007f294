"""Training under MirroredStrategy on two logical CPU devices."""

import numpy as np
import pytest
import tensorflow as tf

from ganzoo import distribute, losses

from conftest import batch_for, tiny_model


def mirrored():
    return distribute.get_strategy("mirrored")  # the two logical CPUs of conftest


def one_step(model, batch):
    before = [v.numpy().copy() for v in model.trainable_variables]
    size = len(tf.nest.flatten(batch)[0])
    model.fit(tf.data.Dataset.from_tensor_slices(batch).batch(size), epochs=1, verbose=0)
    return [v.numpy() - b for v, b in zip(model.trainable_variables, before)]


# SGD rather than Adam: Adam's update barely depends on the gradient's scale,
# so it would hide a loss that is not divided by the number of replicas.
@pytest.mark.parametrize("loss, d_steps", [(name, 1) for name in sorted(losses.LOSSES)] + [("minimax", 3)])
def test_two_replicas_make_the_same_update_as_one(loss, d_steps):
    assert_two_replicas_match_one("vanilla", loss=loss, d_steps=d_steps)


def assert_two_replicas_match_one(name, atol=1e-7, **settings):
    """One SGD step on 2 replicas moves every weight as 1 replica does on the same global batch."""
    settings = dict(settings, g_optimizer="sgd", d_optimizer="sgd")
    single = tiny_model(name, **settings)
    with mirrored().scope():
        double = tiny_model(name, **settings)
    double.set_weights(single.get_weights())
    batch = batch_for(single, 16)
    expected, actual = one_step(single, batch), one_step(double, batch)
    assert any(np.abs(e).max() > 1e-6 for e in expected)
    for e, a in zip(expected, actual):
        np.testing.assert_allclose(a, e, rtol=1e-4, atol=atol)


def test_dcgan_trains_under_mirrored_strategy():
    with mirrored().scope():
        model = tiny_model("dcgan")
    assert model.distribute_strategy.num_replicas_in_sync == 2
    data = tf.data.Dataset.from_tensor_slices(batch_for(model, 32)).batch(16)
    updates = one_step(model, batch_for(model, 16))
    assert all(np.abs(u).max() > 0 for u in updates)
    history = model.fit(data, epochs=1, verbose=0).history
    assert all(np.isfinite(v[-1]) for v in history.values())


def test_replicas_draw_different_noise():
    strategy = mirrored()
    with strategy.scope():
        model = tiny_model("vanilla")
    z = strategy.run(tf.function(lambda: model.sample_noise(4)))
    first, second = (t.numpy() for t in strategy.experimental_local_results(z))
    assert not np.allclose(first, second)


def test_get_strategy_names():
    assert distribute.get_strategy("default").num_replicas_in_sync == 1
    assert distribute.get_strategy("auto").num_replicas_in_sync == 1  # no GPU here
    assert distribute.get_strategy("mirrored").num_replicas_in_sync == 2  # the two logical CPUs
    with pytest.raises(ValueError, match="auto, default, mirrored"):
        distribute.get_strategy("mirored")
