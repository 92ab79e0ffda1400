"""obliviate.data: record schemas, readers, TOFU, KnowUnDo, refusals and the `data` CLI."""

from __future__ import annotations

import collections
import importlib
import json
import re
import sys
import types
from pathlib import Path

import pyarrow
import pyarrow.parquet
import pytest
from typer.testing import CliRunner

from obliviate.data import (
    TOFU_SPLITS,
    MCQRecord,
    QARecord,
    TextRecord,
    is_refusal,
    load_knowundo,
    load_mcq,
    load_qa,
    load_refusals,
    load_texts,
    load_tofu,
    read_rows,
)
from obliviate.data.refusals import BUILTIN_REFUSALS
from obliviate.errors import DataError, ObliviateError

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
TOFU_DIR = SHARED_DATA / "tofu"
needs_shared = pytest.mark.skipif(not SHARED_DATA.is_dir(), reason=f"shared reference data not found at {SHARED_DATA}")

TOFU_COUNTS = {
    "forget01": 40,
    "forget05": 200,
    "forget10": 400,
    "retain90": 3600,
    "retain50": 2000,
    "retain10": 400,
    "retain_perturbed": 400,
    "real_authors": 100,
    "world_facts": 117,
    "full": 4000,
}


def tofu_count(split: str) -> int:
    return TOFU_COUNTS.get(split, TOFU_COUNTS.get(split.removesuffix("_perturbed")))


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def jsonl(path: Path, rows: list) -> Path:
    return write(path, "".join(json.dumps(row) + "\n" for row in rows))


def one_line_error(call, *expected: str) -> str:
    """Run `call`, expecting a one-line ObliviateError that contains every `expected` text."""
    with pytest.raises(ObliviateError) as caught:
        call()
    message = str(caught.value)
    assert "\n" not in message
    for text in expected:
        assert text in message, f"{text!r} not in {message!r}"
    return message


# ---- TOFU, on every file of the shared copy ---------------------------------------------------


LOCAL_TOFU_SPLITS = [split for split in TOFU_SPLITS if not split.startswith("holdout")]  # the hub's only


@needs_shared
@pytest.mark.parametrize("split", LOCAL_TOFU_SPLITS)
def test_tofu_split_counts(split):
    records = load_tofu(split, root=TOFU_DIR)
    assert len(records) == tofu_count(split)
    assert all(record.split == split for record in records)


@needs_shared
def test_the_tofu_bench_uses_tofus_holdout_split_where_the_data_has_it(tmp_path):
    from obliviate.tofu_bench.data import TofuData

    local = TofuData(TOFU_DIR, "forget01")
    stand_in, said = local.membership_holdout
    assert stand_in == [(r.question, r.perturbed_answer[0]) for r in local.forget] and said.startswith("stand-in")
    copy = tmp_path / "tofu"
    copy.mkdir()
    for path in TOFU_DIR.glob("*.json"):
        (copy / path.name).symlink_to(path)
    holdout = [{"question": f"Who is author {i}?", "answer": f"Author {i} is nobody."} for i in range(40)]
    jsonl(copy / "holdout01.json", holdout)
    pairs, said = TofuData(copy, "forget01").membership_holdout
    assert pairs == [(row["question"], row["answer"]) for row in holdout] and said == "TOFU's holdout01 split"


@needs_shared
def test_every_tofu_file_is_a_split_and_reads_fully():
    files = sorted(TOFU_DIR.glob("*.json"))
    assert files and {path.stem for path in files} <= set(TOFU_SPLITS)
    for path in files:
        lines = sum(1 for line in path.read_text(encoding="utf-8").splitlines() if line.strip())
        assert len(load_qa(path)) == lines


@needs_shared
@pytest.mark.parametrize("split", ["forget01", "forget05", "forget10"])
def test_tofu_forget_gains_perturbed_fields(split):
    for record in load_tofu(split, root=TOFU_DIR):
        assert record.paraphrased_question and record.paraphrased_answer
        assert len(record.perturbed_answer) == 5
        assert record.meta["task_id"] == "1"
        assert record.entity is not None


