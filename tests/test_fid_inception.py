"""The FID Inception against the reference tools: pytorch-fid, torch-fidelity and
clean-fid, run in their own process (`fid_reference_tools.py`) on the same
uint8 images, with the same random weights loaded through ganzoo's torch-free
weight path."""

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from ganzoo import cli
from ganzoo.metrics import distances, fid_inception, stats
from ganzoo.metrics.torch_checkpoint import CheckpointError, load_state_dict

TOOLS = ("torch", "pytorch_fid", "torch_fidelity", "cleanfid")
N = 10  # images per set: each tool runs the 299x299 network on every one, at about 0.3 s an image on 2 CPU cores


def smooth_images(rng, n, size):
    """Blurry colour blobs with noise: images whose features vary (plain noise would not)."""
    coarse = rng.uniform(0, 255, (n, 4, 4, 3)).astype("float32")
    images = np.repeat(np.repeat(coarse, size // 4, axis=1), size // 4, axis=2)
    return np.clip(images + rng.normal(0, 25, images.shape), 0, 255).astype("uint8")


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """The reference tools' outputs on the same images and weights."""
    if any(importlib.util.find_spec(tool) is None for tool in TOOLS):
        pytest.skip("the reference FID tools are not installed (pip install -e '.[test]')")
    out = tmp_path_factory.mktemp("fid_reference")
    _run_reference_tools(out)
    return out, dict(np.load(out / "reference.npz")), dict(np.load(out / "images.npz"))


def _run_reference_tools(out):
    from PIL import Image

    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    np.savez(out / "images.npz", a=smooth_images(rng, N, 32), b=smooth_images(rng, N, 32))
    (out / "folder").mkdir()
    for i, image in enumerate(smooth_images(rng, 4, 48)):
        Image.fromarray(image).save(out / "folder" / f"{i:02d}.png")
    Image.fromarray(smooth_images(rng, 1, 48)[0]).convert("L").save(out / "folder" / "grey.png")  # read as RGB
    (out / "folder" / "notes.txt").write_text("not an image: skipped, as pytorch-fid skips it")
    script = Path(__file__).with_name("fid_reference_tools.py")
    environment = {**os.environ, "CUDA_VISIBLE_DEVICES": ""}
    done = subprocess.run([sys.executable, str(script), str(out)], capture_output=True, text=True, env=environment,
                          timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]


@pytest.mark.slow
def test_ganzoo_equals_the_reference_tools(reference, tmp_path_factory, capsys):
    """Every check against the tools' outputs, in one test: the tools' side takes a minute to compute, and
    one test keeps it in one test process (pytest-xdist would have a second wait for it)."""
    check_both_torch_layouts_load_to_the_same_tensors(reference)
    check_clean_resize_is_clean_fids(reference)
    check_features_and_fid_equal_the_reference_tool_of_each_resize_mode(reference)
    check_kid_and_is_equal_torch_fidelitys(reference)
    check_stats_of_a_folder_equal_pytorch_fids_and_evaluate_reads_them(reference, tmp_path_factory.mktemp("stats"),
                                                                       capsys)
    check_bad_weights_files_are_refused_with_what_is_wrong(reference, tmp_path_factory.mktemp("bad"))


def relative(ours, theirs):
    return float(np.abs(ours - theirs).max() / np.abs(theirs).max())


def check_both_torch_layouts_load_to_the_same_tensors(reference):
    out, _, _ = reference
    zipped, legacy = load_state_dict(out / "state_dict.pth"), load_state_dict(out / "state_dict_legacy.pth")
    assert sorted(zipped) == sorted(legacy) and len(zipped) > 400
    for key in zipped:
        np.testing.assert_array_equal(zipped[key], legacy[key])
    assert zipped["Mixed_7c.branch_pool.conv.weight"].shape == (192, 2048, 1, 1)
    assert zipped["fc.weight"].shape == (1008, 2048)


def check_features_and_fid_equal_the_reference_tool_of_each_resize_mode(reference):
    # legacy_pytorch: pytorch-fid; legacy_tensorflow: torch-fidelity; clean: clean-fid's resize.
    out, ref, images = reference
    for mode in fid_inception.RESIZE_MODES:
        extractor = fid_inception.FIDInception(out / "state_dict.pth", resize=mode)
        a, probabilities = extractor(images["a"])
        b, _ = extractor(images["b"])
        assert a.shape == (N, 2048) and probabilities.shape == (N, 1008)
        assert relative(a, ref[f"{mode}_a"]) < 1e-4 and relative(b, ref[f"{mode}_b"]) < 1e-4, mode
        fid = distances.frechet_distance(a, b)
        assert fid == pytest.approx(float(ref[f"fid_{mode}"]), rel=1e-3), mode
        # The modes do differ: a mode that fell back to another would not pass the others' checks.
        assert all(relative(a, ref[f"{other}_a"]) > 1e-3 for other in fid_inception.RESIZE_MODES if other != mode)


def check_clean_resize_is_clean_fids(reference):
    _, ref, images = reference
    np.testing.assert_array_equal(fid_inception._clean_resize(images["a"]), ref["clean_resized_a"])


def check_kid_and_is_equal_torch_fidelitys(reference):
    out, ref, images = reference
    extractor = fid_inception.FIDInception(out / "state_dict.pth", resize="legacy_tensorflow")
    (a, _), (b, probabilities) = extractor(images["a"]), extractor(images["b"])
    kid, _ = distances.kernel_distance(a, b, num_subsets=10, subset_size=int(ref["kid_subset_size"]), seed=2020)
    assert kid == pytest.approx(float(ref["kid"]), rel=1e-3)
    score, _ = distances.inception_score(probabilities, splits=2, shuffle_seed=2020)
    assert score == pytest.approx(float(ref["is"]), rel=1e-4)


def check_stats_of_a_folder_equal_pytorch_fids_and_evaluate_reads_them(reference, tmp_path, capsys):
    out, ref, _ = reference
    weights = str(out / "state_dict.pth")
    target = tmp_path / "s.npz"
    argv = ["stats", str(out / "folder"), "--features", "fid_inception", "--weights", weights,
            "--resize", "legacy_pytorch", "--out", str(target)]
    assert cli.main(argv) == 0
    mu, sigma, info = stats.load(target)
    assert info["n"] == 5 and info["resize"] == "legacy_pytorch"
    assert relative(mu, ref["folder_mu"]) < 1e-4 and relative(sigma, ref["folder_sigma"]) < 1e-4
    assert cli.main(argv) == 2 and "--force" in capsys.readouterr().err  # never replaced unasked
    # pytorch-fid's own file (mu and sigma only) is read; it does not say its resize mode, so it must be given.
    theirs = tmp_path / "theirs.npz"
    np.savez(theirs, mu=ref["folder_mu"], sigma=ref["folder_sigma"])
    report = tmp_path / "e.json"
    model = str(Path(__file__).parents[1] / "saved_models" / "dcgan" / "2")
    evaluate = ["evaluate", model, "--reference-stats", str(theirs), "--weights", weights, "--n", "10"]
    assert cli.main(evaluate + ["--out", str(report)]) == 2
    assert "--resize legacy_pytorch" in capsys.readouterr().err
    assert cli.main(evaluate + ["--resize", "legacy_pytorch", "--out", str(report)]) == 0
    result = json.loads(report.read_text())
    assert result["protocol"]["resize"] == "legacy_pytorch" and result["protocol"]["n_generated"] == 10
    assert result["protocol"]["weights_sha256"] and set(result["metrics"]) == {"fid", "is", "is_std"}
    assert result["metrics"]["fid"] > 0
    # Against our own file, the resize mode comes from the file, and a different one is refused.
    assert cli.main(["evaluate", model, "--reference-stats", str(target), "--weights", weights, "--n", "10",
                     "--resize", "clean", "--out", str(tmp_path / "f.json")]) == 2
    assert "made with --resize legacy_pytorch" in capsys.readouterr().err
    assert cli.main(["evaluate", model, "--reference-stats", str(target), "--weights", weights, "--n", "10",
                     "--metrics", "kid", "--out", str(tmp_path / "g.json")]) == 2
    assert "need real images" in capsys.readouterr().err


def test_resize_modes_are_the_same_in_the_command_line():
    assert cli.RESIZE_MODES == fid_inception.RESIZE_MODES


def test_missing_weights_name_the_file_its_url_and_where_to_put_it(tmp_path, monkeypatch):
    for variable in ("GANZOO_CACHE", "TORCH_HOME", "KERAS_HOME"):
        monkeypatch.setenv(variable, str(tmp_path / variable))
    with pytest.raises(FileNotFoundError) as error:
        fid_inception.find_weights()
    message = str(error.value)
    assert fid_inception.WEIGHTS_FILE in message and fid_inception.WEIGHTS_URL in message
    assert str(tmp_path / "GANZOO_CACHE") in message
    # pytorch-fid's download folder is searched
    hub = tmp_path / "TORCH_HOME" / "hub" / "checkpoints"
    hub.mkdir(parents=True)
    (hub / fid_inception.WEIGHTS_FILE).write_bytes(b"x")
    assert fid_inception.find_weights() == hub / fid_inception.WEIGHTS_FILE


def check_bad_weights_files_are_refused_with_what_is_wrong(reference, tmp_path):
    out, _, _ = reference
    data = (out / "state_dict.pth").read_bytes()
    truncated = tmp_path / "truncated.pth"
    truncated.write_bytes(data[: len(data) // 3])
    with pytest.raises(CheckpointError):
        load_state_dict(truncated)
    # A state dict of another network: the first missing key is named.
    network = fid_inception.build_network()
    with pytest.raises(ValueError, match="has no 'Conv2d_1a_3x3.conv.weight'"):
        fid_inception.set_weights(network, {"conv.weight": np.zeros((3, 3))})
    text = tmp_path / "text.pth"
    text.write_text("hello")
    with pytest.raises(CheckpointError):
        load_state_dict(text)


def test_reference_stats_files_are_checked(tmp_path):
    with pytest.raises(FileNotFoundError, match="ganzoo stats"):
        stats.load(tmp_path / "missing.npz")
    np.savez(tmp_path / "other.npz", mean=np.zeros(3))
    with pytest.raises(ValueError, match="no 'mu' and 'sigma'"):
        stats.load(tmp_path / "other.npz")
    np.savez(tmp_path / "shape.npz", mu=np.zeros(3), sigma=np.zeros((3, 2)))
    with pytest.raises(ValueError, match=r"sigma \[d, d\]"):
        stats.load(tmp_path / "shape.npz")
    (tmp_path / "junk.npz").write_text("junk")
    with pytest.raises(ValueError, match="not a readable .npz"):
        stats.load(tmp_path / "junk.npz")
    saved = stats.save(tmp_path / "ok.npz", stats.compute(np.random.default_rng(0).normal(size=(20, 3)), {"x": 1}))
    mu, sigma, info = stats.load(saved)
    assert mu.shape == (3,) and sigma.shape == (3, 3) and info == {"n": 20, "x": 1}
    with pytest.raises(FileExistsError):
        stats.save(saved, stats.compute(np.zeros((4, 3)), {}))


def test_fid_between_two_statistics_files_and_refusals(tmp_path, capsys):
    rng = np.random.default_rng(0)
    a = stats.save(tmp_path / "a.npz", stats.compute(rng.normal(size=(50, 4)), {"features": "fid_inception",
                                                                                   "resize": "clean"}))
    b = stats.save(tmp_path / "b.npz", stats.compute(rng.normal(size=(50, 4)) + 1, {"features": "fid_inception",
                                                                                       "resize": "clean"}))
    assert cli.main(["fid", str(a), str(a)]) == 0
    assert float(capsys.readouterr().out.split()[1]) == pytest.approx(0, abs=1e-6)
    assert cli.main(["fid", str(a), str(b)]) == 0
    assert float(capsys.readouterr().out.split()[1]) > 3  # the means differ by 1 in each of 4 dimensions
    c = stats.save(tmp_path / "c.npz", stats.compute(rng.normal(size=(50, 4)), {"resize": "legacy_pytorch"}))
    assert cli.main(["fid", str(a), str(c)]) == 2
    assert "differ in resize" in capsys.readouterr().err


def test_the_fid_network_is_float32_under_a_mixed_precision_policy():
    # EvaluationCallback builds it during a --mixed-precision run, and the network is kept for later.
    import keras

    previous = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        network = fid_inception.build_network()
        assert keras.mixed_precision.global_policy().name == "mixed_float16"  # left as it was
    finally:
        keras.mixed_precision.set_global_policy(previous)
    assert {layer.compute_dtype for layer in network.layers} == {"float32"}
