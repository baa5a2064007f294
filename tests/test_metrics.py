"""Metrics against closed forms and hand-made point sets."""

import numpy as np
import pytest

import ganzoo
from ganzoo.data import mixture_samples
from ganzoo.metrics import (
    density_coverage,
    frechet_distance,
    frechet_distance_from_statistics,
    inception_score,
    kernel_distance,
    precision_recall,
)


# ------------------------------------------------------------------ FID
def test_frechet_distance_of_diagonal_gaussians_is_the_closed_form():
    mu1, mu2 = np.array([0.0, 1.0, 2.0]), np.array([1.0, 1.0, 0.0])
    var1, var2 = np.array([1.0, 4.0, 9.0]), np.array([4.0, 1.0, 1.0])
    # For commuting covariances: |mu1 - mu2|^2 + sum (sqrt(v1) - sqrt(v2))^2.
    expected = np.sum((mu1 - mu2) ** 2) + np.sum((np.sqrt(var1) - np.sqrt(var2)) ** 2)
    got = frechet_distance_from_statistics(mu1, np.diag(var1), mu2, np.diag(var2))
    assert got == pytest.approx(expected, rel=1e-10)
    assert got == pytest.approx(5.0 + 1.0 + 1.0 + 4.0)


def test_frechet_distance_of_general_gaussians_matches_eigenvalues():
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((4, 4)), rng.standard_normal((4, 4))
    s1, s2 = a @ a.T + np.eye(4), b @ b.T + np.eye(4)
    mu1, mu2 = rng.standard_normal(4), rng.standard_normal(4)
    # Tr sqrt(S1 S2) is the sum of the square roots of the (real, positive) eigenvalues of S1 S2.
    trace_sqrt = np.sum(np.sqrt(np.linalg.eigvals(s1 @ s2).real))
    expected = np.sum((mu1 - mu2) ** 2) + np.trace(s1) + np.trace(s2) - 2 * trace_sqrt
    assert frechet_distance_from_statistics(mu1, s1, mu2, s2) == pytest.approx(expected, rel=1e-8)


def test_frechet_distance_from_samples_approaches_the_closed_form():
    rng = np.random.default_rng(1)
    cov = np.array([[2.0, 0.5], [0.5, 1.0]])
    x = rng.multivariate_normal([0, 0], cov, size=200_000)
    y = rng.multivariate_normal([1, 2], np.eye(2), size=200_000)
    expected = frechet_distance_from_statistics([0, 0], cov, [1, 2], np.eye(2))
    assert frechet_distance(x, y) == pytest.approx(expected, rel=0.02)


def test_frechet_distance_of_a_set_with_itself_is_zero_and_symmetric():
    rng = np.random.default_rng(2)
    x, y = rng.standard_normal((500, 16)), rng.standard_normal((400, 16)) + 0.3
    assert abs(frechet_distance(x, x)) < 1e-6
    assert frechet_distance(x, y) == pytest.approx(frechet_distance(y, x), rel=1e-6)
    assert frechet_distance(x, y) > 16 * 0.3**2 * 0.8


def test_frechet_distance_survives_singular_covariances():
    rng = np.random.default_rng(3)
    x, y = rng.standard_normal((10, 64)), rng.standard_normal((10, 64))  # rank 9 in 64 dims
    value = frechet_distance(x, y)
    assert np.isfinite(value) and value > 0


def test_feature_sets_must_match():
    with pytest.raises(ValueError, match="same feature extractor"):
        frechet_distance(np.zeros((5, 3)), np.zeros((5, 4)))
    with pytest.raises(ValueError, match=r"\[n, d\]"):
        kernel_distance(np.zeros(5), np.zeros(5))


# ------------------------------------------------------------------ KID
def test_kernel_distance_near_zero_for_one_distribution_and_positive_for_shifted():
    rng = np.random.default_rng(4)
    x, y = rng.standard_normal((1000, 8)), rng.standard_normal((1000, 8))
    same_mean, same_std = kernel_distance(x, y, num_subsets=20, subset_size=500)
    assert abs(same_mean) < 3 * same_std + 1e-3
    shifted_mean, _ = kernel_distance(x, y + 1.0, num_subsets=20, subset_size=500)
    assert shifted_mean > 0.1 and shifted_mean > 50 * abs(same_mean)


def test_kernel_distance_is_the_unbiased_mmd():
    x, y = np.array([[1.0], [2.0]]), np.array([[0.0], [3.0]])
    k = lambda a, b: (a * b + 1) ** 3  # noqa: E731  (d = 1)
    expected = k(1, 2) * 2 / 2 + k(0, 3) * 2 / 2 - 2 * (k(1, 0) + k(1, 3) + k(2, 0) + k(2, 3)) / 4
    mean, std = kernel_distance(x, y, num_subsets=3, subset_size=2)
    assert mean == pytest.approx(expected) and std == pytest.approx(0)


