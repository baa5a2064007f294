"""Against mode collapse: an ensemble of discriminators (GMAN), packing (PacGAN), a history of
discriminators and of fakes, and a discriminator trained until it is reliable."""

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
    with pytest.raises(ValueError, match="multiple of 2; this one has 3 rows"):  # known at trace time
        pack_samples(tf.zeros((3, 2)), 2)
    unknown = tf.function(lambda x: pack_samples(x, 2), input_signature=[tf.TensorSpec((None, 2))])
    with pytest.raises(tf.errors.InvalidArgumentError, match="multiple of 2"):  # known only when run
        unknown(tf.zeros((3, 2)))


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


@pytest.mark.parametrize("settings", [
    dict(discriminators=2, ensemble="softmax"), dict(pack=2), dict(snapshots=2, snapshot_every=1), dict(pool_size=8),
    dict(d_until_accuracy=0.5, d_steps=2), dict(d_until_accuracy=0.6, d_steps=2, pool_size=4, snapshots=1,
                                                 snapshot_every=1, discriminators=2),
])
def test_one_and_two_replicas_make_the_same_update(settings):
    assert_same_update_on_two_replicas("vanilla", settings, atol=2e-6)  # float32 sums in another order


def saved_and_resumed(model, folder):
    """`model` after an epoch, saved and loaded back; both are checked to hold
    the same variables (optimizers' too) and to train on identically."""
    data = tf.data.Dataset.from_tensor_slices(batch_for(model, 16)).batch(8)
    model.fit(data, epochs=1, verbose=0)
    model.save(folder / "m.keras")
    loaded = keras.models.load_model(folder / "m.keras")
    for a, b in zip([*model.weights, *model.d_optimizer.variables], [*loaded.weights, *loaded.d_optimizer.variables]):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    model.fit(data, epochs=1, verbose=0)
    loaded.fit(data, epochs=1, verbose=0)
    for a, b in zip(model.weights, loaded.weights):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-5, atol=1e-6)
    return loaded


def test_save_and_resume_keep_the_ensemble(tmp_path):
    model = tiny_model("wgan_gp", discriminators=2, pack=2)  # mean: softmax is refused with this loss
    loaded = saved_and_resumed(model, tmp_path)
    assert loaded.discriminator_count == 2 and loaded.pack == 2 and len(loaded.discriminators) == 2


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


# ------------------------------------------------------- a history of discriminators
def test_snapshots_are_frozen_copies_taken_every_k_steps():
    model = tiny_model("vanilla", snapshots=2, snapshot_every=2)
    live, (first, second) = model.discriminators[0], model.snapshots
    assert not first.trainable_weights and len(model.discriminator_variables()) == len(live.trainable_weights)
    data = tf.data.Dataset.from_tensor_slices(batch_for(model, 16)).batch(4)
    model.fit(data.take(2), epochs=1, verbose=0)  # G step 2: the first snapshot
    assert int(model.snapshots_taken) == 1
    for kept, weight in zip(first.weights, live.weights):
        np.testing.assert_array_equal(kept.numpy(), weight.numpy())
    frozen = [w.numpy().copy() for w in first.weights]
    model.fit(data.take(1), epochs=1, verbose=0)  # step 3: D trains, no snapshot is due
    assert all(np.array_equal(f, w.numpy()) for f, w in zip(frozen, first.weights))
    assert not all(np.array_equal(f, w.numpy()) for f, w in zip(frozen, live.weights))
    model.fit(data.take(3), epochs=1, verbose=0)  # steps 4 and 6: slot 2, then slot 1 again (the oldest)
    assert int(model.snapshots_taken) == 3
    for kept, weight in zip(first.weights, live.weights):
        np.testing.assert_array_equal(kept.numpy(), weight.numpy())
    assert not all(np.array_equal(a.numpy(), b.numpy()) for a, b in zip(first.weights, second.weights))


def test_snapshots_of_an_ensemble_take_each_discriminator_in_turn():
    model = tiny_model("vanilla", discriminators=2, snapshots=2, snapshot_every=1)
    model.generator_step(8)  # iterations 1 ...
    model.take_snapshot()  # ... slot 0 takes D 0
    first = [w.numpy().copy() for w in model.discriminators[0].weights]
    model.discriminator_step(tf.constant(batch_for(model, 8)))
    model.generator_step(8)
    model.take_snapshot()  # slot 1 takes D 1
    for kept, weight in zip(model.snapshots[0].weights, first):
        np.testing.assert_array_equal(kept.numpy(), weight)
    for kept, weight in zip(model.snapshots[1].weights, model.discriminators[1].weights):
        np.testing.assert_array_equal(kept.numpy(), weight.numpy())


