"""`ganzoo serve` against TF Serving's REST API, and versioned exports."""

import json
import sys
import threading
from pathlib import Path

import numpy as np
import pytest
import requests
import tensorflow as tf
import keras

from ganzoo import cli, serving

from conftest import tiny_model

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    """dcgan (version 1), cgan and cyclegan exported in TF Serving's layout."""
    folder = tmp_path_factory.mktemp("serving")
    for name in ("dcgan", "cgan", "cyclegan"):
        tiny_model(name).export(folder / name / "1")
    return folder


@pytest.fixture(scope="module")
def url(base):
    server = serving.make_server(base, port=0, max_batch=64, max_body_bytes=200_000)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()


def predict(url, model, body, version=None):
    path = f"/v1/models/{model}" + (f"/versions/{version}" if version else "") + ":predict"
    return requests.post(url + path, data=body if isinstance(body, (bytes, str)) else json.dumps(body), timeout=60)


def test_every_signature_through_saved_model_load(base):
    dcgan = tf.saved_model.load(str(base / "dcgan" / "1")).signatures["serving_default"]
    out = dcgan(z=tf.zeros((2, 8)))
    assert out["images"].shape == (2, 16, 16, 1) and out["images_uint8"].dtype == tf.uint8
    np.testing.assert_array_equal(out["images_uint8"].numpy(),
                                  np.round((out["images"].numpy() + 1) * 127.5).astype(np.uint8))
    cgan = tf.saved_model.load(str(base / "cgan" / "1")).signatures["serving_default"]
    assert cgan(z=tf.zeros((3, 8)), labels=tf.constant([0, 1, 2]))["images_uint8"].shape == (3, 16, 16, 1)
    cyclegan = tf.saved_model.load(str(base / "cyclegan" / "1")).signatures
    for signature in ("a2b", "b2a", "serving_default"):
        assert cyclegan[signature](images=tf.zeros((2, 16, 16, 3)))["images_uint8"].shape == (2, 16, 16, 3)


def test_status_and_metadata(url):
    status = requests.get(f"{url}/v1/models/dcgan", timeout=30)
    assert status.status_code == 200
    assert status.json()["model_version_status"][0] == {
        "version": "1", "state": "AVAILABLE", "status": {"error_code": "OK", "error_message": ""}}
    meta = requests.get(f"{url}/v1/models/cgan/versions/1/metadata", timeout=30).json()
    assert meta["model_spec"] == {"name": "cgan", "signature_name": "", "version": "1"}
    signature = meta["metadata"]["signature_def"]["signature_def"]["serving_default"]
    assert signature["inputs"]["labels"]["dtype"] == "DT_INT32"
    assert [d["size"] for d in signature["inputs"]["z"]["tensor_shape"]["dim"]] == ["-1", "8"]
    assert set(signature["outputs"]) == {"images", "images_uint8"}


def test_predict_in_both_formats_and_every_signature(url):
    z = np.random.default_rng(0).standard_normal((3, 8)).tolist()
    rows = predict(url, "dcgan", {"instances": z}).json()["predictions"]
    assert len(rows) == 3 and np.asarray(rows[0]["images"]).shape == (16, 16, 1)
    columns = predict(url, "dcgan", {"inputs": {"z": z}}).json()["outputs"]
    np.testing.assert_allclose(np.asarray(columns["images"]), [r["images"] for r in rows], atol=1e-6)
    assert np.asarray(columns["images_uint8"]).dtype.kind == "i" and np.asarray(columns["images_uint8"]).max() <= 255
    labelled = predict(url, "cgan", {"instances": [{"z": z[0], "labels": 2}, {"z": z[1], "labels": 0}]})
    assert labelled.status_code == 200 and len(labelled.json()["predictions"]) == 2
    images = np.zeros((2, 16, 16, 3)).tolist()
    for signature in ("a2b", "b2a"):
        out = predict(url, "cyclegan", {"signature_name": signature, "inputs": {"images": images}}).json()
        assert np.asarray(out["outputs"]["images"]).shape == (2, 16, 16, 3)


