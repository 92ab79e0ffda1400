"""Settings shared by every unlearning method: the loss weights and the training run.

Each method subclasses `UnlearnConfig`, adds its own hyper-parameters and changes the defaults
it needs; a default is written once, in its dataclass. Resolve a config with
`obliviate.config.load_config(MethodConfig, yaml_path, ["key=value", ...])`.

Batch sizes are per process: the global batch of an optimizer step is
`batch_size × processes × grad_accum`, and two processes with batch b train exactly like one
process with batch 2b (see `obliviate.unlearn.loop`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from obliviate.models import LoraSettings

RetainLoss = Literal["none", "gd", "kl"]


@dataclass
class UnlearnConfig:
    # loss: gamma · forget term + alpha · retain term
    gamma: float = 1.0
    alpha: float = 1.0
    retain_loss: RetainLoss = "none"  # gd: NLL on retain answers; kl: KL(p_ref || p_θ) on them
    # schedule
    epochs: float = 10.0  # passes over the forget set; ignored when max_steps is set
    max_steps: int | None = None
    batch_size: int = 8  # forget sequences per process and micro-step
    retain_batch_size: int | None = None  # None: batch_size
    grad_accum: int = 1
    lr: float = 1e-5
    weight_decay: float = 0.0
    scheduler: Literal["constant", "linear", "cosine"] = "constant"
    warmup_ratio: float = 0.0  # fraction of the steps spent warming up linearly
    max_grad_norm: float | None = 1.0
    # model
    dtype: Literal["auto", "float32", "bfloat16", "float16"] = "auto"  # weights as loaded (see models.load_model)
    use_lora: bool = False
    lora: LoraSettings = field(default_factory=LoraSettings)
    # A LoRA adapter directory trained on the model (peft format, e.g. a run saved with --save-adapter): the run
    # trains that adapter's matrices instead of a new adapter (`lora` is then unused), and its reference is the
    # model with that adapter (a frozen copy), not the adapter switched off.
    adapter: str | None = None
    mixed_precision: Literal["no", "bf16", "fp16"] = "no"
    gradient_checkpointing: bool = False
    max_length: int = 512
    # run
    seed: int = 0
    checkpoint_every: int = 50  # optimizer steps between checkpoints for --resume; 0: none

    @property
    def retain_batch(self) -> int:
        return self.retain_batch_size or self.batch_size