def test_the_generator_loss_with_snapshots_against_hand_computed_values():
    model = tiny_model("vanilla", snapshots=2, snapshot_weight=0.25)
    live, old = tf.constant(1.0), [tf.constant(3.0), tf.constant(7.0)]
    assert float(model.with_snapshots(live, old)) == 1.0  # none taken yet: the live D alone
    model.snapshots_taken.assign(1)
    assert float(model.with_snapshots(live, old)) == pytest.approx(0.75 * 1 + 0.25 * 3)
    model.snapshots_taken.assign(5)  # every slot taken
    assert float(model.with_snapshots(live, old)) == pytest.approx(0.75 * 1 + 0.25 * 5)


def test_a_generator_step_leaves_the_snapshots_unchanged_and_uses_them():
    model = tiny_model("dcgan", snapshots=1, snapshot_every=1)
    model.snapshots_taken.assign(1)
    before = [w.numpy().copy() for judge in model._judges() for w in judge.weights]
    seen = []
    discriminate = model.discriminate
    model.discriminate = lambda x, labels=None, training=True: seen.append(model.discriminator.active) or discriminate(
        x, labels, training)
    model.generator_step(8)
    assert seen == [0, 1]  # the live D, then the snapshot
    assert all(np.array_equal(b, w.numpy()) for b, w in zip(before, (w for j in model._judges() for w in j.weights)))


# ------------------------------------------------------------ a pool of past fakes
def test_the_discriminator_sees_the_pools_mix_of_new_and_past_fakes():
    model = tiny_model("vanilla", pool_size=8)
    real = tf.constant(batch_for(model, 8))
    model.discriminator_step(real)
    assert int(model.fake_pool.count) == 8
    stored = model.fake_pool.images.numpy().copy()
    seen = []
    discriminate = model.discriminate
    model.discriminate = lambda x, labels=None, training=True: seen.append(x.numpy()) or discriminate(x, labels, training)
    model.discriminator_step(real)
    fakes = seen[1]  # real, then fake
    from_pool = [any(np.array_equal(f, s) for s in stored) for f in fakes]
    assert 0 < sum(from_pool) < 8  # about half old, half new


def test_the_history_pool_of_a_gan_and_of_cyclegan_is_one_class():
    from ganzoo.layers import ImageHistoryPool

    assert isinstance(tiny_model("vanilla", pool_size=4).fake_pool, ImageHistoryPool)
    assert isinstance(tiny_model("cyclegan").pool_a, ImageHistoryPool)


# ------------------------------------------------- a discriminator trained until reliable
def stub_discriminator_steps(model, accuracies):
    """Replace D's step by one whose k-th call has accuracy `accuracies[k]`
    (real logits +1 for that share of the batch, fakes judged the opposite way)."""
    calls = tf.Variable(0)
    table = tf.constant(accuracies, tf.float32)

    def step(real, labels=None):
        accuracy = tf.gather(table, calls)
        calls.assign_add(1)
        n = tf.shape(real)[0]
        right = tf.cast(tf.range(n), tf.float32) < accuracy * tf.cast(n, tf.float32)
        real_logits = tf.where(right, 1.0, -1.0)[:, None]
        return tf.reduce_mean(real_logits), real_logits, -real_logits

    model.discriminator_step = step
    return calls


@pytest.mark.parametrize("target, cap, expected", [(0.8, 5, 3), (0.8, 2, 2), (0.4, 5, 1), (0.99, 5, 5)])
def test_the_reliable_rule_stops_at_the_threshold_and_at_the_cap(target, cap, expected):
    model = tiny_model("vanilla", d_until_accuracy=target, d_steps=cap)
    calls = stub_discriminator_steps(model, [0.5, 0.7, 0.9, 0.95, 0.95, 0.95])
    batch = tf.constant(batch_for(model, 20 * cap))  # 20 rows an update: accuracies in steps of 0.05
    _, _, _, taken = tf.function(model.reliable_discriminator_steps)(batch)
    assert int(taken) == int(calls.numpy()) == expected


def test_the_reliable_rule_gives_each_update_its_own_real_batch_and_logs_the_count():
    model = tiny_model("vanilla", d_until_accuracy=1.0, d_steps=3)
    seen = []
    step = model.discriminator_step
    model.discriminator_step = lambda real, labels=None: seen.append(real.numpy()) or step(real, labels)
    batch = batch_for(model, 12)
    first, _, _, taken = model.reliable_discriminator_steps(tf.constant(batch))
    # eagerly the loop runs its body in Python: rows i, i + 3, i + 6, i + 9 for the i-th update
    assert int(taken) == len(seen) and len(seen) >= 1
    for i, real in enumerate(seen):
        np.testing.assert_array_equal(real, batch[i::3])
    np.testing.assert_array_equal(first.numpy(), batch[0::3])
    data = tf.data.Dataset.from_tensor_slices(batch_for(tiny_model("vanilla"), 24)).batch(12)
    history = tiny_model("vanilla", d_until_accuracy=1.0, d_steps=3).fit(data, epochs=1, verbose=0).history
    assert history["d_steps_taken"][0] == 3.0  # accuracy 1.0 is not reached in two steps


