"""`ganzoo serve` against TF Serving's REST API, and versioned exports."""

import json
import shutil
import sys
import threading
import time
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
def server(base):
    server = serving.make_server(base, port=0, grpc_port=0, max_batch=64, max_body_bytes=200_000, poll_seconds=0.1,
                                 labels={"dcgan": {"stable": 1}})
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server
    server.shutdown()


@pytest.fixture(scope="module")
def url(server):
    return f"http://127.0.0.1:{server.server_port}"


def wait_for(condition, seconds=30):
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


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


@pytest.mark.parametrize("model, body, status, message", [
    ("dcgan", b"{not json", 400, "Malformed JSON"),
    ("dcgan", {"instances": [[0.0] * 7]}, 400, "shape [-1, 8]"),
    ("dcgan", {"instances": [["a"] * 8]}, 400, "must hold numbers"),
    ("dcgan", {"instances": [[0.0] * 8], "signature_name": "nope"}, 400, '"nope" not found'),
    ("dcgan", {"z": [[0.0] * 8]}, 400, "Unknown key"),
    ("dcgan", {"instances": [[0.0] * 8], "inputs": [[0.0] * 8]}, 400, 'exactly one of "instances"'),
    ("nomodel", {"instances": [[0.0] * 8]}, 404, "Servable not found for request: Latest(nomodel)"),
    ("cgan", {"instances": [{"z": [0.0] * 8, "labels": 7}]}, 400, "num_classes"),
    ("cgan", {"instances": [{"z": [0.0] * 8, "labels": 1.5}]}, 400, "must hold integers"),
    ("cgan", {"inputs": {"z": [[0.0] * 8]}}, 400, "lacks labels"),
    ("cgan", {"inputs": {"z": [[0.0] * 8] * 2, "labels": [1]}}, 400, "different batch sizes"),
    ("dcgan", {"instances": [[0.0] * 8] * 65}, 400, "at most 64"),
    ("dcgan", {"instances": [[0.0] * 8] * 6000}, 413, "limit is 200000"),
])
def test_bad_requests_get_tf_servings_status_and_the_server_stays_up(url, model, body, status, message):
    response = predict(url, model, body)
    assert response.status_code == status, response.text
    assert message in response.json()["error"]
    assert predict(url, "dcgan", {"instances": [[0.0] * 8]}).status_code == 200


def test_unknown_version_and_malformed_paths(url):
    missing = predict(url, "dcgan", {"instances": [[0.0] * 8]}, version=9)
    assert missing.status_code == 404 and missing.json()["error"] == "Servable not found for request: Specific(dcgan, 9)"
    assert requests.get(f"{url}/v1/models/dcgan/versions/9", timeout=30).status_code == 404
    assert requests.get(f"{url}/v2/whatever", timeout=30).status_code == 400
    assert requests.get(f"{url}/v1/models/dcgan:predict", timeout=30).status_code == 400


def test_version_labels(url):
    by_label = requests.post(f"{url}/v1/models/dcgan/labels/stable:predict", json={"instances": [[0.2] * 8]}, timeout=30)
    by_number = predict(url, "dcgan", {"instances": [[0.2] * 8]}, version=1)
    assert by_label.status_code == 200 and by_label.json() == by_number.json()
    unknown = requests.get(f"{url}/v1/models/dcgan/labels/canary/metadata", timeout=30)
    assert unknown.status_code == 400 and "Unrecognized servable version label: canary" in unknown.json()["error"]


