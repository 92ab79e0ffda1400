"""The one way obliviate builds an `Accelerator`: the unlearning runs and UniErase's token training use it."""

from __future__ import annotations

import atexit

import torch
from accelerate import Accelerator
from accelerate.state import AcceleratorState

from obliviate.errors import ObliviateError


def make_accelerator(mixed_precision: str = "no", grad_accum: int = 1) -> Accelerator:
    """A freshly configured Accelerator (accelerate keeps its settings in a process-wide singleton, which
    this resets, so each run configures it anew)."""
    if mixed_precision == "fp16" and not torch.cuda.is_available():
        raise ObliviateError("mixed_precision=fp16 needs a CUDA GPU; use bf16 on the CPU")
    AcceleratorState._reset_state()
    # Under torchrun on a machine without GPUs accelerate must be told to use the CPU (gloo);
    # `accelerate launch --cpu` tells it the same through the environment.
    has_device = torch.accelerator.is_available() if hasattr(torch, "accelerator") else torch.cuda.is_available()
    return Accelerator(mixed_precision=mixed_precision, gradient_accumulation_steps=grad_accum, cpu=not has_device)


def _close_process_group() -> None:
    """Left open until interpreter exit, gloo's worker threads can abort a finished run
    ("terminate called without an active exception"), so a launched run closes its group first."""
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        torch.distributed.destroy_process_group()


atexit.register(_close_process_group)
