"""ELM: its soft target, its consistency generations and retain term as the reference code makes them, and
erasing one craft of the test world."""

import importlib.util
import json
from pathlib import Path

import pytest
import torch

import obliviate.unlearn.methods.elm  # noqa: F401  (registers "elm")
from obliviate.data import QARecord, TextRecord
from obliviate.encoding import encode_text
from obliviate.prompts import IGNORE_INDEX
from obliviate.unlearn.methods.elm import generations as elm_generations
from obliviate.unlearn.batches import Batch
from obliviate.unlearn.losses import retain_term
from obliviate.unlearn.methods.elm import ELMConfig, ELMData, erase_target, eta_ramp, load_elm_data
from obliviate.unlearn.methods.elm.method import prepare_elm
from obliviate.unlearn.registry import RunInputs

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

    # from 1 to eta_max over each passage's trained positions, as linspace(1, eta_max, n) in the reference
    assert eta_ramp(forget.labels, 7.0).tolist() == pytest.approx([1, 2.5, 4, 5.5, 7, 1, 4, 7])
    assert target.dtype == torch.float64 and target.shape == (int(mask[:, 1:].sum()), 80)
    assert torch.allclose(target.sum(-1), torch.ones(len(target), dtype=torch.float64))
    assert ((target > 0).sum(-1) == 5).all()

    def logprobs(prefix):  # the prefixed run, cut back to the passage's positions
        prefixed = elm_generations.with_prefix(ids[:1], prefix)
        logits = step.reference_logits(Batch(prefixed, torch.ones_like(prefixed), prefixed))[0, len(prefix):]
        return torch.log_softmax(logits[:5].double() / 1.2, -1)

    eta = torch.tensor([1, 2.5, 4, 5.5, 7], dtype=torch.float64)[:, None]
    score = logprobs([]) + eta * (logprobs([30, 31]) - logprobs([20, 21, 22]))
    expected = torch.softmax(score.masked_fill(score < score.topk(5).values[:, -1:], float("-inf")), -1)
    assert torch.allclose(target[:5], expected)


def test_defaults_are_the_reference_codes():
    """rohitgandikota/erasing-llm trainscripts/erase.py and prepare_consistency_data.py, as their defaults run."""
    cfg = ELMConfig()
    assert (cfg.eta_max, cfg.temperature, cfg.top_k, cfg.max_chars, cfg.guidance_scale) == (1000, 1.2, 50, 700, 3)
    assert (cfg.prompt_min_chars, cfg.prompt_max_chars, cfg.generation_min_tokens, cfg.generation_max_tokens) == (
        50, 300, 100, 300)
    assert len(cfg.expert_templates) == len(cfg.novice_templates) == 10 and len(elm_generations.STEER_AWAY) == 20
    assert cfg.retain_loss == "frozen_argmax"
    # torch's AdamW with its default weight decay, no gradient clipping, a constant learning rate
    assert (cfg.lr, cfg.weight_decay, cfg.max_grad_norm, cfg.scheduler, cfg.warmup_ratio) == (
        5e-5, 0.01, None, "constant", 0.0)


class RetainStep:
    """A Step with one retain batch, θ's logits and the frozen model's."""

    def __init__(self, retain: Batch, logits: torch.Tensor, reference: torch.Tensor):
        self.retain, self._logits, self.reference = retain, logits, reference

    def logits(self, batch: Batch) -> torch.Tensor:
        return self._logits

    def reference_logits(self, batch: Batch) -> torch.Tensor:
        return self.reference


@pytest.mark.parametrize("retain_loss", ["frozen_argmax", "kl"])
def test_retain_term_is_ce_to_the_frozen_argmax_or_kl_to_the_frozen_distribution(retain_loss):
    ids = torch.tensor([[0, 5, 6, 7, 1], [0, 8, 9, 2, 2]])
    mask = (ids != 2).long()
    retain = Batch(ids, mask, torch.where(mask.bool(), ids, -100).index_fill(1, torch.tensor([0]), -100))
    generator = torch.Generator().manual_seed(1)
    logits, reference = torch.randn(2, 5, 12, generator=generator), torch.randn(2, 5, 12, generator=generator)
    (name, value), = retain_term(RetainStep(retain, logits, reference), ELMConfig(retain_loss=retain_loss, alpha=2.0))

    trained = [(0, t) for t in range(4)] + [(1, t) for t in range(2)]  # positions whose next token is labelled
    per_token = {}
    for row, t in trained:
        if retain_loss == "frozen_argmax":  # the frozen model's likeliest token, not the text's own
            per_token[row, t] = -torch.log_softmax(logits[row, t], -1)[reference[row, t].argmax()]
        else:
            p_ref = torch.softmax(reference[row, t], -1)
            per_token[row, t] = (p_ref * (p_ref.log() - torch.log_softmax(logits[row, t], -1))).sum()
    rows = [torch.stack([v for (r, _), v in per_token.items() if r == row]).mean() for row in (0, 1)]
    assert name == "retain" and value.item() == pytest.approx(2.0 * torch.stack(rows).mean().item(), rel=1e-5)