def test_grpc_with_tf_servings_own_stubs_matches_rest(server, url):
    import grpc
    from tensorflow_serving.apis import (get_model_metadata_pb2, get_model_status_pb2, model_service_pb2_grpc,
                                         predict_pb2, prediction_service_pb2_grpc)

    channel = grpc.insecure_channel(f"127.0.0.1:{server.grpc_port}")
    stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
    z = np.random.default_rng(1).standard_normal((3, 8)).astype(np.float32)
    labels = np.array([0, 2, 1], np.int32)
    request = predict_pb2.PredictRequest()
    request.model_spec.name = "cgan"
    request.model_spec.signature_name = "serving_default"
    request.inputs["z"].CopyFrom(tf.make_tensor_proto(z))
    request.inputs["labels"].CopyFrom(tf.make_tensor_proto(labels))
    reply = stub.Predict(request, timeout=30)
    assert reply.model_spec.name == "cgan" and reply.model_spec.version.value == 1
    over_grpc = {name: tf.make_ndarray(tensor) for name, tensor in reply.outputs.items()}
    over_rest = predict(url, "cgan", {"inputs": {"z": z.tolist(), "labels": labels.tolist()}}).json()["outputs"]
    np.testing.assert_array_equal(over_grpc["images_uint8"], np.asarray(over_rest["images_uint8"], np.uint8))
    np.testing.assert_allclose(over_grpc["images"], np.asarray(over_rest["images"]), rtol=0, atol=1e-7)

    request.output_filter.append("images_uint8")
    assert list(stub.Predict(request, timeout=30).outputs) == ["images_uint8"]

    request.inputs["labels"].CopyFrom(tf.make_tensor_proto(np.array([0, 2, 2**31 - 1], np.int32)))
    with pytest.raises(grpc.RpcError) as bad_label:
        stub.Predict(request, timeout=30)
    assert bad_label.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "labels must lie" in bad_label.value.details()
    request.inputs["labels"].CopyFrom(tf.make_tensor_proto(labels.astype(np.int64)))
    with pytest.raises(grpc.RpcError) as wrong_dtype:
        stub.Predict(request, timeout=30)
    assert wrong_dtype.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    huge = tf.make_tensor_proto(0.5, shape=[2000, 100000])  # a few bytes naming 800 MB
    request.inputs["z"].CopyFrom(huge)
    request.inputs["labels"].CopyFrom(tf.make_tensor_proto(labels))
    with pytest.raises(grpc.RpcError) as too_big:
        stub.Predict(request, timeout=30)
    assert too_big.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "shape [-1, 8]" in too_big.value.details()
    request.inputs["z"].CopyFrom(tf.make_tensor_proto(0.5, shape=[2000, 8]))
    with pytest.raises(grpc.RpcError) as too_many:
        stub.Predict(request, timeout=30)
    assert "at most 64 examples" in too_many.value.details()
    request.inputs["z"].CopyFrom(tf.make_tensor_proto(z))
    del request.output_filter[:]
    request.output_filter.append("nope")
    with pytest.raises(grpc.RpcError) as bad_filter:
        stub.Predict(request, timeout=30)
    assert "output tensor alias not found" in bad_filter.value.details()
    request.model_spec.name = "nomodel"
    with pytest.raises(grpc.RpcError) as unknown:
        stub.Predict(request, timeout=30)
    assert unknown.value.code() == grpc.StatusCode.NOT_FOUND

    metadata_request = get_model_metadata_pb2.GetModelMetadataRequest(metadata_field=["signature_def"])
    metadata_request.model_spec.name = "cgan"
    metadata = stub.GetModelMetadata(metadata_request, timeout=30)
    signatures = get_model_metadata_pb2.SignatureDefMap()
    assert metadata.metadata["signature_def"].Unpack(signatures)
    inputs = signatures.signature_def["serving_default"].inputs
    assert inputs["labels"].dtype == tf.int32.as_datatype_enum and inputs["z"].dtype == tf.float32.as_datatype_enum

    status_request = get_model_status_pb2.GetModelStatusRequest()
    status_request.model_spec.name = "dcgan"
    status = model_service_pb2_grpc.ModelServiceStub(channel).GetModelStatus(status_request, timeout=30)
    assert [(v.version, v.state) for v in status.model_version_status] == [
        (1, get_model_status_pb2.ModelVersionStatus.AVAILABLE)]
    channel.close()


def test_a_new_version_replaces_the_old_one_without_a_restart(base, url):
    """TF Serving's default policy: the latest version, the old one unloaded
    only once the new one serves."""
    model = tiny_model("cyclegan")
    for weight in model.generator_ab.trainable_weights:  # other weights than version 1's
        weight.assign(weight * 1.5)
    body = {"inputs": {"images": np.full((1, 16, 16, 3), 0.3).tolist()}}
    before = predict(url, "cyclegan", body).json()["outputs"]["images"]
    model.export(base / "cyclegan" / "2")

    def status():
        return requests.get(f"{url}/v1/models/cyclegan", timeout=30).json()["model_version_status"]

    wait_for(lambda: [s["version"] for s in status()] == ["2"])
    assert status()[0]["state"] == "AVAILABLE"
    after = predict(url, "cyclegan", body).json()["outputs"]["images"]
    assert not np.allclose(before, after)
    assert predict(url, "cyclegan", body, version=1).status_code == 404


