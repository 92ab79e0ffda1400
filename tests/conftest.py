"""Shared fixtures: the `test` world and tiny model, built once per session into a repo-local cache, and `figure`.

The tiny models are trained from scratch, so their weights depend on the CPU kernels PyTorch and MKL pick (AVX2,
AVX-512, ...): every build gives other figures. A test that asserts a trained model's figure does it through
`figure`, which records the value beside its bound; `tests/kernel_builds.py` runs the suite under each kernel
setting and prints those figures side by side. A bound must hold on every build.
"""

import json
import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"

os.environ.setdefault("OBLIVIATE_CACHE", str(REPO / ".cache" / "tests"))
os.environ.setdefault("OBLIVIATE_QUIET", "1")
# Refusal targets (idk, idkpo, UniErase's token) from the shared phrasings beside the repository, which the
# tests' bounds were measured with, else the built-in ones; not from ../shared found from the working directory.
SHARED_REFUSALS = SHARED_DATA / "idontknow.jsonl"
os.environ.setdefault("OBLIVIATE_REFUSALS", str(SHARED_REFUSALS) if SHARED_REFUSALS.is_file() else "builtin")


@pytest.fixture
def figure(request):
    """`figure(name, value, at_least=..., at_most=...)`: assert a measured figure against its bound, and record it
    (to the JSON Lines file `$OBLIVIATE_FIGURES` names, when it is set) whether or not it holds."""
    def check(name: str, value: float, *, at_least: float | None = None, at_most: float | None = None) -> None:
        assert at_least is not None or at_most is not None, "a figure needs a bound"
        value = float(value)
        if path := os.environ.get("OBLIVIATE_FIGURES"):
            record = {"test": request.node.nodeid, "figure": name, "value": value, "at_least": at_least,
                      "at_most": at_most}
            with open(path, "a", encoding="utf-8") as out:
                out.write(json.dumps(record) + "\n")
        assert at_least is None or value >= at_least, f"{name} = {value:.4g}, below its bound {at_least:.4g}"
        assert at_most is None or value <= at_most, f"{name} = {value:.4g}, above its bound {at_most:.4g}"

    return check


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.skip(f"shared reference data not found at {SHARED_DATA}")
    return SHARED_DATA


@pytest.fixture(scope="session")
def test_world():
    from obliviate.demo import demo_world

    return demo_world("test")


@pytest.fixture(scope="session")
def test_model_dir(test_world) -> Path:
    from obliviate.models.tiny import build_base_model

    return build_base_model(test_world.root, "test")


@pytest.fixture(scope="session")
def test_model(test_model_dir):
    """(model, tokenizer) of the tiny test model. Tests must not modify it: copy it first."""
    from obliviate.models import load_model, load_tokenizer

    return load_model(test_model_dir), load_tokenizer(test_model_dir)
