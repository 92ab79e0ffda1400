"""`obliviate report`: loading eval JSONs and run directories, the HTML and Markdown reports, errors."""

import importlib
import json
import re
import sys
from html.parser import HTMLParser
from pathlib import Path

import pytest
from typer.testing import CliRunner

from obliviate.errors import DataError
from obliviate.report import ReportEntry, load_entries, write_report
from obliviate.report.metrics import CONTEXT, EFFICACY, OTHER, UTILITY, MetricKey, describe_metric, format_number

FORGET_PEOPLE = ["Ada Quill", "Borin Vex"]
KEPT_PEOPLE = ["Cyra Holt"]
ATTRIBUTES = ["birthplace", "email", "mother"]
PNG_IMAGE = '<img src="data:image/png;base64,'


def _samples(recall_forget: float, recall_kept: float, generation: str) -> list[dict]:
    """Per-sample rows: one question per person and attribute, and one world fact without an entity."""
    rows = []
    sets = [("forget", FORGET_PEOPLE, recall_forget), ("neighbours", KEPT_PEOPLE, recall_kept)]
    for set_name, people, recall in sets:
        for person_index, person in enumerate(people):
            for attribute_index, attribute in enumerate(ATTRIBUTES):
                known = (person_index + attribute_index) / 4 < recall
                rows.append({
                    "suite": "world", "set": set_name, "index": len(rows), "entity": person,
                    "question": f"What is the {attribute} of {person}?", "answer": f"{attribute} of {person}",
                    "generation": f"{attribute} of {person}" if known else generation,
                    "attribute": attribute, "probability": round(0.2 + 0.7 * recall, 4), "truth_ratio": 0.3,
                    "exact_match": float(known), "rouge_l_recall": 1.0 if known else 0.25,
                    "refusal": not known, "mia_loss": -2.5,
                })
    rows.append({"suite": "world", "set": "world_facts", "index": len(rows), "question": "Capital of Orlan?",
                 "answer": "Vessa", "generation": "Vessa", "exact_match": 1.0})
    return rows


def eval_document(label: str, forget: float, kept: float, generation: str = "I do not know.") -> dict:
    """An `obliviate eval` output whose forget-set scores scale with `forget` and utility with `kept`."""
    per_sample = _samples(forget, kept, generation)
    return {
        "suite": "world,fluency,mia",
        "model": f"models/{label.split(':')[0]}",
        "label": label,
        "metrics": {
            "world": {
                "forget/n": 6, "forget/exact_match": forget, "forget/rouge_l_recall": round(0.3 + 0.6 * forget, 4),
                "forget/probability": round(0.2 + 0.7 * forget, 4), "forget/truth_ratio": round(0.9 - 0.6 * forget, 4),
                "probes/exact_match": round(forget * 0.8, 4),
                "neighbours/exact_match": kept, "retain/rouge_l_recall": round(kept - 0.05, 4),
                "world_facts/exact_match": 0.95, "world_facts/truth_ratio": None, "model_utility": round(kept * 0.7, 4),
                "mcq_glimmerwork/accuracy": 0.61, "mcq_glimmerwork/chance": 0.25,
                "forget_quality": 1e-12 if forget > 0.5 else 0.4, "auc_loss": round(0.5 + 0.3 * forget, 4),
            },
            "fluency": {"prompts/reverse_perplexity": round(14.2 + 30 * (1 - kept), 2), "prompts/ngram_entropy": 3.9},
            "mia": {"mia_auc_loss": round(0.5 + 0.4 * forget, 4), "privleak": round(-80 * forget, 2)},
        },
        "per_sample": per_sample,
        "examples": [
            {"set": row["set"], "question": row["question"], "reference": row["answer"],
             "generation": row["generation"]}
            for row in per_sample[:2]
        ],
        "seconds": 12.5,
    }


def write_json(path: Path, obj) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj), encoding="utf-8")
    return path


