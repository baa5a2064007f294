"""Mode coverage on the 2D Gaussian mixtures `ring` and `grid`."""

import numpy as np

from ganzoo.data import MIXTURES


def mode_coverage(samples, mixture="grid"):
    """Mode coverage on a 2D Gaussian mixture (`ring` or `grid`).

    A sample is high quality when it lies within 3 standard deviations of its
    nearest mode; a mode is covered when some high-quality sample has it as
    nearest mode (the protocol of Srivastava et al. 2017, VEEGAN).

    Returns:
        `{"modes": covered modes, "total_modes": K, "high_quality": fraction of
        high-quality samples, "kl": KL(mode histogram of the high-quality
        samples || uniform over K)}`; `kl` is infinite with no high-quality sample.
    """
    if mixture not in MIXTURES:
        raise ValueError(f"mixture must be one of {sorted(MIXTURES)}, got {mixture!r}.")
    samples = np.asarray(samples, dtype="float64")
    if samples.ndim != 2 or samples.shape[1] != 2:
        raise ValueError(f"samples must be 2D points [n, 2], got shape {list(samples.shape)}.")
    centers, std = MIXTURES[mixture]["centers"], MIXTURES[mixture]["std"]
    distances = np.linalg.norm(samples[:, None, :] - centers[None], axis=-1)
    nearest = distances.argmin(axis=1)
    good = distances[np.arange(len(samples)), nearest] <= 3 * std
    counts = np.bincount(nearest[good], minlength=len(centers))
    if counts.sum():
        p = counts / counts.sum()
        nonzero = p > 0
        kl = float(np.sum(p[nonzero] * np.log(p[nonzero] * len(centers))))
    else:
        kl = float("inf")
    return {
        "modes": int((counts > 0).sum()),
        "total_modes": len(centers),
        "high_quality": float(good.mean()) if len(samples) else 0.0,
        "kl": kl,
    }
