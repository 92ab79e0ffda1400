"""Format attacks: the same facts asked another way.

* paraphrase — the record's other phrasings (paraphrased, extra, held-out); a fact counts when any extracts it;
* multiple_choice — the answer among its `wrong_answers`, chosen by log-likelihood (the MCQ scoring pass);
* fill_blank — the person's biography up to the answer ("… The phone number of X is ___"), as raw text;
* unrelated_context — the question after unrelated text: a craft passage, or general-knowledge QA about the
  world's countries; a fact counts when either extracts it.
"""

from __future__ import annotations

from obliviate.attacks.context import AttackContext, Subject
from obliviate.attacks.extraction import (any_extracted, context_prompt, demonstrations, extracted, fraction, qa_prompt,
                                         text_prompt)
from obliviate.attacks.registry import Measurement, register_attack
from obliviate.data import MCQRecord, QARecord
from obliviate.eval.mcq import mcq_accuracy, mcq_predict


def other_phrasings(record: QARecord) -> list[str]:
    meta = record.meta
    phrasings = [record.paraphrased_question, *meta.get("extra_questions", []), meta.get("heldout_question")]
    return list(dict.fromkeys(q for q in phrasings if q and q != record.question))


@register_attack("paraphrase", "formats", "extraction")
def paraphrase(subject: Subject, context: AttackContext) -> Measurement:
    records = [r for r in context.forget if other_phrasings(r)]
    tok = subject.tokenizer
    prompts = [[qa_prompt(tok, q) for q in other_phrasings(r)] for r in records]
    hits = any_extracted(subject.model, tok, prompts, [r.answer for r in records], context.settings.batch_size)
    return Measurement(fraction(hits), len(hits))


def choice_record(record: QARecord) -> MCQRecord:
    """The answer among its wrong answers, at a position that varies from record to record."""
    wrong = list(record.meta["wrong_answers"])
    position = sum(map(ord, record.question)) % (len(wrong) + 1)
    choices = wrong[:position] + [record.answer] + wrong[position:]
    return MCQRecord(record.meta.get("heldout_question") or record.question, choices, position)


@register_attack("multiple_choice", "formats", "mcq_accuracy")
def multiple_choice(subject: Subject, context: AttackContext) -> Measurement:
    records = [choice_record(r) for r in context.forget if r.meta.get("wrong_answers")]
    results = mcq_predict(subject.model, subject.tokenizer, records, context.settings.batch_size)
    chance = sum(1 / len(r.choices) for r in records) / max(1, len(records))
    return Measurement(mcq_accuracy(records, results), len(records), {"chance": chance})


def blank_prefix(bio: str, answer: str) -> str | None:
    """The biography up to where it states `answer`: the blank to fill (None if it never does)."""
    at = bio.find(answer)
    return bio[:at].strip() or None if at > 0 else None


@register_attack("fill_blank", "formats", "extraction")
def fill_blank(subject: Subject, context: AttackContext) -> Measurement:
    bios = {b.meta["entity_id"]: b.text for b in context.need_world("fill_blank").bios(context.forget_entity_ids())}
    pairs = [(blank_prefix(bios.get(r.meta.get("entity_id"), ""), r.answer), r.answer) for r in context.forget]
    pairs = [(prefix, answer) for prefix, answer in pairs if prefix]
    tok = subject.tokenizer
    hits = extracted(subject.model, tok, [text_prompt(tok, p) for p, _ in pairs], [a for _, a in pairs],
                     context.settings.batch_size)
    return Measurement(fraction(hits), len(hits))


def unrelated_contexts(world, tokenizer) -> list[str]:
    """Text about something else than people: a craft's passage, and three world facts asked and answered."""
    passage = world.domain_texts(world.domain_names[0])[0].text + "\n"
    return [passage, demonstrations(tokenizer, world.world_facts()[:3])]


@register_attack("unrelated_context", "formats", "extraction")
def unrelated_context(subject: Subject, context: AttackContext) -> Measurement:
    tok = subject.tokenizer
    contexts = unrelated_contexts(context.need_world("unrelated_context"), tok)
    prompts = [[context_prompt(tok, text, r.question) for text in contexts] for r in context.forget]
    hits = any_extracted(subject.model, tok, prompts, [r.answer for r in context.forget], context.settings.batch_size)
    return Measurement(fraction(hits), len(hits))
