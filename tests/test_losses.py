"""Every method's loss against a hand computation of its reference formula on tiny tensors.

Each method's loss function runs on a stand-in for the training step that hands it fixed logits (or hidden
states); the expected value is computed here with plain torch, the way the papers and open-unlearning write
them: per-sequence sums of token log-probabilities for the preference losses, token means over the labelled
answer positions for the others. The main batches have answers of the same length, where open-unlearning's
token mean over the batch equals obliviate's mean over sequences of per-sequence means; `test_every_sequence_
weighs_the_same` pins obliviate's choice where the lengths differ. Known differences from open-unlearning are
said in the tests that meet them.
"""

from __future__ import annotations

import math
from types import SimpleNamespace

import pytest
import torch
import torch.nn.functional as F

from obliviate.unlearn.config import UnlearnConfig
from obliviate.unlearn.methods.dpo import DPOConfig, IdkPOConfig
from obliviate.unlearn.methods.ga import GAKLConfig, GradDiffConfig
from obliviate.unlearn.methods.idk import IDKConfig
from obliviate.unlearn.methods.me import MEConfig
from obliviate.unlearn.methods.npo import NPOConfig, NPOGDConfig, NPOKLConfig
from obliviate.unlearn.methods.rmu import RMUConfig
from obliviate.unlearn.methods.simnpo import SimNPOConfig
from obliviate.unlearn.methods.undial import UNDIALConfig
from obliviate.unlearn.methods.wga import WGAConfig
from obliviate.unlearn.registry import get_method

VOCAB, HIDDEN = 7, 5
IGNORE = -100
# Two prompt positions, then three answer tokens per row: the logits at positions 1..3 predict them.
FORGET_LABELS = torch.tensor([[IGNORE, IGNORE, 3, 5, 1], [IGNORE, IGNORE, 2, 6, 4]])
ALTERNATIVE_LABELS = torch.tensor([[IGNORE, IGNORE, 0, 4, 2], [IGNORE, IGNORE, 6, 1, 3]])
RETAIN_LABELS = torch.tensor([[IGNORE, 4, 4, 0, IGNORE], [IGNORE, 1, 5, 2, IGNORE]])


def random_outputs(seed: int, labels: torch.Tensor, size: int = VOCAB) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return torch.randn(*labels.shape, size, generator=generator) * 2


class FakeStep:
    """What a loss function sees, with fixed outputs: the model's and the reference model's logits (or hidden
    states) per batch."""

    def __init__(self, outputs: dict, reference: dict | None = None, hidden: dict | None = None,
                 reference_hidden: dict | None = None, **batches):
        self.forget, self.retain, self.alternative = (batches.get(name) for name in ("forget", "retain", "alternative"))
        self._outputs, self._reference = outputs, reference or {}
        self._hidden, self._reference_hidden = hidden or {}, reference_hidden or {}

    def logits(self, batch):
        return self._outputs[id(batch)].clone()

    def joint_logits(self, *batches):
        return [self.logits(batch) for batch in batches]

    def reference_logits(self, batch):
        return self._reference[id(batch)].clone()

    def hidden(self, batch):
        return self._hidden[id(batch)].clone()

    def reference_hidden(self, batch):
        return self._reference_hidden[id(batch)].clone()


def terms(method: str, step: FakeStep, cfg) -> dict[str, float]:
    return {name: value.item() for name, value in get_method(method).loss(step, cfg)}


# The reference computations, written from the formulas (open-unlearning's trainer/utils.py and the papers).

def shifted(logits: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    return logits[:, :-1], labels[:, 1:]


def token_nll(logits, labels) -> torch.Tensor:
    """(batch, width-1) NLL of each next token, 0 where unlabelled."""
    logits, labels = shifted(logits, labels)
    return F.cross_entropy(logits.transpose(1, 2), labels, ignore_index=IGNORE, reduction="none")


def answer_mask(labels) -> torch.Tensor:
    return labels[:, 1:] != IGNORE


def batch_nll(logits, labels) -> torch.Tensor:
    """open-unlearning's compute_batch_nll: the summed NLL of each sequence's answer."""
    return token_nll(logits, labels).sum(-1)


def hf_loss(logits, labels) -> torch.Tensor:
    """A Hugging Face model's `loss`: the mean NLL over every labelled token of the batch."""
    logits, labels = shifted(logits, labels)
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), labels.reshape(-1), ignore_index=IGNORE)


