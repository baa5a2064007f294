"""ganzoo.layers against the Keras layers they stand in for."""

import numpy as np
import pytest
import tensorflow as tf
import keras

from ganzoo import layers as zoo_layers


def _pair(**kwargs):
    """ganzoo's and Keras' BatchNormalization with the same weights."""
    ours, reference = zoo_layers.BatchNormalization(**kwargs), keras.layers.BatchNormalization(**kwargs)
    shape = (8, 6, 6, 5)
    ours.build(shape)
    reference.build(shape)
    rng = np.random.default_rng(0)
    for a, b in zip(ours.weights, reference.weights):
        value = rng.uniform(0.5, 1.5, a.shape).astype("float32")
        a.assign(value)
        b.assign(value)
    return ours, reference


def _images(seed=1):
    return tf.constant(np.random.default_rng(seed).normal(2.0, 3.0, (8, 6, 6, 5)).astype("float32"))


@pytest.mark.parametrize("kwargs", [{}, {"center": False}, {"scale": False, "momentum": 0.5}])
def test_batch_norm_trains_like_keras(kwargs):
    ours, reference = _pair(**kwargs)
    x = _images()
    weights = _images(seed=2)  # a loss that depends on every output
    results = []
    for layer in (ours, reference):
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = layer(x, training=True)
            loss = tf.reduce_sum(y * weights)
        grads = tape.gradient(loss, [x, *layer.trainable_weights])
        results.append((y, grads, [w.numpy() for w in layer.non_trainable_weights]))
    (y, grads, stats), (y_ref, grads_ref, stats_ref) = results
    np.testing.assert_allclose(y, y_ref, atol=1e-5)
    for g, g_ref in zip(grads, grads_ref):
        np.testing.assert_allclose(g, g_ref, rtol=1e-4, atol=1e-4)
    for s, s_ref in zip(stats, stats_ref):
        np.testing.assert_allclose(s, s_ref, rtol=1e-5)
    assert not np.allclose(stats[1], 1.0)  # the moving variance did move


def test_batch_norm_inference_uses_moving_statistics():
    ours, reference = _pair()
    x = _images()
    np.testing.assert_allclose(ours(x, training=False), reference(x, training=False), atol=1e-5)
    ours(x, training=False)
    np.testing.assert_array_equal(ours.moving_mean.numpy(), reference.moving_mean.numpy())


def test_batch_norm_keeps_the_mixed_precision_dtype():
    layer = zoo_layers.BatchNormalization(dtype="mixed_bfloat16")
    y = layer(tf.cast(_images(), "bfloat16"), training=True)
    assert y.dtype == tf.bfloat16
    assert layer.moving_mean.dtype == "float32"


def test_batch_norm_on_vectors_is_keras_synchronized_path():
    ours = zoo_layers.BatchNormalization()
    x = tf.random.stateless_normal((16, 3), seed=(1, 2))
    y = ours(x, training=True)
    np.testing.assert_allclose(tf.reduce_mean(y, 0), 0.0, atol=1e-5)


def test_batch_norm_config_round_trip():
    layer = zoo_layers.BatchNormalization(momentum=0.9, epsilon=1e-5)
    clone = zoo_layers.BatchNormalization.from_config(layer.get_config())
    assert (clone.momentum, clone.epsilon, clone.synchronized) == (0.9, 1e-5, True)
    restored = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(layer))
    assert type(restored) is zoo_layers.BatchNormalization
    assert restored.get_config() == layer.get_config()


def _conv_bn_model(norm):
    inputs = keras.Input((6, 6, 2))
    x = norm()(keras.layers.Conv2D(4, 3)(inputs))
    return keras.Model(inputs, norm()(x))


