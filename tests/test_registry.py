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
