"""Self-conditioning (`clusters`): the cluster drawn from z, k-means on the
training images, which step trains what, replicas, saving, export and
refusals."""

import numpy as np
import pytest
import keras
import tensorflow as tf
from scipy.stats import norm

import ganzoo
from ganzoo import clusters, layers, loading

from conftest import tiny_model, tiny_settings
from test_models import values
from test_stabilizers import assert_same_update_on_two_replicas

SELF = {"clusters": 3}


def two_kinds(n=24, shape=(16, 16, 1)):
    """n images: the first third dark, the rest bright, with a little noise."""
    rng = np.random.default_rng(0)
    images = np.where(np.arange(n)[:, None, None, None] < n // 3, -0.8, 0.8) + rng.normal(0, 0.05, (n, *shape))
    return images.astype("float32")


def test_the_code_picks_clusters_by_the_normal_cdf_of_the_first_entry():
    code = layers.ClusterCode(3)
    code.set_frequencies([1, 2, 1])  # cdf 0.25, 0.75, 1
    first = [-3.0, norm.ppf(0.2), norm.ppf(0.3), 0.0, norm.ppf(0.74), norm.ppf(0.76), 3.0]
    z = np.zeros((len(first), 5), "float32")
    z[:, 0] = first
    np.testing.assert_array_equal(code(z).numpy(), [0, 0, 1, 1, 1, 2, 2])


def test_drawn_clusters_follow_the_frequencies():
    code = layers.ClusterCode(4)
    code.set_frequencies([0.1, 0.2, 0.3, 0.4])
    z = np.random.default_rng(0).normal(size=(40_000, 3)).astype("float32")
    shares = np.bincount(code(z).numpy(), minlength=4) / len(z)
    np.testing.assert_allclose(shares, [0.1, 0.2, 0.3, 0.4], atol=0.008)  # 3 standard errors


def test_nearest_centroid_against_hand_computed_distances():
    views = np.array([[0.0, 0.0], [2.0, 2.1], [-1.0, 3.0]], "float32")
    centroids = np.array([[0.1, 0.0], [2.0, 2.0], [-1.0, 2.0]], "float32")
    np.testing.assert_array_equal(clusters.nearest(views, centroids).numpy(), [0, 1, 2])


def test_the_view_averages_large_images_down():
    images = np.random.default_rng(0).uniform(-1, 1, (2, 64, 64, 3)).astype("float32")
    seen = clusters.view(images).numpy()
    assert seen.shape == (2, 32 * 32 * 3)
    np.testing.assert_allclose(seen[0, 0], images[0, :2, :2, 0].mean(), rtol=1e-5)


def test_fit_clusters_separates_two_kinds_and_counts_them():
    model = tiny_model("dcgan", clusters=2)
    images = two_kinds()
    model.fit_clusters(tf.data.Dataset.from_tensor_slices(images).batch(5))
    labels = model.unpack_batch(tf.constant(images))[1].numpy()
    assert len(set(labels[:8])) == 1 and len(set(labels[8:])) == 1 and labels[0] != labels[8]
    frequencies = np.diff(model.cluster_code.cdf.numpy(), prepend=0.0)
    assert frequencies[labels[0]] == pytest.approx(1 / 3) and frequencies[labels[8]] == pytest.approx(2 / 3)
    assert int(model.clusters_fitted.numpy()) == 1


def test_the_first_fit_fits_the_clusters_and_later_fits_keep_them():
    model = tiny_model("dcgan", **SELF)
    data = tf.data.Dataset.from_tensor_slices(two_kinds()).batch(8)
    model.fit(data, epochs=1, verbose=0)
    assert np.abs(model.cluster_centroids.numpy()).sum() > 0
    kept = model.cluster_centroids.numpy().copy()
    model.fit(data.map(lambda x: -x), epochs=1, verbose=0)
    np.testing.assert_array_equal(model.cluster_centroids.numpy(), kept)


def test_the_generator_step_leaves_d_and_the_clusters_alone():
    model = tiny_model("dcgan", **SELF)
    model.fit_clusters(two_kinds())
    d = values(model.discriminator.variables)
    state = values([model.cluster_centroids, model.cluster_code.cdf])
    g = values(model.generator.trainable_variables)
    model.generator_step(8)
    for before, v in zip(d, model.discriminator.variables):
        np.testing.assert_array_equal(before, v.numpy())
    assert all(not np.array_equal(b, v.numpy()) for b, v in zip(g, model.generator.trainable_variables))
    real, labels = model.unpack_batch(tf.constant(two_kinds(8)))
    model.discriminator_step(real, labels)
    moved = {v.path for b, v in zip(d, model.discriminator.variables) if not np.array_equal(b, v.numpy())}
    assert any("cluster_projection" in path for path in moved)
    for before, v in zip(state, [model.cluster_centroids, model.cluster_code.cdf]):
        np.testing.assert_array_equal(before, v.numpy())


def test_one_and_two_replicas_make_the_same_update():
    # Each model's first fit fits its clusters to the same data: the same k-means.
    assert_same_update_on_two_replicas("dcgan", dict(SELF, augment="translation", ema_decay=0.9))


def test_save_load_and_export_keep_the_clusters(tmp_path):
    model = tiny_model("dcgan", **SELF)
    model.fit(tf.data.Dataset.from_tensor_slices(two_kinds()).batch(8), epochs=1, verbose=0)
    model.save(tmp_path / "model.keras")
    loaded = ganzoo.load_model(tmp_path / "model.keras")
    np.testing.assert_array_equal(loaded.cluster_centroids.numpy(), model.cluster_centroids.numpy())
    np.testing.assert_array_equal(loaded.cluster_code.cdf.numpy(), model.cluster_code.cdf.numpy())
    assert int(loaded.clusters_fitted.numpy()) == 1
    z = model.sample_latent(6, seed=3)
    np.testing.assert_allclose(loaded.generate_from(z), model.generate_from(z), atol=1e-6)
    model.export(tmp_path / "export")
    served = tf.saved_model.load(str(tmp_path / "export")).signatures["serving_default"](z=tf.constant(z))["images"]
    np.testing.assert_allclose(served.numpy(), model.generate_from(z), atol=1e-5)
    # The sample's cluster is the one z's first entry draws by the normal CDF
    # (computed here by scipy): G for that cluster, directly.
    cdf = model.cluster_code.cdf.numpy()
    k = np.searchsorted(cdf[:-1], norm.cdf(z[:, 0]), side="right").astype("int32")
    direct = model.ema_generator([tf.constant(z), tf.constant(k)], training=False).numpy()
    np.testing.assert_allclose(model.generate_from(z), direct, atol=1e-6)


def test_the_cluster_embedding_width_sets_g_input_and_survives_saving(tmp_path):
    model = tiny_model("dcgan", clusters=3, cluster_embedding=5)
    embedding = model.generator.get_layer("cluster_embedding")
    assert tuple(embedding.embeddings.shape) == (3, 5)
    inner = [layer for layer in model.generator.layers if isinstance(layer, keras.Model)][0]
    assert inner.inputs[0].shape[-1] == model.latent_dim + 5
    model.save(tmp_path / "model.keras")
    assert ganzoo.load_model(tmp_path / "model.keras").cluster_embedding == 5
    with pytest.raises(ValueError, match="cluster_embedding"):
        tiny_model("dcgan", clusters=3, cluster_embedding=0)


def test_the_logistic_cdf_is_within_its_bound_of_the_normal():
    x = np.linspace(-8, 8, 20_001).astype("float32")
    code = layers.ClusterCode(2)
    for boundary in (0.01, 0.3, 0.5, 0.77, 0.99):
        code.cdf.assign([boundary, 1.0])
        drawn = code(np.stack([x, x], axis=1)).numpy()
        # Cluster 1 begins where the approximation crosses the boundary: within 1.4e-4 of the true CDF.
        start = x[drawn.argmax()]
        assert abs(norm.cdf(start) - boundary) < 1.5e-4, (boundary, start)


def test_mixed_precision_trains_and_samples():
    keras.mixed_precision.set_global_policy("mixed_bfloat16")  # the CPU's mixed policy
    try:
        model = tiny_model("dcgan", **SELF)
        model.fit(tf.data.Dataset.from_tensor_slices(two_kinds()).batch(8), epochs=1, verbose=0)
        samples = model.generate(4, seed=0)
        assert samples.shape == (4, 16, 16, 1) and np.isfinite(samples).all()
    finally:
        keras.mixed_precision.set_global_policy("float32")


def test_xla_compiles_the_step_on_images_larger_than_the_view():
    model = tiny_model("dcgan", data_shape=(64, 64, 1), jit_compile=True, **SELF)
    images = np.random.default_rng(0).uniform(-1, 1, (16, 64, 64, 1)).astype("float32")
    history = model.fit(tf.data.Dataset.from_tensor_slices(images).batch(8), epochs=1, verbose=0).history
    assert np.isfinite(history["d_loss"][-1])
    assert model.cluster_centroids.shape == (3, 32 * 32)


def test_tflite_export_of_a_self_conditioned_generator():
    model = tiny_model("dcgan", **SELF)
    model.fit_clusters(two_kinds())
    converter = tf.lite.TFLiteConverter.from_concrete_functions(
        [tf.function(lambda z: model.sampling_generator(z, training=False)).get_concrete_function(
            tf.TensorSpec([2, model.latent_dim], tf.float32))])
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]  # no TF Select ops
    interpreter = tf.lite.Interpreter(model_content=converter.convert())
    interpreter.allocate_tensors()
    z = model.sample_latent(2, seed=1)
    interpreter.set_tensor(interpreter.get_input_details()[0]["index"], z)
    interpreter.invoke()
    out = interpreter.get_tensor(interpreter.get_output_details()[0]["index"])
    np.testing.assert_allclose(out, model.generate_from(z), atol=1e-4)


