"""Training under MirroredStrategy on two logical CPU devices, mixed
precision, and stopping on a non-finite loss."""

import numpy as np
import pytest
import tensorflow as tf
import keras

import ganzoo
from ganzoo import callbacks, distribute, losses

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


# Settings under which one step is the same on a split batch (none needed
# now: cyclegan's history pools gather the global batch).
REPLICA_SETTINGS = {}


@pytest.mark.parametrize("name", [n for n in ganzoo.list_models() if n not in ("wgan", "wgan_gp")])
def test_every_entry_makes_the_same_update_on_two_replicas(name):
    # wgan and wgan_gp: tests/test_wgan.py, with several d_steps.
    # dcgan and cgan: batch norm is synchronized; pggan: minibatch-stddev
    # groups of consecutive images, and images_seen counts the global batch.
    assert_two_replicas_match_one(name, atol=1e-6, **REPLICA_SETTINGS.get(name, {}))


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
    assert ganzoo.distribute.get_strategy is distribute.get_strategy  # as the README writes it
    assert distribute.get_strategy("default").num_replicas_in_sync == 1
    assert distribute.get_strategy("auto").num_replicas_in_sync == 1  # no GPU here
    assert distribute.get_strategy("mirrored").num_replicas_in_sync == 2  # the two logical CPUs
    with pytest.raises(ValueError, match="auto, default, mirrored"):
        distribute.get_strategy("mirored")


@pytest.fixture
def global_policy():
    """Set a global dtype policy for one test and restore it after."""
    previous = keras.mixed_precision.global_policy()
    yield keras.mixed_precision.set_global_policy
    keras.mixed_precision.set_global_policy(previous)


@pytest.mark.parametrize("name", ganzoo.list_models())
def test_mixed_bfloat16_trains_every_entry_with_float32_outputs(name, global_policy):
    global_policy("mixed_bfloat16")
    model = tiny_model(name)
    assert model.dtype_policy.name == "mixed_bfloat16"
    assert not isinstance(model.g_optimizer, keras.optimizers.LossScaleOptimizer)  # bfloat16 needs none
    batch = batch_for(model, 16)
    history = model.fit(tf.data.Dataset.from_tensor_slices(batch).batch(8), epochs=2, verbose=0).history
    assert all(np.isfinite(v).all() for v in history.values())
    assert all(v.dtype == "float32" for v in model.trainable_variables)
    outputs = model.translate(batch[0][:2]) if name == "cyclegan" else model.generate(2, seed=0)
    assert outputs.dtype == np.float32 and np.isfinite(outputs).all()


def test_mixed_float16_scales_both_losses(global_policy):
    global_policy("mixed_float16")
    model = tiny_model("dcgan", g_optimizer="sgd", d_optimizer="sgd")
    for optimizer in (model.g_optimizer, model.d_optimizer):
        assert isinstance(optimizer, keras.optimizers.LossScaleOptimizer)
    scale = float(model.g_optimizer.dynamic_scale)
    before = [v.numpy().copy() for v in model.trainable_variables]
    history = model.fit(tf.data.Dataset.from_tensor_slices(batch_for(model, 32)).batch(8), epochs=1, verbose=0).history
    assert all(np.isfinite(v).all() for v in history.values())
    # The steps were applied, unscaled: updates of SGD's size, not scale times it.
    change = max(np.abs(v.numpy() - b).max() for v, b in zip(model.trainable_variables, before))
    assert 1e-6 < change < 1.0 and scale > 1


def test_a_non_finite_loss_stops_training_and_keeps_the_last_good_backup(tmp_path):
    model = tiny_model("vanilla")
    good = batch_for(model, 32)
    backup = tmp_path / "backup"
    keep = [callbacks.StopOnNonFiniteLoss(backup_dir=backup), keras.callbacks.BackupAndRestore(backup, delete_checkpoint=False)]
    model.fit(tf.data.Dataset.from_tensor_slices(good).batch(8), epochs=1, verbose=0, callbacks=keep)
    saved = [v.numpy().copy() for v in model.weights]
    broken = good.copy()
    broken[20] = np.nan  # the third batch of the second epoch
    with pytest.raises(callbacks.NonFiniteLossError, match=r"d_loss became nan.* in epoch 2, batch 3.*after epoch 1"):
        model.fit(tf.data.Dataset.from_tensor_slices(broken).batch(8), epochs=3, verbose=0, callbacks=keep)
    restored = tiny_model("vanilla")
    restored.fit(tf.data.Dataset.from_tensor_slices(good).batch(8), epochs=1, verbose=0,
                 callbacks=[keras.callbacks.BackupAndRestore(backup)])  # epoch 1 is done: restores, trains nothing
    for expected, actual in zip(saved, restored.weights):
        np.testing.assert_array_equal(actual.numpy(), expected)
