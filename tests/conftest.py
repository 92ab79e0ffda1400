"""Shared fixtures: the `test` world and tiny model, built once per session into a repo-local cache."""

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"

os.environ.setdefault("OBLIVIATE_CACHE", str(REPO / ".cache" / "tests"))
os.environ.setdefault("OBLIVIATE_QUIET", "1")


def _pin_cpu_kernels() -> None:
    """Train the test models with the same float rounding on every x86 CPU with AVX2.

    PyTorch and MKL pick their vector width from the CPU: the tiny model trained on an AVX-512 machine
    differs in every weight from the one trained on an AVX2 machine, and the tests' unlearning numbers with
    it. Both libraries read these variables once, at the first operation, so this runs before torch loads.
    """
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file() and " avx2" in cpuinfo.read_text(errors="replace"):
        os.environ.setdefault("ATEN_CPU_CAPABILITY", "avx2")
        os.environ.setdefault("MKL_CBWR", "AVX2")


_pin_cpu_kernels()


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