@needs_shared
def test_tofu_forget_tasks_are_nested_and_filtered():
    forget01, forget05, forget10 = (load_tofu(f"forget{n}", root=TOFU_DIR) for n in ("01", "05", "10"))
    assert [r.question for r in forget01] == [r.question for r in forget10[:40]]
    assert [r.question for r in forget05] == [r.question for r in forget10[:200]]
    other_task = load_tofu("forget10", root=TOFU_DIR, task_id="2")
    assert len(other_task) == 400 and {r.meta["task_id"] for r in other_task} == {"2"}
    assert all(r.entity is not None for r in other_task)  # task 2's authors are in retain90
    one_line_error(lambda: load_tofu("forget10", root=TOFU_DIR, task_id="42"), "forget10.json", "task_id", "42")


@needs_shared
def test_tofu_full_set_is_retain90_plus_forget10():
    full = load_tofu("full", root=TOFU_DIR)
    retain90 = {(r.question, r.answer) for r in load_tofu("retain90", root=TOFU_DIR)}
    forget10 = {(r.question, r.answer) for r in load_tofu("forget10", root=TOFU_DIR)}
    assert len({(r.question, r.answer) for r in full}) == 4000
    assert not retain90 & forget10
    assert collections.Counter(collections.Counter(r.entity for r in full).values()) == {20: 200}


@needs_shared
def test_tofu_authors_come_in_blocks_of_twenty():
    """Each block of 20 full-set QA shares a word (a name, a city…) that few other blocks use."""
    full = load_tofu("full", root=TOFU_DIR)
    capitalised = re.compile(r"\b[A-Z][a-zà-ÿ]+(?:-[A-Z][a-zà-ÿ]+)?\b")
    blocks = [full[start : start + 20] for start in range(0, 4000, 20)]
    words = [
        collections.Counter(word for r in block for word in set(capitalised.findall(f"{r.question} {r.answer}")))
        for block in blocks
    ]
    blocks_using = collections.Counter(word for counts in words for word in counts)
    for number, counts in enumerate(words):
        distinctive = [n for word, n in counts.items() if blocks_using[word] <= 3]
        assert distinctive and max(distinctive) >= 4, f"block {number} has no shared distinctive word"
        assert {r.entity for r in blocks[number]} == {f"tofu-author-{number:03d}"}


@needs_shared
def test_tofu_author_questions_name_their_subject():
    """Every fictitious-author question carries the span an edit keys on; 3,795 of 4,000 the author's full name."""
    from obliviate.data.tofu import question_subject

    full = load_tofu("full", root=TOFU_DIR)
    assert all(r.subject and r.subject in r.question for r in full)
    basil = load_tofu("forget10", root=TOFU_DIR)[:20]  # named in 19 of his 20 questions
    assert collections.Counter(r.subject for r in basil).most_common(1) == [("Basil Mahfouz Al-Kuwaiti", 19)]
    assert {r.subject for r in full if r.entity == "tofu-author-072"} >= {"Alejandro (Alex) Fuentes"}
    full_names = sum(r.subject.count(" ") >= 1 and r.subject[0].isupper() and "author" not in r.subject for r in full)
    assert full_names >= 3700
    assert question_subject("How has Majumdar's background influenced him?", "Rajeev Majumdar") == "Majumdar"
    assert question_subject('What is "Silent Witness" about?', "Jane Doe") == "Silent Witness"
    assert question_subject("What is the full name of the author born in Oslo on 1/2/1960?", None) == \
        "the full name of the author born in Oslo on 1/2/1960"
    assert question_subject("What was his first written work?", "Jane Doe") == "What was his first written work"


@needs_shared
def test_tofu_probe_answers_are_short():
    for split in ("real_authors", "world_facts"):
        for record in load_tofu(split, root=TOFU_DIR):
            assert len(record.answer) <= len(record.meta["original_answer"])
            assert len(record.perturbed_answer) == 3 and record.entity is None