def kl_reference_to_model(logits, reference_logits, labels) -> torch.Tensor:
    """KL(p_ref || p_θ) per answer token, averaged over the answer tokens of the batch."""
    p_ref = torch.softmax(shifted(reference_logits, labels)[0], -1)
    log_model = torch.log_softmax(shifted(logits, labels)[0], -1)
    kl = (p_ref * (p_ref.log() - log_model)).sum(-1)
    return kl[answer_mask(labels)].mean()


def npo_loss(logits, reference_logits, labels, beta) -> torch.Tensor:
    """NPO (Zhang et al. 2024): -(2/β)·mean log σ(-β·(log π_θ(y|x) - log π_ref(y|x)))."""
    log_ratio = -batch_nll(logits, labels) + batch_nll(reference_logits, labels)
    return -(2 / beta) * F.logsigmoid(-beta * log_ratio).mean()


@pytest.fixture
def batches():
    forget = SimpleNamespace(labels=FORGET_LABELS)
    retain = SimpleNamespace(labels=RETAIN_LABELS)
    alternative = SimpleNamespace(labels=ALTERNATIVE_LABELS)
    logits = {id(forget): random_outputs(0, FORGET_LABELS), id(retain): random_outputs(1, RETAIN_LABELS),
              id(alternative): random_outputs(2, ALTERNATIVE_LABELS)}
    reference = {id(forget): random_outputs(3, FORGET_LABELS), id(retain): random_outputs(4, RETAIN_LABELS),
                 id(alternative): random_outputs(5, ALTERNATIVE_LABELS)}
    # The loop computes log p_ref(answer | prompt) once before training; here from the reference logits.
    forget.reference_logprobs = -batch_nll(reference[id(forget)], FORGET_LABELS)
    alternative.reference_logprobs = -batch_nll(reference[id(alternative)], ALTERNATIVE_LABELS)
    return SimpleNamespace(forget=forget, retain=retain, alternative=alternative, logits=logits, reference=reference,
                           step=FakeStep(logits, reference, forget=forget, retain=retain, alternative=alternative))


def test_ga_graddiff_and_ga_kl(batches):
    forget, retain = batches.logits[id(batches.forget)], batches.logits[id(batches.retain)]
    reference_retain = batches.reference[id(batches.retain)]
    ga = terms("ga", batches.step, UnlearnConfig(gamma=1.5))
    assert ga == {"forget": pytest.approx(-1.5 * hf_loss(forget, FORGET_LABELS).item(), rel=1e-5)}
    graddiff = terms("graddiff", batches.step, GradDiffConfig(alpha=0.7))
    assert graddiff["forget"] == pytest.approx(-hf_loss(forget, FORGET_LABELS).item(), rel=1e-5)
    assert graddiff["retain"] == pytest.approx(0.7 * hf_loss(retain, RETAIN_LABELS).item(), rel=1e-5)
    # open-unlearning's compute_kl_divergence averages KL(p_ref || p_θ) over every position of the retain
    # sequences (prompt and padding included); obliviate over the answer tokens only.
    ga_kl = terms("ga_kl", batches.step, GAKLConfig(alpha=0.7))
    expected = 0.7 * kl_reference_to_model(retain, reference_retain, RETAIN_LABELS).item()
    assert ga_kl["retain"] == pytest.approx(expected, rel=1e-5) and expected > 0


def test_npo_and_its_retain_terms(batches):
    forget = batches.logits[id(batches.forget)]
    expected = npo_loss(forget, batches.reference[id(batches.forget)], FORGET_LABELS, beta=0.3).item()
    assert terms("npo", batches.step, NPOConfig(beta=0.3)) == {"forget": pytest.approx(expected, rel=1e-5)}
    npo_gd = terms("npo_gd", batches.step, NPOGDConfig(beta=0.3, gamma=2.0, alpha=0.5))
    assert npo_gd["forget"] == pytest.approx(2.0 * expected, rel=1e-5)
    assert npo_gd["retain"] == pytest.approx(0.5 * hf_loss(batches.logits[id(batches.retain)], RETAIN_LABELS).item(),
                                             rel=1e-5)
    npo_kl = terms("npo_kl", batches.step, NPOKLConfig(beta=0.3))
    retain_kl = kl_reference_to_model(batches.logits[id(batches.retain)], batches.reference[id(batches.retain)],
                                      RETAIN_LABELS)
    assert npo_kl["retain"] == pytest.approx(retain_kl.item(), rel=1e-5)


