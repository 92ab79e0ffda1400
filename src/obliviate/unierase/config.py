"""UniErase settings; every default is written here once (the published schedule).

Resolve with `obliviate.config.load_config(UniEraseConfig, yaml_path, ["edit.l2=5", ...])`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from obliviate.editing import AlphaEditSettings, ValueSettings


@dataclass
class TokenSettings:
    """Stage 1: the unlearning token (see `token.py`); the schedule of UniErase's `train_UNL.ipynb`."""

    token: str = "<unlearn_0>"
    epochs: float = 5.0  # on the plain sequences
    lr: float = 1e-3
    epochs_second: float = 3.0  # on the plain and the asked sequences
    lr_second: float = 1e-4
    noise_epochs: float = 2.0  # per edit layer, at lr_second, the down projection perturbed (`down_proj_noise`)
    refusals: str | None = None  # a file of refusal phrasings (see `obliviate.data.load_refusals`); None: the default
    refusals_per_question: int = 1
    # An epoch is at least this many questions: a smaller forget set's sequences are repeated, refusals and all. The
    # notebook trains its token on 400 questions (25 steps an epoch at batch 16); 8 questions once would give 1.
    # 0: each epoch is the forget set once.
    questions_per_epoch: int = 400
    # > 0: also train on the preserved knowledge's answers at this weight, so that a tied row is not predicted
    # inside them (needs `preserved` to be data); 0 is the published schedule
    keep_weight: float = 0.0
    batch_size: int = 16
    seed: int = 0
    # An earlier UniErase output directory whose trained token this run takes instead of training one: it must have
    # been trained with these settings, on the same forget questions, from the same model (checked). The token's rows
    # still count as changed. Lets runs that differ only in their edits share stage 1.
    reuse: str | None = None


def _unierase_edit() -> AlphaEditSettings:
    """AlphaEdit's settings with UniErase's one change: 10 optimisation passes for δ (`run_edit.py`)."""
    return AlphaEditSettings(value=ValueSettings(steps=10))


@dataclass
class UniEraseConfig:
    # batch: one edit of every forget record; sequential: `rounds` edits of consecutive groups of them;
    # precise: one edit per record. Later calls on the saved model go on sequentially.
    mode: Literal["batch", "sequential", "precise"] = "batch"
    rounds: int = 1
    # The preserved knowledge whose keys the edits must not move: "general" (Python's documentation, the offline
    # stand-in for AlphaEdit's Wikipedia: `obliviate.editing.general_text`), "sampled" (text the model writes
    # itself), or a data spec as for `obliviate unlearn --retain` (a file, tofu:…, world:…).
    preserved: str = "general"
    token: TokenSettings = field(default_factory=TokenSettings)
    edit: AlphaEditSettings = field(default_factory=_unierase_edit)
    dtype: Literal["auto", "float32", "bfloat16", "float16"] = "auto"  # weights as loaded by `unierase_model`
