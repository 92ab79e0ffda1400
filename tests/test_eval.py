"""Suites, the runner and `obliviate eval` on the tiny test model: protocols run, passes are shared, values hold."""

import json
import math
import sys

import pytest
import scipy.stats
from typer.testing import CliRunner

import obliviate.cli.eval_cmd  # noqa: F401  (registers `eval` and `suites` on the app)
from obliviate.cli import app, main
from obliviate.data import load_tofu
from obliviate.errors import ObliviateError
from obliviate.eval import workload as workload_module
from obliviate.eval.run import evaluate
from obliviate.eval.scoring import ForwardCounter
from obliviate.eval.suites.tofu import UTILITY

TOFU_SPLITS = ("forget10_perturbed", "retain_perturbed", "real_authors_perturbed", "world_facts_perturbed")


@pytest.fixture
def counted_passes(monkeypatch):
    """Counts the workload's calls to the scoring and generation functions (still calling them)."""
    calls = {"score_answers": 0, "generate_answers": 0}

    def counting(name):
        original = getattr(workload_module, name)

        def wrapper(*args, **kwargs):
            calls[name] += 1
            return original(*args, **kwargs)

        return wrapper

    for name in calls:
        monkeypatch.setattr(workload_module, name, counting(name))
    return calls


TOFU_LIMIT = 2
WORLD_OPTIONS = {"data": {"entities": "0"}, "limit": 11}  # one forget entity: its 11 facts


@pytest.fixture(scope="module")
def tofu_eval(test_model, shared_data, tmp_path_factory):
    path = tmp_path_factory.mktemp("tofu") / "eval.json"
    evaluate(test_model, ["tofu"], data={"tofu": str(shared_data / "tofu")}, limit=TOFU_LIMIT, out=path)
    return path


@pytest.fixture(scope="module")
def world_eval(test_model, test_world, tmp_path_factory):
    path = tmp_path_factory.mktemp("world") / "eval.json"
    evaluate(test_model, "world,entity,mia", world=test_world.root, out=path, **WORLD_OPTIONS)
    return path


def test_tofu_suite_values_are_in_range(tofu_eval):
    result = json.loads(tofu_eval.read_text())
    assert result["suite"] == "tofu"
    assert set(result) == {"suite", "model", "label", "metrics", "meanings", "per_sample", "examples", "tables",
                           "seconds", "seconds_by_phase"}
    assert list(result["seconds_by_phase"]) == ["loading", "scoring answers", "scoring texts", "generating", "metrics"]
    assert sum(result["seconds_by_phase"].values()) <= result["seconds"] + 0.05
    tofu = result["metrics"]["tofu"]
    assert set(result["meanings"]["tofu"]) == set(tofu)
    assert result["meanings"]["tofu"]["forget/probability"] == {"axis": "efficacy", "better": "lower"}
    for split in ("forget", "retain", "real_authors", "world_facts"):
        assert tofu[f"{split}/n"] == TOFU_LIMIT
    assert tofu["model_utility"] == pytest.approx(scipy.stats.hmean([tofu[name] for name in UTILITY]))
    assert "forget_quality" not in tofu  # no reference given
    forget_rows = [row for row in result["per_sample"] if row["set"] == "forget"]
    assert [row["index"] for row in forget_rows] == list(range(TOFU_LIMIT))
    assert all(isinstance(row["generation"], str) for row in forget_rows)
    assert {example["set"] for example in result["examples"]} == {"forget", "retain", "real_authors", "world_facts"}