def test_a_model_from_an_export_refuses_to_refit_its_clusters(tmp_path, monkeypatch):
    model = tiny_model("dcgan", **SELF)
    model.fit(tf.data.Dataset.from_tensor_slices(two_kinds()).batch(8), epochs=1, verbose=0)
    model.export(tmp_path / "dcgan" / "1")
    monkeypatch.setenv("GANZOO_PRETRAINED", str(tmp_path))
    restored = tiny_model("dcgan", **SELF)
    loading.restore_pretrained(restored, "dcgan")
    z = model.sample_latent(3, seed=2)
    np.testing.assert_allclose(restored.generate_from(z), model.generate_from(z), atol=1e-6)
    with pytest.raises(ValueError, match="not the centroids"):
        restored.fit(tf.data.Dataset.from_tensor_slices(two_kinds()).batch(8), epochs=1, verbose=0)


@pytest.mark.parametrize("name, settings, message", [
    ("dcgan", dict(clusters=1), "conditions on nothing"),
    ("dcgan", dict(clusters=3, pack=2), "does not combine with pack"),
    ("dcgan", dict(clusters=3, info_categories=2), "does not combine with info_categories"),
    ("cgan", dict(clusters=3), "a conditional entry"),
])
def test_settings_that_cannot_work_are_refused(name, settings, message):
    with pytest.raises(ValueError, match=message):
        tiny_model(name, **settings)


