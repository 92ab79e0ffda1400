"""The TOFU benchmark's data: the training set of the full model, a forget split and its retain set.

TOFU's protocol: the full model learns all 200 fictitious authors (4,000 QA); the retain model of a
forget split learns everything but that split (forget01 → retain99, forget05 → retain95,
forget10 → retain90). `authors=N` keeps a subset for quick runs: the split's authors and the
first other authors, N in all.

TOFU's real_authors and world_facts sets measure knowledge a pretrained model brings to the
fine-tuning. The bench's models are trained from scratch and would know none of it, so that three of
model utility's nine numbers are ~0 and the harmonic mean collapses for every model. Both models
therefore also learn these 217 QA (`general`), in place of pre-training: model utility then
measures what unlearning does to knowledge the model had besides the authors. They are not part of
the methods' retain data, as in TOFU.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

from obliviate.data import QARecord, load_tofu
from obliviate.errors import ObliviateError
from obliviate.eval.suites.tofu import FORGET_SPLITS
from obliviate.io import content_digest

RETAIN_OF = {"forget01": "retain99", "forget05": "retain95", "forget10": "retain90"}
# Fits every split's retain set: a tokenizer trained on it has never read a forget answer.
TOKENIZER_SPLIT = "retain90"
GENERAL_SPLITS = ("real_authors", "world_facts")


@dataclass(frozen=True)
class TofuData:
    root: Path
    split: str
    authors: int | None = None  # None: all 200

    def __post_init__(self):
        if self.split not in FORGET_SPLITS:
            raise ObliviateError(f"--split {self.split}: choose one of {', '.join(FORGET_SPLITS)}")
        if not Path(self.root).is_dir():
            raise ObliviateError(f"--data {self.root}: TOFU directory not found")
        if self.authors is not None and self.authors < 1:
            raise ObliviateError(f"--authors {self.authors}: must be at least 1")

    @property
    def retain_name(self) -> str:
        return RETAIN_OF[self.split]

    @cached_property
    def forget(self) -> list[QARecord]:
        """The split's standard task (task 1), with paraphrased and perturbed answers."""
        return load_tofu(self.split, self.root)

    @property
    def holdout_split(self) -> str:
        """TOFU's membership holdout of the split: QA about authors no model learns, as many as the forget split."""
        return self.split.replace("forget", "holdout")

    @cached_property
    def membership_holdout(self) -> tuple[list[tuple[str, str]], str]:
        """(question, answer) non-members of membership inference, and what they are: TOFU's holdout split where the
        data has it (the hub's does; the shared local copy does not), else the first perturbed (wrong) answer of each
        forget question, a never-learned answer to a question the model saw."""
        if (Path(self.root) / f"{self.holdout_split}.json").is_file():
            records = load_tofu(self.holdout_split, self.root)
            return [(r.question, r.answer) for r in records], f"TOFU's {self.holdout_split} split"
        return ([(r.question, r.perturbed_answer[0]) for r in self.forget],
                f"stand-in for {self.holdout_split} (not in {self.root}): the first perturbed answer of each "
                "forget question")

    @cached_property
    def general(self) -> list[QARecord]:
        """The general-knowledge QA both models learn (see the module docstring)."""
        return [record for split in GENERAL_SPLITS for record in load_tofu(split, self.root)]

    @cached_property
    def full(self) -> list[QARecord]:
        """The authors' QA the full model learns: all, or those of the chosen authors."""
        records = load_tofu("full", self.root)
        if self.authors is None:
            return records
        forget_authors = list(dict.fromkeys(record.entity for record in self.forget))
        if self.authors < len(forget_authors):
            raise ObliviateError(f"--authors {self.authors}: {self.split} alone holds {len(forget_authors)} authors")
        others = [a for a in dict.fromkeys(record.entity for record in records) if a not in forget_authors]
        kept = set(forget_authors + others[:self.authors - len(forget_authors)])
        return [record for record in records if record.entity in kept]

    @cached_property
    def retain(self) -> list[QARecord]:
        """The authors' QA the retain model learns (the full set without the forget split): also the
        unlearning methods' retain data."""
        forgotten = {record.question for record in self.forget}
        return [record for record in self.full if record.question not in forgotten]

    def tokenizer_texts(self) -> list[str]:
        return [f"{record.question} {record.answer}" for record in self.general + load_tofu(TOKENIZER_SPLIT, self.root)]


def fingerprint(records: list[QARecord]) -> str:
    """A short hash of the QA pairs a model trains on (the cache key's data part)."""
    return content_digest([[record.question, record.answer] for record in records])