def test_the_reliable_rule_refuses_what_it_cannot_do():
    with pytest.raises(ValueError, match=r"d_until_accuracy must lie in \(0, 1\]"):
        tiny_model("vanilla", d_until_accuracy=80)
    with pytest.raises(ValueError, match="Wasserstein critic"):
        tiny_model("wgan", d_until_accuracy=0.8)
    model = tiny_model("vanilla", d_until_accuracy=0.8, d_steps=3)
    with pytest.raises(ValueError, match="d_steps=3 needs each replica's batch to be a multiple of 3; this one has 8"):
        model.reliable_discriminator_steps(tf.constant(batch_for(model, 8)))
    with pytest.raises(ValueError, match="pool_size keeps fakes without their labels"):
        tiny_model("cgan", pool_size=4)
    with pytest.raises(ValueError, match="grows its discriminator"):
        tiny_model("pggan", snapshots=2)


def test_save_and_resume_keep_the_snapshots_the_pool_and_the_rule(tmp_path):
    """Resumed training matching uninterrupted training needs the pool's
    images and random state and the snapshots back (their draws and losses)."""
    model = tiny_model("vanilla", snapshots=2, snapshot_every=1, pool_size=6, d_until_accuracy=0.7, d_steps=2)
    loaded = saved_and_resumed(model, tmp_path)
    assert (loaded.snapshot_count, loaded.pool_size, loaded.d_until_accuracy) == (2, 6, 0.7)
    assert int(loaded.snapshots_taken) == 4 and int(loaded.fake_pool.count) == 6  # two epochs of two steps


def test_a_batch_that_cannot_be_split_is_refused_before_training():
    tiny_model("vanilla", pack=4).check_batch_size(64, replicas=2)
    with pytest.raises(ValueError, match="pack=3 needs each replica's batch to be a multiple of 3.*multiple of 6"):
        tiny_model("vanilla", pack=3).check_batch_size(64, replicas=2)
    with pytest.raises(ValueError, match="d_steps=3 needs .* batch_size 256"):
        tiny_model("vanilla", d_until_accuracy=0.8, d_steps=3).check_batch_size(256)
    tiny_model("vanilla", d_steps=3).check_batch_size(256)  # a fixed d_steps reuses the batch: any size
    with pytest.raises(ValueError, match="pack=4 and d_until_accuracy with d_steps=2 .* multiple of 8"):
        tiny_model("vanilla", pack=4, d_until_accuracy=0.8, d_steps=2).check_batch_size(4)  # chunks of 2 < 4


@pytest.mark.parametrize("target, taken", [(1e-6, 1.0), (1.0, 2.0)])
def test_the_reliable_rule_on_two_replicas_matches_one_whether_it_stops_or_not(target, taken):
    """dcgan: G's batch norm moves in D's steps too, and is put back with the rest."""
    single, double = assert_same_update_on_two_replicas(
        "dcgan", dict(d_until_accuracy=target, d_steps=2, augment=None), atol=1e-5)
    assert single["d_steps_taken"] == double["d_steps_taken"] == [taken]


def test_the_reliable_rule_under_a_one_device_strategy():
    """A strategy of one replica still merges updates: the masked path, same result."""
    settings = dict(d_until_accuracy=0.6, d_steps=2)
    plain = tiny_model("vanilla", **settings)
    with tf.distribute.MirroredStrategy(["/cpu:0"]).scope():
        mirrored_one = tiny_model("vanilla", **settings)
    mirrored_one.set_weights(plain.get_weights())
    data = tf.data.Dataset.from_tensor_slices(batch_for(plain, 32)).batch(16)
    for model in (plain, mirrored_one):
        model.fit(data, epochs=1, verbose=0)
    for a, b in zip(plain.weights, mirrored_one.weights):
        np.testing.assert_allclose(b.numpy(), a.numpy(), rtol=1e-5, atol=1e-6)


def test_snapshots_follow_training_steps_not_the_optimizers_count():
    """A loss-scale optimizer holds its count still on a skipped step; the clock does not."""
    model = tiny_model("vanilla", snapshots=3, snapshot_every=2)
    for _ in range(4):
        model.take_snapshot()
    assert int(model.g_optimizer.iterations) == 0 and int(model.snapshots_taken) == 2