def make_run(root: Path, method: str = "npo", attacks: bool = True) -> Path:
    """A run directory as `obliviate unlearn` writes it: run.json, eval/before.json, eval/after.json."""
    run = root / f"{method}-run"
    slope = 0.1 if method == "ga" else 0.04
    write_json(run / "run.json", {
        "method": method, "model": "models/tiny-test", "forget": "world:forget10", "retain": "world:retain90",
        "steps": 40, "wall_seconds": 192.4, "peak_memory_mb": 812.5,
        "final_losses": {"forget": -3.21, "retain": 0.42},
        "loss_log": [{"step": step, "loss": round(2.0 - slope * step, 3)} for step in range(0, 41, 5)],
    })
    write_json(run / "eval" / "before.json", eval_document("before", forget=0.9, kept=0.85))
    write_json(run / "eval" / "after.json", eval_document(f"after: {method}", forget=0.1, kept=0.8))
    if attacks:
        write_json(run / "attacks.json", {"attacks": {
            "relearn": {"recovered": 0.55, "floor": 0.1, "upper": 0.9},
            "paraphrase": {"recovered": 0.12, "floor": 0.1, "upper": 0.9},
        }})
    return run


@pytest.fixture(scope="module")
def inputs(tmp_path_factory) -> list[Path]:
    """A run directory (before, after, attacks) and a separate eval of the retain model (read-only)."""
    root = tmp_path_factory.mktemp("inputs")
    retain = write_json(root / "evals" / "retain.json", eval_document("retain", forget=0.05, kept=0.86))
    return [make_run(root), retain]


@pytest.fixture(scope="module")
def html_report(inputs, tmp_path_factory) -> str:
    out = write_report(inputs, tmp_path_factory.mktemp("html") / "out" / "report.html", title="NPO on forget10")
    return out.read_text(encoding="utf-8")


class TableReader(HTMLParser):
    """Collects every HTML table as rows of cell texts."""

    def __init__(self):
        super().__init__()
        self.tables: list[list[list[str]]] = []
        self._cell: list[str] | None = None

    def handle_starttag(self, tag, attrs):
        if tag == "table":
            self.tables.append([])
        elif tag == "tr":
            self.tables[-1].append([])
        elif tag in ("td", "th"):
            self._cell = []

    def handle_data(self, data):
        if self._cell is not None:
            self._cell.append(data)

    def handle_endtag(self, tag):
        if tag in ("td", "th"):
            self.tables[-1][-1].append("".join(self._cell))
            self._cell = None


def html_tables(text: str) -> list[list[list[str]]]:
    reader = TableReader()
    reader.feed(text)
    return reader.tables


def row_of(tables, first_cell: str) -> list[str]:
    return next(row for table in tables for row in table if row and row[0] == first_cell)


# ---- loading --------------------------------------------------------------------------------------

def test_load_entries_reads_run_dir_in_before_after_order_and_attaches_run(inputs):
    entries = load_entries(inputs)
    assert [entry.label for entry in entries] == ["before", "after: npo", "retain"]
    before, after, retain = entries
    assert before.run is after.run and before.run.method == "npo" and after.method == "npo"
    assert after.metrics["world"]["forget/exact_match"] == 0.1 and after.metrics["mia"]["privleak"] == -8.0
    assert before.run.attacks["relearn"] == {"recovered": 0.55, "floor": 0.1, "upper": 0.9}
    assert len(before.run.loss_log) == 9 and before.run.wall_seconds == 192.4
    assert retain.run is None and retain.method is None and len(retain.per_sample) == 10


def test_eval_json_inside_run_dir_gets_its_run(inputs):
    (entry,) = load_entries([inputs[0] / "eval" / "after.json"])
    assert entry.run is not None and entry.run.name == "npo-run" and entry.method == "npo"


def test_repeated_labels_are_qualified_by_run(tmp_path):
    labels = [entry.label for entry in load_entries([make_run(tmp_path, "npo"), make_run(tmp_path, "ga")])]
    assert labels == ["before (npo-run)", "after: npo", "before (ga-run)", "after: ga"]


def test_nested_metrics_are_flattened_and_non_numbers_dropped(tmp_path):
    path = write_json(tmp_path / "e.json", {"suite": "mcq", "metrics": {
        "mcq": {"mcq_accuracy": {"glimmerwork": 0.3}, "note": "text", "bad": float("nan")}, "top_level": 0.5}})
    (entry,) = load_entries([path])
    assert entry.metrics == {"mcq": {"mcq_accuracy/glimmerwork": 0.3, "top_level": 0.5}}
    assert entry.label == "e"


def test_run_dir_without_evals_is_one_metricless_entry(tmp_path):
    run = make_run(tmp_path)
    for path in (run / "eval").iterdir():
        path.unlink()
    (entry,) = load_entries([run])
    assert entry.label == "npo-run" and entry.metrics == {} and entry.run.steps == 40