def test_too_few_images_for_the_clusters_are_refused():
    model = tiny_model("dcgan", clusters=5)
    with pytest.raises(ValueError, match="needs at least as many training images"):
        model.fit_clusters(two_kinds(4))


@pytest.mark.parametrize("name", ["lsgan", "sngan", "wgan", "wgan_gp", "pggan"])
def test_every_unconditional_image_entry_trains_self_conditioned(name):
    """Each entry's own losses and penalties (WGAN-GP's and pggan's on
    interpolates, with the real end's cluster) run with clusters, and G's
    step leaves D alone."""
    model = tiny_model(name, clusters=2)
    data = tf.data.Dataset.from_tensor_slices(two_kinds(16, model.data_shape)).batch(8)
    history = model.fit(data, epochs=1, verbose=0).history
    assert all(np.isfinite(v[-1]) for v in history.values())
    d = values(model.discriminator.variables)
    model.generator_step(8)
    for before, v in zip(d, model.discriminator.variables):
        np.testing.assert_array_equal(before, v.numpy())


def test_a_resumed_run_keeps_its_clusters(tmp_path, monkeypatch):
    """ganzoo.train fits the clusters once; a resume restores them from the
    checkpoint instead of fitting anew."""
    options = dict(dataset="digits", out=tmp_path / "run", batch_size=16, verbose=0, eval_every=0,
                   jit_compile=False, **{**tiny_settings("dcgan"), "clusters": 3})
    first = ganzoo.train("dcgan", epochs=1, **options).model
    fitted = []
    monkeypatch.setattr(type(first), "fit_clusters", lambda self, data, **kw: fitted.append(data))
    resumed = ganzoo.train("dcgan", epochs=2, resume=True, **options).model
    assert fitted == []
    np.testing.assert_array_equal(resumed.cluster_centroids.numpy(), first.cluster_centroids.numpy())
    np.testing.assert_array_equal(resumed.cluster_code.cdf.numpy(), first.cluster_code.cdf.numpy())


