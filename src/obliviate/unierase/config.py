"""UniErase settings; every default is written here once (the published schedule, scaled down).

Resolve with `obliviate.config.load_config(UniEraseConfig, yaml_path, ["edit.l2=5", ...])`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from obliviate.editing import AlphaEditSettings


@dataclass
class TokenSettings:
    """Stage 1: the unlearning token (see `token.py`)."""

    token: str = "<unlearn_0>"
    output_row: Literal["copy", "mean"] = "copy"  # untied LM head: the new row copies the input row, or the mean row
    epochs: float = 5.0
    lr: float = 1e-3
    epochs_second: float = 3.0
    lr_second: float = 1e-4
    noise_epochs: float = 2.0  # per edit layer, at lr_second
    noise_scale: float = 0.1  # noise std, relative to the std of the layer's down-projection weight
    refusals: str | None = None  # a file of refusal phrasings (see `obliviate.data.load_refusals`); None: the default
    refusals_per_question: int = 1
    # > 0: also train on the preserved knowledge's answers at this weight, so that a tied row is not predicted
    # inside them (needs `preserved` to be data); 0 is the published schedule
    keep_weight: float = 0.0
    batch_size: int = 8
    seed: int = 0


@dataclass
class UniEraseConfig:
    # batch: one edit of every forget record; sequential: `rounds` edits of consecutive groups of them;
    # precise: one edit per record. Later calls on the saved model go on sequentially.
    mode: Literal["batch", "sequential", "precise"] = "batch"
    rounds: int = 1
    # The preserved knowledge whose keys the edits must not move: "sampled" (text the model writes
    # itself) or a data spec as for `obliviate unlearn --retain` (a file, tofu:…, world:…).
    preserved: str = "sampled"
    token: TokenSettings = field(default_factory=TokenSettings)
    edit: AlphaEditSettings = field(default_factory=AlphaEditSettings)
    dtype: Literal["auto", "float32", "bfloat16", "float16"] = "auto"  # weights as loaded by `unierase_model`
