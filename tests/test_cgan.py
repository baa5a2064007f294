"""The conditional GAN: labels in data, generation, export, metric and command."""

import json

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

import ganzoo
from ganzoo import cli
from ganzoo.metrics import Sampler, evaluate, features

from conftest import tiny_settings, batch_for, tiny_model

TINY_CGAN_ARGS = ["cgan", "--epochs", "1", "--batch-size", "32", "--image-size", "16",
                  "--set", "network_args.filters=4", "--set", "latent_dim=8", "--set", "jit_compile=false"]


def labelled(model, n=16, batch=8):
    return tf.data.Dataset.from_tensor_slices(batch_for(model, n)).batch(batch)


@pytest.mark.parametrize("conditioning", ["concat", "projection"])
def test_both_conditionings_train_and_take_labels(conditioning):
    model = tiny_model("cgan", network_args={**tiny_settings("cgan")["network_args"], "conditioning": conditioning})
    generator_inputs = {t.name: (tuple(t.shape), t.dtype) for t in model.generator.inputs}
    assert generator_inputs == {"z": ((None, 8), "float32"), "labels": ((None,), "int32")}
    assert [tuple(t.shape) for t in model.discriminator.inputs] == [(None, 16, 16, 1), (None,)]
    history = model.fit(labelled(model), epochs=1, verbose=0).history
    assert all(np.isfinite(v[-1]) for v in history.values())


def test_the_discriminator_judges_the_label():
    model = tiny_model("cgan")
    images = tf.constant(batch_for(model, 4)[0])
    scores = [model.discriminate(images, tf.fill([4], label), training=False) for label in range(3)]
    assert not np.allclose(scores[0], scores[1]) and not np.allclose(scores[1], scores[2])


def test_generate_takes_one_label_a_list_or_an_array():
    model = tiny_model("cgan")
    for labels in (2, [0, 1, 2, 0], np.array([2, 2, 1, 0], "int64")):
        images = model.generate(4, seed=0, labels=labels)
        assert images.shape == (4, 16, 16, 1) and images.dtype == np.float32
        assert -1 <= images.min() and images.max() <= 1
    # No labels: every class in turn.
    np.testing.assert_array_equal(model.generate(4, seed=0), model.generate(4, seed=0, labels=[0, 1, 2, 0]))


def test_changing_only_the_label_changes_the_image():
    model = tiny_model("cgan")
    z = np.repeat(model.sample_latent(1, seed=5), 3, axis=0)
    images = model.generate_from(z, labels=[0, 1, 2])
    assert not np.allclose(images[0], images[1]) and not np.allclose(images[1], images[2])
    np.testing.assert_array_equal(model.generate_from(z, labels=[1, 1, 1])[0], images[1])


@pytest.mark.parametrize(
    "labels, message",
    [(3, r"\[0, 3\)"), ([-1, 0], r"\[0, 3\)"), ([0, 1, 2], "one per sample"), ([0.0, 1.0], "ints")],
)
def test_bad_labels_are_refused(labels, message):
    model = tiny_model("cgan")
    with pytest.raises(ValueError, match=message):
        model.generate(2, labels=labels)


def test_an_unconditional_model_refuses_labels():
    with pytest.raises(ValueError, match="not a conditional model"):
        tiny_model("dcgan").generate(2, labels=[0, 1])


def test_unlabelled_data_is_a_clear_error():
    model = tiny_model("cgan")
    images_only = tf.data.Dataset.from_tensor_slices(batch_for(model, 16)[0]).batch(8)
    with pytest.raises(ValueError, match="with_labels=True"):
        model.fit(images_only, epochs=1, verbose=0)


def test_labels_outside_num_classes_stop_training():
    model = tiny_model("cgan")
    images, _ = batch_for(model, 8)
    data = tf.data.Dataset.from_tensor_slices((images, np.full(8, 7, "int32"))).batch(8)
    with pytest.raises(tf.errors.InvalidArgumentError, match=r"num_classes=3"):
        model.fit(data, epochs=1, verbose=0)