def test_pggan_self_conditioned_grows_saves_exports_and_replicates(tmp_path):
    """Through a fade-in to 8x8: the clusters label full-resolution images, the
    sampler draws them from z at the current progress, and the export, a
    reloaded model and 1 or 2 replicas agree."""
    model = tiny_model("pggan", clusters=3, fade_images=16, stable_images=16)
    images = two_kinds(48, model.data_shape)
    model.fit(tf.data.Dataset.from_tensor_slices(images).batch(8), epochs=2, verbose=0)
    assert model.phase() == (8, 1.0)
    np.testing.assert_array_equal(model.unpack_batch(tf.constant(images))[1], model.cluster_labels(images))
    z = model.sample_latent(6, seed=3)
    cdf = model.cluster_code.cdf.numpy()
    k = np.searchsorted(cdf[:-1], norm.cdf(z[:, 0]), side="right").astype("int32")
    direct = model.ema_generator([tf.constant(z), tf.constant(k)], progress=model.progress, training=False)
    np.testing.assert_allclose(model.generate_from(z), np.clip(direct.numpy(), -1, 1), atol=1e-6)
    model.save(tmp_path / "model.keras")
    np.testing.assert_allclose(ganzoo.load_model(tmp_path / "model.keras").generate_from(z), model.generate_from(z),
                               atol=1e-6)
    model.export(tmp_path / "export")
    served = tf.saved_model.load(str(tmp_path / "export")).signatures["serving_default"](z=tf.constant(z))["images"]
    np.testing.assert_allclose(served.numpy(), model.generate_from(z), atol=1e-5)
    assert_same_update_on_two_replicas("pggan", dict(clusters=2, fade_images=16, stable_images=16))


@pytest.mark.parametrize("name", ["wgan_gp", "pggan"])
def test_the_penalty_judges_interpolates_with_the_steps_own_labels(name):
    """The labels a D step is given reach its gradient penalty: not the
    clusters of the images recomputed (pggan blends real images down to the
    phase's resolution, where their nearest centroid can differ)."""
    model = tiny_model(name, clusters=3)
    images = two_kinds(8, model.data_shape)
    model.fit_clusters(images)
    given = tf.constant([2, 2, 2, 2, 1, 1, 1, 1], "int32")
    seen = []
    judge = model.discriminate

    def recording(samples, labels=None, training=True):
        seen.append(labels)
        return judge(samples, labels, training=training)

    model.discriminate = recording
    real, _ = model.unpack_batch(tf.constant(images))
    model.discriminator_step(real, given)
    assert len(seen) == 3  # real, fake and the interpolates
    for labels in seen:
        np.testing.assert_array_equal(labels, given)


def test_a_four_argument_discriminator_loss_override_still_works_self_conditioned():
    """User overrides written before `labels=` existed keep training."""
    calls = []

    class OldStyle(type(tiny_model("dcgan"))):
        def discriminator_loss(self, real, fake, real_logits, fake_logits):
            calls.append(1)
            return super().discriminator_loss(real, fake, real_logits, fake_logits)

    model = OldStyle(**{k: v for k, v in tiny_model("dcgan", clusters=2).get_config().items()
                        if k not in ("name", "trainable", "dtype")})
    model.compile()
    model.fit(tf.data.Dataset.from_tensor_slices(two_kinds(16)).batch(8), epochs=1, verbose=0)
    assert calls
