"""Paper presets: each builds at its real size and trains one step on
`tfds.testing.mock_data` or a generated folder; `--preset` reaches a run."""

import json

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_datasets as tfds
from PIL import Image

import ganzoo
from ganzoo import cli, registry

PRESETS = [(name, preset) for name, presets in registry.list_presets().items() for preset in presets]
# Narrower networks for the costliest presets (tens of millions of weights at 128-256 px): their depth,
# resolution, losses and schedules stay the preset's; the width is one number.
NARROWER = {
    ("pggan", "celeba_hq128"): {"network_args": {"fmap_base": 512, "fmap_max": 16}},
    ("cyclegan", "horse2zebra"): {"network_args": {"filters": 4, "discriminator_filters": 4}},
    ("wgan_gp", "cifar10"): {"network_args": {"filters": 8}},
}


def image_folder(path, n, size=48):
    path.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for i in range(n):
        Image.fromarray(rng.integers(0, 255, (size, size, 3), dtype=np.uint8)).save(path / f"{i}.png")
    return str(path)


def test_every_preset_names_its_paper_target_and_data():
    assert len(PRESETS) >= 7
    for name, preset in PRESETS:
        config = registry.preset_config(name, preset)
        assert config["extends"] == name
        assert {"metric", "value", "source"} <= set(config["target"]), (name, preset)
        assert config["description"] and config["paper"] and config["data"] and config["gpu_time"]


@pytest.mark.slow
@pytest.mark.parametrize("name,preset", PRESETS, ids=[f"{n}-{p}" for n, p in PRESETS])
def test_each_preset_trains_one_step_at_its_size(name, preset, tmp_path):
    model = ganzoo.load(name, preset=preset, seed=0, **NARROWER.get((name, preset), {}))
    settings = registry.train_settings(name, preset)
    shape = tuple(model.data_shape)
    # One batch of what the preset trains on: TFDS's mock of the dataset, or a folder.
    dataset = settings["dataset"] or image_folder(tmp_path / "images", settings["batch_size"])
    options = {key: settings[key] for key in getattr(type(model), "train_options", ()) if key in settings}
    with tfds.testing.mock_data(num_examples=2 * settings["batch_size"]):
        train = type(model).training_data(dataset, settings["batch_size"], image_size=shape[0], channels=shape[-1],
                                          seed=0, options=options)
        batch = list(train.take(1))
    before = [w.numpy().copy() for w in model.trainable_weights]
    history = model.fit(tf.data.Dataset.from_tensors(batch[0]), epochs=1, verbose=0)
    logs = {key: values[-1] for key, values in history.history.items()}
    assert logs and all(np.isfinite(v) for v in logs.values()), logs
    assert any(not np.array_equal(a, w.numpy()) for a, w in zip(before, model.trainable_weights))


def test_the_wgan_gp_preset_decays_its_rates_linearly_to_zero():
    model = ganzoo.load("wgan_gp", preset="cifar10")
    schedule = model.g_optimizer._learning_rate
    assert float(schedule(0)) == pytest.approx(2e-4) and float(schedule(50_000)) == pytest.approx(1e-4)
    assert float(schedule(100_000)) == 0.0
    assert model.network == "resnet" and model.discriminator_has_batch_norm() is False


def test_preset_reaches_a_run_and_its_record(tmp_path, capsys):
    out = tmp_path / "run"
    args = ["train", "sngan", "--preset", "cifar10", "--dataset", "cifar10", "--epochs", "1", "--batch-size", "8",
            "--set", "network_args.filters=8", "--out", str(out), "--eval-every", "0"]
    with tfds.testing.mock_data(num_examples=8):
        assert cli.main(args) == 0
    record = json.loads((out / "run.json").read_text())
    assert record["settings"]["preset"] == "cifar10"
    assert record["settings"]["entry_defaults"]["model"]["data_shape"] == [32, 32, 3]
    assert record["settings"]["entry_defaults"]["model"]["ema_decay"] is None  # the preset's, not the digits default
    model = ganzoo.load_model(out / "model.keras")
    assert tuple(model.data_shape) == (32, 32, 3)
    assert cli.main(["train", "sngan", "--preset", "nope", "--out", str(tmp_path / "other")]) == 2
    assert "no preset 'nope'" in capsys.readouterr().err
    assert not (tmp_path / "other").exists()


def test_unknown_and_misplaced_presets_are_refused():
    with pytest.raises(ValueError, match="Did you mean 'celeba64'"):
        ganzoo.load("dcgan", preset="celeba")
    with pytest.raises(ValueError, match="has no presets"):
        ganzoo.load("vanilla", preset="cifar10")
    with pytest.raises(ValueError, match="takes no preset"):
        ganzoo.load("dcgan", preset="celeba64", pretrained=True)


def test_list_presets_prints_each_target(capsys):
    assert cli.main(["list", "--presets"]) == 0
    text = capsys.readouterr().out
    for name, preset in PRESETS:
        assert f"{name} --preset {preset}" in text
    assert "Table" in text


def test_a_preset_without_a_dataset_asks_for_one_and_preset_is_not_a_model_option(tmp_path, capsys):
    with pytest.raises(ValueError, match="--dataset FOLDER"):
        ganzoo.train("dcgan", preset="photos64", out=tmp_path / "run")
    assert cli.main(["train", "dcgan", "--set", "preset=celeba64", "--out", str(tmp_path / "run")]) == 2
    assert "--preset NAME" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()


def test_the_resnet_critic_pools_by_sum_or_mean():
    from ganzoo import networks

    _, summed = networks.build("resnet", 8, (16, 16, 3), filters=4)
    _, averaged = networks.build("resnet", 8, (16, 16, 3), filters=4, pool="mean")
    averaged.set_weights(summed.get_weights())
    images = np.random.default_rng(0).uniform(-1, 1, (2, 16, 16, 3)).astype("float32")
    dense = summed.layers[-1]
    bias = dense.bias.numpy()
    # the logit before the bias is 8x8 = 64 times larger when summed over the critic's last 8x8 positions
    np.testing.assert_allclose(summed(images).numpy() - bias, 64 * (averaged(images).numpy() - bias), rtol=1e-4)
    with pytest.raises(ValueError, match="'sum' or 'mean'"):
        networks.build("resnet", 8, (16, 16, 3), pool="max")
