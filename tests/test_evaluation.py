"""Feature extractors, streaming evaluation and the evaluation callback."""

import json

import keras
import numpy as np
import pytest
import tensorflow as tf

import ganzoo
from ganzoo.metrics import Sampler, evaluate, features

from conftest import batch_for, tiny_model


def test_digits_classifier_is_accurate_on_held_out_digits(digits_cache):
    model, info = features.digits_classifier(digits_cache)
    assert info["test_accuracy"] >= 0.97
    # The cached weights give the same accuracy, measured again here.
    assert features.classifier_accuracy(model, *features.digits_images("test")) == pytest.approx(
        info["test_accuracy"]
    )


def test_digits_extractor_shapes_any_size_and_channels(digits_cache):
    extractor = ganzoo.metrics.get_extractor("digits", cache_dir=digits_cache)
    for shape in [(5, 8, 8, 1), (3, 32, 32, 3), (2, 64, 64, 1)]:
        f, p = extractor(np.zeros(shape, "float32"))
        assert f.shape == (shape[0], 128) and p.shape == (shape[0], 10)
        np.testing.assert_allclose(p.sum(axis=1), 1, rtol=1e-5)
    assert len(extractor.weights_sha256) == 64


def test_real_digits_score_better_than_noise(digits_cache):
    real_train, _ = features.digits_images("train")

    def train_digits(z):
        return real_train[: len(z)]

    def noise(z):
        return np.tanh(np.random.default_rng(0).standard_normal((len(z), 32, 32, 1))).astype("float32")

    good = evaluate(Sampler(train_digits, 4, (32, 32, 1)), "digits", n=360, progress=False)
    bad = evaluate(Sampler(noise, 4, (32, 32, 1)), "digits", n=360, progress=False)
    assert good["metrics"]["fid"] < 0.1 * bad["metrics"]["fid"]
    assert good["metrics"]["kid"] < 0.1 * bad["metrics"]["kid"]
    assert good["metrics"]["is"] > 8 > 2 > bad["metrics"]["is"]
    assert good["metrics"]["precision"] > 0.6 > 0.1 > bad["metrics"]["precision"]
    assert good["metrics"]["coverage"] > 0.6 > 0.1 > bad["metrics"]["coverage"]
    protocol = good["protocol"]
    assert protocol["n_real"] == protocol["n_generated"] == 360
    assert protocol["split"] == "test" and protocol["features"] == "digits"
    assert protocol["data_shape"] == [32, 32, 1] and protocol["seed"] == 0
    assert protocol["weights_sha256"] and protocol["kid"]["subset_size"] == 360


def test_evaluate_streams_a_gan_in_batches(digits_cache):
    model = tiny_model("dcgan")
    calls = []
    sampler = ganzoo.metrics.as_sampler(model)
    counting = Sampler(lambda z: calls.append(len(z)) or sampler.generate(z), 8, (16, 16, 1))
    result = evaluate(counting, "digits", metrics=["fid", "is"], n=120, batch_size=50, progress=False)
    assert calls == [50, 50, 20]
    assert set(result["metrics"]) == {"fid", "is", "is_std"} and result["metrics"]["fid"] > 0


def test_evaluate_mode_coverage_on_a_mixture():
    model = tiny_model("vanilla")
    result = evaluate(model, "ring", progress=False)
    assert result["protocol"]["features"] == "raw" and result["protocol"]["n_generated"] == 2500
    assert result["metrics"]["total_modes"] == 8 and 0 <= result["metrics"]["high_quality"] <= 1
    assert {"fid", "kid", "precision", "coverage"} <= set(result["metrics"])


def test_evaluate_rejects_metrics_that_do_not_apply(digits_cache):
    model = tiny_model("vanilla")
    with pytest.raises(ValueError, match="class probabilities"):
        evaluate(model, "ring", metrics=["is"], progress=False)
    with pytest.raises(ValueError, match="Unknown metric 'fud'"):
        evaluate(model, "ring", metrics=["fud"], progress=False)
    with pytest.raises(ValueError, match="mixtures"):
        evaluate(tiny_model("dcgan"), "digits", metrics=["mode_coverage"], progress=False)
    with pytest.raises(ValueError, match="Unknown feature extractor 'vgg'"):
        evaluate(model, "ring", features="vgg", progress=False)


def test_missing_inception_weights_say_where_to_put_them(tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))
    with pytest.raises(FileNotFoundError) as error:
        ganzoo.metrics.get_extractor("inception")
    message = str(error.value)
    assert str(tmp_path / "keras" / "models" / features.INCEPTION_WEIGHTS_FILE) in message
    assert features.INCEPTION_WEIGHTS_URL in message and "--weights" in message


@pytest.mark.slow
def test_inception_extractor_from_a_weights_file(tmp_path):
    weights = tmp_path / "inception.weights.h5"
    keras.applications.InceptionV3(weights=None).save_weights(weights)
    extractor = ganzoo.metrics.get_extractor("inception", weights=weights)
    f, p = extractor(np.zeros((2, 16, 16, 1), "float32"))
    assert f.shape == (2, 2048) and p.shape == (2, 1000)
    assert extractor.weights_sha256 == features.file_sha256(weights)


def test_a_user_keras_model_as_extractor():
    inputs = keras.Input((8, 8, 3))
    flat = keras.layers.Flatten()(inputs)
    model = keras.Model(inputs, [flat, keras.layers.Softmax()(keras.layers.Dense(4)(flat))])
    extractor = ganzoo.metrics.get_extractor(model)
    f, p = extractor(np.ones((3, 16, 16, 1), "float32"))
    assert f.shape == (3, 192) and p.shape == (3, 4) and extractor.has_probabilities
    np.testing.assert_allclose(f, 1.0, rtol=1e-5)  # resized and made RGB, values kept


def test_evaluation_callback_logs_to_history_and_tensorboard(tmp_path, digits_cache):
    model = tiny_model("dcgan")
    data = tf.data.Dataset.from_tensor_slices(batch_for(model, 16)).batch(8)
    callback = ganzoo.callbacks.EvaluationCallback("digits", metrics=["fid", "kid"], every=2, n=64)
    history = model.fit(
        data, epochs=4, verbose=0,
        callbacks=[callback, ganzoo.callbacks.HistoryFile(tmp_path / "h.json"),
                   keras.callbacks.TensorBoard(tmp_path / "logs")],
    )
    assert len(history.history["fid"]) == 2 and all(v > 0 for v in history.history["fid"])
    epochs = json.loads((tmp_path / "h.json").read_text())
    assert ["fid" in e for e in epochs] == [False, True, False, True]
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(tmp_path / "logs" / "train")).Reload()
    assert "epoch_fid" in events.Tags()["tensors"]
