"""AlphaEdit on small random models: the projector, the update's effect and reach, Conv1D vs Linear, state.

A random model routes little of the subject's representation to the answer position, so the edits
that must make a prompt emit its target key on the prompt's last token; λ is scaled down to these
models' small keys (AlphaEdit's λ = 10 suits a 7B model's keys).
"""

import copy

import pytest
import torch
from torch import nn

from obliviate.data import QARecord
from obliviate.editing import (AlphaEditor, AlphaEditSettings, EditRequest, load_editor, prepare_editor, projector,
                               request_from_record, save_editor)
from obliviate.editing.activations import key_second_moment, keys_at
from obliviate.editing.prepare import sampled_context
from obliviate.editing.requests import context_batch, question_prompt
from obliviate.errors import ObliviateError
from obliviate.models import linear_weight_as_out_in, mlp_down_proj, mlp_module
from obliviate.prompts import prompt_ids

NAMES = ["Alice Smith", "Bruno Keller", "Chiara Rossi", "Dmitri Volkov", "Elena Garcia", "Farid Haddad"]
PLACES = ["Paris", "Lisbon", "Oslo", "Kyoto", "Lima", "Cairo"]
CORPUS = [f"{name} lives in {place}. {name} works as a baker. Where does {name} live? {place}."
          for name, place in zip(NAMES, PLACES)] + [
    "The river runs through the old town and the market opens at dawn.",
    "Bakers sell bread, and the bread is warm in the morning.",
]
REQUEST = EditRequest("Where does Alice Smith live?", "Alice Smith", "Oslo")
UNRELATED = "The market opens at dawn and the river runs through the old town."


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    # The models are tiny: on a busy 2-core machine, thread hand-offs cost more than the arithmetic.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def tokenizer():
    from obliviate.models.tiny import train_tokenizer

    return train_tokenizer(CORPUS * 4, vocab_size=400)


def tiny_llama(tokenizer, seed=0):
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(seed)
    config = LlamaConfig(vocab_size=len(tokenizer), hidden_size=64, intermediate_size=128, num_hidden_layers=4,
                         num_attention_heads=4, num_key_value_heads=4, max_position_embeddings=128,
                         initializer_range=0.1, pad_token_id=tokenizer.pad_token_id,
                         bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id)
    return LlamaForCausalLM(config).eval()


def tiny_gpt2(tokenizer, seed=0):
    from transformers import GPT2Config, GPT2LMHeadModel

    torch.manual_seed(seed)
    config = GPT2Config(vocab_size=len(tokenizer), n_embd=64, n_layer=4, n_head=4, n_positions=128,
                        initializer_range=0.1, bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id)
    return GPT2LMHeadModel(config).eval()


def preserved_sequences(tokenizer):
    return [tokenizer(text)["input_ids"] for text in CORPUS[1:] + [UNRELATED]]


def settings(threshold, layers=(1, 2), context_starts=(), key_token="prompt_last"):
    result = AlphaEditSettings(layers=list(layers), key_token=key_token, l2=0.1, context_starts=list(context_starts),
                               context_length=6)
    result.null_space.threshold = threshold
    return result


def null_space_threshold(model, tokenizer, layers, quantile=0.5):
    """An eigenvalue threshold splitting the preserved-key spectrum at `quantile` (the smallest over `layers`)."""
    moments = key_second_moment(model, preserved_sequences(tokenizer), list(layers), tokenizer.pad_token_id)
    return min(float(torch.linalg.eigvalsh(m.double()).quantile(quantile)) for m in moments.values())


def answer_token(model, tokenizer, question):
    with torch.no_grad():
        return int(model(input_ids=torch.tensor([prompt_ids(tokenizer, question)])).logits[0, -1].argmax())


def target_token(tokenizer, target):
    return tokenizer(" " + target, add_special_tokens=False)["input_ids"][0]


# ---------------------------------------------------------------- requests


