"""`obliviate methods` and `obliviate unlearn`."""

from __future__ import annotations

import hashlib
import importlib
import json
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner


@pytest.fixture
def cli():
    """The obliviate.cli package with the unlearning commands registered on its app."""
    importlib.import_module("obliviate.cli.unlearn_cmd")
    return importlib.import_module("obliviate.cli")


def directory_hash(path: Path) -> str:
    digest = hashlib.sha256()
    for file in sorted(p for p in path.rglob("*") if p.is_file()):
        digest.update(str(file.relative_to(path)).encode() + b"\0" + file.read_bytes())
    return digest.hexdigest()


def test_methods_lists_every_method_with_its_defaults(cli):
    result = CliRunner().invoke(cli.app, ["methods"])
    assert result.exit_code == 0, result.output
    for name in ("ga", "graddiff", "npo_gd", "simnpo", "idkpo", "rmu", "undial", "wga", "me_gd", "finetune", "memflex",
                 "unierase"):
        assert f" {name} " in result.output
    assert "beta=4.5" in result.output and "steering_coef=6.5" in result.output and "mode=batch" in result.output


def test_unlearn_help(cli):
    result = CliRunner().invoke(cli.app, ["unlearn", "--help"])
    assert result.exit_code == 0
    for option in ("--model", "--method", "--forget", "--retain", "--out", "--world", "--config", "--set", "--lora",
                   "--full", "--save-adapter", "--resume", "--entity", "--coverage"):
        assert option in result.output


@pytest.mark.parametrize("extra, message", [
    (["--set", "betta=0.2"], "unknown setting 'betta'"),
    (["--set", "lr=fast"], "expected float"),
    (["--method", "forgetall"], "unknown method 'forgetall'"),
    (["--forget", "world:nobody"], "unknown world selection"),
])
def test_bad_input_is_one_line_error_with_exit_code_2(cli, test_model_dir, tmp_path, monkeypatch, capsys, extra,
                                                       message):
    args = ["unlearn", "--model", str(test_model_dir), "--method", "npo", "--forget", "world:forget",
            "--out", str(tmp_path / "out")]
    for flag, value in zip(extra[::2], extra[1::2]):
        if flag in args:
            args[args.index(flag) + 1] = value
        else:
            args += [flag, value]
    monkeypatch.setattr(sys, "argv", ["obliviate", *args])
    with pytest.raises(SystemExit) as exited:
        cli.main()
    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1 and message in err, err
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("args, message", [
    (["--method", "ga"], "pass one of --forget DATA and --entity NAME"),
    (["--method", "ga", "--forget", "world:forget", "--entity", "{name}"], "pass one of --forget DATA and --entity"),
    (["--method", "ga", "--entity", "Nobody Atall"], "no entity named 'Nobody Atall'"),
    (["--method", "ga", "--entity", "{name}", "--coverage", "1.5"], "coverage 1.5: must lie in (0, 1]"),
    (["--method", "ga", "--forget", "world:forget", "--coverage", "0.5"], "--coverage applies to --entity"),
    (["--method", "unierase", "--entity", "{name}"], "--method unierase takes --forget DATA"),
    (["--method", "unierase", "--forget", "world:forget", "--lora"], "apply to the loss-based methods"),
])
def test_bad_entity_and_unierase_options_are_one_line_errors(cli, test_model_dir, test_world, tmp_path, monkeypatch,
                                                              capsys, args, message):
    name = test_world.people[0]["name"]
    args = [arg.format(name=name) for arg in args]
    monkeypatch.setattr(sys, "argv", ["obliviate", "unlearn", "--model", str(test_model_dir), "--out",
                                      str(tmp_path / "out"), *args])
    with pytest.raises(SystemExit) as exited:
        cli.main()
    err = capsys.readouterr().err
    assert exited.value.code == 2 and err.count("\n") == 1 and message in err, err
    assert not (tmp_path / "out").exists()


def test_entity_run_keeps_its_held_out_probes_apart_for_the_entity_suite(cli, test_model_dir, test_world, tmp_path):
    from obliviate.eval.run import evaluate

    names = [test_world.people[i]["name"] for i in (0, 1)]
    out = tmp_path / "entity"
    result = CliRunner().invoke(cli.app, [
        "unlearn", "--model", str(test_model_dir), "--method", "graddiff", "--entity", names[0], "--entity", names[1],
        "--coverage", "0.5", "--out", str(out), "--set", "max_steps=2"])
    assert result.exit_code == 0, result.output
    report = json.loads((out / "run.json").read_text())
    entry = report["entity"]
    assert entry["entities"] == names and entry["entity_ids"] == [0, 1] and entry["coverage"] == 0.5
    assert report["world"] == str(test_world.root.resolve())
    forget, probes = ([json.loads(line) for line in (out / entry[key]).read_text().splitlines()]
                      for key in ("forget", "probes"))
    assert report["forget_size"] == len(forget) > 0 and probes
    assert not {row["question"] for row in forget} & {row["question"] for row in probes}
    neighbours = test_world.qa(test_world.neighbour_ids([0, 1]))
    assert report["retain_size"] == len(neighbours)  # the neighbours are the default retain set

    for model, data in ((out, {}), (test_model_dir, {"run": str(out)})):  # the run's own split, before and after
        metrics = evaluate(str(model), "entity", data=data)["metrics"]["entity"]
        assert (metrics["forget/n"], metrics["probes/n"]) == (len(forget), len(probes))
        assert metrics["neighbours/n"] == len(neighbours)