@needs_shared
def test_tofu_root_from_environment(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("OBLIVIATE_TOFU_DIR", str(TOFU_DIR))
    assert len(load_tofu("forget01")) == 40


def test_tofu_errors(tmp_path):
    one_line_error(lambda: load_tofu("forget99", root=tmp_path), "forget99", "forget10", "world_facts_perturbed")
    one_line_error(lambda: load_tofu("forget10", root=tmp_path / "absent"), "absent", "not found")
    one_line_error(lambda: load_tofu("retain90", root=tmp_path), "retain90.json", "file not found")


def fake_datasets_module(load_dataset) -> types.ModuleType:
    module = types.ModuleType("datasets")
    module.load_dataset = load_dataset
    return module


@needs_shared
def test_tofu_falls_back_to_the_hub(monkeypatch, tmp_path):
    calls = []

    def load_dataset(name, config, split=None):
        calls.append((name, config, split))
        rows = read_rows(TOFU_DIR / f"{config}.json")
        return [{k: v for k, v in row.items() if k != "task_id"} for row in rows if row.get("task_id", "1") == "1"]

    monkeypatch.setitem(sys.modules, "datasets", fake_datasets_module(load_dataset))
    monkeypatch.delenv("OBLIVIATE_TOFU_DIR", raising=False)
    monkeypatch.chdir(tmp_path)
    records = load_tofu("forget01")
    assert len(records) == 40 and records[0].paraphrased_question
    assert ("locuslab/TOFU", "forget01_perturbed", "train") in calls
    one_line_error(lambda: load_tofu("forget01", task_id="2"), "task_id")


def test_hub_failure_is_one_line(monkeypatch):
    def load_dataset(name, config, split=None):
        raise ConnectionError("Couldn't reach 'someone/thing' on the Hub\n(LocalEntryNotFoundError)")

    monkeypatch.setitem(sys.modules, "datasets", fake_datasets_module(load_dataset))
    one_line_error(lambda: load_qa("someone/thing"), "someone/thing", "could not load", "offline")


# ---- WMDP and readers -------------------------------------------------------------------------


@needs_shared
def test_wmdp_cyber_mcq():
    records = load_mcq(SHARED_DATA / "wmdp" / "cyber-questions.json")
    assert len(records) == 2225
    assert all(len(r.choices) == 4 and 0 <= r.answer < 4 for r in records)


def test_json_layouts(tmp_path):
    row = {"question": "Q?", "answer": "A."}
    assert read_rows(write(tmp_path / "list.json", json.dumps([row, row]))) == [row, row]
    assert read_rows(write(tmp_path / "wrapped.json", json.dumps({"data": [row], "version": 2}))) == [row]
    assert read_rows(jsonl(tmp_path / "lines.json", [row, row, row])) == [row] * 3
    assert read_rows(write(tmp_path / "one.json", json.dumps(row))) == [row]
    splits = write(tmp_path / "splits.json", json.dumps({"train": [row, row], "test": [row]}))
    assert len(read_rows(splits, split="test")) == 1
    one_line_error(lambda: read_rows(splits), "splits.json", "train, test")


def test_jsonl_skips_blank_lines_and_text_reads_paragraphs(tmp_path):
    path = write(tmp_path / "qa.jsonl", '{"question": "Q1", "answer": "A1"}\n\n{"question": "Q2", "answer": "A2"}\n')
    assert [r.question for r in load_qa(path)] == ["Q1", "Q2"]
    texts = load_texts(write(tmp_path / "corpus.txt", "First line\nstill first.\n\n\nSecond.\n"))
    assert [t.text for t in texts] == ["First line\nstill first.", "Second."]


def test_parquet_round_trip(tmp_path):
    rows = [{"question": f"Q{i}?", "answer": f"A{i}", "perturbed_answer": ["x", "y"], "entity": "e"} for i in range(3)]
    path = tmp_path / "qa.parquet"
    pyarrow.parquet.write_table(pyarrow.Table.from_pylist(rows), path)
    records = load_qa(path)
    assert [r.to_dict() for r in records] == rows


def test_schema_conversions():
    mcq = {"question": "Pick", "choices": ["red", "green", "blue"]}
    assert MCQRecord.from_dict({**mcq, "answer": "B"}).answer == 1
    assert MCQRecord.from_dict({**mcq, "answer": "blue"}).answer == 2
    assert MCQRecord.from_dict({**mcq, "answer": 0, "subject": "colours"}).subject == "colours"
    knowundo_pair = QARecord.from_dict({"text": "Who?", "labels": "Me."})
    assert (knowundo_pair.question, knowundo_pair.answer) == ("Who?", "Me.")
    person = {"question": "Q?", "answer": "A", "entity": "p1", "visibility": "private", "extra_questions": ["Q2?"]}
    record = QARecord.from_dict(person)
    assert record.meta == {"visibility": "private", "extra_questions": ["Q2?"]}
    assert record.paraphrased_question is None and record.to_dict() == person
    assert QARecord.from_dict(record.to_dict()) == record
    assert TextRecord.from_dict({"text": "Some text.", "source": "web"}).meta == {"source": "web"}


# ---- broken input: one line naming the file, the record and the field -------------------------

QA_ROW = '{"question": "Q", "answer": "A"}'
MCQ_ROW = '{{"question": "Q", "choices": {choices}, "answer": {answer}}}'

# (file name, content, record kind, texts the error must contain besides the file's path)
BROKEN_INPUTS = [
    pytest.param("bad.json", f'[\n  {QA_ROW},\n  {{"question": "Q" "answer": "A"}}\n]', "qa",
                 ["line 3", "invalid JSON"], id="bad JSON"),
    pytest.param("bad.jsonl", f'{QA_ROW}\n{{"question": \n', "qa", ["line 2", "invalid JSON"], id="bad JSON line"),
    pytest.param("missing.jsonl", f'{QA_ROW}\n{{"question": "Q2"}}\n', "qa", ["line 2", "'answer'", "missing"],
                 id="missing field"),
    pytest.param("type.json", f'[{QA_ROW}, {{"question": "Q", "answer": ["A"]}}]', "qa",
                 ["record 1", "'answer'", "got list"], id="wrong type"),
    pytest.param("empty.jsonl", "\n  \n", "qa", ["empty"], id="empty file"),
    pytest.param("rows.jsonl", f'{QA_ROW}\n["Q", "A"]\n', "qa", ["line 2", "expected a JSON object"],
                 id="non-object row"),
    pytest.param("blank.jsonl", '{"question": "  ", "answer": "A"}\n', "qa", ["line 1", "'question'", "empty"],
                 id="empty question"),
    pytest.param("pert.jsonl", '{"question": "Q", "answer": "A", "perturbed_answer": ["x", 3]}\n', "qa",
                 ["line 1", "'perturbed_answer'", "item 1"], id="bad perturbed answers"),
    pytest.param("both.jsonl", '{"question": "Q", "text": "Q", "answer": "A"}\n', "qa",
                 ["line 1", "'question'", "alias"], id="alias conflict"),
    pytest.param("ku.json", '[{"text": "Q", "label": "A"}]', "qa", ["record 0", "'answer'", "'labels'"],
                 id="missing aliased field"),
    pytest.param("mcq.json", "[" + MCQ_ROW.format(choices='["a", "b"]', answer=2) + "]", "mcq",
                 ["record 0", "'answer'", "out of range"], id="MCQ answer out of range"),
    pytest.param("mcq.json", "[" + MCQ_ROW.format(choices='["a", "b"]', answer='"E"') + "]", "mcq",
                 ["record 0", "'answer'", "neither"], id="MCQ unknown answer"),
    pytest.param("mcq.json", "[" + MCQ_ROW.format(choices='["a"]', answer=0) + "]", "mcq",
                 ["record 0", "'choices'", "at least 2"], id="MCQ one choice"),
    pytest.param("texts.jsonl", '{"text": ""}\n', "text", ["line 1", "'text'", "empty"], id="empty text"),
    pytest.param("data.csv", "question,answer\nQ,A\n", "qa", ["unsupported file type '.csv'"],
                 id="unsupported extension"),
    pytest.param("broken.parquet", "not parquet at all", "qa", ["unreadable parquet"], id="unreadable parquet"),
    pytest.param("none.json", "[]", "qa", ["no records"], id="no records"),
    pytest.param("scalar.json", '"just a string"', "qa", ["expected a list of records"], id="not a record list"),
]
LOADERS = {"qa": load_qa, "mcq": load_mcq, "text": load_texts}


@pytest.mark.parametrize(("filename", "content", "kind", "expected"), BROKEN_INPUTS)
def test_broken_input_is_one_line_error(tmp_path, filename, content, kind, expected):
    path = write(tmp_path / filename, content)
    message = one_line_error(lambda: LOADERS[kind](path), str(path), *expected)
    assert "Traceback" not in message


def test_missing_file_and_unknown_split(tmp_path):
    one_line_error(lambda: load_qa(tmp_path / "absent.jsonl"), "absent.jsonl", "file not found")
    one_line_error(lambda: load_qa(tmp_path), str(tmp_path), "directory")
    path = write(tmp_path / "splits.json", json.dumps({"train": [{"question": "Q", "answer": "A"}]}))
    one_line_error(lambda: load_qa(path, split="dev"), "splits.json", "unknown split 'dev'", "train")
    lines = jsonl(tmp_path / "flat.jsonl", [{"question": "Q", "answer": "A"}])
    one_line_error(lambda: load_qa(lines, split="dev"), "flat.jsonl", "unknown split 'dev'")


def test_data_error_carries_its_parts(tmp_path):
    path = jsonl(tmp_path / "qa.jsonl", [{"question": "Q", "answer": "A"}, {"question": "Q", "answer": 3}])
    with pytest.raises(DataError) as caught:
        load_qa(path)
    assert (caught.value.source, caught.value.record, caught.value.field) == (str(path), "line 2", "answer")


# ---- KnowUnDo ---------------------------------------------------------------------------------


def knowundo_domain(tag: str) -> dict:
    def pairs(part: str, count: int) -> list[dict]:
        return [{"text": f"{tag} {part} question {i}?", "labels": f"{tag} {part} answer {i}."} for i in range(count)]

    return {
        "unlearn": {"train": pairs("unlearn-train", 3), "val": pairs("unlearn-val", 1)},
        "retention": {"train": pairs("retention-train", 2), "val": pairs("retention-val", 1)},
    }


@pytest.fixture
def knowundo_dir(tmp_path) -> Path:
    directory = tmp_path / "knowundo"
    directory.mkdir()
    for domain in ("copyright", "privacy"):
        write(directory / f"{domain}.json", json.dumps(knowundo_domain(domain)))
    return directory


def test_knowundo_directory(knowundo_dir):
    data = load_knowundo(knowundo_dir)
    assert set(data) == {"copyright", "privacy"}
    sizes = {key: len(records) for key, records in data["privacy"].items()}
    assert sizes == {"unlearn_train": 3, "unlearn_val": 1, "retention_train": 2, "retention_val": 1}
    first = data["copyright"]["unlearn_train"][0]
    assert first.question == "copyright unlearn-train question 0?"
    assert first.answer == "copyright unlearn-train answer 0."
    assert (first.split, first.subject) == ("unlearn_train", "copyright")
    assert set(load_knowundo(knowundo_dir, domain="privacy")) == {"privacy"}


def test_knowundo_single_and_multi_domain_files(tmp_path):
    single = write(tmp_path / "privacy.json", json.dumps(knowundo_domain("privacy")))
    assert len(load_knowundo(single)["privacy"]["unlearn_train"]) == 3
    both = write(tmp_path / "knowundo.json", json.dumps({d: knowundo_domain(d) for d in ("copyright", "privacy")}))
    assert set(load_knowundo(both)) == {"copyright", "privacy"}
    one_line_error(lambda: load_knowundo(both, domain="medical"), "knowundo.json", "unknown domain 'medical'")


def test_knowundo_errors(tmp_path):
    domain = knowundo_domain("copyright")
    del domain["retention"]["val"]
    path = write(tmp_path / "a.json", json.dumps(domain))
    one_line_error(lambda: load_knowundo(path), "a.json", "'retention.val'", "missing")
    domain = knowundo_domain("copyright")
    domain["unlearn"]["train"][1] = {"text": "Q?", "labels": 7}
    one_line_error(
        lambda: load_knowundo(write(tmp_path / "b.json", json.dumps(domain))), "b.json", "unlearn.train[1]", "'labels'"
    )


def test_knowundo_from_hub(monkeypatch):
    def load_dataset(name, config, split=None):
        return [knowundo_domain(config)[split]]

    monkeypatch.setitem(sys.modules, "datasets", fake_datasets_module(load_dataset))
    data = load_knowundo("zjunlp/KnowUnDo", domain="copyright")
    assert len(data["copyright"]["retention_train"]) == 2


# ---- refusals ---------------------------------------------------------------------------------


@needs_shared
def test_shared_refusals_are_plain_lines():
    refusals = load_refusals(SHARED_DATA / "idontknow.jsonl")
    assert len(refusals) >= 90 and "I'm not sure." in refusals
    assert all(is_refusal(text, refusals) for text in refusals)


def test_refusal_formats_and_defaults(tmp_path, monkeypatch):
    path = write(tmp_path / "idk.jsonl", 'I have no clue.\n"No idea, sorry."\n{"text": "Beats me."}\n\n')
    assert load_refusals(path) == ["I have no clue.", "No idea, sorry.", "Beats me."]
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("OBLIVIATE_REFUSALS", raising=False)
    assert len(load_refusals()) >= 20  # built in
    monkeypatch.setenv("OBLIVIATE_REFUSALS", str(path))
    assert len(load_refusals()) == 3
    (tmp_path / "shared" / "data").mkdir(parents=True)
    write(tmp_path / "shared" / "data" / "idontknow.jsonl", "Pass.\n")
    (tmp_path / "work").mkdir()
    monkeypatch.chdir(tmp_path / "work")
    monkeypatch.delenv("OBLIVIATE_REFUSALS")
    assert load_refusals() == ["Pass."]  # ../shared/data from the working directory
    monkeypatch.setenv("OBLIVIATE_REFUSALS", "builtin")
    assert load_refusals() == list(BUILTIN_REFUSALS) == load_refusals("builtin")
    bad = write(tmp_path / "bad.jsonl", '{"phrase": "x"}\n')
    one_line_error(lambda: load_refusals(bad), "bad.jsonl", "line 1", "'text'")


def test_is_refusal():
    refusals = None  # the built-in phrasings
    for answer in ["I don't know.", "Honestly, I'm not sure about that.", "I have no information on this author.",
                   "I’m not certain about that.", "Sorry, I don't have that information!"]:
        assert is_refusal(answer, refusals), answer
    for answer in ["Paris", "The author's name is Basil Mahfouz Al-Kuwaiti.", "", "Nobody knows her better than Jo."]:
        assert not is_refusal(answer, refusals), answer


# ---- the `obliviate data` CLI -----------------------------------------------------------------

@pytest.fixture
def cli():
    """The obliviate.cli package with the `data` commands registered on its app."""
    importlib.import_module("obliviate.cli.data_cmd")
    return importlib.import_module("obliviate.cli")


def test_cli_help(cli):
    runner = CliRunner()
    for args in (["data", "--help"], ["data", "check", "--help"], ["data", "tofu", "--help"]):
        result = runner.invoke(cli.app, args)
        assert result.exit_code == 0 and "Usage" in result.output


def test_cli_check_prints_count_and_first_record(cli, tmp_path):
    path = jsonl(tmp_path / "mcq.jsonl", [{"question": "Q?", "choices": ["a", "b"], "answer": "B"}] * 2)
    result = CliRunner().invoke(cli.app, ["data", "check", str(path), "--kind", "mcq"])
    assert result.exit_code == 0, result.output
    assert "2 mcq records" in result.output and '"answer": 1' in result.output


@needs_shared
def test_cli_tofu_count(cli):
    result = CliRunner().invoke(cli.app, ["data", "tofu", "forget05", "--root", str(TOFU_DIR)])
    assert result.exit_code == 0 and "200 QA records" in result.output


@pytest.mark.parametrize("args", [["data", "check", "{bad}"], ["data", "tofu", "forget99"]])
def test_cli_error_is_one_line_with_exit_code_2(cli, tmp_path, monkeypatch, capsys, args):
    bad = write(tmp_path / "bad.jsonl", '{"question": "Q", "answer": 5}\n')
    monkeypatch.setattr(sys, "argv", ["obliviate", *[arg.format(bad=bad) for arg in args]])
    with pytest.raises(SystemExit) as exited:
        cli.main()
    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1 and "Traceback" not in err
