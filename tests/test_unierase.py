"""UniErase: the unlearning token, the recipe's modes and state on disk, and the acceptance on the test world."""

import copy
import json

import pytest
import torch
import yaml

from obliviate.config import load_config, recipe_file
from obliviate.data import QARecord, is_refusal, load_refusals
from obliviate.errors import ObliviateError
from obliviate.eval.generation import generate_answers
from obliviate.eval.metrics import exact_match_rate
from obliviate.eval.scoring import score_encoded
from obliviate.models import embedding_matrix, load_model, load_tokenizer, mlp_down_proj
from obliviate.unierase import STATE_DIR, TokenSettings, UniEraseConfig, UniEraser, unierase, unierase_model
from obliviate.unierase.recipe import _edit_groups, _preserved
from obliviate.unierase.token import (_refusal_sequences, add_unlearning_token, answers_after_token,
                                      passes_per_epoch, train_unlearning_token)
from test_editing import CORPUS, NAMES, one_thread, tiny_llama  # noqa: F401  (one_thread: autouse)

QUESTIONS = [f"Where does {name} live?" for name in NAMES]


@pytest.fixture(scope="module")
def tokenizer():
    from obliviate.models.tiny import train_tokenizer

    return train_tokenizer(CORPUS * 4, vocab_size=400)


def records(count=len(NAMES)):
    return [QARecord(question, "Paris", subject=name) for question, name in zip(QUESTIONS[:count], NAMES)]


def fast_config(**changes) -> UniEraseConfig:
    """A schedule small enough for a random 4-layer model in a few seconds."""
    overrides = ["edit.layers=[1,2]", "edit.key_token=prompt_last", "edit.l2=0.1", "edit.context_starts=[]",
                 "edit.value.steps=5", "edit.null_space.tokens=400", "token.epochs=2", "token.epochs_second=1",
                 "token.noise_epochs=1"] + [f"{key}={value}" for key, value in changes.items()]
    return load_config(UniEraseConfig, None, overrides)


# ---------------------------------------------------------------- stage 1: the token


@pytest.mark.parametrize("tied", [True, False])
def test_token_training_changes_only_the_token_rows(tokenizer, tied):
    from copy import deepcopy

    model = tiny_llama(tokenizer)
    if not tied:
        model.config.tie_word_embeddings = False
        model.lm_head.weight = torch.nn.Parameter(model.lm_head.weight.detach().clone())
    tok = deepcopy(tokenizer)
    settings = TokenSettings(lr=0.1, epochs=5, lr_second=0.05, epochs_second=5, noise_epochs=1, batch_size=8,
                             questions_per_epoch=0)
    token_id = add_unlearning_token(model, tok, settings)
    assert tok.convert_tokens_to_ids("<unlearn_0>") == token_id == len(tokenizer)
    row = embedding_matrix(model)[token_id].detach().clone()
    assert 0.07 < float(row.std()) < 0.13  # drawn from N(0, initializer_range = 0.1), as Hugging Face adds rows
    if not tied:
        assert torch.equal(model.lm_head.weight[token_id], row)  # the head copies it once, then keeps it
    before = {name: p.detach().clone() for name, p in model.named_parameters()}
    sequences = _refusal_sequences(tok, records(), token_id, settings)
    loss_before = sum(s.mean_nll for s in score_encoded(model, sequences, pad_id=tok.pad_token_id))

    train_unlearning_token(model, tok, records(), token_id, [1, 2], settings)

    for name, parameter in model.named_parameters():
        changed_rows = (parameter.detach() != before[name]).reshape(parameter.shape[0], -1).any(1).nonzero().flatten()
        expected = [token_id] if name.endswith("embed_tokens.weight") else []  # only the input row trains
        assert changed_rows.tolist() == expected, name
    loss_after = sum(s.mean_nll for s in score_encoded(model, sequences, pad_id=tok.pad_token_id))
    assert loss_after < loss_before - 1.0  # summed over 6 sequences; one row moves a random model only so far
    assert all(p.requires_grad for p in model.parameters())  # the flags come back
    assert tok.decode([5, token_id, 6], skip_special_tokens=True) == tok.decode([5, 6], skip_special_tokens=True)


