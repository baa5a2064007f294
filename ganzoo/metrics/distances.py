"""Sample-quality metrics computed from features, so any feature extractor
(Inception, the digits classifier, raw vectors) plugs in and the metrics are
testable without network weights.

All take NumPy arrays `[n, d]` and compute in float64.
"""

import warnings

import numpy as np
import scipy.linalg
from sklearn.metrics import pairwise_distances_chunked
from sklearn.neighbors import NearestNeighbors


def _features(x, name):
    x = np.asarray(x, dtype="float64")
    if x.ndim != 2 or len(x) < 2:
        raise ValueError(f"{name} must be features [n, d] with n >= 2, got shape {list(x.shape)}.")
    return x


def _feature_pair(real_features, fake_features):
    """Both feature sets as float64 `[n, d]`, checked to have one width."""
    real, fake = _features(real_features, "real_features"), _features(fake_features, "fake_features")
    if real.shape[1] != fake.shape[1]:
        raise ValueError(
            f"real and fake features differ in width ({real.shape[1]} vs {fake.shape[1]}); "
            "compute both with the same feature extractor."
        )
    return real, fake


def feature_statistics(features):
    """Mean and covariance of `[n, d]` features, in float64."""
    features = _features(features, "features")
    return features.mean(axis=0), np.cov(features, rowvar=False)


def frechet_distance_from_statistics(mu1, sigma1, mu2, sigma2, eps=1e-6):
    """||mu1 - mu2||^2 + Tr(S1 + S2 - 2 (S1 S2)^(1/2)) (Dowson & Landau 1982).

    A near-singular product (fewer samples than dimensions) can make the
    matrix square root non-finite; as in Heusel et al.'s reference code, eps
    is then added to both diagonals. Imaginary parts from rounding are dropped.
    """
    mu1, mu2 = np.atleast_1d(mu1).astype("float64"), np.atleast_1d(mu2).astype("float64")
    sigma1, sigma2 = np.atleast_2d(sigma1).astype("float64"), np.atleast_2d(sigma2).astype("float64")
    if mu1.shape != mu2.shape or sigma1.shape != sigma2.shape:
        raise ValueError("The two Gaussians must have the same dimension.")
    with warnings.catch_warnings():
        # Singular products are expected (dead ReLU features, n < d); handled below.
        warnings.simplefilter("ignore", scipy.linalg.LinAlgWarning)
        covmean = scipy.linalg.sqrtm(sigma1 @ sigma2)
        if not np.isfinite(covmean).all():
            offset = np.eye(len(sigma1)) * eps
            covmean = scipy.linalg.sqrtm((sigma1 + offset) @ (sigma2 + offset))
    covmean = np.real(covmean)
    diff = mu1 - mu2
    return float(diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2 * np.trace(covmean))


def frechet_distance(real_features, fake_features):
    """The Fréchet distance between Gaussians fitted to two feature sets:
    FID (Heusel et al. 2017) when the features are Inception pool features."""
    real, fake = _feature_pair(real_features, fake_features)
    return frechet_distance_from_statistics(*feature_statistics(real), *feature_statistics(fake))


def kernel_distance(real_features, fake_features, num_subsets=100, subset_size=1000, seed=0):
    """KID (Bińkowski et al. 2018): the unbiased squared MMD with the cubic
    polynomial kernel k(x, y) = (x.y / d + 1)^3, over random subsets.

    Returns `(mean, std)` over `num_subsets` subsets of
    `min(subset_size, n_real, n_fake)` samples each. Unbiased, so it can be
    slightly negative when the two sets come from one distribution. The
    subsets are drawn as torch-fidelity draws them (`RandomState(seed)`,
    the first set first), so with its `rng_seed` and `input1` = real it
    picks the same subsets.
    """
    real, fake = _feature_pair(real_features, fake_features)
    m = min(subset_size, len(real), len(fake))
    d = real.shape[1]
    rng = np.random.RandomState(seed)
    estimates = []
    for _ in range(num_subsets):
        x = real[rng.choice(len(real), m, replace=False)]
        y = fake[rng.choice(len(fake), m, replace=False)]
        k_xx = (x @ x.T / d + 1) ** 3
        k_yy = (y @ y.T / d + 1) ** 3
        k_xy = (x @ y.T / d + 1) ** 3
        off_diagonal = (k_xx.sum() - np.trace(k_xx) + k_yy.sum() - np.trace(k_yy)) / (m * (m - 1))
        estimates.append(off_diagonal - 2 * k_xy.mean())
    return float(np.mean(estimates)), float(np.std(estimates))