def test_key_positions_are_the_subjects_tokens(tokenizer):
    for prefix in ("", "Some earlier words"):
        prompt = question_prompt(tokenizer, REQUEST, prefix)
        (position,) = prompt.key_positions
        assert tokenizer.decode(prompt.input_ids[:position + 1]).endswith("Alice Smith")
        assert not tokenizer.decode(prompt.input_ids[:position]).endswith("Alice Smith")
        every = question_prompt(tokenizer, REQUEST, prefix, key_token="subject_all").key_positions
        assert every[-1] == position
        assert tokenizer.decode(prompt.input_ids[every[0]:position + 1]).strip() == "Alice Smith"
    last = question_prompt(tokenizer, REQUEST, key_token="prompt_last")
    assert last.key_positions == (len(last.input_ids) - 1,)


def test_requests_need_a_subject_in_the_question():
    with pytest.raises(ObliviateError, match="does not occur in the question"):
        EditRequest("Where does Alice live?", "Alice Smith", "Oslo")
    with pytest.raises(ObliviateError, match="no 'subject' or 'entity'"):
        request_from_record(QARecord("Where does Alice live?", "Paris"), "Oslo")
    record = QARecord("Where does Alice Smith live?", "Paris", entity="Alice Smith")
    assert request_from_record(record, "Oslo") == REQUEST


# ---------------------------------------------------------------- the null-space projector


def test_projector_is_an_orthogonal_projector_that_annihilates_preserved_keys(tokenizer):
    model = tiny_llama(tokenizer)
    sequences = preserved_sequences(tokenizer)
    moment = key_second_moment(model, sequences, [1], tokenizer.pad_token_id)[1]
    eigenvalues = torch.linalg.eigvalsh(moment.double())
    threshold = float(eigenvalues.quantile(0.5))
    p = projector(moment, threshold).double()
    assert torch.allclose(p @ p, p, atol=1e-6)
    assert torch.allclose(p, p.T, atol=1e-6)
    assert round(float(p.trace())) == int((eigenvalues < threshold).sum()) > 0
    keys = torch.cat([keys_at_every_token(model, ids, 1) for ids in sequences]).double()
    # ‖P·K0‖² is exactly n·(the eigenvalues below the threshold): a small share of ‖K0‖².
    share = float((keys @ p).norm() ** 2 / keys.norm() ** 2)
    assert share == pytest.approx(float(eigenvalues[eigenvalues < threshold].sum() / eigenvalues.sum()), rel=1e-3)
    assert share < 0.05


def keys_at_every_token(model, ids, layer):
    seen = []
    handle = mlp_down_proj(model, layer).register_forward_hook(lambda _m, args, _o: seen.append(args[0][0]))
    with torch.no_grad():
        model(input_ids=torch.tensor([ids]))
    handle.remove()
    return seen[0]


# ---------------------------------------------------------------- the edit


def test_edit_makes_the_prompt_emit_the_target_and_spares_preserved_keys(tokenizer):
    model = tiny_llama(tokenizer)
    layers = (1, 2)
    threshold = null_space_threshold(model, tokenizer, layers)
    before = {layer: linear_weight_as_out_in(mlp_down_proj(model, layer)).detach().clone() for layer in layers}
    preserved_keys = {layer: torch.cat([keys_at_every_token(model, ids, layer)
                                        for ids in preserved_sequences(tokenizer)]) for layer in layers}
    assert answer_token(model, tokenizer, REQUEST.question) != target_token(tokenizer, "Oslo")

    editor = prepare_editor(model, tokenizer, settings(threshold, layers), preserved_sequences(tokenizer), cache=False)
    report = editor.edit([REQUEST])

    assert answer_token(model, tokenizer, REQUEST.question) == target_token(tokenizer, "Oslo")
    for layer in layers:
        delta = linear_weight_as_out_in(mlp_down_proj(model, layer)).detach() - before[layer]
        assert report.update_norms[layer] == pytest.approx(float(delta.norm()), rel=1e-4)
        assert float(delta.norm()) > 0
        # the preserved keys' down-projection outputs move by under 5% of their size
        change = (preserved_keys[layer] @ delta.T).norm() / (preserved_keys[layer] @ before[layer].T).norm()
        assert change < 0.05


