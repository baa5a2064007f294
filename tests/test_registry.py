import keras
import pytest

import ganzoo
from ganzoo import registry

from conftest import tiny_settings, tiny_model


def test_list_models():
    assert {"vanilla", "dcgan"} <= set(ganzoo.list_models())
    assert ganzoo.list_models() == sorted(ganzoo.list_models())
    assert ganzoo.list_models("dc*") == ["dcgan"]
    assert ganzoo.list_models("nothing*") == []


@pytest.mark.parametrize("name", ganzoo.list_models())
def test_every_entry_loads_built_and_compiled(name):
    model = tiny_model(name)
    assert isinstance(model, ganzoo.AdversarialModel) and isinstance(model, keras.Model)
    assert model.built and model.compiled
    assert model.name == name
    assert model.latent_dim == tiny_settings(name).get("latent_dim")  # None: cyclegan translates, no noise
    assert model.data_shape == tuple(tiny_settings(name)["data_shape"])
    assert model.g_optimizer.built and model.d_optimizer.built
    assert registry.model_config(name)["paper"]


def test_defaults_come_from_the_yaml():
    model = ganzoo.load("dcgan")
    assert model.data_shape == (32, 32, 1) and model.latent_dim == 100
    assert isinstance(model.g_optimizer, keras.optimizers.Adam)
    assert float(model.g_optimizer.learning_rate) == pytest.approx(2e-4)
    assert float(model.d_optimizer.beta_1) == pytest.approx(0.5)


def test_overrides_deep_merge():
    model = tiny_model("dcgan", g_optimizer={"learning_rate": 1e-3}, network_args={"filters": 2})
    assert float(model.g_optimizer.learning_rate) == pytest.approx(1e-3)
    assert float(model.g_optimizer.beta_1) == pytest.approx(0.5)  # kept from the YAML
    assert model.network_args == {"filters": 2, "max_filters": 512, "kernel_size": 4}


def test_changing_network_drops_its_arguments():
    model = ganzoo.load("vanilla", network="dcgan", data_shape=(16, 16, 1))
    assert model.network == "dcgan" and model.network_args == {}
    assert model.generate(2, seed=0).shape == (2, 16, 16, 1)


def test_unknown_model_suggests_the_closest_name():
    with pytest.raises(ValueError, match=r"'dcgn'.*Did you mean 'dcgan'.*vanilla"):
        ganzoo.load("dcgn")


def test_unknown_override_names_the_options():
    with pytest.raises(TypeError, match=r"no option 'num_classes'.*d_steps.*latent_dim"):
        ganzoo.load("dcgan", num_classes=10)


def test_bad_values_are_clear_errors():
    with pytest.raises(ValueError, match="latent_dim must be a positive integer"):
        tiny_model("vanilla", latent_dim=0)
    with pytest.raises(ValueError, match="4 \\* 2\\^n"):
        tiny_model("dcgan", data_shape=(24, 24, 1))
    with pytest.raises(ValueError, match="Unknown GAN loss"):
        tiny_model("dcgan", loss="bce")
    with pytest.raises(ValueError, match="network_args.*accepts: filters"):
        tiny_model("dcgan", network_args={"depth": 3})
    with pytest.raises(ValueError, match="Unknown network 'mpl'.*'mlp'"):
        tiny_model("vanilla", network="mpl")


def test_register_model_with_a_yaml(tmp_path):
    path = tmp_path / "mine.yaml"
    path.write_text(
        "paper: none\nmodel:\n  data_shape: [2]\n  latent_dim: 3\n"
        "compile:\n  loss: hinge\n  g_optimizer: {type: sgd}\n  d_optimizer: {type: sgd}\n"
    )

    @ganzoo.register_model("mine_test", config=path)
    class Mine(ganzoo.GAN):
        pass

    try:
        model = ganzoo.load("mine_test")
        assert isinstance(model, Mine) and model.latent_dim == 3
        assert isinstance(model.d_optimizer, keras.optimizers.SGD)
    finally:
        registry.unregister_model("mine_test")