def test_a_half_copied_version_is_reported_and_never_served(base, url, server):
    """Its error shows in the status, the version before it keeps serving,
    requests never wait on it, and it serves once the copy is complete."""
    good = base / "dcgan" / "1"
    copy = base / "dcgan" / "5"
    shutil.copytree(good, copy)
    data = next((copy / "variables").glob("variables.data-*"))
    whole = data.read_bytes()
    data.write_bytes(whole[: len(whole) // 2])  # the copy is still under way
    body = {"instances": [[0.1] * 8]}
    expected = predict(url, "dcgan", body).json()

    def status():
        return requests.get(f"{url}/v1/models/dcgan", timeout=30).json()["model_version_status"]

    wait_for(lambda: status()[0]["state"] == "END")
    broken, serving_one = status()
    assert broken["version"] == "5" and broken["status"]["error_code"] != "OK"
    assert broken["status"]["error_message"] and str(base) not in broken["status"]["error_message"]
    assert serving_one == {"version": "1", "state": "AVAILABLE", "status": {"error_code": "OK", "error_message": ""}}
    assert predict(url, "dcgan", body).json() == expected  # still version 1
    assert predict(url, "dcgan", body, version=5).status_code == 404
    data.write_bytes(whole)  # the copy finishes: its files changed, so it is tried at once
    wait_for(lambda: [s["version"] for s in status()] == ["5"])
    assert predict(url, "dcgan", body).json() == expected  # a copy of version 1's weights
    shutil.rmtree(copy)
    wait_for(lambda: [(s["version"], s["state"]) for s in status()] == [("1", "AVAILABLE")])


def test_a_policy_naming_a_missing_version_serves_nothing_of_that_model(base):
    server = serving.make_server(base, port=0, policy=serving.VersionPolicy.parse("7"))
    try:
        assert server.repository.names() == []
        with pytest.raises(serving.ServingError, match=r"Latest\(dcgan\)"):
            server.repository.servable("dcgan")
    finally:
        server.server_close()


def test_a_closed_batcher_refuses_at_once_instead_of_hanging():
    batcher = serving.BatchingParameters(max_batch_size=4, num_batch_threads=1).batcher(lambda arrays: arrays)
    assert batcher.run({"z": np.ones((2, 3))})["z"].shape == (2, 3)
    batcher.close()
    with pytest.raises(serving.ServingError, match="unloaded"):
        batcher.run({"z": np.ones((1, 3))})


def test_version_policies():
    policy = serving.VersionPolicy.parse
    assert policy("latest").wanted([1, 2, 5]) == [5]
    assert policy("latest:2").wanted([1, 2, 5]) == [2, 5]
    assert policy("all").wanted([1, 2, 5]) == [1, 2, 5]
    assert policy("1,5").wanted([1, 2, 5]) == [1, 5]
    for bad in ("latest:0", "latest:x", "²", "1,,2", "newest"):
        with pytest.raises(ValueError):
            policy(bad)


def test_dynamic_batching_joins_concurrent_requests_and_changes_no_answer(base):
    from concurrent.futures import ThreadPoolExecutor

    batching = serving.BatchingParameters(max_batch_size=16, batch_timeout_micros=20_000, num_batch_threads=1)
    server = serving.make_server(base, port=0, batching=batching)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        address = f"http://127.0.0.1:{server.server_port}"
        zs = np.random.default_rng(2).standard_normal((24, 8)).round(3).tolist()
        alone = [predict(address, "dcgan", {"instances": [z]}).json() for z in zs[:4]]
        batcher = server.repository.servable("dcgan").signature(None).batcher
        before = batcher.batches
        with ThreadPoolExecutor(12) as pool:
            together = list(pool.map(lambda z: predict(address, "dcgan", {"instances": [z]}).json(), zs))
        assert batcher.batches - before < len(zs)  # some requests shared a call
        for one, joined in zip(alone, together):
            np.testing.assert_allclose(one["predictions"][0]["images"], joined["predictions"][0]["images"], atol=1e-6)
        bad = predict(address, "cgan", {"instances": [{"z": zs[0], "labels": 9}]})
        assert bad.status_code == 400
    finally:
        server.shutdown()


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


def test_a_server_started_beside_a_broken_newest_version_serves_the_one_before(base, tmp_path):
    folder = tmp_path / "models"
    shutil.copytree(base / "dcgan" / "1", folder / "dcgan" / "1")
    shutil.copytree(base / "dcgan" / "1", folder / "dcgan" / "2")
    (folder / "dcgan" / "2" / "variables" / "variables.index").write_bytes(b"half")
    server = serving.make_server(folder, port=0)
    try:
        states = [(n, s.state) for n, s in server.repository.status("dcgan")]
        assert states == [(2, "END"), (1, "AVAILABLE")]
        assert server.repository.servable("dcgan").version == 1
    finally:
        server.server_close()
