"""Shared fixtures: the `test` world and tiny model, built once per session into a repo-local cache."""

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"

os.environ.setdefault("OBLIVIATE_CACHE", str(REPO / ".cache" / "tests"))
os.environ.setdefault("OBLIVIATE_QUIET", "1")


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
