"""`obliviate bench tofu` on the real TOFU data, on a subset of authors so it stays quick."""

import json

import pytest
from typer.testing import CliRunner

from obliviate.tofu_bench.leaderboard import Row, choose, parse_sweep
from obliviate.tofu_bench.bench import TofuBench, TofuBenchConfig
from obliviate.cli import app
from obliviate.errors import ObliviateError

CI_AUTHORS = 6  # forget01's 2 authors and 4 others


@pytest.fixture(scope="module")
def tofu_dir(shared_data):
    path = shared_data / "tofu"
    if not (path / "forget01.json").is_file():
        pytest.skip(f"TOFU data not found at {path}")
    return path


@pytest.fixture(scope="module")
def bench_out(tofu_dir, tmp_path_factory):
    """One run of the command: one method over a two-point sweep."""
    out = tmp_path_factory.mktemp("bench") / "forget01"
    result = CliRunner().invoke(app, [
        "bench", "tofu", "--data", str(tofu_dir), "--split", "forget01", "--preset", "ci",
        "--authors", str(CI_AUTHORS), "--methods", "npo_gd", "--sweep", "lr=1e-4,1e-3", "--out", str(out)])
    assert result.exit_code == 0, result.output
    return out


def test_protocol_sanity(bench_out, figure):
    """The full model is told apart from the retain model; the retain model matches itself."""
    board = json.loads((bench_out / "leaderboard.json").read_text())
    retain, full = board["reference"]
    assert (retain["name"], full["name"]) == ("retain model", "full model")
    assert retain["metrics"]["forget_quality"] == 1.0
    assert retain["metrics"]["privleak"] == 0.0
    figure("full model: forget quality", full["metrics"]["forget_quality"], at_most=0.01)
    figure("forget truth ratio, retain − full", retain["metrics"]["forget_truth_ratio"]
           - full["metrics"]["forget_truth_ratio"], at_least=0.0)
    # Both learned the general-knowledge QA, so model utility has not collapsed to ~0.
    figure("retain model: model utility", retain["metrics"]["model_utility"], at_least=0.3)
    figure("full model: model utility", full["metrics"]["model_utility"], at_least=0.3)


def test_outputs(bench_out):
    board = json.loads((bench_out / "leaderboard.json").read_text())
    (row,) = board["methods"]
    assert row["name"] == "npo_gd" and row["hyperparameters"]["lr"] in (1e-4, 1e-3)
    assert row["wall_seconds"] > 0 and 0 <= row["metrics"]["model_utility"] <= 1
    assert [point["hyperparameters"]["lr"] for point in board["sweep"]["npo_gd"]] == [1e-4, 1e-3]
    assert board["criterion"].startswith("highest forget quality")
    markdown = (bench_out / "leaderboard.md").read_text()
    assert "| full model |" in markdown and "| retain model |" in markdown and "Sweep:" in markdown
    html = (bench_out / "report.html").read_text()
    assert "Model utility vs forget quality" in html and "data:image/png;base64" in html


def test_unierase_runs_on_tofu_keyed_on_the_authors_names(bench_out, tofu_dir, tmp_path):
    """UniErase edits TOFU's forget questions at their subjects (the author's name, from the data) and lands on
    the leaderboard like the methods that train; it gets no retain set (its recipe preserves general text)."""
    out = tmp_path / "unierase"
    result = CliRunner().invoke(app, [
        "bench", "tofu", "--data", str(tofu_dir), "--split", "forget01", "--preset", "ci",
        "--authors", str(CI_AUTHORS), "--methods", "unierase", "--sweep", "edit.null_space.tokens=20000",
        "--out", str(out)])
    assert result.exit_code == 0, result.output
    (row,) = json.loads((out / "leaderboard.json").read_text())["methods"]
    assert row["name"] == "unierase" and 0 <= row["metrics"]["model_utility"] <= 1
    (run_dir,) = (out / "runs").iterdir()
    report = json.loads((run_dir / "run.json").read_text())
    assert report["method"] == "unierase" and report["forget_size"] == 40 and report["edits"] == 1
    assert report["edit_layers"] == [1, 2] and 0 < report["changed_fraction"] < 0.5


def _row(name, quality, utility):
    return Row(name, {"forget_quality": quality, "model_utility": utility}, 1.0, 1.0)


