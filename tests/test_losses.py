import numpy as np
import pytest

from ganzoo import losses

REAL = np.array([0.0, 2.0], "float32")
FAKE = np.array([-1.0, 1.0], "float32")


def sigmoid(x):
    return 1 / (1 + np.exp(-x))


def test_minimax_values():
    # -E log D(x) - E log(1 - D(G(z))), written with probabilities.
    expected_d = -np.mean(np.log(sigmoid(REAL))) - np.mean(np.log(1 - sigmoid(FAKE)))
    assert float(losses.minimax_discriminator_loss(REAL, FAKE)) == pytest.approx(expected_d, rel=1e-5)
    assert expected_d == pytest.approx(1.2233, abs=1e-4)
    expected_g = np.mean(np.log(1 - sigmoid(FAKE)))
    assert float(losses.minimax_generator_loss(FAKE)) == pytest.approx(expected_g, rel=1e-5)


def test_non_saturating_values():
    expected = -np.mean(np.log(sigmoid(FAKE)))  # (1.3133 + 0.3133) / 2
    assert float(losses.non_saturating_generator_loss(FAKE)) == pytest.approx(expected, rel=1e-5)
    assert expected == pytest.approx(0.8133, abs=1e-4)
    assert float(losses.non_saturating_discriminator_loss(REAL, FAKE)) == pytest.approx(
        float(losses.minimax_discriminator_loss(REAL, FAKE))
    )


def test_least_squares_values():
    # 0.5 * mean([1, 1]) + 0.5 * mean([1, 1]) = 1.0 ; G: 0.5 * mean([4, 0]) = 1.0
    assert float(losses.least_squares_discriminator_loss(REAL, FAKE)) == pytest.approx(1.0)
    assert float(losses.least_squares_generator_loss(FAKE)) == pytest.approx(1.0)


def test_hinge_values():
    # mean(relu(1 - [0, 2])) = 0.5 ; mean(relu(1 + [-1, 1])) = 1.0
    assert float(losses.hinge_discriminator_loss(REAL, FAKE)) == pytest.approx(1.5)
    assert float(losses.hinge_generator_loss(FAKE)) == pytest.approx(0.0)
    assert float(losses.hinge_generator_loss(np.array([3.0, 1.0]))) == pytest.approx(-2.0)


def test_wasserstein_values():
    assert float(losses.wasserstein_discriminator_loss(REAL, FAKE)) == pytest.approx(-1.0)
    assert float(losses.wasserstein_generator_loss(np.array([3.0, 1.0]))) == pytest.approx(-2.0)


def test_saturation_is_what_the_name_says():
    # For a confident discriminator (fake logit -10) the minimax generator
    # gradient vanishes while the non-saturating one does not.
    import tensorflow as tf

    logit = tf.Variable([-10.0])
    for loss, small in ((losses.minimax_generator_loss, True), (losses.non_saturating_generator_loss, False)):
        with tf.GradientTape() as tape:
            value = loss(logit)
        grad = abs(float(tape.gradient(value, logit)[0]))
        assert (grad < 1e-3) == small


def test_unknown_loss_names_the_choices():
    with pytest.raises(ValueError, match="hinge.*least_squares.*minimax"):
        losses.get("hinj")