# ------------------------------------------------------------------- IS
def test_inception_score_of_confident_uniform_predictions_is_the_class_count():
    probabilities = np.eye(10)[np.arange(1000) % 10]
    mean, std = inception_score(probabilities, splits=10)
    assert mean == pytest.approx(10, rel=1e-6) and std == pytest.approx(0, abs=1e-6)


def test_inception_score_of_constant_predictions_is_one():
    assert inception_score(np.tile([[0.7, 0.2, 0.1]], (100, 1)))[0] == pytest.approx(1.0)
    assert inception_score(np.eye(10)[np.zeros(100, int)])[0] == pytest.approx(1.0)


def test_inception_score_rejects_logits():
    with pytest.raises(ValueError, match="softmax"):
        inception_score(np.full((20, 3), 2.0))


# ------------------------------------------ precision, recall, density, coverage
SQUARE = np.array([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])


def test_precision_recall_on_hand_made_sets():
    # k=1: each corner of the unit square has radius 1 (its nearest corner).
    real = SQUARE
    fake = np.array([[0.5, 0.5], [3.0, 3.0]])  # inside every ball; outside all
    precision, recall = precision_recall(real, fake, k=1)
    assert precision == 0.5
    # The fake balls: each fake reaches the other (radius |(2.5, 2.5)| = 3.54); the
    # corners at distance <= 3.54 from (0.5, 0.5) or (3, 3): all four.
    assert recall == 1.0
    precision, recall = precision_recall(real, real + 10, k=1)
    assert (precision, recall) == (0.0, 0.0)
    assert precision_recall(real, real, k=1) == (1.0, 1.0)


def test_recall_drops_when_fake_covers_half_the_modes():
    real = mixture_samples("ring", 800, seed=0)
    half = real[np.arctan2(real[:, 1], real[:, 0]) > 0.1]  # the upper half of the ring
    precision, recall = precision_recall(real, half, k=3)
    assert precision == 1.0 and 0.3 < recall < 0.6


def test_density_and_coverage_on_hand_made_sets():
    real = SQUARE  # k=1 radii are 1, strict inequality
    fake = np.array([[0.5, 0.5], [0.0, 0.1], [5.0, 5.0]])
    density, coverage = density_coverage(real, fake, k=1)
    # (0.5, 0.5) lies in 4 balls, (0, 0.1) in 2 (corners (0,0) and (0,1) at 0.9), (5, 5) in none.
    assert density == pytest.approx((4 + 2 + 0) / (1 * 3))
    # Nearest fake of each corner: (0,0) 0.1, the others 0.71 ((0.5, 0.5)): all < 1.
    assert coverage == 1.0
    density, coverage = density_coverage(real, np.array([[0.0, 0.05], [0.05, 0.0]]), k=1)
    assert coverage == pytest.approx(0.25 * 3)  # (1, 1) is 1.34 away: not covered
    assert density_coverage(real, real + 10, k=1) == (0.0, 0.0)


def test_knn_metrics_need_enough_samples():
    with pytest.raises(ValueError, match="k=3"):
        precision_recall(SQUARE[:3], SQUARE, k=3)


# -------------------------------------------------------- mode coverage
@pytest.mark.parametrize("mixture, modes", [("ring", 8), ("grid", 25)])
def test_real_mixture_covers_every_mode(mixture, modes):
    result = ganzoo.metrics.mode_coverage(mixture_samples(mixture, 2500, seed=0), mixture=mixture)
    assert result["modes"] == modes == result["total_modes"]
    assert result["high_quality"] > 0.98
    assert result["kl"] < 0.05


def test_collapsed_samples_cover_one_mode():
    samples = np.tile([[1.0, 0.0]], (100, 1)) + 0.001
    result = ganzoo.metrics.mode_coverage(samples, mixture="ring")
    assert result["modes"] == 1
    assert result["high_quality"] == 1.0
    assert result["kl"] == pytest.approx(np.log(8))


def test_far_samples_are_low_quality():
    result = ganzoo.metrics.mode_coverage(np.zeros((10, 2)), mixture="ring")
    assert result == {"modes": 0, "total_modes": 8, "high_quality": 0.0, "kl": float("inf")}


def test_mode_coverage_rejects_bad_input():
    with pytest.raises(ValueError, match="ring"):
        ganzoo.metrics.mode_coverage(np.zeros((3, 2)), mixture="spiral")
    with pytest.raises(ValueError, match=r"\[n, 2\]"):
        ganzoo.metrics.mode_coverage(np.zeros((3, 3)))



def test_class_shares_count_confident_samples_and_classes():
    from ganzoo.metrics.distances import class_shares

    probabilities = np.array([[0.9, 0.1, 0.0], [0.5, 0.4, 0.1], [0.05, 0.05, 0.9], [0.1, 0.85, 0.05]])
    confident, shares = class_shares(probabilities)
    assert confident == 0.75  # p > 0.8 for three of four
    np.testing.assert_allclose(shares, [0.5, 0.25, 0.25])  # argmax classes 0, 0, 2, 1
    with pytest.raises(ValueError, match="class probabilities"):
        class_shares(np.ones(3))
