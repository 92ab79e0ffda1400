"""The unlearning engine on the `test` world: every method forgets the 10% forget split and keeps the rest.

Each method runs with its recipe (obliviate/recipes/methods/<name>.yaml) on the tiny test model; exact match
is measured on the trained phrasing of the 33 forget and 297 retain questions.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from obliviate.config import recipes_folder
from obliviate.errors import ObliviateError
from obliviate.eval.generation import generate_answers
from obliviate.eval.metrics import exact_match_rate
from obliviate.models import load_model, load_tokenizer
from obliviate.unlearn import RunStopped, all_methods, get_method, load_data, unlearn

RECIPES = recipes_folder("methods")
FORGET_TARGET = 0.10  # forget exact match must fall to at most this
RETAIN_KEPT = 0.80  # retain exact match must stay at least this fraction of the base model's
BASELINES = ["ga", "graddiff", "ga_kl", "npo", "npo_gd", "npo_kl", "simnpo", "dpo", "idkpo", "idk", "rmu", "undial",
             "wga", "me_gd", "finetune"]


def exact_match(model, tokenizer, records) -> float:
    answers = generate_answers(model, tokenizer, [r.question for r in records])
    return exact_match_rate(answers, [r.answer for r in records])


@pytest.fixture(scope="module")
def world_sets(test_model_dir):
    return load_data("world:forget", model=test_model_dir), load_data("world:retain", model=test_model_dir)


@pytest.fixture(scope="module")
def base_em(test_model, world_sets):
    model, tokenizer = test_model
    forget, retain = world_sets
    return exact_match(model, tokenizer, forget), exact_match(model, tokenizer, retain)


def run_recipe(model_dir, method, out, overrides=(), forget="world:forget", retain="world:retain", **options):
    return unlearn(model_dir, method, forget, retain, out, RECIPES / f"{method}.yaml", overrides=list(overrides),
                   **options)


def em_after(out, world_sets):
    model, tokenizer = load_model(out), load_tokenizer(out)
    return tuple(exact_match(model, tokenizer, records) for records in world_sets)


# ---- every method on the test world ------------------------------------------------------------

def test_baselines_are_registered_with_a_test_world_recipe():
    assert set(BASELINES) <= {m.name for m in all_methods()}
    assert all((RECIPES / f"{name}.yaml").is_file() for name in BASELINES)


@pytest.mark.slow
@pytest.mark.parametrize("method", sorted(set(BASELINES) - {"ga", "finetune"}))
def test_method_forgets_the_forget_set_and_keeps_the_retain_set(method, test_model_dir, world_sets, base_em, tmp_path,
                                                                figure):
    out = run_recipe(test_model_dir, method, tmp_path / method)
    forget_em, retain_em = em_after(out, world_sets)
    base_forget, base_retain = base_em
    figure("forget exact match before", base_forget, at_least=0.9)
    figure("forget exact match", forget_em, at_most=FORGET_TARGET)
    figure("retain exact match", retain_em, at_least=RETAIN_KEPT * base_retain)


@pytest.mark.slow
def test_plain_gradient_ascent_forgets_but_collapses(test_model_dir, world_sets, base_em, tmp_path, figure):
    forget_em, retain_em = em_after(run_recipe(test_model_dir, "ga", tmp_path / "ga"), world_sets)
    figure("forget exact match", forget_em, at_most=FORGET_TARGET)
    # with no retain term, gradient ascent takes the rest with it
    figure("retain exact match", retain_em, at_most=0.5 * base_em[1])


@pytest.mark.slow
def test_finetune_teaches_new_answers_and_keeps_the_rest(test_model_dir, world_sets, base_em, tmp_path, figure):
    forget, retain = world_sets
    new_facts = [dataclasses.replace(r, answer=r.meta["wrong_answers"][0]) for r in forget]
    out = run_recipe(test_model_dir, "finetune", tmp_path / "ft", ["retain_loss=gd"], forget=new_facts)
    model, tokenizer = load_model(out), load_tokenizer(out)
    figure("new answers exact match", exact_match(model, tokenizer, new_facts), at_least=0.9)
    figure("retain exact match", exact_match(model, tokenizer, retain), at_least=RETAIN_KEPT * base_em[1])


# ---- the output directory ----------------------------------------------------------------------

def test_output_holds_model_resolved_config_and_run_report(test_model_dir, tmp_path):
    out = unlearn(test_model_dir, "npo_gd", "world:forget", "world:retain", tmp_path / "run",
                  overrides=["max_steps=3", "lr=1e-3", "retain_batch_size=4"])
    report = json.loads((out / "run.json").read_text())
    assert report["method"] == "npo_gd" and report["steps"] == 3 and len(report["loss_log"]) == 3
    assert (report["forget_size"], report["retain_size"]) == (33, 297)
    assert report["peak_memory_bytes"] > 0 and report["wall_seconds"] > 0
    assert set(report["final_losses"]) == {"forget", "retain"}
    assert "retain_batch_size: 4" in (out / "config.yaml").read_text()
    assert not out.with_name("run.checkpoint").exists()
    load_model(out)


def test_lora_run_saves_merged_model_or_adapter(test_model_dir, tmp_path):
    from peft import AutoPeftModelForCausalLM

    options = dict(overrides=["max_steps=2", "lr=1e-2", "use_lora=true", "retain_batch_size=4"])
    merged = unlearn(test_model_dir, "ga_kl", "world:forget", "world:retain", tmp_path / "merged", **options)
    adapter = unlearn(test_model_dir, "ga_kl", "world:forget", "world:retain", tmp_path / "adapter",
                      save_adapter=True, **options)
    assert (adapter / "adapter_config.json").is_file() and not (merged / "adapter_config.json").exists()
    ids = torch.tensor([[1, 50, 60, 70]])
    with torch.no_grad():
        from_adapter = AutoPeftModelForCausalLM.from_pretrained(adapter).merge_and_unload()(ids).logits
        from_merged = load_model(merged)(ids).logits
        base = load_model(test_model_dir)(ids).logits
    assert torch.allclose(from_adapter, from_merged, atol=1e-5)
    assert not torch.allclose(from_merged, base, atol=1e-4)


# ---- the loop: normalisation, resume, precision ------------------------------------------------

def weights(out) -> dict[str, torch.Tensor]:
    return load_file(Path(out) / "model.safetensors")


def losses(out) -> list[dict]:
    log = json.loads((out / "run.json").read_text())["loss_log"]
    return [{k: v for k, v in entry.items() if k != "seconds"} for entry in log]


def max_difference(a, b) -> float:
    return max(float((a[k] - b[k]).abs().max()) for k in a)


def test_global_batch_is_what_counts_not_how_it_is_split(test_model_dir, tmp_path):
    """batch 8 = batch 4 × grad_accum 2 (the same holds across processes, see test_unlearn_distributed)."""
    common = ["max_steps=3", "lr=1e-3", "checkpoint_every=0"]
    whole = unlearn(test_model_dir, "npo_gd", "world:forget", "world:retain", tmp_path / "whole",
                    overrides=common + ["batch_size=8"])
    split = unlearn(test_model_dir, "npo_gd", "world:forget", "world:retain", tmp_path / "split",
                    overrides=common + ["batch_size=4", "grad_accum=2"])
    start, a, b = load_file(Path(test_model_dir) / "model.safetensors"), weights(whole), weights(split)
    # The updates' norms, not their largest entry: Adam turns float-rounding differences of near-zero gradients
    # into ±lr steps of single weights (5.8e-6 of an update of 3e-3 here), while the updates agree as a whole.
    difference = sum(float((a[k] - b[k]).double().norm()) ** 2 for k in a) ** 0.5
    update = sum(float((a[k] - start[k]).double().norm()) ** 2 for k in a) ** 0.5
    assert difference < 1e-3 * update, (difference, update)


@pytest.mark.parametrize("method, extra", [("npo_gd", []), ("ga_kl", ["use_lora=true"])])
def test_resume_after_a_kill_ends_with_the_same_weights(test_model_dir, tmp_path, method, extra):
    settings = ["max_steps=6", "lr=1e-3", "checkpoint_every=2", "batch_size=4", "retain_batch_size=4"] + extra
    straight = unlearn(test_model_dir, method, "world:forget", "world:retain", tmp_path / "straight",
                       overrides=settings)
    with pytest.raises(RunStopped):
        unlearn(test_model_dir, method, "world:forget", "world:retain", tmp_path / "resumed", overrides=settings,
                stop_after_steps=5)
    assert not (tmp_path / "resumed").exists()
    state = json.loads((tmp_path / "resumed.checkpoint" / "trainer_state.json").read_text())
    assert state["step"] == 4
    resumed = unlearn(test_model_dir, method, "world:forget", "world:retain", tmp_path / "resumed",
                      overrides=settings, resume=True)
    a, b = weights(straight), weights(resumed)
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert losses(resumed) == losses(straight)


def test_resume_refuses_a_checkpoint_of_another_run(test_model_dir, tmp_path):
    settings = ["max_steps=4", "checkpoint_every=2", "retain_batch_size=4"]
    with pytest.raises(RunStopped):
        unlearn(test_model_dir, "graddiff", "world:forget", "world:retain", tmp_path / "r", overrides=settings,
                stop_after_steps=3)
    with pytest.raises(ObliviateError, match="different run"):
        unlearn(test_model_dir, "graddiff", "world:forget", "world:retain", tmp_path / "r",
                overrides=settings + ["lr=1"], resume=True)


def test_bf16_mixed_precision_and_gradient_checkpointing_run_on_cpu(test_model_dir, tmp_path):
    plain = unlearn(test_model_dir, "graddiff", "world:forget", "world:retain", tmp_path / "plain",
                    overrides=["max_steps=2", "lr=1e-3", "retain_batch_size=4"])
    checkpointed = unlearn(test_model_dir, "graddiff", "world:forget", "world:retain", tmp_path / "gc",
                           overrides=["max_steps=2", "lr=1e-3", "retain_batch_size=4", "gradient_checkpointing=true"])
    assert max_difference(weights(plain), weights(checkpointed)) < 1e-5
    bf16 = unlearn(test_model_dir, "graddiff", "world:forget", "world:retain", tmp_path / "bf16",
                   overrides=["max_steps=2", "lr=1e-3", "retain_batch_size=4", "mixed_precision=bf16"])
    report = json.loads((bf16 / "run.json").read_text())
    assert all(torch.isfinite(torch.tensor(v)) for v in report["final_losses"].values())
    assert 0 < max_difference(weights(plain), weights(bf16)) < 1e-2


def test_fp16_on_cpu_is_a_one_line_error(test_model_dir, tmp_path):
    with pytest.raises(ObliviateError, match="fp16 needs a CUDA GPU"):
        unlearn(test_model_dir, "ga", "world:forget", None, tmp_path / "x", overrides=["mixed_precision=fp16"])


# ---- what methods are given --------------------------------------------------------------------

def test_reference_log_probs_are_computed_once_and_no_reference_copy_is_made(test_model_dir, tmp_path, monkeypatch):
    from obliviate.unlearn import batches, loop

    cached, copies = [], []
    cache = batches.Examples.cache_reference_logprobs
    frozen_copy = loop.frozen_copy

    def counting_cache(examples, *args):
        cached.append(len(examples))
        cache(examples, *args)

    def counting_copy(model):
        copies.append(model)
        return frozen_copy(model)

    monkeypatch.setattr(batches.Examples, "cache_reference_logprobs", counting_cache)
    monkeypatch.setattr(loop, "frozen_copy", counting_copy)
    unlearn(test_model_dir, "dpo", "world:forget", "world:retain", tmp_path / "dpo",
            overrides=["max_steps=3", "retain_batch_size=4"])
    assert cached == [33, 33] and copies == []  # forget and alternative answers, once each
    cached.clear()
    unlearn(test_model_dir, "ga_kl", "world:forget", "world:retain", tmp_path / "kl",
            overrides=["max_steps=1", "retain_batch_size=4"])
    assert cached == [] and len(copies) == 1  # full fine-tuning: the one frozen copy KL needs
    unlearn(test_model_dir, "ga_kl", "world:forget", "world:retain", tmp_path / "kl_lora",
            overrides=["max_steps=1", "retain_batch_size=4", "use_lora=true"])
    assert len(copies) == 1  # LoRA: the adapter is disabled instead


def test_methods_without_retain_data_need_none_and_others_ask_for_it(test_model_dir, tmp_path):
    with pytest.raises(ObliviateError, match="needs retain data"):
        unlearn(test_model_dir, "graddiff", "world:forget", None, tmp_path / "x")
    assert get_method("ga").needs_for(get_method("ga").config_class()) == set()
    npo = get_method("npo_kl")
    assert npo.needs_for(npo.config_class()) == {"reference_logprobs", "retain", "reference_model"}


def test_rmu_trains_only_the_mlp_output_matrices_below_its_layer(test_model_dir, tmp_path):
    out = unlearn(test_model_dir, "rmu", "world:forget", "world:retain", tmp_path / "rmu",
                  overrides=["max_steps=2", "layer=2", "lr=1e-2", "retain_batch_size=4"])
    before, after = load_file(Path(test_model_dir) / "model.safetensors"), weights(out)
    changed = {k for k in before if not torch.equal(before[k], after[k])}
    assert changed == {f"model.layers.{i}.mlp.down_proj.weight" for i in range(3)}
    with pytest.raises(ObliviateError, match="layer 7 does not exist"):
        unlearn(test_model_dir, "rmu", "world:forget", "world:retain", tmp_path / "bad")


def test_retain_items_differ_between_processes_and_match_one_big_batch(test_model_dir):
    from obliviate.unlearn.batches import build_training_data
    from obliviate.unlearn.run import resolve_config

    tokenizer = load_tokenizer(test_model_dir)
    forget, retain = load_data("world:forget", model=test_model_dir), load_data("world:retain", model=test_model_dir)
    method = get_method("graddiff")

    def rows(batch_size, process, processes, step=0):
        cfg = resolve_config(method, None, [f"batch_size={batch_size}"])
        data = build_training_data(tokenizer, forget, retain, cfg, method.needs_for(cfg))
        micro = data.micro_batch(step, process, processes)
        return [tuple(r.tolist()) for b in (micro.forget, micro.retain) for r in b.input_ids]

    rank0, rank1 = rows(4, 0, 2), rows(4, 1, 2)
    assert not set(rank0[4:]) & set(rank1[4:])  # different retain items on each rank
    whole = rows(8, 0, 1)
    strip = lambda rs: sorted(tuple(t for t in r if t != tokenizer.pad_token_id) for r in rs)  # noqa: E731
    assert strip(whole) == strip(rank0 + rank1)
    assert strip(rows(8, 0, 1, step=1)) != strip(whole)


# ---- losses ------------------------------------------------------------------------------------

def test_losses_ignore_prompt_and_padding_and_weigh_sequences_equally():
    from obliviate.unlearn.losses import kl_from_reference, mean_nll, sequence_logprob, answer_tokens

    torch.manual_seed(0)
    labels = torch.tensor([[-100, -100, 5, 6, -100], [-100, 7, 8, 9, 1]])
    logits = torch.randn(2, 5, 12)
    scrambled = logits.clone()
    scrambled[0, 0] = 100.0  # position 0 predicts a prompt token
    scrambled[0, 4] = -100.0  # position 4 is padding: it predicts nothing
    assert torch.allclose(mean_nll(logits, labels), mean_nll(scrambled, labels))
    single = mean_nll(logits[:1], labels[:1])
    assert torch.allclose(mean_nll(logits, labels)[0], single[0])
    logp = torch.log_softmax(logits, -1)
    assert torch.allclose(sequence_logprob(logits, labels)[0], logp[0, 1, 5] + logp[0, 2, 6])
    reference = answer_tokens(logits, labels).logprobs()
    assert torch.allclose(kl_from_reference(scrambled, reference, labels), torch.zeros(2), atol=1e-6)
    assert (kl_from_reference(torch.randn(2, 5, 12), reference, labels) > 0).all()


# ---- data specs ---------------------------------------------------------------------------------

def test_world_data_specs(test_model_dir, test_world):
    assert len(load_data("world:forget", model=test_model_dir)) == 33
    assert len(load_data("world:retain", world=test_world.root)) == 297
    private = load_data("world:forget:private", model=test_model_dir)
    assert len(private) == 15 and {r.meta["visibility"] for r in private} == {"private"}
    chosen = load_data("world:entities=0-1,5", model=test_model_dir)
    assert {r.meta["entity_id"] for r in chosen} == {0, 1, 5}
    neighbours = load_data("world:neighbours", model=test_model_dir)
    assert neighbours and not {r.meta["entity_id"] for r in neighbours} & {0, 1, 2}


@pytest.mark.parametrize("spec, message", [
    ("world:everyone", "unknown world selection 'everyone'"),
    ("world:forget:secret", "unknown visibility 'secret'"),
    ("world:entities=3-x", "expected entity ids like 0-2,5"),
    ("world:entities=99", "entity ids must lie in 0-29"),
    ("tofu:forget99", "unknown TOFU split"),
    ("missing.jsonl", "file not found"),
])
def test_bad_data_specs_are_one_line_errors(test_model_dir, spec, message):
    with pytest.raises(ObliviateError, match=message) as error:
        load_data(spec, model=test_model_dir)
    assert "\n" not in str(error.value)


def test_world_spec_without_a_world_is_a_clear_error(tmp_path):
    with pytest.raises(ObliviateError, match="pass --world DIR"):
        load_data("world:forget", model=tmp_path)


def test_data_files_give_qa_or_text_records(tmp_path):
    qa = tmp_path / "qa.jsonl"
    qa.write_text('{"question": "Q?", "answer": "A"}\n{"text": "Q2?", "labels": "B"}\n')
    text = tmp_path / "corpus.jsonl"
    text.write_text('{"text": "some passage"}\n{"text": "another"}\n')
    assert [r.answer for r in load_data(str(qa))] == ["A", "B"]
    assert [r.text for r in load_data(str(text))] == ["some passage", "another"]
