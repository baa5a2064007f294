"""Small NumPy helpers shared by models, samplers and metrics."""

import numpy as np


def latent_noise(n, latent_dim, seed=None):
    """`[n, latent_dim]` float32 draws from N(0, I) with NumPy, so a seed means
    the same noise for a Keras model and for its SavedModel."""
    return np.random.default_rng(seed).standard_normal((int(n), int(latent_dim))).astype("float32")


def in_batches(function, inputs, batch_size):
    """`function` applied to rows `i : i + batch_size` of an array (or of each
    array in a tuple), the results concatenated as NumPy."""
    n = len(inputs[0] if isinstance(inputs, tuple) else inputs)
    return np.concatenate([np.asarray(function(tree_slice(inputs, i, i + batch_size))) for i in range(0, n, batch_size)])


def tree_slice(inputs, start, stop):
    """Rows `start:stop` of an array or of each array in a tuple."""
    if isinstance(inputs, tuple):
        return tuple(x[start:stop] for x in inputs)
    return inputs[start:stop]
