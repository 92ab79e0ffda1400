"""MemFlex on the `test` world: unlearn three people's private facts, keep their public facts.

Scored like KnowUnDo (eval/suites/knowundo.py): token accuracy on the held-out phrasing of the
private (unlearn) and public (retention) facts, relative to the model before unlearning.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from obliviate.unlearn import load_data, unlearn
from obliviate.unlearn.methods.memflex.localize import Localization, LocalizeSettings
from obliviate.unlearn.methods.memflex import locate_for

REPO = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("memflex_vs_graddiff", REPO / "bench" / "memflex_vs_graddiff.py")
bench = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(bench)
MEMFLEX = "memflex"


@pytest.fixture(scope="module")
def private_public(test_model_dir):
    return (load_data("world:forget:private", model=test_model_dir),
            load_data("world:forget:public", model=test_model_dir))


def test_localisation_keeps_specific_matrices_with_signal(test_model, private_public, tmp_path):
    settings = LocalizeSettings(min_magnitude=2e-3)
    found = locate_for(*test_model, *private_public, settings)
    assert 0 < found.located_fraction < 0.5 and found.modules
    for name in found.located:
        assert found.scores[name]["cosine"] < settings.max_cosine
        assert found.scores[name]["magnitude"] > settings.min_magnitude
    # A fresh adapter has B = 0, so no A matrix has a gradient to locate by.
    assert all(".lora_B." in name for name in found.located)
    assert Localization.load(found.save(tmp_path / "located.json")) == found
    everything = locate_for(*test_model, *private_public, LocalizeSettings(max_cosine=2.0, min_magnitude=0.0))
    assert everything.located_fraction > found.located_fraction
    assert not any("lora" in name for name, _ in test_model[0].named_parameters())  # localised on a copy


def test_memflex_localises_before_training_and_trains_only_the_located_modules(test_model_dir, private_public,
                                                                               tmp_path):
    out = unlearn(test_model_dir, "memflex", *private_public, tmp_path / "memflex",
                  overrides=["max_steps=4", "lr=5e-3", "batch_size=4", "localize.min_magnitude=2e-3"])
    found = Localization.load(out / "located.json")
    report = json.loads((out / "run.json").read_text())
    assert report["located"] == "located.json" and report["located_modules"] == len(found.modules)
    assert report["located_fraction"] == found.located_fraction and 0 < found.located_fraction < 0.5
    before, after = load_file(Path(test_model_dir) / "model.safetensors"), load_file(out / "model.safetensors")
    changed = {name.removesuffix(".weight") for name in before if not torch.equal(before[name], after[name])}
    assert changed and changed <= set(found.modules)

    again = unlearn(test_model_dir, "memflex", *private_public, tmp_path / "reused",
                    overrides=["max_steps=1", f"located={out / 'located.json'}"])
    assert Localization.load(again / "located.json") == found


def test_memflex_with_nothing_located_says_what_to_change(test_model_dir, private_public, tmp_path):
    from obliviate.errors import ObliviateError

    with pytest.raises(ObliviateError, match="lower localize.min_magnitude"):
        unlearn(test_model_dir, "memflex", *private_public, tmp_path / "out", overrides=["localize.min_magnitude=1"])
    assert not (tmp_path / "out").exists()


@pytest.fixture(scope="module")
def memflex_runs(test_world, test_model_dir, tmp_path_factory):
    """The mean over seeds 0-2 of MemFlex's unlearn and retention success with its recipe, and its located
    fractions. One seed says little: the retention set has 18 questions. Its comparison with GradDiff is the study
    of bench/memflex_vs_graddiff.py: on every build measured GradDiff with the same LoRA adapter on every module
    kept as much or more (docs/test_builds.md)."""
    rows = bench.compare(test_model_dir, test_world, tmp_path_factory.mktemp("memflex"), [0, 1, 2],
                         {MEMFLEX: bench.RUNS[MEMFLEX]})
    return bench.means(rows), [row["located_fraction"] for row in rows if row["run"] == MEMFLEX]


@pytest.mark.slow
def test_memflex_unlearns_private_facts_and_keeps_public_ones(memflex_runs, figure):
    means, located_fractions = memflex_runs
    figure("MemFlex unlearn success (mean)", means[MEMFLEX]["unlearn_success"], at_least=0.9)
    # KnowUnDo's target is 0.9; the mean over seeds is 0.88 to 0.94 depending on the build (docs/test_builds.md)
    figure("MemFlex retention success (mean)", means[MEMFLEX]["retention_success"], at_least=0.8)
    figure("MemFlex located fraction (largest)", max(located_fractions), at_most=0.5)
    assert min(located_fractions) > 0


def test_iterative_memflex_trains_only_what_each_step_locates(test_model_dir, private_public, tmp_path):
    out = unlearn(test_model_dir, "memflex_npo", *private_public, tmp_path / "iterative",
                  overrides=["iterative=true", "max_steps=3", "batch_size=4", "localize.min_magnitude=2e-3",
                             "retain_loss=kl"])
    report = json.loads((out / "run.json").read_text())
    assert report["steps"] == 3 and set(report["final_losses"]) == {"forget", "retain"}
    assert all(torch.isfinite(torch.tensor(list(report["final_losses"].values()))))