def test_sequential_edits_remember_earlier_keys_and_survive_a_save(tokenizer, tmp_path):
    model = tiny_llama(tokenizer)
    threshold = null_space_threshold(model, tokenizer, (1, 2))
    editor = prepare_editor(model, tokenizer, settings(threshold), preserved_sequences(tokenizer), cache=False)
    editor.edit([REQUEST])
    first = {layer: keys.clone() for layer, keys in editor.edited_keys.items()}
    assert all(float(keys.abs().sum()) > 0 for keys in first.values())

    save_editor(editor, tmp_path / "editor")
    resumed = load_editor(model, tokenizer, settings(threshold), tmp_path / "editor")
    assert resumed.layers == editor.layers and resumed.context_groups == editor.context_groups
    for layer in editor.layers:
        assert torch.equal(resumed.projectors[layer], editor.projectors[layer])
        assert torch.equal(resumed.edited_keys[layer], first[layer])

    second = EditRequest("Where does Bruno Keller live?", "Bruno Keller", "Kyoto")
    resumed.edit([second])
    assert answer_token(model, tokenizer, second.question) == target_token(tokenizer, "Kyoto")
    assert answer_token(model, tokenizer, REQUEST.question) == target_token(tokenizer, "Oslo")
    assert all(float((resumed.edited_keys[layer] - first[layer]).abs().sum()) > 0 for layer in editor.layers)
    with pytest.raises(ObliviateError, match="cannot switch"):
        load_editor(model, tokenizer, settings(threshold, layers=(0, 1)), tmp_path / "editor")


def test_conv1d_and_linear_down_projections_edit_alike(tokenizer):
    conv_model = tiny_gpt2(tokenizer)
    linear_model = copy.deepcopy(conv_model)
    layers = (1, 2)
    for layer in layers:
        conv = mlp_down_proj(linear_model, layer)
        linear = nn.Linear(conv.weight.shape[0], conv.weight.shape[1])
        with torch.no_grad():
            linear.weight.copy_(conv.weight.T)
            linear.bias.copy_(conv.bias)
        mlp_module(linear_model, layer).c_proj = linear
    ids = torch.tensor([prompt_ids(tokenizer, REQUEST.question)])
    with torch.no_grad():
        assert torch.allclose(conv_model(input_ids=ids).logits, linear_model(input_ids=ids).logits, atol=1e-5)

    threshold = null_space_threshold(conv_model, tokenizer, layers)
    deltas = []
    for model in (conv_model, linear_model):
        before = {layer: linear_weight_as_out_in(mlp_down_proj(model, layer)).detach().clone() for layer in layers}
        prepare_editor(model, tokenizer, settings(threshold, layers, key_token="subject_last"),
                       preserved_sequences(tokenizer), cache=False).edit([REQUEST])
        deltas.append({layer: linear_weight_as_out_in(mlp_down_proj(model, layer)).detach() - before[layer]
                       for layer in layers})
    for layer in layers:
        assert float(deltas[0][layer].norm()) > 1e-3
        assert torch.allclose(deltas[0][layer], deltas[1][layer], rtol=1e-3, atol=1e-5)


def test_key_statistics_are_cached_per_model_directory(tokenizer, tmp_path, monkeypatch):
    monkeypatch.setenv("OBLIVIATE_CACHE", str(tmp_path / "cache"))
    tiny_llama(tokenizer).save_pretrained(tmp_path / "model")
    from obliviate.models import load_model

    model = load_model(tmp_path / "model")
    first = prepare_editor(model, tokenizer, settings(1e-3), preserved_sequences(tokenizer))
    assert len(list((tmp_path / "cache" / "key_second_moments").iterdir())) == 2  # one per edit layer

    def not_again(*_args, **_kwargs):
        raise AssertionError("the cached statistics should have been used")

    monkeypatch.setattr("obliviate.editing.null_space.key_second_moment", not_again)
    second = prepare_editor(model, tokenizer, settings(1e-3), preserved_sequences(tokenizer))
    for layer in first.layers:
        assert torch.equal(first.projectors[layer], second.projectors[layer])