def test_npo_at_the_reference_is_2_over_beta_log_2(batches):
    """θ = ref: every log ratio is 0 and the loss is (2/β)·log 2, the starting value of every NPO run."""
    batches.forget.reference_logprobs = -batch_nll(batches.logits[id(batches.forget)], FORGET_LABELS)
    assert terms("npo", batches.step, NPOConfig(beta=0.5))["forget"] == pytest.approx(4 * math.log(2), rel=1e-5)


def test_simnpo(batches):
    """SimNPO (Fan et al. 2024): -(2/β)·mean log σ(-(β/|y|)·log π_θ(y|x) - δ), no reference model. open-unlearning
    writes -(2/β)·log σ(β·(NLL/|y| - δ)): the same at δ = 0 (the default), β·δ instead of δ otherwise."""
    forget = batches.logits[id(batches.forget)]
    lengths = answer_mask(FORGET_LABELS).sum(-1)
    normalised_nll = batch_nll(forget, FORGET_LABELS) / lengths
    for delta in (0.0, 0.4):
        cfg = SimNPOConfig(beta=2.5, delta=delta, gamma=0.125, retain_loss="none")
        paper = -(2 / 2.5) * F.logsigmoid(2.5 * normalised_nll - delta).mean()
        assert terms("simnpo", batches.step, cfg) == {"forget": pytest.approx(0.125 * paper.item(), rel=1e-5)}
    open_unlearning = -(2 / 2.5) * F.logsigmoid(2.5 * (normalised_nll - 0.0)).mean()
    cfg = SimNPOConfig(beta=2.5, delta=0.0, gamma=1.0, retain_loss="none")
    assert terms("simnpo", batches.step, cfg)["forget"] == pytest.approx(open_unlearning.item(), rel=1e-5)


@pytest.mark.parametrize("method, config", [("dpo", DPOConfig), ("idkpo", IdkPOConfig)])
def test_dpo_prefers_the_alternative_to_the_forget_answer(batches, method, config):
    """DPO (Rafailov et al. 2023) as open-unlearning's compute_dpo_loss: the alternative answer (a wrong one, or
    a refusal) wins, the forget answer loses: -(2/β)·mean log σ(β·(log-ratio_win - log-ratio_lose))."""
    logits, reference = batches.logits, batches.reference
    forget, alternative = batches.forget, batches.alternative
    lose = -batch_nll(logits[id(forget)], FORGET_LABELS) + batch_nll(reference[id(forget)], FORGET_LABELS)
    win = (-batch_nll(logits[id(alternative)], ALTERNATIVE_LABELS)
           + batch_nll(reference[id(alternative)], ALTERNATIVE_LABELS))
    expected = -(2 / 0.2) * F.logsigmoid(0.2 * (win - lose)).mean()
    assert terms(method, batches.step, config(beta=0.2)) == {"forget": pytest.approx(expected.item(), rel=1e-5)}


def test_idk_learns_the_refusal(batches):
    found = terms("idk", batches.step, IDKConfig(gamma=1.0, alpha=2.0))
    assert found["forget"] == pytest.approx(hf_loss(batches.logits[id(batches.alternative)],
                                                    ALTERNATIVE_LABELS).item(), rel=1e-5)
    assert found["retain"] == pytest.approx(2.0 * hf_loss(batches.logits[id(batches.retain)],
                                                          RETAIN_LABELS).item(), rel=1e-5)


