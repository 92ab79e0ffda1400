"""GCG: a greedy coordinate gradient search for an adversarial suffix that makes the model say the answer.

Per forget question (the first `gcg_questions`), a suffix of `gcg_suffix_tokens` tokens is put
after the question inside the prompt. Each step takes the gradient of the answer's loss with
respect to the suffix's one-hot token matrix (through the input embeddings), keeps the `gcg_top_k`
most promising tokens per position, evaluates `gcg_candidates` single-token swaps in one batch
and keeps the best; the search stops early once greedy decoding gives the answer. No token of any
forget answer or of its wrong answers (nor special tokens) may be used: a suffix that spells the
answer out makes even a model that never learned it repeat it.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from obliviate.attacks.context import AttackContext, AttackSettings, Subject
from obliviate.attacks.extraction import fraction
from obliviate.attacks.registry import Measurement, register_attack
from obliviate.models.architecture import embedding_matrix
from obliviate.prompts import answer_ids, continuation_ids, prompt_text

MARKER = "\u2063"  # an invisible character that splits the prompt text where the suffix goes


def prompt_around_suffix(tokenizer, question: str) -> tuple[list[int], list[int]]:
    """The prompt's token ids before and after the suffix position (the question's end)."""
    before, after = prompt_text(tokenizer, question + MARKER).split(MARKER)
    has_template = bool(getattr(tokenizer, "chat_template", None))
    return (tokenizer(before, add_special_tokens=not has_template)["input_ids"],
            tokenizer(after, add_special_tokens=False)["input_ids"])


def _answer_losses(model, sequences: torch.Tensor, target: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per row: the answer's mean NLL, and whether every answer token is the argmax (greedy gives it)."""
    logits = model(input_ids=sequences).logits[:, -len(target) - 1:-1]
    losses = F.cross_entropy(logits.transpose(1, 2), target.expand(len(sequences), -1), reduction="none").mean(1)
    return losses, (logits.argmax(-1) == target).all(1)


def search_suffix(model, tokenizer, question: str, answer: str, banned: set[int], settings: AttackSettings,
                  generator: torch.Generator) -> tuple[bool, list[int], int]:
    """(answer extracted, best suffix, steps used) for one question."""
    device = next(model.parameters()).device
    before, after = prompt_around_suffix(tokenizer, question)
    target = torch.tensor(continuation_ids(tokenizer, after, answer), device=device)
    embeddings = embedding_matrix(model)
    vocab = embeddings.shape[0]
    forbidden = torch.zeros(vocab, dtype=torch.bool, device=device)
    forbidden[[i for i in tokenizer.all_special_ids if i < vocab] + [i for i in banned if i < vocab]] = True
    allowed = (~forbidden).nonzero().flatten()
    suffix = allowed[torch.randint(len(allowed), (settings.gcg_suffix_tokens,), generator=generator)].to(device)
    head, tail = torch.tensor(before, device=device), torch.cat([torch.tensor(after, device=device), target])

    def sequences(suffixes: torch.Tensor) -> torch.Tensor:
        n = len(suffixes)
        return torch.cat([head.expand(n, -1), suffixes, tail.expand(n, -1)], dim=1)

    with torch.no_grad():
        _, success = _answer_losses(model, sequences(suffix[None]), target)
    for step in range(settings.gcg_steps):
        if bool(success[0]):
            return True, suffix.tolist(), step
        one_hot = F.one_hot(suffix, vocab).to(embeddings.dtype).requires_grad_(True)
        embedded = torch.cat([embeddings[head], one_hot @ embeddings, embeddings[tail]])[None]
        logits = model(inputs_embeds=embedded).logits[0, -len(target) - 1:-1]
        grad, = torch.autograd.grad(F.cross_entropy(logits, target), one_hot)
        grad[:, forbidden] = float("inf")
        top = (-grad).topk(settings.gcg_top_k, dim=1).indices  # (suffix tokens, top k)
        positions = torch.randint(len(suffix), (settings.gcg_candidates,), generator=generator).to(device)
        choices = torch.randint(settings.gcg_top_k, (settings.gcg_candidates,), generator=generator).to(device)
        candidates = suffix.repeat(settings.gcg_candidates, 1)
        candidates[torch.arange(len(candidates)), positions] = top[positions, choices]
        with torch.no_grad():
            losses, successes = _answer_losses(model, sequences(candidates), target)
        best = int(losses.argmin())
        suffix, success = candidates[best], successes[best:best + 1]
    return bool(success[0]), suffix.tolist(), settings.gcg_steps


@register_attack("gcg", "gcg", "extraction")
def gcg(subject: Subject, context: AttackContext) -> Measurement:
    settings = context.settings
    records = context.forget[:settings.gcg_questions]
    banned = {i for r in context.forget for a in [r.answer, *r.meta.get("wrong_answers", [])]
              for i in answer_ids(subject.tokenizer, a, add_eos=False)}
    generator = torch.Generator().manual_seed(settings.seed)
    model = subject.model
    was_training = model.training
    model.eval()
    requires_grad = [p.requires_grad for p in model.parameters()]
    model.requires_grad_(False)  # gradients flow to the one-hot suffix only
    try:
        results = [search_suffix(model, subject.tokenizer, r.question, r.answer, banned, settings, generator)
                   for r in records]
    finally:
        for parameter, flag in zip(model.parameters(), requires_grad):
            parameter.requires_grad_(flag)
        model.train(was_training)
    hits = [hit for hit, _, _ in results]
    return Measurement(fraction(hits), len(hits), {
        "suffixes": [subject.tokenizer.decode(suffix) for _, suffix, _ in results],
        "steps": [steps for _, _, steps in results]})