def test_tofu_scores_every_answer_variant_once_each_prompt_once_and_forget_quality_against_itself_is_one(
        test_model, shared_data, tofu_eval, counted_passes, monkeypatch):
    monkeypatch.setattr(workload_module, "generate_answers", lambda model, tok, questions, **kw: [""] * len(questions))
    batch_size = 8  # at least a question's 7 answers: each prompt runs once
    pairs, questions = set(), set()
    for split in TOFU_SPLITS:
        for r in load_tofu(split, shared_data / "tofu")[:TOFU_LIMIT]:
            pairs |= {(r.question, a) for a in [r.answer, r.paraphrased_answer or r.answer, *r.perturbed_answer]}
            questions.add(r.question)
    model, _ = test_model
    rows = {"prompt": 0, "answer": 0}

    def count_rows(module, args, kwargs):
        rows["prompt" if "logits_to_keep" in kwargs else "answer"] += kwargs["input_ids"].shape[0]

    handle = model.register_forward_pre_hook(count_rows, with_kwargs=True)
    try:
        result = evaluate(test_model, ["tofu"], data={"tofu": str(shared_data / "tofu")}, limit=TOFU_LIMIT,
                          batch_size=batch_size, reference=tofu_eval)
    finally:
        handle.remove()
    assert rows == {"prompt": len(questions), "answer": len(pairs)}
    assert counted_passes["score_answers"] == 1
    # the truth ratios do not depend on generation, so they equal the reference's
    assert result["metrics"]["tofu"]["forget_quality"] == pytest.approx(1.0)


def test_reference_with_other_samples_is_refused_before_any_forward_pass(test_model, shared_data, tofu_eval):
    model, _ = test_model
    with ForwardCounter(model) as forwards, pytest.raises(ObliviateError, match="same data and --limit"):
        evaluate(test_model, ["tofu"], data={"tofu": str(shared_data / "tofu")}, limit=1, reference=tofu_eval)
    assert forwards.calls == 0


def test_world_suites_on_the_base_model(world_eval, figure):
    result = json.loads(world_eval.read_text())
    world = result["metrics"]["world"]
    for split in ("forget", "probes", "neighbours", "world_facts"):
        figure(f"{split}/exact_match", world[f"{split}/exact_match"], at_least=0.8)
    assert world["forget/n"] == 11 and world["probes/n"] == 11
    # it prefers the right answer to the perturbed ones
    retain_ratios = [row["truth_ratio"] for row in result["per_sample"]
                     if row["suite"] == "world" and row["set"] == "retain"]
    figure("retain: mean per-sample truth ratio", sum(retain_ratios) / len(retain_ratios), at_most=0.99)
    figure("retain/truth_ratio", world["retain/truth_ratio"], at_least=0.2)
    figure("mcq/accuracy", world["mcq/accuracy"], at_least=0.5)
    (row,) = result["tables"]["entity"]["entities"]
    assert row["entity_id"] == 0 and row["forget/n"] == 11
    figure("entity 0: probes/exact_match", row["probes/exact_match"], at_least=0.8)
    assert result["metrics"]["mia"]["forget/n"] == 11


def test_world_reference_gives_forget_quality_and_privleak(test_model, test_world, world_eval, counted_passes):
    result = evaluate(test_model, "world,entity,mia", world=test_world.root, reference=world_eval, **WORLD_OPTIONS)
    world, mia = result["metrics"]["world"], result["metrics"]["mia"]
    assert world["forget_quality"] == pytest.approx(1.0)
    assert world["privleak_loss"] == pytest.approx(0.0) and mia["privleak_min_k_plus_plus"] == pytest.approx(0.0)
    # three suites, one scoring pass and one generation pass
    assert counted_passes == {"score_answers": 1, "generate_answers": 1}


def test_forget_entities_can_be_chosen_by_name_or_id(test_model, test_world):
    name = test_world.people[5]["name"]
    result = evaluate(test_model, ["entity"], world=test_world.root, data={"entities": f"{name},7"}, limit=5)
    assert [row["entity_id"] for row in result["tables"]["entity"]["entities"]] == [5, 7]


def test_mcq_suite_on_wmdp_cyber(test_model, shared_data):
    result = evaluate(test_model, ["mcq"], data={"mcq": str(shared_data / "wmdp" / "cyber-questions.json")}, limit=5)
    mcq = result["metrics"]["mcq"]
    assert mcq["n"] == 5 and mcq["all/chance"] == 0.25
    assert mcq["accuracy"] * 5 == pytest.approx(round(mcq["accuracy"] * 5))  # a share of the 5 questions