def test_undial(batches):
    """UNDIAL (Dong et al. 2024): cross-entropy of θ against softmax(z_ref - β·onehot(y)) at each answer token.
    open-unlearning's compute_undial_loss averages it over every position (prompt and padding too, where the
    label -100 indexes the vocabulary from its end); obliviate over the answer tokens only."""
    logits, labels = shifted(batches.logits[id(batches.forget)], FORGET_LABELS)
    reference = shifted(batches.reference[id(batches.forget)], FORGET_LABELS)[0]
    mask = answer_mask(FORGET_LABELS)
    onehot = F.one_hot(labels.clamp(min=0), VOCAB).float()
    target = torch.softmax(reference - 3.0 * onehot, -1)
    cross_entropy = -(target * torch.log_softmax(logits, -1)).sum(-1)
    expected = cross_entropy[mask].mean()
    assert terms("undial", batches.step, UNDIALConfig(beta=3.0)) == {"forget": pytest.approx(expected.item(),
                                                                                            rel=1e-5)}


def test_wga(batches):
    """WGA (Wang et al. 2025), as open-unlearning's compute_wga_loss: -mean(exp(-ℓ)^β · ℓ) over the answer tokens,
    the weight detached."""
    nll = token_nll(batches.logits[id(batches.forget)], FORGET_LABELS)[answer_mask(FORGET_LABELS)]
    expected = -(torch.exp(-nll) ** 0.6 * nll).mean()
    cfg = WGAConfig(beta=0.6, retain_loss="none")
    assert terms("wga", batches.step, cfg) == {"forget": pytest.approx(expected.item(), rel=1e-5)}


def test_wga_weight_carries_no_gradient(batches):
    logits = batches.logits[id(batches.forget)].requires_grad_(True)
    step = FakeStep({id(batches.forget): logits}, forget=batches.forget)
    step.logits = lambda batch: logits
    (_, loss), = get_method("wga").loss(step, WGAConfig(beta=0.6, retain_loss="none"))
    loss.backward()
    weights = torch.exp(-0.6 * token_nll(logits.detach(), FORGET_LABELS))
    mask = answer_mask(FORGET_LABELS)
    leaf = logits.detach().requires_grad_(True)
    expected = -(weights[mask] * token_nll(leaf, FORGET_LABELS)[mask]).mean()
    expected.backward()
    assert torch.allclose(logits.grad, leaf.grad, atol=1e-6)


def test_maximum_entropy(batches):
    """ME (Yuan et al. 2024): KL(p_θ || uniform) averaged over the answer tokens. obliviate minimises the negative
    entropy -H(p_θ) = KL(p_θ || U) - log V: the same gradient, a loss lower by log V."""
    logits, _ = shifted(batches.logits[id(batches.forget)], FORGET_LABELS)
    p = torch.softmax(logits, -1)
    kl_to_uniform = (p * (p.log() - math.log(1 / VOCAB))).sum(-1)[answer_mask(FORGET_LABELS)].mean()
    found = terms("me_gd", batches.step, MEConfig(retain_loss="none"))
    assert found == {"forget": pytest.approx(kl_to_uniform.item() - math.log(VOCAB), rel=1e-5)}


def test_rmu():
    """RMU (Li et al. 2024, WMDP): MSE(h_θ(x_f), c·u) + α·MSE(h_θ(x_r), h_ref(x_r)) at one layer, u a fixed random
    unit vector (uniform in [0, 1) before normalising). The WMDP code averages over every position of the layer's
    output; obliviate over the answer positions (per sequence, then over sequences)."""
    forget, retain = SimpleNamespace(labels=FORGET_LABELS), SimpleNamespace(labels=RETAIN_LABELS)
    hidden = {id(forget): random_outputs(6, FORGET_LABELS, HIDDEN),
              id(retain): random_outputs(7, RETAIN_LABELS, HIDDEN)}
    reference = {id(retain): random_outputs(8, RETAIN_LABELS, HIDDEN)}
    step = FakeStep({}, hidden=hidden, reference_hidden=reference, forget=forget, retain=retain)
    cfg = RMUConfig(layer=1, steering_coef=4.0, alpha=30.0, seed=3)
    u = torch.rand(HIDDEN, generator=torch.Generator().manual_seed(3))
    control = 4.0 * u / u.norm()
    forget_mask, retain_mask = answer_mask(FORGET_LABELS), answer_mask(RETAIN_LABELS)
    forget_mse = F.mse_loss(hidden[id(forget)][:, :-1][forget_mask], control.expand(int(forget_mask.sum()), HIDDEN))
    retain_mse = F.mse_loss(hidden[id(retain)][:, :-1][retain_mask], reference[id(retain)][:, :-1][retain_mask])
    found = terms("rmu", step, cfg)
    assert found == {"forget": pytest.approx(forget_mse.item(), rel=1e-5),
                     "retain": pytest.approx(30.0 * retain_mse.item(), rel=1e-5)}