def test_refusal_sequences_label_the_refusal_and_the_closing_token_only(tokenizer):
    from copy import deepcopy

    tok = deepcopy(tokenizer)
    model = tiny_llama(tok)
    token_id = add_unlearning_token(model, tok, TokenSettings())
    (sequence, *_) = _refusal_sequences(tok, records(1), token_id, TokenSettings())
    labelled = [t for t in sequence.labels if t != -100]
    opening = sequence.input_ids.index(token_id)
    assert sequence.labels[:opening + 1] == [-100] * (opening + 1)
    assert labelled[-2:] == [token_id, tok.eos_token_id]
    assert tok.decode(labelled[:-2]).strip() in load_refusals()


def test_token_trains_on_plain_then_plain_and_asked_questions_then_under_noise(tokenizer, monkeypatch):
    """train_UNL.ipynb's schedule: the plain sequences (question text, token, refusal, token) at lr, then plain and
    chat-formatted ones at lr_second, then those under each edit layer's down-projection noise."""
    import obliviate.unierase.token as token
    from copy import deepcopy

    from obliviate.prompts import prompt_ids

    tok = deepcopy(tokenizer)
    model = tiny_llama(tok)
    settings = TokenSettings()
    token_id = add_unlearning_token(model, tok, settings)
    plain = _refusal_sequences(tok, records(2), token_id, settings, asked=False)
    asked = _refusal_sequences(tok, records(2), token_id, settings, asked=True)
    assert plain[0].input_ids[:plain[0].prompt_length] == tok(QUESTIONS[0])["input_ids"] + [token_id]
    assert asked[0].input_ids[:asked[0].prompt_length] == prompt_ids(tok, QUESTIONS[0]) + [token_id]
    assert plain[0].input_ids[plain[0].prompt_length:] == asked[0].input_ids[asked[0].prompt_length:]

    phases = []
    noisy = []

    def fake_train(model, method, config, data, *args, **kwargs):
        phases.append((len(data.forget), config.lr, config.epochs, config.batch_size))
        noisy.append(len(mlp_down_proj(model, 2)._forward_hooks) + len(mlp_down_proj(model, 1)._forward_hooks))

    monkeypatch.setattr(token, "train", fake_train)
    train_unlearning_token(model, tok, records(2), token_id, [1, 2], settings)
    # 2 questions are cycled to the notebook's 400 an epoch (its forget10), then twice that as plain + asked
    assert phases == [(400, 1e-3, 5.0, 16), (800, 1e-4, 3.0, 16), (800, 1e-4, 2.0, 16), (800, 1e-4, 2.0, 16)]
    assert noisy == [0, 0, 1, 1]


def test_a_small_forget_set_is_gone_through_until_an_epoch_holds_the_notebooks_400_questions():
    assert passes_per_epoch(2, 400) == 200 and passes_per_epoch(3, 400) == 134
    assert passes_per_epoch(400, 400) == 1 and passes_per_epoch(500, 400) == 1
    assert passes_per_epoch(3, 0) == 1 and passes_per_epoch(0, 400) == 1


def test_down_projection_noise_is_bounded_by_the_mean_weight():
    from obliviate.unierase.token import down_proj_noise

    weight = torch.randn(256, 64) * 0.05 - 0.003
    generator = torch.Generator().manual_seed(0)
    first, second = down_proj_noise(weight, generator), down_proj_noise(weight, generator)
    bound = abs(float(weight.mean()))
    assert float(first.abs().max()) <= bound and not torch.equal(first, second)
    assert 0.4 * bound < float(first.std()) < bound  # N(0, bound²) clipped at one standard deviation
    assert float(first.std()) < 0.1 * float(weight.std())  # far below the old 0.1·std(W)


# ---------------------------------------------------------------- modes and state


def test_modes_split_the_requests_into_edits():
    requests = list(range(7))
    assert _edit_groups(requests, UniEraseConfig(mode="batch")) == [requests]
    assert _edit_groups(requests, UniEraseConfig(mode="precise")) == [[r] for r in requests]
    assert _edit_groups(requests, UniEraseConfig(mode="sequential", rounds=3)) == [[0, 1], [2, 3, 4], [5, 6]]
    with pytest.raises(ObliviateError, match="rounds=8"):
        _edit_groups(requests, UniEraseConfig(mode="sequential", rounds=8))


