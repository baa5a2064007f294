import numpy as np
import pytest

import ganzoo
from ganzoo.data import mixture_samples


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