def test_broken_yaml_names_file_and_line(tmp_path):
    path = tmp_path / "broken.yaml"
    path.write_text("model:\n  latent_dim: 3\n  data_shape: [2\ncompile: {}\n")
    ganzoo.register_model("broken_test", config=path)(ganzoo.GAN)
    try:
        with pytest.raises(ValueError, match=r"broken\.yaml:\d+: invalid YAML"):
            ganzoo.load("broken_test")
    finally:
        registry.unregister_model("broken_test")


def test_lsgan_is_dcgan_with_the_least_squares_loss():
    lsgan, dcgan = registry.model_config("lsgan"), registry.model_config("dcgan")
    assert lsgan["compile"]["loss"] == "least_squares" and dcgan["compile"]["loss"] == "non_saturating"
    assert lsgan["model"] == dcgan["model"] and lsgan["train"] == dcgan["train"]  # inherited
    assert lsgan["paper"].startswith("Mao et al. 2017") and "extends" not in lsgan
    model = tiny_model("lsgan")
    assert type(model).__name__ == "DCGAN" and model.name == "lsgan" and model.gan_loss == "least_squares"


def _register(name, config):
    ganzoo.register_model(name, config=config)(ganzoo.GAN)


def test_extends_deep_merges_and_a_new_network_drops_the_old_arguments():
    _register("child_test", {"extends": "dcgan", "compile": {"g_optimizer": {"learning_rate": 1e-3}}})
    _register("mlp_child_test", {"extends": "dcgan", "model": {"network": "mlp", "data_shape": [2]}})
    try:
        config = registry.model_config("child_test")
        assert config["compile"]["g_optimizer"] == {"type": "adam", "learning_rate": 1e-3, "beta_1": 0.5}
        assert config["class"] == "ganzoo.models.dcgan:DCGAN"
        mlp = registry.model_config("mlp_child_test")
        assert mlp["model"]["network"] == "mlp" and "network_args" not in mlp["model"]
    finally:
        registry.unregister_model("child_test")
        registry.unregister_model("mlp_child_test")


def test_an_extends_loop_is_a_clear_error():
    _register("loop_a_test", {"extends": "loop_b_test"})
    _register("loop_b_test", {"extends": "loop_a_test"})
    try:
        with pytest.raises(ValueError, match="loop: loop_a_test -> loop_b_test -> loop_a_test"):
            registry.model_config("loop_a_test")
    finally:
        registry.unregister_model("loop_a_test")
        registry.unregister_model("loop_b_test")


@pytest.mark.parametrize("section, key, valid", [
    ("train", "epoch", "did you mean 'epochs'.*batch_size, dataset, epochs"),
    ("model", "latent_dims", "did you mean 'latent_dim'.*d_steps"),
    ("compile", "los", "did you mean 'loss'.*g_optimizer"),
    ("tiny", "filters", "data_shape"),
])
def test_every_section_rejects_unknown_keys(section, key, valid):
    _register("typo_test", {"extends": "dcgan", section: {key: 1}})
    try:
        with pytest.raises(ValueError, match=f"unknown key '{key}' in {section}.*{valid}"):
            ganzoo.load("typo_test")
    finally:
        registry.unregister_model("typo_test")


def test_unknown_top_level_keys_and_cyclegan_train_options():
    _register("top_test", {"extends": "dcgan", "trian": {"epochs": 3}})
    try:
        with pytest.raises(ValueError, match="unknown key 'trian' in the top level"):
            ganzoo.load("top_test")
    finally:
        registry.unregister_model("top_test")
    assert registry.train_settings("cyclegan")["decay_from"] == 0.5  # a train option of its class
    assert registry.train_settings("vanilla")["image_size"] is None  # a default of every entry


def test_every_yaml_names_its_paper_class_and_tiny_settings():
    for name in ganzoo.list_models():
        config = registry.model_config(name)
        assert config["paper"] and config["class"] and config["tiny"]["data_shape"], name
        registry.validate(name, config, registry.model_class(name))