def test_dict_batches_from_tfds_style_datasets_train():
    model = tiny_model("cgan")
    images, labels = batch_for(model, 16)
    data = tf.data.Dataset.from_tensor_slices({"image": images, "label": labels.astype("int64")}).batch(8)
    model.fit(data, epochs=1, verbose=0)
    assert int(model.g_optimizer.iterations) == 2


def test_networks_must_match_the_kind_of_model():
    with pytest.raises(ValueError, match="needs a conditional network"):
        tiny_model("cgan", network="dcgan", network_args={"filters": 4})
    with pytest.raises(ValueError, match="needs an unconditional network; .conditional_dcgan. is conditional"):
        tiny_model("dcgan", network="conditional_dcgan")
    with pytest.raises(ValueError, match="num_classes must be an integer of at least 2"):
        tiny_model("cgan", num_classes=1)


def test_export_serves_labels_and_refuses_bad_ones(tmp_path):
    model = tiny_model("cgan")
    path = model.export(tmp_path / "cgan" / "1")
    serve = tf.saved_model.load(str(path)).signatures["serving_default"]
    specs = serve.structured_input_signature[1]
    assert specs["labels"].dtype == tf.int32 and specs["labels"].shape.as_list() == [None]
    z = model.sample_latent(3, seed=1)
    out = serve(z=tf.constant(z), labels=tf.constant([2, 0, 1]))["images"].numpy()
    np.testing.assert_allclose(out, model.generate_from(z, labels=[2, 0, 1]), atol=1e-5)
    with pytest.raises(tf.errors.InvalidArgumentError, match=r"labels must lie in \[0, 3\)"):
        serve(z=tf.constant(z), labels=tf.constant([0, 3, 1]))
    with pytest.raises(tf.errors.InvalidArgumentError, match="same number of rows"):
        serve(z=tf.constant(z), labels=tf.constant([0, 1]))
    info = json.loads((path / "assets" / "ganzoo.json").read_text())
    assert info["num_classes"] == 3
    sampler = ganzoo.metrics.load_sampler(path)
    assert sampler.num_classes == 3
    np.testing.assert_allclose(sampler.generate(z, [2, 0, 1]), out, atol=1e-6)



def test_conditional_accuracy_counts_the_recognised_class():
    probabilities = np.eye(3)[[0, 1, 2, 2]]
    assert ganzoo.metrics.conditional_accuracy(probabilities, np.array([0, 1, 2, 0])) == 0.75
    with pytest.raises(ValueError, match="classifier has 3 classes"):
        ganzoo.metrics.conditional_accuracy(probabilities, np.array([0, 1, 2, 5]))


def test_conditional_accuracy_of_real_digits_and_of_a_label_blind_sampler(digits_cache):
    images, labels = features.digits_images("test")
    by_class = [images[labels == c] for c in range(10)]

    def faithful(z, asked):  # real test digits of the asked class
        return np.stack([by_class[c][i % len(by_class[c])] for i, c in enumerate(asked)])

    def blind(z, asked):  # ignores the label
        return images[: len(z)]

    scores = {
        name: evaluate(Sampler(fn, 4, (32, 32, 1), num_classes=10), "digits", n=200,
                       metrics=["conditional_accuracy", "fid"], progress=False)
        for name, fn in (("faithful", faithful), ("blind", blind))
    }
    assert scores["faithful"]["metrics"]["conditional_accuracy"] >= 0.97
    assert scores["blind"]["metrics"]["conditional_accuracy"] < 0.25
    # The default metric list of a conditional sampler on digits includes it.
    from ganzoo.metrics.evaluation import default_metrics

    assert "conditional_accuracy" in default_metrics("digits", True, ganzoo.metrics.get_extractor("digits"))
    assert "conditional_accuracy" not in default_metrics("digits", False, ganzoo.metrics.get_extractor("digits"))


def test_conditional_accuracy_needs_a_conditional_generator_and_a_classifier(digits_cache):
    unconditional = Sampler(lambda z: np.zeros((len(z), 32, 32, 1), "float32"), 4, (32, 32, 1))
    with pytest.raises(ValueError, match="class-conditional"):
        evaluate(unconditional, "digits", n=10, metrics=["conditional_accuracy"], progress=False)
    conditional = Sampler(lambda z, y: np.zeros((len(z), 32, 32, 1), "float32"), 4, (32, 32, 1), num_classes=10)
    with pytest.raises(ValueError, match="classifier of the dataset's classes"):
        evaluate(conditional, "digits", n=10, metrics=["conditional_accuracy"], features="raw", progress=False)


