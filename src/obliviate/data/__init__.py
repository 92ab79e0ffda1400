"""Records (QA, multiple choice, text) and the readers that build them from files, the hub, TOFU and KnowUnDo."""

from obliviate.data.knowundo import load_knowundo
from obliviate.data.readers import load_mcq, load_qa, load_texts, read_rows
from obliviate.data.refusals import is_refusal, load_refusals
from obliviate.data.schema import MCQRecord, QARecord, TextRecord
from obliviate.data.tofu import TOFU_SPLITS, load_tofu

__all__ = [
    "QARecord",
    "MCQRecord",
    "TextRecord",
    "read_rows",
    "load_qa",
    "load_mcq",
    "load_texts",
    "load_tofu",
    "TOFU_SPLITS",
    "load_knowundo",
    "load_refusals",
    "is_refusal",
]
