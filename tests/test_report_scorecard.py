"""The report's first screen: roles (retain, original, candidate), the scorecard's tiles and verdicts, one card
for one run and a sortable table for several."""

import re

import pytest

from obliviate.report import load_entries, write_report
from obliviate.report.scorecard import CANDIDATE, ORIGINAL, RETAIN, noise_test, roles, scorecards, verdict
from test_report import eval_document, html_tables, make_run, write_json


@pytest.fixture(scope="module")
def one_run(tmp_path_factory):
    """make_run's run (before, after, attacks) and the retain model's eval, referenced by after.json."""
    root = tmp_path_factory.mktemp("scorecard")
    retain = write_json(root / "evals" / "gold.json", eval_document("gold standard", forget=0.05, kept=0.86))
    run = make_run(root)
    after = run / "eval" / "after.json"
    document = eval_document("after: npo", forget=0.1, kept=0.8) | {"reference": str(retain)}
    write_json(after, document)
    return run, retain


def tiles_of(card) -> dict:
    return {tile.name: tile for tile in card.tiles}


def test_roles_follow_the_reference_eval_and_the_run_model(one_run, tmp_path):
    run, retain = one_run
    entries = load_entries([run, retain])
    # "gold standard" is the retain model because after.json names it as its reference, not by its label
    assert roles(entries) == {"before": ORIGINAL, "after: npo": CANDIDATE, "gold standard": RETAIN}
    # The original is found by the model a run started from, whatever its label.
    before = run / "eval" / "before.json"
    relabelled = write_json(tmp_path / "run" / "eval" / "start.json",
                            eval_document("start", forget=0.9, kept=0.85) | {"model": "models/tiny-test"})
    write_json(tmp_path / "run" / "run.json", {"method": "npo", "model": "models/tiny-test"})
    assert roles(load_entries([relabelled, before]))["start"] == ORIGINAL


def test_pretrained_demo_roles_the_model_as_it_came_is_the_retain_model(tmp_path):
    """untaught ← before (taught, the run's start) ← after: each eval takes the previous one as reference."""
    run = tmp_path / "run-npo_gd"
    write_json(run / "run.json", {"method": "npo_gd", "model": "work/taught"})
    untaught = write_json(run / "eval" / "untaught.json",
                          eval_document("as it came", forget=0.0, kept=0.8) | {"model": "smollm2-135m"})
    before = write_json(run / "eval" / "before.json", eval_document("before", forget=0.9, kept=0.85)
                        | {"model": "work/taught", "reference": str(untaught)})
    write_json(run / "eval" / "after.json", eval_document("after: npo_gd", forget=0.1, kept=0.8)
               | {"model": str(run), "reference": str(before)})
    entries = load_entries([run])
    assert roles(entries) == {"before": ORIGINAL, "after: npo_gd": CANDIDATE, "as it came": RETAIN}
    (card,) = scorecards(entries)[0]
    assert tiles_of(card)["forget set: exact match"].detail == "before 0.900 · retain model 0"


def test_one_run_scorecard_reads_against_before_and_the_retain_model(one_run):
    run, retain = one_run
    cards, _ = scorecards(load_entries([run, retain]))
    assert len(cards) == 1 and cards[0].label == "after: npo" and cards[0].headline == "npo on world:forget10"
    tiles = tiles_of(cards[0])
    assert list(tiles) == ["forget set: exact match", "held-out probes: exact match", "utility",
                           "fluency: reverse perplexity ratio", "robustness: worst attack", "wall time"]
    forget = tiles["forget set: exact match"]
    assert (forget.value, forget.better, forget.detail) == ("0.100", "↓", "before 0.900 · retain model 0.050")
    # after and retain each know 1 of their 6 forget questions: the same, so within noise
    assert forget.verdict.text == "like the retain model (within noise)" and forget.verdict.good
    assert tiles["held-out probes: exact match"].verdict is None, "no per-question probe rows: no verdict"
    utility = tiles["utility"]
    assert utility.better == "↑" and re.fullmatch(r"mean of 5 metrics · 9\d% of before · retain model 0\.\d+",
                                                   utility.detail)
    fluency = tiles["fluency: reverse perplexity ratio"]
    assert fluency.value == f"×{(14.2 + 30 * 0.2) / (14.2 + 30 * 0.15):.2f}"
    robustness = tiles["robustness: worst attack"]
    assert (robustness.value, robustness.detail) == ("56% back", "relearn, of 2 attacks")
    assert robustness.verdict.text == "56% comes back" and robustness.verdict.good is False
    assert tiles["wall time"].value == "3 min 12 s"


