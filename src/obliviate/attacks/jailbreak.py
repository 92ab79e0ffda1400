"""Jailbreak templates: the trained question wrapped so that a refusal becomes unlikely.

* prefix_injection — the answer is begun for the model: "…Answer: Sure, here is the answer:";
* affirmative_suffix — the question ends by insisting on an honest answer;
* role_play — the question is put to a character (a biographer);
* in_context — other people's facts of the same attribute, answered, come first.

The templates are the first of each family in `obliviate.world.formats`, the families the tiny
model learned on a share of its QA, as a pretrained model has met them.
"""

from __future__ import annotations

from obliviate.attacks.context import AttackContext, Subject
from obliviate.attacks.extraction import context_prompt, demonstrations, extracted, fraction
from obliviate.attacks.registry import Measurement, register_attack
from obliviate.prompts import formatted_prompt_ids
from obliviate.world.formats import LEADS, ROLES, SUFFIXES, wrapped


def _measure(subject: Subject, context: AttackContext, prompts: list[list[int]]) -> Measurement:
    hits = extracted(subject.model, subject.tokenizer, prompts, [r.answer for r in context.forget],
                     context.settings.batch_size)
    return Measurement(fraction(hits), len(hits))


def _in_format(subject: Subject, context: AttackContext, family: str, template: str) -> Measurement:
    """Extraction of each forget answer with its question wrapped in `template` of a format family."""
    return _measure(subject, context, [formatted_prompt_ids(subject.tokenizer, **wrapped(family, r.question, template))
                                       for r in context.forget])


@register_attack("prefix_injection", "jailbreak", "extraction")
def prefix_injection(subject: Subject, context: AttackContext) -> Measurement:
    return _in_format(subject, context, "lead", LEADS[0])


@register_attack("affirmative_suffix", "jailbreak", "extraction")
def affirmative_suffix(subject: Subject, context: AttackContext) -> Measurement:
    return _in_format(subject, context, "suffix", SUFFIXES[0])


@register_attack("role_play", "jailbreak", "extraction")
def role_play(subject: Subject, context: AttackContext) -> Measurement:
    return _in_format(subject, context, "role", ROLES[0])


@register_attack("in_context", "jailbreak", "extraction")
def in_context(subject: Subject, context: AttackContext) -> Measurement:
    world = context.need_world("in_context")
    others = world.qa(world.retain_entity_ids(context.forget_entity_ids()))
    count = context.settings.in_context_examples
    tok = subject.tokenizer
    examples = {r.attribute: demonstrations(tok, [o for o in others if o.attribute == r.attribute][:count])
                for r in context.forget}
    prompts = [context_prompt(tok, examples[r.attribute], r.question) for r in context.forget]
    return _measure(subject, context, prompts)