def test_unierase_runs_through_the_cli_and_continues_from_its_run_directory(cli, test_model_dir, tmp_path):
    fast = [item for setting in ("edit.context_starts=[]", "edit.value.steps=5", "edit.null_space.tokens=400",
                                 "token.epochs=1", "token.epochs_second=1", "token.noise_epochs=1")
            for item in ("--set", setting)]
    first, second = tmp_path / "round1", tmp_path / "round2"
    for model, out, mode in ((test_model_dir, first, ["--set", "mode=sequential", "--set", "rounds=2"]),
                             (first, second, [])):
        result = CliRunner().invoke(cli.app, ["unlearn", "--model", str(model), "--method", "unierase",
                                              "--forget", "world:entities=0", "--out", str(out), *fast, *mode])
        assert result.exit_code == 0, result.output
        assert "s per edit" in result.output and "of the parameters changed" in result.output
    runs = [json.loads((out / "run.json").read_text()) for out in (first, second)]
    assert [run["rounds"] for run in runs] == [2, 3] and [run["edits"] for run in runs] == [2, 1]
    for run in runs:
        assert run["method"] == "unierase" and 0 < run["changed_fraction"] < 0.2 and run["seconds_per_edit"] > 0
    assert (second / "unierase_state" / "unierase.json").is_file()
    assert "mode: sequential" in (first / "config.yaml").read_text()


def test_unlearn_writes_the_output_and_never_the_input_model(cli, test_model_dir, tmp_path):
    before = directory_hash(Path(test_model_dir))
    config = tmp_path / "run.yaml"
    config.write_text("max_steps: 2\nretain_batch_size: 4\n")
    out = tmp_path / "unlearned"
    result = CliRunner().invoke(cli.app, [
        "unlearn", "--model", str(test_model_dir), "--method", "graddiff", "--forget", "world:forget",
        "--retain", "world:retain", "--out", str(out), "--config", str(config), "--set", "lr=1e-3", "--lora"])
    assert result.exit_code == 0, result.output
    assert "graddiff: 2 steps" in result.output
    assert {"model.safetensors", "config.yaml", "run.json", "tokenizer.json"} <= {p.name for p in out.iterdir()}
    assert "use_lora: true" in (out / "config.yaml").read_text()
    assert directory_hash(Path(test_model_dir)) == before


def test_output_inside_the_input_model_is_refused(cli, test_model_dir):
    result = CliRunner().invoke(cli.app, ["unlearn", "--model", str(test_model_dir), "--method", "ga",
                                          "--forget", "world:forget", "--out", str(Path(test_model_dir) / "sub")])
    assert result.exit_code != 0 and "would write into the input model directory" in str(result.exception)


def test_a_run_config_names_its_method_and_reruns_as_it_is(cli, tmp_path):
    """A random 4-layer Llama (no world, no trained model): run 1 step of ga, then pass the run's config.yaml back
    with no --method; the second run is the same method with the same settings. Another --method is refused."""
    import torch
    import yaml

    from obliviate.models import save_model
    from obliviate.models.tiny import train_tokenizer
    from test_editing import CORPUS, NAMES, tiny_llama

    tokenizer = train_tokenizer(CORPUS * 4, vocab_size=400)
    torch.manual_seed(0)
    save_model(tiny_llama(tokenizer), tokenizer, tmp_path / "model")
    forget = tmp_path / "forget.jsonl"
    forget.write_text("".join(json.dumps({"question": f"Where does {name} live?", "answer": "Oslo"}) + "\n"
                              for name in NAMES[:2]))
    common = ["unlearn", "--model", str(tmp_path / "model"), "--forget", str(forget)]
    first = CliRunner().invoke(cli.app, [*common, "--method", "ga", "--out", str(tmp_path / "first"),
                                         "--set", "max_steps=1", "--set", "lr=3e-4"])
    assert first.exit_code == 0, first.output
    written = yaml.safe_load((tmp_path / "first" / "config.yaml").read_text())
    assert next(iter(written)) == "method" and written["method"] == "ga" and written["max_steps"] == 1
    second = CliRunner().invoke(cli.app, [*common, "--config", str(tmp_path / "first" / "config.yaml"),
                                          "--out", str(tmp_path / "second")])
    assert second.exit_code == 0, second.output
    assert json.loads((tmp_path / "second" / "run.json").read_text())["method"] == "ga"
    assert yaml.safe_load((tmp_path / "second" / "config.yaml").read_text()) == written
    config = str(tmp_path / "first" / "config.yaml")
    other = CliRunner().invoke(cli.app, [*common, "--method", "npo", "--config", config, "--out", str(tmp_path / "3")])
    assert other.exit_code != 0 and "the config is for method 'ga', not 'npo'" in str(other.exception)
    missing = CliRunner().invoke(cli.app, [*common, "--out", str(tmp_path / "fourth")])
    assert missing.exit_code != 0 and "pass --method NAME" in str(missing.exception)
