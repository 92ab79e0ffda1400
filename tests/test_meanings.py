"""Metrics declare their meaning where they are made: each suite says, for each metric it emits, its axis and which
way is better, an evaluation may name more sets to be forgotten (`--data forget_sets=…`), and the report reads the
declarations from the eval JSON (and, for an eval JSON written without them, the names)."""

from __future__ import annotations

import json

import pytest

from obliviate.eval.meaning import (CONTEXT, EFFICACY, FLUENCY, HIGHER, LOWER, NEAR_RETAIN, NEAR_ZERO, PRIVACY,
                                    UTILITY, Meaning)
from obliviate.eval.run import _check_options
from obliviate.eval.suites import SuiteContext
from obliviate.eval.suites.fluency import FluencySuite
from obliviate.eval.suites.mcq import MCQSuite
from obliviate.eval.suites.world import WorldSuite
from obliviate.report.entries import ReportEntry
from obliviate.report.metrics import MetricKey, chart_of, describe_metric, guess_metric
from obliviate.report.plots import partition_metrics
from obliviate.report.scores import forgetting_score, utility_score


def mcq_file(tmp_path, subjects):
    path = tmp_path / "mcq.jsonl"
    path.write_text("".join(json.dumps({"question": f"{subject} question {i}?", "choices": ["a", "b", "c", "d"],
                                        "answer": i % 4, "subject": subject}) + "\n"
                            for subject in subjects for i in range(3)))
    return str(path)


def test_wmdp_subjects_are_to_be_forgotten(tmp_path):
    suite = MCQSuite(SuiteContext(data={"mcq": mcq_file(tmp_path, ["wmdp-cyber", "history"])}))
    assert suite.meaning("wmdp-cyber/accuracy") == Meaning(EFFICACY, LOWER)
    assert suite.meaning("history/accuracy") == Meaning(UTILITY, HIGHER)
    assert suite.meaning("wmdp-cyber/chance") == Meaning(CONTEXT)
    assert suite.meaning("accuracy") == Meaning(UTILITY, HIGHER)  # kept and forgotten subjects together
    only_wmdp = MCQSuite(SuiteContext(data={"mcq": mcq_file(tmp_path, ["wmdp-cyber"])}))
    assert only_wmdp.meaning("accuracy") == Meaning(EFFICACY, LOWER)
    named = MCQSuite(SuiteContext(data={"mcq": mcq_file(tmp_path, ["history"]), "forget_sets": "history"}))
    assert named.meaning("history/accuracy") == Meaning(EFFICACY, LOWER)


def test_an_erased_craft_is_efficacy_in_the_world_suite(test_world):
    """The ELM study: the erased craft's MCQ is to be forgotten, the other crafts' are kept."""
    craft, other = test_world.domain_names[:2]
    suite = WorldSuite(SuiteContext(data={"forget_sets": f"mcq_{craft}"}, world_source=test_world))
    assert suite.meaning(f"mcq_{craft}/accuracy") == Meaning(EFFICACY, LOWER)
    assert suite.meaning(f"mcq_{other}/accuracy") == Meaning(UTILITY, HIGHER)
    plain = WorldSuite(SuiteContext(world_source=test_world))
    assert plain.meaning(f"mcq_{craft}/accuracy") == Meaning(UTILITY, HIGHER)
    _check_options([WorldSuite], {"forget_sets": f"mcq_{craft}"}, None, None)  # a data option of every suite


WORLD_METRICS = ["forget/exact_match", "forget/probability", "forget/truth_ratio", "forget/refusal_rate", "forget/n",
                 "probes/rouge_l_recall", "neighbours/exact_match", "retain/truth_ratio", "world_facts/probability",
                 "mcq_glimmerwork/accuracy", "mcq_glimmerwork/chance", "mcq/accuracy", "model_utility",
                 "forget_quality", "auc_loss", "privleak_zlib"]


def test_the_world_suites_declarations_agree_with_the_names_they_replace(test_world):
    """Without forget_sets, the declarations give the world suite's metrics the meaning the report read from their
    names, so its charts and scores stay as they were (the MIA numbers now on a privacy axis, charted with efficacy)."""
    suite = WorldSuite(SuiteContext(world_source=test_world))
    for name in WORLD_METRICS:
        declared, guessed = suite.meaning(name), guess_metric(MetricKey("world", name))
        assert (chart_of(declared.axis), declared.better) == (guessed.aspect, guessed.better), name
    assert suite.meaning("auc_loss") == Meaning(PRIVACY, NEAR_RETAIN)
    assert suite.meaning("privleak_zlib") == Meaning(PRIVACY, NEAR_ZERO)
    assert FluencySuite.metric_meanings["reverse_perplexity"] == Meaning(FLUENCY, LOWER)


def entry(label, metrics, meanings=None):
    return ReportEntry(label, metrics=metrics, meanings=meanings or {})


def test_the_report_reads_the_declarations(test_world, tmp_path):
    craft = test_world.domain_names[0]
    world = WorldSuite(SuiteContext(data={"forget_sets": f"mcq_{craft}"}, world_source=test_world))
    values = {"forget/exact_match": 0.2, f"mcq_{craft}/accuracy": 0.3, "retain/exact_match": 0.9}
    elm = entry("after", {"world": values}, {"world": world.meanings(values)})
    keys = {key.name: key for key in elm.metric_values()}
    assert describe_metric(keys[f"mcq_{craft}/accuracy"]).arrow == "↓"
    assert describe_metric(keys[f"mcq_{craft}/accuracy"]).aspect == EFFICACY
    charts = partition_metrics([elm])
    assert keys[f"mcq_{craft}/accuracy"] in charts[EFFICACY] and keys[f"mcq_{craft}/accuracy"] not in charts[UTILITY]
    assert utility_score([elm]).values == {"after": pytest.approx(0.9)}
    # The same values in an eval JSON written before declarations: the craft's MCQ reads as utility, as it did.
    assert utility_score([entry("after", {"world": values})]).values == {"after": pytest.approx(0.6)}


def test_a_wmdp_headline_enters_the_forgetting_score(tmp_path):
    suite = MCQSuite(SuiteContext(data={"mcq": mcq_file(tmp_path, ["wmdp-cyber"])}))
    values = {"wmdp-cyber/accuracy": 0.3, "wmdp-cyber/chance": 0.25, "wmdp-cyber/n": 3, "accuracy": 0.3, "n": 3}
    after = entry("after", {"mcq": values}, {"mcq": suite.meanings(values)})
    key = next(key for key in after.metric_values() if key.name == "wmdp-cyber/accuracy")
    assert describe_metric(key).better == LOWER
    score = forgetting_score([after])
    assert score.values == {"after": pytest.approx(0.7)} and [key.name for key in score.metrics] == [
        "wmdp-cyber/accuracy"]
    assert forgetting_score([entry("after", {"mcq": values})]) is None  # undeclared: no direction, as before