def test_every_sequence_weighs_the_same():
    """Answers of different lengths (and padding): obliviate averages each sequence's tokens, then the sequences
    (obliviate.unlearn.losses), so a batch split over processes trains like the whole batch. A Hugging Face
    model's loss (open-unlearning's GA, GradDiff's retain term, WGA) averages all the tokens of the batch, which
    weighs a long answer more."""
    labels = torch.tensor([[IGNORE, IGNORE, 3, 5, 1, 2], [IGNORE, IGNORE, 4, IGNORE, IGNORE, IGNORE]])
    forget = SimpleNamespace(labels=labels)
    logits = random_outputs(9, labels)
    step = FakeStep({id(forget): logits}, forget=forget)
    nll, mask = token_nll(logits, labels), answer_mask(labels)
    per_sequence = ((nll * mask).sum(-1) / mask.sum(-1)).mean()
    found = terms("ga", step, UnlearnConfig())["forget"]
    assert found == pytest.approx(-per_sequence.item(), rel=1e-5)
    assert found != pytest.approx(-hf_loss(logits, labels).item(), rel=1e-3)


class NoLogitsToKeep(torch.nn.Module):
    """A causal LM whose forward has no `logits_to_keep`: the step must give it every position."""

    def __init__(self, model):
        super().__init__()
        self.inner = model

    def forward(self, input_ids, attention_mask, use_cache=False):
        return self.inner(input_ids=input_ids, attention_mask=attention_mask, use_cache=use_cache)


def test_logits_only_from_the_first_answer_position_give_the_same_losses():
    """`Step.logits` asks the model for the positions from the one before the first answer token on; every loss
    over them, and DPO's joint forward pass, equals the one over all positions."""
    from transformers import LlamaConfig, LlamaForCausalLM

    from obliviate.unlearn.batches import Batch
    from obliviate.unlearn.losses import mean_nll, sequence_logprob
    from obliviate.unlearn.registry import Step

    torch.manual_seed(0)
    model = LlamaForCausalLM(LlamaConfig(vocab_size=VOCAB, hidden_size=16, intermediate_size=32, num_hidden_layers=2,
                                         num_attention_heads=2, num_key_value_heads=2)).eval()
    forget = Batch(torch.randint(VOCAB, (2, 5)), torch.ones(2, 5, dtype=torch.long), FORGET_LABELS)
    # a narrower batch, right-padded in the joint pass, whose second answer is shorter
    alternative = Batch(torch.randint(VOCAB, (2, 4)), torch.ones(2, 4, dtype=torch.long),
                        torch.tensor([[IGNORE, IGNORE, 2, 0], [IGNORE, IGNORE, 3, IGNORE]]))
    step = Step(model, SimpleNamespace(forget=forget, retain=None, alternative=alternative), pad_id=0)
    everything = Step(NoLogitsToKeep(model), SimpleNamespace(forget=forget, retain=None, alternative=alternative),
                      pad_id=0)
    narrow, full = step.logits(forget), everything.logits(forget)
    assert narrow.shape[1] == forget.scored_width == 4 and full.shape[1] == 5
    torch.testing.assert_close(narrow, full[:, 1:])
    torch.testing.assert_close(mean_nll(narrow, forget.labels), mean_nll(full, forget.labels))
    for part_narrow, part_full, batch in zip(step.joint_logits(forget, alternative),
                                             everything.joint_logits(forget, alternative), (forget, alternative)):
        assert part_narrow.shape[1] < part_full.shape[1] == batch.width
        torch.testing.assert_close(sequence_logprob(part_narrow, batch.labels), sequence_logprob(part_full, batch.labels))