def test_context_templates_are_one_sample_per_start_word(tokenizer):
    """AlphaEdit's templates: [["{}"], one text per start word, top-k 5, 10 tokens with BOS and the start word]."""
    model = tiny_llama(tokenizer)
    groups = prepare_editor(model, tokenizer, AlphaEditSettings(layers=[1, 2]), preserved_sequences(tokenizer),
                            cache=False).context_groups
    starts = AlphaEditSettings().context_starts
    assert starts == ["The", "Therefore", "Because", "I", "You"]
    assert groups[0] == [""] and len(groups) == 2 and len(groups[1]) == len(starts)
    assert all(text.startswith(start) for start, text in zip(starts, groups[1]))
    ids = sampled_context(model, tokenizer, "Because", AlphaEditSettings())
    prompt = tokenizer("Because")["input_ids"]
    assert ids[:len(prompt)] == prompt and len(prompt) < len(ids) <= 10
    again = prepare_editor(model, tokenizer, AlphaEditSettings(layers=[1, 2]), preserved_sequences(tokenizer),
                           cache=False).context_groups
    assert again == groups  # seeded


def test_keys_weigh_the_plain_prompt_half(tokenizer):
    """compute_ks's two-level mean: the plain prompt's key and the sampled contexts' mean key count alike."""
    model = tiny_llama(tokenizer)
    editor = AlphaEditor(model, tokenizer, [1, 2], {1: torch.eye(128), 2: torch.eye(128)},
                         [[""], ["Some words", "Other words here", "More"]], settings(1e-3))
    batch = context_batch(tokenizer, REQUEST, editor.contexts, "prompt_last", "cpu")
    keys = keys_at(model, batch, 1)
    expected = 0.5 * keys[0] + 0.5 * keys[1:].mean(0)
    assert torch.allclose(editor._keys([REQUEST], 1)[:, 0], expected, atol=1e-6)
    assert not torch.allclose(expected, keys.mean(0), atol=1e-4)
    with pytest.raises(ObliviateError, match="must start with"):
        AlphaEditor(model, tokenizer, [1, 2], {1: torch.eye(128), 2: torch.eye(128)}, [["Some words"]],
                    settings(1e-3))


def test_value_keeps_the_subject_statement_by_kl_of_now_from_before(tokenizer, monkeypatch):
    """compute_z's KL term: F.kl_div(before, now), i.e. KL(now ‖ before), at the subject's last token of
    "{subject} is a" (where δ is added), not at the statement's last token."""
    import obliviate.editing.values as values
    from obliviate.editing.requests import subject_statement
    from obliviate.editing.settings import ValueSettings

    seen, steps = [], []
    real_kl = values.F.kl_div

    def kl_div(input, target, **kwargs):
        seen.append((input.requires_grad, target.requires_grad, kwargs))
        return real_kl(input, target, **kwargs)

    real_positions = values._key_logprobs

    def key_logprobs(model, batch):
        steps.append(batch.key_positions.tolist())
        return real_positions(model, batch)

    monkeypatch.setattr(values.F, "kl_div", kl_div)
    monkeypatch.setattr(values, "_key_logprobs", key_logprobs)
    model = tiny_llama(tokenizer)
    statement = subject_statement(tokenizer, REQUEST.subject)
    subject_last = statement.key_positions[-1]
    assert subject_last < len(statement.input_ids) - 1  # "is a" follows the subject
    value = values.target_value(model, tokenizer, REQUEST, [""], 2, ValueSettings(steps=4, lr=0.5), "subject_last")
    assert value.shape == (1, 64)
    assert seen and all(kw["log_target"] and not before and now for before, now, kw in seen)
    assert len(seen) == 4 and all(positions == [subject_last] for positions in steps)


def test_general_text_is_pythons_documentation_in_bounded_sequences(tokenizer):
    from obliviate.editing.general_text import general_sequences

    sequences = general_sequences(tokenizer, 3000, length=256)
    total = sum(map(len, sequences))
    assert 3000 <= total < 3000 + 256 and max(map(len, sequences)) <= 256
    assert "statement" in tokenizer.decode([i for ids in sequences for i in ids])