def test_knowundo_success_is_relative_to_the_reference(test_model, test_world, tmp_path, figure):
    records = test_world.qa()
    as_rows = [{"text": r.question, "labels": r.answer} for r in records]
    (tmp_path / "privacy.json").write_text(json.dumps({
        "unlearn": {"train": [], "val": as_rows[:6]}, "retention": {"train": [], "val": as_rows[100:106]}}))
    before = evaluate(test_model, ["knowundo"], data={"knowundo": str(tmp_path / "privacy.json")})
    metrics = before["metrics"]["knowundo"]
    figure("unlearn_val/token_accuracy", metrics["unlearn_val/token_accuracy"], at_least=0.8)
    again = evaluate(test_model, ["knowundo"], data={"knowundo": str(tmp_path / "privacy.json")}, reference=before)
    assert again["metrics"]["knowundo"]["unlearn_success"] == 0.0
    assert again["metrics"]["knowundo"]["retention_success"] == 1.0


def test_mia_suite_on_files(test_model, tmp_path):
    (tmp_path / "forget.jsonl").write_text("".join(json.dumps({"text": f"text number {i}"}) + "\n" for i in range(4)))
    (tmp_path / "holdout.jsonl").write_text(json.dumps({"question": "Who?", "answer": "Nobody"}) + "\n")
    result = evaluate(test_model, ["mia"], data={"forget": str(tmp_path / "forget.jsonl"),
                                                 "holdout": str(tmp_path / "holdout.jsonl")})
    mia = result["metrics"]["mia"]
    assert mia["forget/n"] == 4 and mia["holdout/n"] == 1
    assert all(math.isfinite(mia[f"auc_{score}"]) for score in ("loss", "zlib", "min_k", "min_k_plus_plus"))


def test_fluency_under_the_original_model(test_model, test_world):
    """Reverse perplexity: the model's answers are likely under itself, and not under an untrained model."""
    from transformers import AutoModelForCausalLM

    model, tokenizer = test_model
    untrained = AutoModelForCausalLM.from_config(model.config)
    fluency = {name: evaluate(test_model, ["fluency"], world=test_world.root, original=pair, limit=4)["metrics"]
               ["fluency"] for name, pair in (("itself", test_model), ("untrained", (untrained, tokenizer)))}
    assert fluency["itself"]["n"] == 4
    assert fluency["untrained"]["reverse_perplexity"] > 10 * fluency["itself"]["reverse_perplexity"], fluency


def test_cli_eval_writes_the_eval_json(test_model_dir, shared_data, tmp_path):
    out = tmp_path / "eval.json"
    result = CliRunner().invoke(app, ["eval", "--model", str(test_model_dir), "--suite", "mcq", "--limit", "3",
                                      "--data", str(shared_data / "wmdp" / "cyber-questions.json"),
                                      "--label", "base", "--out", str(out)])
    assert result.exit_code == 0, result.output
    written = json.loads(out.read_text())
    assert written["label"] == "base" and written["metrics"]["mcq"]["n"] == 3
    assert "accuracy" in result.output


def test_cli_suites_lists_every_suite():
    result = CliRunner().invoke(app, ["suites"])
    assert result.exit_code == 0
    for name in ("tofu", "knowundo", "mcq", "mia", "fluency", "entity", "world", "lm_eval:<task>"):
        assert name in result.output


@pytest.mark.parametrize("arguments, message", [
    (["--suite", "nonsense"], "unknown suite 'nonsense'"),
    (["--suite", "world", "--data", "colour=blue"], "expected KEY=VALUE"),
    (["--suite", "fluency"], "needs the original model"),
    (["--suite", "lm_eval:mmlu"], "needs lm-eval-harness"),
    (["--suite", "tofu", "--data", "forget_split=forget99"], "choose one of forget01"),
])
def test_cli_errors_are_one_line_with_exit_code_2(test_model_dir, tmp_path, monkeypatch, capsys, arguments, message):
    monkeypatch.setattr(sys, "argv", ["obliviate", "eval", "--model", str(test_model_dir),
                                      "--out", str(tmp_path / "e.json"), *arguments])
    with pytest.raises(SystemExit) as exit_info:
        main()
    error = capsys.readouterr().err
    assert exit_info.value.code == 2
    assert message in error and error.strip().count("\n") == 0
