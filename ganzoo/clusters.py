"""Pseudo-labels for self-conditioning: k-means clusters of the training
images, and the networks that condition on them.

Self-conditioned GANs (Liu et al. 2020, "Diverse Image Generation via
Self-Conditioned GANs", arXiv:2006.10728) cluster the data and train a
class-conditional GAN on the cluster ids, which an unconditional generator
lacks: the generator no longer has to map one connected noise space onto
digits that lie apart, and blends between clusters stop looking real to a
discriminator that knows the cluster. Here the clusters are fitted once, by
scikit-learn's k-means on the pixels (of images averaged down to at most
32 px a side), before the first step; the paper re-clusters D's features
as training goes, which this does not.
"""

import numpy as np
import keras
import tensorflow as tf
from keras import layers, ops

from ganzoo import networks

MAX_SIDE = 32  # k-means works on images averaged down to this side at most
MAX_IMAGES = 10_000  # k-means fits on at most this many training images
EMBEDDING = 16  # default width of the cluster embedding the generator reads (cgan's)


def pooling_factor(height, width):
    """The smallest whole f such that f x f average pooling brings the larger
    side of an image to at most `MAX_SIDE`."""
    return -(-max(height, width) // MAX_SIDE)


def view_size(data_shape):
    """The length of a sample's row in `view`."""
    if len(data_shape) != 3:
        return int(np.prod(data_shape))
    factor = pooling_factor(*data_shape[:2])
    return (data_shape[0] // factor) * (data_shape[1] // factor) * data_shape[2]


def view(samples):
    """What k-means sees of `samples`: float32, one row per sample; images
    [batch, H, W, C] averaged over f x f blocks, the smallest whole f that
    brings the larger side to at most `MAX_SIDE` (average pooling, which XLA
    compiles; tf.image.resize's "area" it does not)."""
    samples = tf.cast(samples, tf.float32)
    if samples.shape.rank == 4:
        factor = pooling_factor(samples.shape[1], samples.shape[2])
        if factor > 1:
            samples = tf.nn.avg_pool2d(samples, factor, factor, padding="VALID")
    return tf.reshape(samples, (tf.shape(samples)[0], -1))


def fit(views, clusters, seed=0):
    """`(centroids [K, P], frequencies [K])` of k-means on `views` [n, P]."""
    from sklearn.cluster import KMeans

    views = np.asarray(views, "float32")
    if len(views) < clusters:
        raise ValueError(f"clusters={clusters} needs at least as many training images; the data gave {len(views)}. "
                         "Choose fewer clusters.")
    kmeans = KMeans(clusters, n_init=4, random_state=seed).fit(views)
    frequencies = np.bincount(kmeans.labels_, minlength=clusters) / len(views)
    return kmeans.cluster_centers_.astype("float32"), frequencies


def nearest(views, centroids):
    """The index of the nearest centroid of each row of `views` (int32)."""
    distances = ops.sum(ops.square(centroids), axis=1)[None, :] - 2.0 * ops.matmul(views, ops.transpose(centroids))
    return ops.cast(ops.argmin(distances, axis=1), "int32")


def projection_initializer():
    """The projection discriminator's class embedding starts small. A fresh
    initializer each time: an unseeded one fixes its seed when it is made,
    so one instance shared by two layers would give them the same values."""
    return keras.initializers.RandomNormal(stddev=0.02)


def conditioned_pair(generator, discriminator, latent_dim, clusters, embedding=EMBEDDING):
    """The pair conditioned on a cluster id: G(z, k) = generator([z, embed(k)])
    (its input is `latent_dim + embedding` wide) and the projection
    discriminator D(x, k) = discriminator(x) + <embed(k), phi(x)> (Miyato &
    Koyama 2018), phi being what the discriminator's last layer reads."""
    z = keras.Input((latent_dim,), name="z")
    k = keras.Input((), dtype="int32", name="clusters")
    code = layers.Embedding(clusters, embedding, name="cluster_embedding")(k)
    conditioned_g = keras.Model([z, k], generator(layers.Concatenate()([z, code])), name="generator")

    image = keras.Input(discriminator.inputs[0].shape[1:], name="image")
    image_k = keras.Input((), dtype="int32", name="clusters")
    with_features = keras.Model(discriminator.inputs, [discriminator.outputs[0], networks.features(discriminator)],
                                name=discriminator.name)
    logits, features = with_features(image)
    embedded = layers.Embedding(clusters, features.shape[-1], name="cluster_projection",
                                embeddings_initializer=projection_initializer())(image_k)
    projection = layers.Dot(axes=1, dtype="float32")([embedded, features])
    conditioned_d = keras.Model([image, image_k], layers.Add(dtype="float32")([logits, projection]),
                                name="discriminator")
    return conditioned_g, conditioned_d
