"""Multi-scale sliced Wasserstein distance (Karras et al. 2018, appendix D).

Each image set becomes a Laplacian pyramid; from every level, random 7x7
patches are taken from each image, each descriptor channel is normalised
by the mean and std over both sets, and the sliced Wasserstein distance
between the two patch sets is averaged over random unit directions. Small
levels see patches in fewer places. Reported per level (by resolution) and
on average, times 1e3 as in the paper's tables. Works on any channel count.
"""

import numpy as np

_BINOMIAL = np.array([1.0, 4.0, 6.0, 4.0, 1.0]) / 16.0


def _blur(images):
    """5x5 binomial blur, edges reflected, `[n, H, W, C]`."""
    padded = np.pad(images, ((0, 0), (2, 2), (2, 2), (0, 0)), mode="reflect")
    rows = sum(w * padded[:, i : i + images.shape[1], :, :] for i, w in enumerate(_BINOMIAL))
    return sum(w * rows[:, :, i : i + images.shape[2], :] for i, w in enumerate(_BINOMIAL))


def laplacian_pyramid(images, min_resolution=8):
    """Levels `[full - up(half), half - up(quarter), ..., coarsest]`, finest first."""
    levels, current = [], np.asarray(images, "float64")
    while current.shape[1] // 2 >= min_resolution:
        smaller = _blur(current)[:, ::2, ::2]
        up = _blur(np.repeat(np.repeat(smaller, 2, axis=1), 2, axis=2))
        levels.append(current - up)
        current = smaller
    levels.append(current)
    return levels


def _patches(level, per_image, size, rng):
    n, height, width, channels = level.shape
    size = min(size, height, width)
    ys = rng.integers(0, height - size + 1, (n, per_image))
    xs = rng.integers(0, width - size + 1, (n, per_image))
    offsets = np.arange(size)
    rows = (ys[..., None, None] + offsets[:, None])[..., None]  # [n, p, size, 1, 1]
    cols = (xs[..., None, None] + offsets[None, :])[..., None]
    images = np.arange(n)[:, None, None, None, None]
    return level[images, rows, cols, np.arange(channels)].reshape(n * per_image, -1)


def sliced_wasserstein(a, b, directions=128, repeats=4, rng=None):
    """Mean over `directions * repeats` random unit directions of the mean
    absolute difference of the sorted projections of `a` and `b` (equal sizes)."""
    rng = rng or np.random.default_rng(0)
    distances = []
    for _ in range(repeats):
        d = rng.standard_normal((a.shape[1], directions))
        d /= np.linalg.norm(d, axis=0, keepdims=True)
        pa, pb = np.sort(a @ d, axis=0), np.sort(b @ d, axis=0)
        distances.append(np.abs(pa - pb).mean())
    return float(np.mean(distances))


def multiscale_swd(real, fake, patches_per_image=64, patch_size=7, min_resolution=8, seed=0):
    """`{"swd_<resolution>": ..., "swd": mean}` (times 1e3) between two image sets
    `[n, H, W, C]` in [-1, 1]; the sets are cut to the same size."""
    real, fake = np.asarray(real, "float64"), np.asarray(fake, "float64")
    if real.ndim != 4 or real.shape[1:] != fake.shape[1:]:
        raise ValueError(f"SWD needs two image sets of one shape [n, H, W, C], got {real.shape} and {fake.shape}.")
    n = min(len(real), len(fake))
    rng = np.random.default_rng(seed)
    results = {}
    for real_level, fake_level in zip(laplacian_pyramid(real[:n], min_resolution),
                                      laplacian_pyramid(fake[:n], min_resolution)):
        a = _patches(real_level, patches_per_image, patch_size, rng)
        b = _patches(fake_level, patches_per_image, patch_size, rng)
        # Normalise each colour channel by its mean and std over both patch sets.
        channels = real_level.shape[-1]
        both = np.concatenate([a, b]).reshape(-1, channels)
        mean, std = np.tile(both.mean(axis=0), a.shape[1] // channels), np.tile(both.std(axis=0) + 1e-8, a.shape[1] // channels)
        results[f"swd_{real_level.shape[1]}"] = 1e3 * sliced_wasserstein((a - mean) / std, (b - mean) / std, rng=rng)
    results["swd"] = float(np.mean(list(results.values())))
    return results