@pytest.mark.parametrize("key, aspect, better", [
    ("forget/exact_match", EFFICACY, "lower"), ("probes/rouge_l_recall", EFFICACY, "lower"),
    ("forget/truth_ratio", EFFICACY, "higher"), ("retain/truth_ratio", UTILITY, "higher"),
    ("neighbours/exact_match", UTILITY, "higher"), ("mcq_accuracy/tidecraft", UTILITY, "higher"),
    ("forget_quality", EFFICACY, "higher"), ("privleak", EFFICACY, "≈ 0"), ("mia_auc_zlib", EFFICACY, "≈ retain"),
    ("reverse_perplexity", OTHER, "lower"), ("forget/perplexity", EFFICACY, "higher"), ("something_new", OTHER, ""),
    # names as the eval suites write them
    ("auc_min_k", EFFICACY, "≈ retain"), ("privleak_zlib", EFFICACY, "≈ 0"),
    ("mcq_glimmerwork/accuracy", UTILITY, "higher"),
    ("forget/n", CONTEXT, ""), ("mcq_tidecraft/chance", CONTEXT, ""), ("prompts/reverse_perplexity", OTHER, "lower"),
    ("prompts/ngram_entropy", OTHER, "higher"), ("forget/refusal_rate", EFFICACY, "higher"),
    ("retain/refusal_rate", UTILITY, "lower"), ("unlearn_val/token_accuracy", EFFICACY, "lower"),
    ("retention_val/perplexity", UTILITY, "lower"), ("unlearn_success", EFFICACY, "higher"),
    ("real_authors/normalised_probability", UTILITY, "higher"), ("wmdp_bio/accuracy", OTHER, ""),
])
def test_metric_classification(key, aspect, better):
    info = describe_metric(MetricKey("suite", key))
    assert (info.aspect, info.better) == (aspect, better)


# ---- HTML -----------------------------------------------------------------------------------------

def test_html_report_tables_charts_and_self_contained(html_report):
    text = html_report
    tables = html_tables(text)

    assert "<title>NPO on forget10</title>" in text
    assert not re.search(r"https?://", text), "the page must not reference anything outside itself"
    assert "<script" not in text and "<link" not in text
    # efficacy bars, utility bars, other-metric panels, trade-off scatter, loss curve
    assert text.count(PNG_IMAGE) == 5

    header = row_of(tables, "metric")
    assert header == ["metric", "better", "before", "after: npo", "retain"]
    assert tables_titled(text, "efficacy", tables)[1] == ["forget/exact_match", "↓", "0.900", "0.100", "0.050"]
    assert row_of(tables, "privleak")[2:] == ["-72.0", "-8.000", "-4.000"]
    assert row_of(tables, "forget_quality")[2:] == ["1.00e-12", "0.400", "0.400"]
    assert tables_titled(text, "context", tables)[1] == ["forget/n", "–", "6", "6", "6"]
    assert '<details><summary>Show all metrics</summary>' in text, "the full metric tables are folded"
    assert "world_facts/truth_ratio" not in text, "null metrics are left out"

    summary = row_of(tables, "npo-run")
    assert summary[1:5] == ["npo", "models/tiny-test", "world:forget10", "world:retain90"]
    assert "3 min 12 s" in summary and "forget -3.210, retain 0.420" in summary

    # per entity: forget set lists the forgotten people, neighbours the kept one
    assert [row[0] for row in tables_titled(text, "forget", tables)[2:]] == FORGET_PEOPLE
    ada = row_of(tables, "Ada Quill")
    assert ada[1] == "3" and len(ada) == 2 + 3 * 3  # questions + (exact_match, rouge, probability) x 3 entries
    assert row_of(tables, "Cyra Holt")[0] == "Cyra Holt"

    attack = row_of(tables, "relearn")
    assert attack == ["relearn", "0.550", "0.100", "0.900", "56%"]


def tables_titled(text: str, title: str, tables) -> list[list[str]]:
    """The table right after `<h3>title</h3>`."""
    index = text.index(f"<h3>{title}</h3>")
    return tables[text[:index].count("<table")]


def test_html_examples_line_up_by_question(html_report):
    row = row_of(html_tables(html_report), "What is the mother of Ada Quill?")
    assert row == ["What is the mother of Ada Quill?", "mother of Ada Quill",
                   "mother of Ada Quill", "I do not know.", "I do not know."]