def test_choose_prefers_forget_quality_among_useful_points():
    trials = [_row("a", 0.9, 0.5), _row("b", 0.2, 0.95), _row("c", 0.1, 1.0)]
    assert choose(trials, retain_utility=1.0).name == "b"
    assert choose(trials, retain_utility=2.0).name == "c"  # none is useful enough: the most utility


@pytest.mark.parametrize("options, message", [
    ({"split": "forget02"}, "--split forget02"),
    ({"authors": 1}, "forget01 alone holds 2 authors"),
    ({"methods": ("elm",)}, "does not fit the TOFU benchmark"),
    ({"methods": ("nope",)}, "unknown method"),
    ({"preset": "huge"}, "unknown TOFU preset"),
    ({"methods": ("ga",), "sweep": {"nope": ["1"]}}, "unknown setting 'nope'"),
    ({"base_model": "b", "full_model": "f", "retain_model": "r"}, "not both"),
    ({"full_model": "f"}, "--full-model and --retain-model go together"),
    ({"finetune_overrides": ("epochs=2",)}, "without --base-model nothing is fine-tuned"),
    ({"methods": ("ga",), "base_model": "b", "finetune_overrides": ("nope=2",)}, "unknown setting 'nope'"),
])
def test_bad_input_is_one_line(tofu_dir, tmp_path, options, message):
    with pytest.raises(ObliviateError, match=message):
        TofuBench(TofuBenchConfig(**{"data": tofu_dir, "out": tmp_path, "split": "forget01", **options})).data.full


def test_bad_sweep_is_one_line():
    with pytest.raises(ObliviateError, match="KEY=VALUE"):
        parse_sweep(["1e-4"])


def test_base_model_is_fine_tuned_with_the_protocol_then_its_checkpoints_serve_as_given(tofu_dir, test_model_dir,
                                                                                        tmp_path, figure):
    """--base-model fine-tunes the full and retain models from a pretrained one (here the tiny test model, with a
    higher learning rate so that a few steps teach it); given as --full-model / --retain-model, those same
    checkpoints give the same reference rows."""
    common = ["bench", "tofu", "--data", str(tofu_dir), "--split", "forget01", "--preset", "ci", "--authors", "3",
              "--methods", "ga", "--sweep", "max_steps=1"]
    tuned = CliRunner().invoke(app, [*common, "--base-model", str(test_model_dir), "--finetune-set", "lr=1e-3",
                                     "--finetune-set", "epochs=3", "--out", str(tmp_path / "tuned")])
    assert tuned.exit_code == 0, tuned.output
    board = json.loads((tmp_path / "tuned" / "leaderboard.json").read_text())
    retain, full = board["reference"]
    # the full model was fine-tuned on the forget authors, the retain model was not
    figure("fine-tuned full / retain: forget probability", full["metrics"]["forget_probability"]
           / retain["metrics"]["forget_probability"], at_least=2.0)
    assert "fine-tuned with TOFU's protocol (3.0 epochs" in board["facts"][1]
    assert board["title"] == f"TOFU forget01 leaderboard ({test_model_dir})"
    config = (tmp_path / "tuned" / "runs" / "ga-max_steps1" / "config.yaml").read_text()
    assert "lr: 1.0e-05" in config and "weight_decay: 0.01" in config and "grad_accum: 4" in config

    evals = tmp_path / "tuned" / "evals"
    full_dir, retain_dir = (json.loads((evals / f"{name}.json").read_text())["model"] for name in ("full", "retain"))
    bench = TofuBench(TofuBenchConfig(data=tofu_dir, out=tmp_path / "given", split="forget01", preset="ci", authors=3,
                                      methods=("ga",), full_model=full_dir, retain_model=retain_dir))
    assert bench.models() == (full_dir, retain_dir)
    bench.write_mia_data()
    again = bench.reference_rows(full_dir, retain_dir)
    assert [row.metrics for row in again] == [row["metrics"] for row in board["reference"]]
    assert bench.facts(full_dir, retain_dir, 0)[1] == f"models: the checkpoints {full_dir} (full) and {retain_dir} (retain)"


def test_cli_full_model_without_retain_model_is_one_line(tofu_dir, tmp_path):
    result = CliRunner().invoke(app, ["bench", "tofu", "--data", str(tofu_dir), "--split", "forget01",
                                      "--full-model", "f", "--out", str(tmp_path / "out")])
    # (obliviate's main turns an ObliviateError into its one line and exit code 2)
    assert isinstance(result.exception, ObliviateError) and "go together" in str(result.exception)
    assert not (tmp_path / "out").exists()
