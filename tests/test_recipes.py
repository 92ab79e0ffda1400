"""The recipes ship inside the package (obliviate/recipes/<kind>/<name>.yaml) and are found the same way from a
checkout and from an installed wheel; a caller that requires one gets a one-line error when it is missing."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

import obliviate
from obliviate.tofu_bench.bench import default_methods
from obliviate.config import recipe_file, recipes_folder
from obliviate.demo import DEFAULT_METHOD
from obliviate.errors import ObliviateError

REPO = Path(__file__).resolve().parents[1]
PACKAGE = Path(obliviate.__file__).resolve().parent


def test_recipes_are_package_files():
    for kind in ("methods", "pretrained", "tofu", "accelerate"):
        assert recipes_folder(kind).resolve().parent == PACKAGE / "recipes"
    path = recipe_file("methods", DEFAULT_METHOD, required=True)
    assert path.resolve() == PACKAGE / "recipes" / "methods" / f"{DEFAULT_METHOD}.yaml"
    assert isinstance(yaml.safe_load(path.read_text()), dict)


def test_every_method_of_the_tofu_bench_has_a_recipe():
    for method in default_methods():
        assert recipe_file("tofu", method, required=True).is_file()


def test_a_missing_recipe_is_none_or_a_one_line_error():
    assert recipe_file("methods", "no_such_method") is None
    with pytest.raises(ObliviateError) as error:
        recipe_file("methods", "no_such_method", required=True)
    message = str(error.value)
    assert "\n" not in message and "'no_such_method'" in message and str(recipes_folder("methods")) in message


def test_the_demo_refuses_a_method_without_a_recipe(tmp_path, monkeypatch):
    """Before any world or model is built."""
    import dataclasses

    from obliviate.demo import run_demo
    from obliviate.unlearn.registry import METHODS, get_method

    monkeypatch.setitem(METHODS, "no_recipe", dataclasses.replace(get_method("ga"), name="no_recipe"))
    monkeypatch.setenv("OBLIVIATE_CACHE", str(tmp_path / "cache"))
    with pytest.raises(ObliviateError, match="no recipe for method 'no_recipe'"):
        run_demo("test", "no_recipe", out=tmp_path / "out")
    assert not any(tmp_path.iterdir())


CHECK = """
import json, sys
from pathlib import Path
import obliviate
from obliviate.config import recipe_file
from obliviate.demo import DEFAULT_METHOD
package = Path(obliviate.__file__).resolve().parent
found = [recipe_file(kind, name, required=True).resolve() for kind, name in
         (("methods", DEFAULT_METHOD), ("tofu", "npo"), ("methods", "unierase"), ("accelerate", "ddp"))]
print(json.dumps({"package": str(package), "recipes": [str(path) for path in found],
                  "inside": all(path.is_relative_to(package) and path.is_file() for path in found)}))
"""


def test_an_installed_wheel_finds_its_recipes(tmp_path):
    """Build the wheel from this checkout (offline, no build isolation), install it with no dependencies into a
    fresh virtual environment, and find the demo's recipe and a TOFU recipe there. The environment sees the
    system's site-packages for obliviate's dependencies; its own site-packages come first, and the check asserts
    that obliviate was imported from it, not from an editable install or PYTHONPATH. About 15 s."""
    source = tmp_path / "source"
    shutil.copytree(REPO / "src", source / "src", ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO / name, source / name)
    env = {key: value for key, value in os.environ.items() if key not in ("PYTHONPATH", "PIP_REQUIRE_VIRTUALENV")}

    def run(*command, cwd=tmp_path) -> str:
        done = subprocess.run([str(part) for part in command], cwd=cwd, env=env, capture_output=True, text=True)
        assert done.returncode == 0, done.stderr[-2000:]
        return done.stdout

    run(sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index", "-q",
        "-w", tmp_path / "dist", source)
    wheel = next((tmp_path / "dist").glob("obliviate-*.whl"))
    venv = tmp_path / "venv"
    run(sys.executable, "-m", "venv", "--without-pip", "--system-site-packages", venv)
    python = venv / "bin" / "python"
    run(sys.executable, "-m", "pip", "--python", python, "install", "--no-deps", "--no-index", "--ignore-installed",
        "-q", wheel)
    found = json.loads(run(python, "-c", CHECK).strip().splitlines()[-1])
    assert Path(found["package"]).is_relative_to(venv.resolve()), found
    assert found["inside"], found
    assert Path(found["recipes"][0]).name == f"{DEFAULT_METHOD}.yaml"
