"""The method and attack registries refuse a second registration of a name, as the suite registry does; a
config file that names its method (a run's config.yaml) must name the method it is loaded for."""

from __future__ import annotations

import pytest

from obliviate.attacks.registry import ATTACKS, attack_names, register_attack
from obliviate.config import config_method, config_to_dict, load_config
from obliviate.errors import ObliviateError
from obliviate.eval.suites import register_suite, suite_names
from obliviate.unlearn.methods.npo import NPOConfig
from obliviate.unlearn.registry import METHODS, all_methods, register_method


def test_a_method_name_is_registered_once():
    names = [method.name for method in all_methods()]
    before = dict(METHODS)
    with pytest.raises(ValueError, match="method 'npo' is registered twice"):
        register_method("npo", NPOConfig, "another npo")(lambda step, cfg: iter(()))
    assert METHODS == before and [method.name for method in all_methods()] == names


def test_an_attack_name_is_registered_once():
    name = attack_names()[0]
    before = dict(ATTACKS)
    with pytest.raises(ValueError, match=f"attack '{name}' is registered twice"):
        register_attack(name, "another family", "extraction")(lambda subject, context: None)
    assert ATTACKS == before


def test_a_suite_name_is_registered_once():
    with pytest.raises(ValueError, match="registered twice"):
        register_suite(suite_names()[0])(type("Again", (), {}))


def test_a_config_file_naming_its_method_loads_for_that_method_only(tmp_path):
    path = tmp_path / "config.yaml"
    path.write_text("method: npo\nbeta: 0.3\n")
    assert config_method(path) == "npo"
    assert load_config(NPOConfig, path, method="npo").beta == 0.3
    with pytest.raises(ObliviateError, match="the config is for method 'npo', not 'simnpo'"):
        load_config(NPOConfig, path, method="simnpo")
    with pytest.raises(ObliviateError, match="unknown setting 'method'"):
        load_config(NPOConfig, path)
    written = config_to_dict(NPOConfig(), "npo")
    assert next(iter(written)) == "method" and written["method"] == "npo"
    assert "method" not in config_to_dict(NPOConfig())


def test_every_method_resolves_its_config_by_one_route(tmp_path):
    """unlearn's and UniErase's resolve_config are obliviate.config.resolve_config: a file (which may name the
    method), or a config object as the base, then overrides; another method's config object is refused."""
    from obliviate.unierase import UniEraseConfig
    from obliviate.unierase import resolve_config as unierase_config
    from obliviate.unlearn import get_method, resolve_config

    path = tmp_path / "config.yaml"
    path.write_text("method: unierase\nmode: sequential\n")
    assert unierase_config(path, ["rounds=3"]).mode == "sequential"
    with pytest.raises(ObliviateError, match="the config is for method 'unierase', not 'npo'"):
        resolve_config(get_method("npo"), path)
    assert resolve_config(get_method("npo"), NPOConfig(beta=0.4), ["gamma=2"]).beta == 0.4
    with pytest.raises(ObliviateError, match="method npo takes a NPOConfig, got a UniEraseConfig"):
        resolve_config(get_method("npo"), UniEraseConfig())


def test_unierase_is_a_registered_method_that_edits_the_model(tmp_path, monkeypatch):
    """UniErase is in all_methods(); `unlearn` resolves its config by the one route and hands the run to
    obliviate.unierase (here a stand-in): --retain becomes what the edit preserves."""
    import obliviate.unierase.run
    from obliviate.config import recipe_file
    from obliviate.unierase import UniEraseConfig
    from obliviate.unlearn import get_method, unlearn

    method = get_method("unierase")
    assert method in all_methods() and not method.trains and method.defaults()["mode"] == "batch"
    calls = []
    monkeypatch.setattr(obliviate.unierase.run, "unierase_model",
                        lambda model, forget, out, cfg, world=None: calls.append((model, forget, out, cfg)) or out)
    out = unlearn("base", "unierase", "world:forget", "world:neighbours", tmp_path / "run",
                  recipe_file("methods", "unierase", required=True), overrides=["mode=sequential"])
    (model, forget, written, cfg), = calls
    assert (model, forget, written, out) == ("base", "world:forget", tmp_path / "run", tmp_path / "run")
    assert isinstance(cfg, UniEraseConfig) and cfg.mode == "sequential" and cfg.preserved == "world:neighbours"
    with pytest.raises(ObliviateError, match="edits the model in one pass"):
        unlearn("base", "unierase", "world:forget", None, tmp_path / "run2", save_adapter=True)


def test_the_cli_refuses_training_options_for_a_method_that_edits(tmp_path):
    import importlib

    from typer.testing import CliRunner

    importlib.import_module("obliviate.cli.unlearn_cmd")
    app = importlib.import_module("obliviate.cli").app
    result = CliRunner().invoke(app, ["unlearn", "--model", str(tmp_path), "--method", "unierase", "--forget",
                                      "world:forget", "--lora", "--out", str(tmp_path / "out")])
    assert result.exit_code != 0 and "apply to the loss-based methods, not to unierase" in str(result.exception)
    assert not (tmp_path / "out").exists()
