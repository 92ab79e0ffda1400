"""`obliviate methods` and `obliviate unlearn`."""

from __future__ import annotations

import hashlib
import importlib
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
    for name in ("ga", "graddiff", "npo_gd", "simnpo", "idkpo", "rmu", "undial", "wga", "me_gd", "finetune"):
        assert f" {name} " in result.output
    assert "beta=4.5" in result.output and "steering_coef=6.5" in result.output


def test_unlearn_help(cli):
    result = CliRunner().invoke(cli.app, ["unlearn", "--help"])
    assert result.exit_code == 0
    for option in ("--model", "--method", "--forget", "--retain", "--out", "--world", "--config", "--set", "--lora",
                   "--full", "--save-adapter", "--resume"):
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