@pytest.mark.parametrize("model, body, message", [
    ("dcgan", b"{not json", "Malformed JSON"),
    ("dcgan", {"instances": [[0.0] * 7]}, "shape [-1, 8]"),
    ("dcgan", {"instances": [["a"] * 8]}, "must hold numbers"),
    ("dcgan", {"instances": [[0.0] * 8], "signature_name": "nope"}, '"nope" not found'),
    ("dcgan", {"z": [[0.0] * 8]}, 'exactly one of "instances"'),
    ("nomodel", {"instances": [[0.0] * 8]}, "Servable not found"),
    ("cgan", {"instances": [{"z": [0.0] * 8, "labels": 7}]}, "num_classes"),
    ("cgan", {"instances": [{"z": [0.0] * 8, "labels": 1.5}]}, "must hold integers"),
    ("cgan", {"inputs": {"z": [[0.0] * 8]}}, "lacks labels"),
    ("dcgan", {"instances": [[0.0] * 8] * 65}, "at most 64"),
    ("dcgan", {"instances": [[0.0] * 8] * 6000}, "limit is 200000"),
])
def test_bad_requests_get_400_and_the_server_stays_up(url, model, body, message):
    response = predict(url, model, body)
    assert response.status_code == 400, response.text
    assert message in response.json()["error"]
    assert predict(url, "dcgan", {"instances": [[0.0] * 8]}).status_code == 200


def test_unknown_version_and_malformed_paths(url):
    assert "version 9" in predict(url, "dcgan", {"instances": [[0.0] * 8]}, version=9).json()["error"]
    assert requests.get(f"{url}/v2/whatever", timeout=30).status_code == 400
    assert requests.get(f"{url}/v1/models/dcgan:predict", timeout=30).status_code == 400


def test_a_new_version_is_served_without_a_restart(base, url):
    keras.utils.set_random_seed(123)  # other weights than version 1's
    model = tiny_model("dcgan")
    body = {"instances": [[0.3] * 8]}
    before = predict(url, "dcgan", body).json()["predictions"][0]["images"]
    model.export(base / "dcgan" / "2")
    status = requests.get(f"{url}/v1/models/dcgan", timeout=30).json()["model_version_status"]
    assert [s["version"] for s in status] == ["2", "1"]
    after = predict(url, "dcgan", body).json()["predictions"][0]["images"]
    assert not np.allclose(before, after)
    np.testing.assert_allclose(predict(url, "dcgan", body, version=1).json()["predictions"][0]["images"], before)


def test_export_writes_the_next_version_and_never_overwrites(tmp_path, capsys):
    from test_cli import TINY_DCGAN

    run = tmp_path / "run"
    assert cli.main(["train", *TINY_DCGAN, "--out", str(run), "--eval-every", "0"]) == 0
    base = tmp_path / "models"
    assert cli.main(["export", str(run), "--out", str(base)]) == 0
    assert cli.main(["export", str(run), "--out", str(base)]) == 0
    assert sorted(p.name for p in (base / "dcgan").iterdir()) == ["1", "2"]
    stamp = (base / "dcgan" / "1" / "saved_model.pb").stat().st_mtime_ns
    assert cli.main(["export", str(run), "--out", str(base / "dcgan" / "1")]) == 2
    assert "already exists" in capsys.readouterr().err
    assert (base / "dcgan" / "1" / "saved_model.pb").stat().st_mtime_ns == stamp


def test_the_readme_client_example_works_against_ganzoo_serve(base, url, tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(ROOT / "examples"))
    import rest_client

    out = tmp_path / "grid.png"
    rest_client.main(["--url", url, "--model", "dcgan", "--n", "4", "--out", str(out)])
    from PIL import Image

    assert Image.open(out).size == (32, 32)
    del sys.modules["rest_client"]


def test_export_can_write_tflite_that_matches_the_saved_model(tmp_path):
    from test_cli import TINY_DCGAN

    run = tmp_path / "run"
    assert cli.main(["train", *TINY_DCGAN, "--out", str(run), "--eval-every", "0"]) == 0
    assert cli.main(["export", str(run), "--out", str(tmp_path / "m"), "--format", "tflite"]) == 0
    version = tmp_path / "m" / "dcgan" / "1"
    runner = tf.lite.Interpreter(model_path=str(version / "model.tflite")).get_signature_runner("serving_default")
    z = np.random.default_rng(0).standard_normal((2, 8)).astype("float32")
    lite = runner(z=z)
    served = tf.saved_model.load(str(version)).signatures["serving_default"](z=tf.constant(z))
    np.testing.assert_allclose(lite["images"], served["images"].numpy(), atol=1e-4)
    assert lite["images_uint8"].dtype == np.uint8