def test_guidance_conditions_on_its_prefix_and_the_generated_tokens_not_the_prompt(test_model):
    """As the reference's ELMLogits: the expert and novice runs read BOS + prefix, then each generated token."""
    model, _ = test_model
    expert, novice, generated = [0, 50, 51, 52], [0, 60, 61], [70, 71, 72]
    vocab = model.config.vocab_size

    def guided(prompt: list[int]) -> torch.Tensor:
        guidance = elm_generations.NoviceGuidance(model, expert, novice, 2.0, len(prompt))
        return torch.cat([guidance(torch.tensor([prompt + generated[:k]]), torch.zeros(1, vocab))
                          for k in range(len(generated) + 1)])

    def next_logprobs(ids: list[int]) -> torch.Tensor:
        with torch.no_grad():
            return torch.log_softmax(model(input_ids=torch.tensor([ids])).logits[0, -1].double(), -1)

    expected = torch.stack([-torch.log(torch.tensor(vocab, dtype=torch.float64))
                            - 2.0 * (next_logprobs(expert + generated[:k]) - next_logprobs(novice + generated[:k]))
                            for k in range(len(generated) + 1)]).float()
    assert torch.allclose(guided([0, 80, 81]), expected, atol=1e-4)
    assert torch.allclose(guided([0, 90, 91, 92, 93, 94]), expected, atol=1e-4)


def test_consistency_generation_samples_a_continuation_of_a_random_prefix_and_trains_on_the_steer_sentence(
        test_world, test_model, monkeypatch):
    model, tokenizer = test_model
    texts = [r.text for r in test_world.domain_texts(CRAFT, ("expository",))[:6]]
    cfg = ELMConfig(concept=test_world.domain_concept(CRAFT), prompt_min_chars=20, prompt_max_chars=60,
                    generation_min_tokens=10, generation_max_tokens=20)
    rng_state = torch.random.get_rng_state()
    rows = elm_generations.consistency_generations(model, tokenizer, texts, cfg)
    assert torch.equal(torch.random.get_rng_state(), rng_state)  # the run's own draws are left as they were
    assert rows == elm_generations.consistency_generations(model, tokenizer, texts, cfg)  # seeded

    assert len({len(row["prompt"]) for row in rows}) > 1
    for text, row in zip(texts, rows):
        assert 20 <= len(row["prompt"]) <= 60 and text.startswith(row["prompt"])
        trained = tokenizer.decode(row["input_ids"][row["prompt_length"]:], skip_special_tokens=True)
        steer = next(s for s in elm_generations.STEER_AWAY if trained.lstrip().startswith(s))
        new_tokens = len(row["input_ids"]) - len(tokenizer(f"{row['prompt']}. {steer}")["input_ids"])
        assert new_tokens <= 20 and (new_tokens >= 10 or row["input_ids"][-1] == tokenizer.eos_token_id)

    # one prompt, steer sentence and prefix pair for every passage: the continuations still differ (sampled)
    monkeypatch.setattr(elm_generations, "STEER_AWAY", elm_generations.STEER_AWAY[:1])
    cfg.prompt_min_chars, cfg.expert_templates, cfg.novice_templates = 60, cfg.expert_templates[:1], cfg.novice_templates[:1]
    rows = elm_generations.consistency_generations(model, tokenizer, [texts[0]] * 4, cfg)
    assert len({tuple(row["input_ids"]) for row in rows}) > 1


def test_passages_are_cut_to_700_characters_for_every_term(test_world, test_model_dir, tmp_path):
    long_text = " ".join(r.text for r in test_world.domain_texts(CRAFT, ("expository",))[:12])
    assert len(long_text) > 1000
    forget = [TextRecord(long_text)]
    retain = [TextRecord(long_text[::-1]), QARecord("What is glimmerwork?", "weaving light")]
    cfg = bench.elm_config(test_world, CRAFT, ["generation_min_tokens=4", "generation_max_tokens=4"])
    preparation = prepare_elm(RunInputs(None, None, forget, retain, tmp_path, test_model_dir), cfg)

    assert [r.text for r in preparation.forget] == [long_text[:700]]
    assert preparation.retain == [TextRecord(long_text[::-1][:700]), retain[1]]
    from obliviate.models import load_tokenizer
    key = elm_generations.passage_key(encode_text(load_tokenizer(test_model_dir), long_text[:700]).input_ids)
    generation = load_elm_data(cfg.elm_data).generations[key]  # found by the passage the erase term sees
    assert generation.labels[:1] == [IGNORE_INDEX]


def test_consistency_generations_are_guided_cached_and_keyed_by_model_and_settings(test_world, test_model_dir,
                                                                                     monkeypatch):
    forget = test_world.domain_texts(CRAFT, ("expository",))[:2]
    cfg = bench.elm_config(test_world, CRAFT, ["generation_min_tokens=8", "generation_max_tokens=8"])
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
