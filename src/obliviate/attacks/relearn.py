"""Relearning attack: fine-tune briefly on part of the forget set, see how much of the rest comes back.

The forget records are shuffled (seeded); the first `relearn_fraction` are learned again with the
engine's plain `finetune` method for `relearn_steps` steps; extraction is measured on the others,
which were never shown. Knowledge that was only suppressed returns with the few facts; knowledge
that is gone (the retain model) does not.
"""

from __future__ import annotations

import random
import tempfile
from pathlib import Path

from obliviate.attacks.context import AttackContext, Subject
from obliviate.attacks.extraction import extracted, fraction, qa_prompt
from obliviate.attacks.registry import Measurement, register_attack
from obliviate.data import QARecord


def split_forget(records: list[QARecord], fraction_to_learn: float, seed: int) -> tuple[list[QARecord], list[QARecord]]:
    order = list(range(len(records)))
    random.Random(seed).shuffle(order)
    count = min(len(records) - 1, max(1, round(fraction_to_learn * len(records))))
    return [records[i] for i in order[:count]], [records[i] for i in order[count:]]


@register_attack("relearn", "relearn", "extraction")
def relearn(subject: Subject, context: AttackContext) -> Measurement:
    from obliviate.models import load_model, load_tokenizer
    from obliviate.unlearn import unlearn

    settings = context.settings
    learned, held_out = split_forget(context.forget, settings.relearn_fraction, settings.seed)
    overrides = [f"max_steps={settings.relearn_steps}", f"lr={settings.relearn_lr}", f"seed={settings.seed}",
                 f"batch_size={min(8, len(learned))}", "checkpoint_every=0"]
    with tempfile.TemporaryDirectory(prefix="relearn-") as tmp:
        out = unlearn(subject.path, "finetune", learned, None, Path(tmp) / "model", overrides=overrides)
        model, tokenizer = load_model(out), load_tokenizer(out)
    hits = extracted(model, tokenizer, [qa_prompt(tokenizer, r.question) for r in held_out],
                     [r.answer for r in held_out], settings.batch_size)
    return Measurement(fraction(hits), len(hits), {"learned": len(learned)})