def test_batch_norm_loads_weights_saved_from_keras_batch_norm(tmp_path):
    # Runs saved before dcgan switched layers hold keras.layers.BatchNormalization
    # weights, which Keras finds by layer name.
    keras.backend.clear_session()
    old = _conv_bn_model(lambda: keras.layers.BatchNormalization(synchronized=True))
    for variable in old.weights:
        variable.assign(np.random.default_rng(3).uniform(0.5, 1.5, variable.shape))
    old.save_weights(tmp_path / "old.weights.h5")
    keras.backend.clear_session()
    new = _conv_bn_model(zoo_layers.BatchNormalization)
    new.load_weights(tmp_path / "old.weights.h5")
    for a, b in zip(new.weights, old.weights):
        np.testing.assert_array_equal(a.numpy(), b.numpy())


def test_batch_norm_refuses_per_replica_statistics():
    with pytest.raises(ValueError, match="keras.layers.BatchNormalization"):
        zoo_layers.BatchNormalization(synchronized=False)


def test_batch_norm_float64_takes_keras_path():
    layer = zoo_layers.BatchNormalization(dtype="float64")
    y = layer(tf.cast(_images(), "float64"), training=True)
    assert y.dtype == tf.float64


@pytest.mark.parametrize("slope", [0.0, 0.1, 0.2, 1.0])
def test_leaky_relu_value_and_gradient_match_tf(slope):
    x = tf.constant([[-3.0, -0.5, 0.0, 0.25, 2.0]])
    with tf.GradientTape(persistent=True) as tape:
        tape.watch(x)
        ours, reference = zoo_layers.leaky_relu(x, slope), tf.nn.leaky_relu(x, alpha=slope)
        weighted = tf.constant([[1.0, 2.0, 3.0, 4.0, 5.0]])
        ours_sum, reference_sum = tf.reduce_sum(ours * weighted), tf.reduce_sum(reference * weighted)
    np.testing.assert_allclose(ours.numpy(), reference.numpy())
    ours_grad = tape.gradient(ours_sum, x).numpy()
    np.testing.assert_allclose(ours_grad[0, [0, 1, 3, 4]], tape.gradient(reference_sum, x).numpy()[0, [0, 1, 3, 4]])
    assert ours_grad[0, 2] == pytest.approx(3.0 * slope)  # at 0 the lower slope, as ReLU's gradient is 0 there


def test_leaky_relu_double_backward_equals_max():
    """A gradient penalty through conv + leaky ReLU: the same value and the
    same weight gradient as with max(x, slope x) differentiated by TF."""
    rng = np.random.default_rng(0)
    images = tf.constant(rng.normal(size=(4, 8, 8, 2)).astype("float32"))
    kernel = tf.Variable(rng.normal(size=(3, 3, 2, 3)).astype("float32"))

    def penalty_and_gradient(activation):
        with tf.GradientTape() as outer:
            with tf.GradientTape() as inner:
                inner.watch(images)
                score = tf.reduce_sum(activation(tf.nn.conv2d(images, kernel, 1, "SAME")) ** 2)
            penalty = tf.reduce_sum(inner.gradient(score, images) ** 2)
        return penalty.numpy(), outer.gradient(penalty, kernel).numpy()

    ours = penalty_and_gradient(lambda y: zoo_layers.leaky_relu(y, 0.2))
    reference = penalty_and_gradient(lambda y: tf.maximum(y, 0.2 * y))
    np.testing.assert_allclose(ours[0], reference[0], rtol=1e-5)
    np.testing.assert_allclose(ours[1], reference[1], rtol=1e-4, atol=1e-4)


def test_leaky_relu_keeps_bfloat16_and_the_layer_round_trips():
    layer = zoo_layers.LeakyReLU(0.2, dtype="mixed_bfloat16")
    x = tf.constant([[-1.0, 2.0]], dtype="bfloat16")
    with tf.GradientTape() as tape:
        tape.watch(x)
        y = layer(x)
    assert y.dtype == tf.bfloat16 and tape.gradient(y, x).dtype == tf.bfloat16
    np.testing.assert_allclose(y.numpy().astype("float32"), [[-0.2, 2.0]], rtol=1e-2)
    assert zoo_layers.LeakyReLU.from_config(layer.get_config()).negative_slope == pytest.approx(0.2)
    with pytest.raises(ValueError, match="negative_slope"):
        zoo_layers.LeakyReLU(1.5)
