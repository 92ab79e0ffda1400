"""`obliviate demo --preset test`: the forget people are forgotten, everything else is kept.

The retain model is the one the attack tests use (same world, same forget people), so this adds
only the full model's short continued training, one unlearning run and three evaluations."""

import importlib.util
import json

import pytest
from rich.console import Console

from obliviate.demo import run_demo
from test_report_render import CHROMIUM, browser_check


def world_metric(eval_json, name):
    return json.loads(eval_json.read_text())["metrics"]["world"][name]


@pytest.mark.slow
def test_demo_forgets_the_forget_people_and_keeps_the_rest(tmp_path, figure):
    console = Console(record=True, width=140)
    report = run_demo("test", out=tmp_path, console=console)

    assert report.is_file() and "data:image/png;base64" in report.read_text()
    evals = tmp_path / "run-npo_gd" / "eval"
    before, after = evals / "before.json", evals / "after.json"
    for forgotten in ("forget/exact_match", "probes/exact_match"):
        figure(f"{forgotten} before", world_metric(before, forgotten), at_least=0.9)
        figure(forgotten, world_metric(after, forgotten), at_most=0.1)
    for kept in ("neighbours/exact_match", "retain/exact_match", "world_facts/exact_match", "mcq/accuracy"):
        figure(kept, world_metric(after, kept), at_least=0.9 * world_metric(before, kept))
    printed = console.export_text()
    assert "forget set: exact match" in printed and "neighbours: exact match" in printed
    if CHROMIUM is not None and importlib.util.find_spec("playwright") is not None:
        browser_check(report, tmp_path / "screenshots")  # the scorecard on the first screen, nothing too wide


def test_pretrained_demo_forgets_one_of_each_co_author_pair(tmp_path):
    from obliviate.demo import demo_world
    from obliviate.demo_pretrained import PEOPLE, SEED, one_of_each_pair
    from obliviate.entity.inject import make_entities, write_entities
    from obliviate.world import World

    people = World(write_entities(tmp_path / "people", *make_entities(demo_world("test"), PEOPLE, SEED)))
    forget = one_of_each_pair(people)
    coauthors = {c for i in forget for c in people.people[i]["neighbours"]["coauthors"]}
    assert len(forget) == PEOPLE // 2 and coauthors.isdisjoint(forget) and len(coauthors) == len(forget)


def test_pretrained_demo_refuses_a_model_without_a_chat_template(test_model_dir, tmp_path):
    from obliviate.demo_pretrained import run_pretrained_demo
    from obliviate.errors import ObliviateError

    with pytest.raises(ObliviateError, match="chat template"):
        run_pretrained_demo(str(test_model_dir), "npo_gd", out=tmp_path / "out")
    assert not (tmp_path / "out").exists()
