"""The command line: help everywhere, world and base commands, one-line errors with exit code 2."""

import subprocess
import sys

import pytest
from typer.testing import CliRunner

from obliviate.cli import app

runner = CliRunner()


def _commands():
    return sorted(c.name for c in app.registered_commands) + sorted(g.name for g in app.registered_groups)


@pytest.mark.parametrize("command", _commands())
def test_every_command_has_help(command):
    result = runner.invoke(app, [command, "--help"])
    assert result.exit_code == 0, result.output
    assert "Usage" in result.output


def test_world_command_writes_a_world(tmp_path):
    result = runner.invoke(app, ["world", "--out", str(tmp_path / "w"), "--seed", "1", "--entities", "20"])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "w" / "world.json").is_file()
    assert "people_qa.jsonl" in result.output


def _run_cli(*args):
    return subprocess.run([sys.executable, "-m", "obliviate", *args], capture_output=True, text=True)


def test_user_errors_are_one_line_with_exit_code_2(tmp_path):
    result = _run_cli("world", "--out", str(tmp_path / "w"), "--entities", "3")
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0 and "Traceback" not in result.stderr
    assert "between 20 and 10000" in result.stderr
    result = _run_cli("base", "--world", str(tmp_path / "missing"))
    assert result.returncode == 2 and "not a world directory" in result.stderr
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"question": "q"}\n')
    result = _run_cli("data", "check", str(bad), "--kind", "qa")
    assert result.returncode == 2
    assert "bad.jsonl" in result.stderr and "line 1" in result.stderr and "answer" in result.stderr


def test_base_command_reports_the_cached_model(test_model_dir, test_world):
    result = runner.invoke(app, ["base", "--world", str(test_world.root), "--preset", "test"])
    assert result.exit_code == 0, result.output
    assert str(test_model_dir) in result.output and "exact_match_trained" in result.output
