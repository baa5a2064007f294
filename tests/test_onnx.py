"""`ganzoo export --format onnx`: tf2onnx, checked by onnxruntime against the SavedModel."""

import numpy as np
import pytest
import tensorflow as tf

from ganzoo import cli, export

from conftest import tiny_model

onnxruntime = pytest.importorskip("onnxruntime")


def session(path):
    return onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])


@pytest.mark.parametrize("name", ["dcgan", pytest.param("pggan", marks=pytest.mark.slow),
                                  pytest.param("wgan_gp", marks=pytest.mark.slow)])
def test_onnx_equals_the_saved_model(tmp_path, name):
    version = tiny_model(name).export(tmp_path / name / "1")
    written = export.write_onnx(version)
    assert set(written) == {"serving_default"}
    z = np.random.default_rng(0).standard_normal((5, 8)).astype(np.float32)  # another batch size than the check's
    images, images_uint8 = session(written["serving_default"][0]).run(["images", "images_uint8"], {"z": z})
    served = tf.saved_model.load(str(version)).signatures["serving_default"](z=tf.constant(z))
    np.testing.assert_allclose(images, served["images"].numpy(), rtol=0, atol=1e-4)
    assert images_uint8.dtype == np.uint8 and np.abs(images_uint8.astype(int) - served["images_uint8"].numpy()).max() <= 1


def test_cgan_labels_out_of_range_fail_in_onnx_too(tmp_path):
    version = tiny_model("cgan").export(tmp_path / "cgan" / "1")
    model = session(export.write_onnx(version)["serving_default"][0])
    z = np.zeros((2, 8), np.float32)
    assert model.run(["images"], {"z": z, "labels": np.array([0, 2], np.int32)})[0].shape == (2, 16, 16, 1)
    for labels in ([0, 3], [-1, 0]):  # 3 classes; -1 would wrap to class 2 in ONNX's Gather
        with pytest.raises(Exception, match="out of|bounds|indices"):
            model.run(["images"], {"z": z, "labels": np.array(labels, np.int32)})


def test_cyclegan_every_signature_with_its_input_renamed(tmp_path):
    version = tiny_model("cyclegan").export(tmp_path / "cyclegan" / "1")
    written = export.write_onnx(version)
    assert set(written) == {"a2b", "b2a", "serving_default"}
    images = np.random.default_rng(1).uniform(-1, 1, (3, 16, 16, 3)).astype(np.float32)
    served = tf.saved_model.load(str(version)).signatures
    for signature, (path, _) in written.items():
        model = session(path)
        assert [i.name for i in model.get_inputs()] == ["images_in"]
        out = model.run(["images"], {"images_in": images})[0]
        np.testing.assert_allclose(out, served[signature](images=tf.constant(images))["images"].numpy(), atol=1e-4)


def test_export_format_onnx_from_the_command_line(tmp_path, capsys):
    from test_cli import TINY_DCGAN

    run = tmp_path / "run"
    assert cli.main(["train", *TINY_DCGAN, "--out", str(run), "--eval-every", "0"]) == 0
    assert cli.main(["export", str(run), "--out", str(tmp_path / "m"), "--format", "onnx"]) == 0
    out = capsys.readouterr().out
    assert "onnx/serving_default.onnx" in out and "within" in out
    path = tmp_path / "m" / "dcgan" / "1" / "onnx" / "serving_default.onnx"
    assert session(path).get_inputs()[0].shape == ["batch", 8]


@pytest.mark.parametrize("settings", [{}, {"clusters": 3}], ids=["plain", "self-conditioned"])
def test_pggan_exports_to_tflite_too(tmp_path, settings):
    """Its export has no level switch, and its upsampling keeps static shapes;
    self-conditioned, the cluster code converts to builtin ops too."""
    version = tiny_model("pggan", **settings).export(tmp_path / "pggan" / "1")
    runner = tf.lite.Interpreter(model_path=str(export.write_tflite(version))).get_signature_runner("serving_default")
    z = np.random.default_rng(0).standard_normal((2, 8)).astype(np.float32)
    served = tf.saved_model.load(str(version)).signatures["serving_default"](z=tf.constant(z))
    np.testing.assert_allclose(runner(z=z)["images"], served["images"].numpy(), atol=1e-4)