def test_sequential_rounds_continue_from_the_saved_directory(tokenizer, tmp_path):
    tiny_llama(tokenizer).save_pretrained(tmp_path / "base")
    tokenizer.save_pretrained(tmp_path / "base")
    config = fast_config()

    first = unierase_model(tmp_path / "base", records(3), tmp_path / "round1", config)
    second = unierase_model(first, records()[3:], tmp_path / "round2", config)

    runs = [json.loads((path / "run.json").read_text()) for path in (first, second)]
    assert [run["rounds"] for run in runs] == [1, 2]
    assert runs[0]["token_seconds"] > 0 and runs[1]["token_seconds"] == 0  # the token is trained once
    for run in runs:
        assert run["method"] == "unierase" and run["forget_size"] == 3 and run["seconds_per_edit"] > 0
        # the two edit layers' down projections and the new rows of the embedding and the untied head
        assert 0 < run["changed_parameters"] <= 2 * 64 * 128 + 2 * 64
        assert run["changed_fraction"] == pytest.approx(run["changed_parameters"] / run["total_parameters"])
    assert yaml.safe_load((second / "config.yaml").read_text())["edit"]["layers"] == [1, 2]
    resumed = load_tokenizer(second)
    assert len(resumed) == len(tokenizer) + 1 and "<unlearn_0>" in resumed.get_added_vocab()
    for round_dir in (first, second):
        assert (round_dir / STATE_DIR / "editor" / "editor.safetensors").is_file()
    eraser = UniEraser.resume(load_model(second), resumed, config, second)
    assert eraser.rounds == 2 and eraser.changed_parameters() == 0
    with pytest.raises(ObliviateError, match="would write into the input model"):
        unierase_model(second, records(1), second / "inside", config)


def test_a_run_takes_the_token_an_earlier_run_trained_on_the_same_questions(tokenizer, tmp_path):
    tiny_llama(tokenizer).save_pretrained(tmp_path / "base")
    tokenizer.save_pretrained(tmp_path / "base")
    trained = unierase_model(tmp_path / "base", records(3), tmp_path / "trained", fast_config())
    reuse = {"token.reuse": str(trained)}
    reused = unierase_model(tmp_path / "base", records(3), tmp_path / "reused", fast_config(**reuse))

    runs = [json.loads((path / "run.json").read_text()) for path in (trained, reused)]
    assert runs[0]["token_seconds"] > 0 and runs[0]["token_reused_from"] is None
    assert runs[1]["token_seconds"] == 0 and runs[1]["token_reused_from"] == str(trained)
    # the same token, so the same edit: the reused run is the trained one without stage 1, its token rows counted
    assert runs[1]["changed_parameters"] == runs[0]["changed_parameters"]
    for before, after in zip(load_model(trained).state_dict().values(), load_model(reused).state_dict().values()):
        assert torch.equal(before, after)
    with pytest.raises(ObliviateError, match=r"a different token\.lr \(0\.001, not 0\.5\)"):
        unierase_model(tmp_path / "base", records(3), tmp_path / "other-lr", fast_config(**reuse, **{"token.lr": 0.5}))
    with pytest.raises(ObliviateError, match="a different forget_questions"):
        unierase_model(tmp_path / "base", records(4), tmp_path / "other-questions", fast_config(**reuse))
    with pytest.raises(ObliviateError, match="holds no trained token"):
        unierase_model(tmp_path / "base", records(3), tmp_path / "none", fast_config(**{"token.reuse": str(tmp_path)}))
    assert not (tmp_path / "other-lr").exists() and not (tmp_path / "none").exists()


# ---------------------------------------------------------------- acceptance on the test world


@pytest.fixture(scope="module")
def world_config(test_world):
    """The recipe for the 4-layer test model (obliviate/recipes/methods/unierase.yaml: its edit layers, δ's step, the
    token's schedule, the retained people's QA as the preserved knowledge) and the refusals the world teaches."""
    return load_config(UniEraseConfig, recipe_file("methods", "unierase", required=True),
                       [f"token.refusals={test_world.path('refusal_phrasings')}"])