def test_num_classes_of_datasets(tmp_path):
    assert ganzoo.data.num_classes("digits") == 10
    assert ganzoo.data.num_classes("ring") is None
    assert ganzoo.data.num_classes("mnist") == 10  # from the TFDS builder's features, offline
    assert ganzoo.data.num_classes("cycle_gan/horse2zebra") == 2
    for name in ("a", "b", "c"):
        (tmp_path / name).mkdir()
        Image.fromarray(np.zeros((8, 8), "uint8")).save(tmp_path / name / "0.png")
    assert ganzoo.data.num_classes(str(tmp_path)) == 3


def test_a_folder_without_class_folders_has_no_labels(tmp_path):
    Image.fromarray(np.zeros((8, 8), "uint8")).save(tmp_path / "0.png")
    with pytest.raises(ValueError, match="no sub-folders"):
        ganzoo.data.load(str(tmp_path), with_labels=True)


@pytest.fixture(scope="module")
def cgan_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "cgan"
    assert cli.main(["train", *TINY_CGAN_ARGS, "--out", str(out), "--eval-every", "1"]) == 0
    return out


def test_train_cgan_writes_a_row_per_class_and_scores_it(cgan_run):
    history = json.loads((cgan_run / "history.json").read_text())
    assert 0 <= history[0]["conditional_accuracy"] <= 1 and history[0]["fid"] > 0
    grid = Image.open(cgan_run / "samples" / "epoch_001.png")
    cell = 64 + 2  # 16-pixel images enlarged to 64, 2 pixels apart
    assert grid.size == (8 * cell + 2, 10 * cell + 2)  # 8 per class, 10 digit classes
    model_config = json.loads((cgan_run / "run.json").read_text())["settings"]
    assert model_config["model"] == "cgan"


def test_sample_labels_writes_one_row_each(cgan_run, tmp_path, capsys):
    out = tmp_path / "rows.png"
    assert cli.main(["sample", str(cgan_run), "--labels", "0,1,2", "--n", "5", "--out", str(out)]) == 0
    assert Image.open(out).size == (5 * 66 + 2, 3 * 66 + 2)
    assert "classes 0, 1, 2" in capsys.readouterr().out
    for bad in ("0,10", "x"):
        assert cli.main(["sample", str(cgan_run), "--labels", bad, "--out", str(tmp_path / "b.png")]) == 2
        assert "--labels" in capsys.readouterr().err
    saved_model = cgan_run / "saved_model" / "1"
    assert cli.main(["sample", str(saved_model), "--labels", "9", "--out", str(tmp_path / "s.png")]) == 0


def test_sample_refuses_labels_for_an_unconditional_model(tmp_path, capsys):
    model = tiny_model("dcgan")
    path = model.export(tmp_path / "dcgan" / "1")
    assert cli.main(["sample", str(path), "--labels", "1", "--out", str(tmp_path / "x.png")]) == 2
    assert "not a conditional model" in capsys.readouterr().err


def test_evaluate_reports_conditional_accuracy(cgan_run, tmp_path, capsys):
    out = tmp_path / "e.json"
    assert cli.main(["evaluate", str(cgan_run), "--n", "50", "--out", str(out)]) == 0
    assert "conditional_accuracy" in capsys.readouterr().out
    assert 0 <= json.loads(out.read_text())["metrics"]["conditional_accuracy"] <= 1


def test_train_cgan_on_a_tfds_dataset_takes_its_number_of_classes(tmp_path):
    import keras
    import tensorflow_datasets as tfds

    out = tmp_path / "mnist"
    with tfds.testing.mock_data(num_examples=64):
        assert cli.main(["train", *TINY_CGAN_ARGS, "--dataset", "mnist", "--out", str(out), "--eval-every", "0"]) == 0
    assert keras.models.load_model(out / "model.keras").num_classes == 10
    assert Image.open(out / "samples" / "epoch_001.png").size[1] == 10 * 66 + 2  # a row per class