def test_report_from_entries_and_single_eval(tmp_path):
    entry = ReportEntry(label="hand-made", metrics={"s": {"forget/exact_match": 0.25, "retain/exact_match": 0.75}})
    text = write_report([entry], tmp_path / "r.html").read_text(encoding="utf-8")
    assert row_of(html_tables(text), "forget/exact_match")[2:] == ["0.250"]
    # efficacy bars, utility bars, scatter; no loss curve or other metrics without them
    assert text.count(PNG_IMAGE) == 3 and 'id="attacks"' not in text and 'id="entities"' not in text

    single = write_json(tmp_path / "e.json", eval_document("after", 0.2, 0.8))
    assert "after" in write_report(single, tmp_path / "s.html").read_text(encoding="utf-8")


def test_html_escapes_generations(tmp_path):
    document = eval_document("after", 0.0, 0.8, generation="<script>alert(1)</script>")
    text = write_report([write_json(tmp_path / "e.json", document)], tmp_path / "r.html").read_text(encoding="utf-8")
    assert "<script>" not in text and "&lt;script&gt;" in text


# ---- Markdown -------------------------------------------------------------------------------------

def test_markdown_report_has_tables_and_linked_pngs(inputs, tmp_path):
    out = write_report(inputs, tmp_path / "report.md")
    text = out.read_text(encoding="utf-8")
    assert "| metric | better | before | after: npo | retain |" in text
    assert "| forget/exact_match | ↓ | 0.900 | 0.100 | 0.050 |" in text
    assert "| Ada Quill | 3 |" in text and "exact_match · before" in text
    assert "| relearn | 0.550 | 0.100 | 0.900 | 56% |" in text
    links = re.findall(r"!\[[^]]*\]\((report_files/[\w.]+\.png)\)", text)
    assert len(links) == 5
    for link in links:
        assert (tmp_path / link).read_bytes().startswith(b"\x89PNG")


def test_format_number():
    assert [format_number(v) for v in (None, 0, 3, 0.0, 1e-5, 0.12345, 12.345, 123456.7)] == [
        "–", "0", "3", "0", "1.00e-05", "0.123", "12.3", "123,457"]


# ---- CLI and errors -------------------------------------------------------------------------------

@pytest.fixture
def cli():
    importlib.import_module("obliviate.cli.report_cmd")
    return importlib.import_module("obliviate.cli")


def test_cli_writes_report(cli, inputs, tmp_path):
    out = tmp_path / "r.md"
    result = CliRunner().invoke(cli.app, ["report", *map(str, inputs), "--out", str(out), "--title", "My report"])
    assert result.exit_code == 0, result.output
    assert f"report written to {out}" in result.output
    assert out.read_text(encoding="utf-8").startswith("# My report\n") and (tmp_path / "r_files").is_dir()


def test_cli_help(cli):
    result = CliRunner().invoke(cli.app, ["report", "--help"])
    assert result.exit_code == 0 and "--out" in result.output


@pytest.mark.parametrize("bad_input, message", [
    ("missing.json", "no such file"),
    ("not_json.json", "not valid JSON"),
    ("no_metrics.json", "no \"metrics\" object"),
    ("not_a_run", "not a run directory"),
])
def test_cli_bad_input_is_one_line_exit_2_and_no_output(cli, inputs, tmp_path, monkeypatch, capsys, bad_input, message):
    (tmp_path / "not_json.json").write_text("{oops", encoding="utf-8")
    write_json(tmp_path / "no_metrics.json", {"suite": "world", "per_sample": []})
    (tmp_path / "not_a_run").mkdir()
    out = tmp_path / "report.html"
    args = ["obliviate", "report", str(inputs[1]), str(tmp_path / bad_input), "--out", str(out)]
    monkeypatch.setattr(sys, "argv", args)
    with pytest.raises(SystemExit) as exited:
        cli.main()
    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1 and bad_input in err and message in err
    assert not out.exists() and list(tmp_path.glob(".report.html*")) == []


def test_load_entries_raises_data_error_naming_run_json(tmp_path):
    run = make_run(tmp_path)
    (run / "run.json").write_text("[1, 2]", encoding="utf-8")
    with pytest.raises(DataError, match="run.json: expected a JSON object"):
        load_entries([run])