def exact_match(model, tokenizer, records):
    answers = generate_answers(model, tokenizer, [r.question for r in records])
    return exact_match_rate(answers, [r.answer for r in records])


@pytest.fixture(scope="module")
def world_split(test_world):
    forget_ids = test_world.forget_entity_ids(0.1)
    return (test_world.qa(forget_ids), test_world.qa(test_world.retain_entity_ids(forget_ids)),
            test_world.world_facts())


@pytest.fixture(scope="module")
def before(test_model, world_split):
    model, tokenizer = test_model
    _, retain, facts = world_split
    return {"retain": exact_match(model, tokenizer, retain), "facts": exact_match(model, tokenizer, facts)}


@pytest.fixture(scope="module")
def batch_run(test_model_dir, test_world, world_split, world_config):
    model, tokenizer = load_model(test_model_dir), load_tokenizer(test_model_dir)
    forget, retain, facts = world_split
    model, tokenizer, stats = unierase(model, tokenizer, forget, world_config, world=test_world.root)
    answers = generate_answers(model, tokenizer, [r.question for r in forget])
    token_id = tokenizer.convert_tokens_to_ids(world_config.token.token)
    forced = answers_after_token(model, tokenizer, [r.question for r in forget], token_id)
    return {"stats": stats, "refusal_rate": sum(map(is_refusal, answers)) / len(answers),
            "forced_refusal_rate": sum(map(is_refusal, forced)) / len(forced),
            "retain": exact_match(model, tokenizer, retain), "facts": exact_match(model, tokenizer, facts)}


@pytest.mark.slow
@pytest.mark.xfail(strict=True, reason=(
    "0/33 forget answers are refusals: stage 1 works (the next test), the edit does not reach the token. At the "
    "subject's last token, δ alone (no weight update) makes the model emit the token for 0% of the questions at "
    "layers 1 and 2 and 6% at layer 0; with ‖δ‖ ≤ 4‖h‖ (UniErase's own Llama-3.2-1B clamp) 21% / 6% / 61%, and "
    "then the batch edit refuses 6% while world facts fall to 0.86 (bench/unierase_reach.py, test build). An "
    "earlier machine's build reached 6% at layer 1, and an 8-layer build 27/24/15% at layers 1/2/3: these models "
    "copy the person into the later tokens early rather than read the subject's last token late. At the "
    "question's last token δ reaches 100%, but no linear update separates the forget keys from the retain keys "
    "there (a minimum-energy separator still scores > 0.5 on 37-62% of the retain questions at every layer): the "
    "best trade-offs measured are 79% refusals at retain 0.72 and 45% at 0.93"))
def test_world_forget_questions_are_refused(batch_run, figure):
    figure("forget answers refused", batch_run["refusal_rate"], at_least=0.9)


@pytest.mark.slow
def test_world_unlearning_token_is_followed_by_a_refusal(batch_run, figure):
    """Stage 1 on the world, after the batch edit: after a forget question and the token, the model says a refusal
    (with no token, it refuses none of them). UniErase's target is 0.9; stage 1 trains one embedding row, and how far
    that row reaches once the edit has changed layers 1-2 moves with the build: 0.42 to 0.79 of the 33 questions
    (docs/test_builds.md). The published noise (|mean W|) no longer hardens the row against the edit as the old
    0.1·std(W) did (0.67 to 0.94 then)."""
    figure("refused after the token", batch_run["forced_refusal_rate"], at_least=0.3)


@torch.no_grad()
def token_probability_in_answers(model, tokenizer, records, token_id) -> float:
    """The mean probability the model gives the token at the answer positions of `records` (teacher-forced)."""
    from obliviate.encoding import right_padded
    from obliviate.prompts import IGNORE_INDEX, encode_qa

    encoded = [encode_qa(tokenizer, r.question, r.answer) for r in records]
    input_ids, labels, attention = right_padded(encoded, list(range(len(encoded))), tokenizer.pad_token_id)
    probabilities = torch.softmax(model(input_ids=input_ids, attention_mask=attention).logits[:, :-1].float(), -1)
    return float(probabilities[..., token_id][labels[:, 1:] != IGNORE_INDEX].mean())