def test_verdict_is_within_noise_or_says_which_side_and_by_how_much():
    assert noise_test([1.0], [0.0, 1.0]) is None
    same = verdict([0.0, 1.0, 0.0, 1.0], [1.0, 0.0, 1.0, 0.0], higher_is_better=True, measure="exact match")
    assert same.text == "like the retain model (within noise)" and same.good
    known, forgotten = [1.0] * 19 + [0.0], [0.0] * 19 + [1.0]
    worse = verdict(forgotten, known, higher_is_better=True, measure="exact match")
    assert worse.good is False and worse.text.startswith("below the retain model (-0.900 ± ")
    still_known = verdict(known, forgotten, higher_is_better=False, measure="exact match")
    assert still_known.good is False and still_known.text.startswith("above the retain model (+0.900")
    # two standard errors decide: a difference just inside them is noise, one outside is not
    difference, error = noise_test([1.0, 0.0] * 10, [1.0, 0.0, 0.0, 0.0] * 5)
    judged = verdict([1.0, 0.0] * 10, [1.0, 0.0, 0.0, 0.0] * 5, higher_is_better=True, measure="exact match")
    assert (abs(difference) <= 2 * error) == judged.text.startswith("like the retain model")


def test_one_run_is_a_card_on_the_first_screen_and_paths_are_short(one_run, tmp_path):
    run, retain = one_run
    text = write_report([run, retain], tmp_path / "report.html").read_text(encoding="utf-8")
    glance = text[text.index('<section id="glance">'):text.index("</section>")]
    assert '<div class="card">' in glance and "forget set: exact match ↓" in glance
    assert "like the retain model (within noise)" in glance and 'class="verdict bad">56% comes back' in glance
    assert str(run.parent) not in glance, "no absolute paths on the first screen"
    evaluations = next(table for table in html_tables(text) if table[0][:2] == ["evaluation", "role"])
    assert evaluations[1][:6] == ["before", "before unlearning", "npo", "models/before", "world, fluency, mia",
                                  "npo-run/eval/before.json"]
    assert evaluations[3][:2] == ["gold standard", "retain model"]
    files = text[text.index("<summary>Files</summary>"):]
    assert str(retain) in files, "full paths stay available, folded"
    assert "<script" not in text, "one card: nothing to sort"


def test_several_runs_are_one_sortable_table(one_run, tmp_path):
    run, retain = one_run
    ga = make_run(tmp_path, method="ga")
    write_json(ga / "eval" / "after.json", eval_document("after: ga", forget=0.0, kept=0.5))
    text = write_report([run, ga, retain], tmp_path / "report.html").read_text(encoding="utf-8")
    table = next(table for table in html_tables(text) if table[0][0] == "model")
    assert [row[0] for row in table[1:]] == ["after: nponpo on world:forget10",
                                             "after: gaga on world:forget10"]
    assert "<script>" in text and 'class="scorecards"' in text
    assert re.search(r'<td class="num" data-sort="0.1" data-label="[^"]+">0.100<', text) and \
        re.search(r'<td class="num" data-sort="0.0" data-label="forget set: exact match ↓">0<', text), \
        "each cell sorts by its number"
    markdown = write_report([run, ga, retain], tmp_path / "report.md").read_text(encoding="utf-8")
    assert "| model | forget set: exact match ↓ |" in markdown
    assert "| after: ga (ga on world:forget10) | **0**; before 0.900 · retain model 0.050;" in markdown