def inception_score(class_probabilities, splits=10, shuffle_seed=None):
    """IS (Salimans et al. 2016): exp(E_x KL(p(y|x) || p(y))), as `(mean, std)`
    over `splits` equal parts of the samples.

    `shuffle_seed`: shuffle the samples first with `RandomState(seed)`, as
    torch-fidelity does (its default seed is 2020); parts are cut as it cuts them.
    """
    p = np.asarray(class_probabilities, dtype="float64")
    if p.ndim != 2 or len(p) < splits:
        raise ValueError(
            f"class_probabilities must be [n, classes] with n >= splits ({splits}), "
            f"got shape {list(p.shape)}."
        )
    if (p < 0).any() or not np.allclose(p.sum(axis=1), 1, atol=1e-3):
        raise ValueError("class_probabilities must be probabilities (rows summing to 1); apply softmax to logits.")
    if shuffle_seed is not None:
        p = p[np.random.RandomState(shuffle_seed).permutation(len(p))]
    scores = []
    for i in range(splits):
        part = p[i * len(p) // splits : (i + 1) * len(p) // splits]
        marginal = part.mean(axis=0, keepdims=True)
        kl = np.sum(part * (np.log(part + 1e-12) - np.log(marginal + 1e-12)), axis=1)
        scores.append(np.exp(kl.mean()))
    return float(np.mean(scores)), float(np.std(scores))


def _knn_radii(points, k):
    """Distance from each point to its k-th nearest neighbour in its own set."""
    if len(points) <= k:
        raise ValueError(f"k-NN radii with k={k} need more than {k} samples, got {len(points)}.")
    distances, _ = NearestNeighbors(n_neighbors=k + 1).fit(points).kneighbors(points)
    return distances[:, k]  # column 0 is the point itself


def _ball_counts(queries, centers, radii, strict=False):
    """For each query, how many balls B(center_i, radius_i) contain it; chunked
    so that 10,000 x 10,000 distances never sit in memory at once."""
    counts = []
    for block in pairwise_distances_chunked(queries, centers):
        inside = block < radii[None] if strict else block <= radii[None]
        counts.append(inside.sum(axis=1))
    return np.concatenate(counts)


def precision_recall(real_features, fake_features, k=3):
    """Improved precision and recall (Kynkäänniemi et al. 2019).

    Each set's manifold is the union of balls reaching every sample's k-th
    nearest neighbour. Precision: the fraction of fake samples inside the
    real manifold (quality). Recall: the fraction of real samples inside the
    fake manifold (diversity). Returns `(precision, recall)`.
    """
    real, fake = _feature_pair(real_features, fake_features)
    precision = (_ball_counts(fake, real, _knn_radii(real, k)) > 0).mean()
    recall = (_ball_counts(real, fake, _knn_radii(fake, k)) > 0).mean()
    return float(precision), float(recall)


def density_coverage(real_features, fake_features, k=5):
    """Density and coverage (Naeem et al. 2020), robust to outliers.

    Density: how many real-sample k-NN balls contain each fake sample, over
    k (about 1 when the two distributions match, unbounded above). Coverage:
    the fraction of real samples whose k-NN ball contains some fake sample.
    Returns `(density, coverage)`.
    """
    real, fake = _feature_pair(real_features, fake_features)
    radii = _knn_radii(real, k)
    density = _ball_counts(fake, real, radii, strict=True).sum() / (k * len(fake))
    nearest_fake, _ = NearestNeighbors(n_neighbors=1).fit(fake).kneighbors(real)
    coverage = (nearest_fake[:, 0] < radii).mean()
    return float(density), float(coverage)


def conditional_accuracy(probabilities, labels):
    """How often a classifier recognises generated samples as the class they
    were generated for: mean of argmax(probabilities) == labels."""
    if probabilities is None or labels is None:
        raise ValueError("conditional_accuracy needs class probabilities and the labels asked for.")
    probabilities, labels = np.asarray(probabilities), np.asarray(labels)
    if probabilities.ndim != 2 or labels.ndim != 1 or len(probabilities) != len(labels):
        raise ValueError(
            f"Need class probabilities [n, k] and labels [n]; got {np.shape(probabilities)} and {labels.shape}."
        )
    if labels.max() >= probabilities.shape[1]:
        raise ValueError(
            f"Labels go up to {labels.max()} but the classifier has {probabilities.shape[1]} classes: "
            "it does not classify this dataset's classes."
        )
    return float(np.mean(probabilities.argmax(axis=1) == labels))


CONFIDENCE = 0.8  # "confident": the classifier gives one class p > 0.8


def class_shares(probabilities, confidence=CONFIDENCE):
    """`(confident share, shares)`: the fraction of samples a classifier puts
    in one class with p > `confidence`, and the fraction of samples whose most
    likely class is each class. A generator whose samples are recognisable
    digits in the data's proportions scores near the real data's share with
    every class near 1 / k; blobs score low, a collapsed one skews `shares`."""
    probabilities = np.asarray(probabilities, dtype="float64")
    if probabilities.ndim != 2 or len(probabilities) == 0:
        raise ValueError(f"Need class probabilities [n, k]; got shape {probabilities.shape}.")
    confident = float(np.mean(probabilities.max(axis=1) > confidence))
    shares = np.bincount(probabilities.argmax(axis=1), minlength=probabilities.shape[1]) / len(probabilities)
    return confident, shares