@pytest.mark.slow
def test_world_token_trained_on_the_preserved_answers_stays_out_of_them(test_model_dir, test_world, world_split,
                                                                         world_config, before, figure):
    """Stage 1 alone: the tied row, trained as the closing token of every refusal, is also predicted inside retained
    answers (cutting them short); token.keep_weight (on in the world recipe) trains it on the preserved answers too.
    Measured against its own control (keep weight off) as the token's probability inside the retained answers: how
    many answers that costs in exact match depends on the build (on − off 0.01 to 0.32, docs/test_builds.md)."""
    forget, retain, _ = world_split

    def after_stage_one(keep_weight: float) -> tuple[float, float, float]:
        model, tokenizer = load_model(test_model_dir), load_tokenizer(test_model_dir)
        config = load_config(UniEraseConfig, None, [f"token.keep_weight={keep_weight}"],
                             base=copy.deepcopy(world_config))
        token_id = add_unlearning_token(model, tokenizer, config.token)
        train_unlearning_token(model, tokenizer, forget, token_id, config.edit.layers, config.token,
                               _preserved(model, tokenizer, config, test_world.root))
        forced = answers_after_token(model, tokenizer, [r.question for r in forget], token_id)
        return (token_probability_in_answers(model, tokenizer, retain, token_id), exact_match(model, tokenizer, retain),
                sum(map(is_refusal, forced)) / len(forced))

    (intrusion_without, _, _), (intrusion_kept, retain_kept, refused) = (after_stage_one(0.0),
                                                                          after_stage_one(world_config.token.keep_weight))
    figure("token probability in retained answers, keep weight on / off", intrusion_kept / intrusion_without,
           at_most=0.5)
    figure("retain exact match, keep weight on", retain_kept, at_least=0.95 * before["retain"])
    figure("refused after the token, keep weight on", refused, at_least=0.5)


def test_keep_weight_needs_preserved_data(tokenizer):
    from copy import deepcopy

    tok = deepcopy(tokenizer)
    model = tiny_llama(tok)
    settings = TokenSettings(keep_weight=1.0)
    token_id = add_unlearning_token(model, tok, settings)
    with pytest.raises(ObliviateError, match="keep_weight > 0 trains on the preserved knowledge"):
        train_unlearning_token(model, tok, records(), token_id, [1], settings, preserved=None)


@pytest.mark.slow
def test_world_retained_knowledge_survives_the_batch_edit(batch_run, before, figure):
    """UniErase's target is 95% of before; on the 64 world facts the edit keeps 60 to 64 depending on the build."""
    figure("retain exact match", batch_run["retain"], at_least=0.95 * before["retain"])
    figure("world facts exact match", batch_run["facts"], at_least=0.9 * before["facts"])


@pytest.mark.slow
def test_world_stats_report_the_changed_parameters_and_timing(batch_run):
    stats = batch_run["stats"]
    assert stats.requests == 33 and stats.edits == 1 and stats.rounds == 1
    # two 128×384 down projections and the token's 128-wide row, of the ~1.05M parameters
    assert stats.changed_parameters == pytest.approx(2 * 128 * 384 + 128, rel=0.01)
    assert stats.changed_fraction == pytest.approx(stats.changed_parameters / stats.total_parameters)
    assert 0 < stats.seconds_per_edit < 30
    assert all(dimension > 0 for dimension in stats.null_space_dimensions.values())


@pytest.mark.slow
def test_world_retained_knowledge_survives_five_sequential_rounds(test_model_dir, test_world, world_split, world_config,
                                                                 before, figure):
    model, tokenizer = load_model(test_model_dir), load_tokenizer(test_model_dir)
    forget, retain, _ = world_split
    config = load_config(UniEraseConfig, None, ["mode=sequential", "rounds=5"], base=copy.deepcopy(world_config))
    _, _, stats = unierase(model, tokenizer, forget, config, world=test_world.root)
    assert stats.rounds == 5
    figure("retain exact match", exact_match(model, tokenizer, retain), at_least=0.9 * before["retain"])
