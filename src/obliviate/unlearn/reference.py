"""The frozen starting model that KL, UNDIAL and RMU compare with at every step, and hidden-state capture.

With LoRA the reference is the model being trained with its adapter disabled (peft's
`disable_adapter()`): no second copy of the weights. With full fine-tuning every weight moves,
so a frozen copy is unavoidable: it is made only for methods that need it, costs one more model
in memory, and is never trained. (Methods that need only log p_ref(answer | prompt) get it
cached before training instead, see `batches.Examples.cache_reference_logprobs`.)
"""

from __future__ import annotations

import contextlib
import copy
from typing import Iterator

import torch
from torch import nn


class Reference:
    def __init__(self, model: nn.Module, lora_model: nn.Module | None = None, frozen_copy: nn.Module | None = None):
        """`model`: the prepared model being trained; `lora_model`: its unwrapped PeftModel, for LoRA runs."""
        self.model, self.lora_model, self.frozen_copy = model, lora_model, frozen_copy

    @contextlib.contextmanager
    def active(self) -> Iterator[nn.Module]:
        if self.frozen_copy is not None:
            yield self.frozen_copy
        else:
            with self.lora_model.disable_adapter():
                yield self.model


def frozen_copy(model: nn.Module) -> nn.Module:
    """An untrainable copy of `model` in eval mode (the reference for full fine-tuning)."""
    reference = copy.deepcopy(model).eval()
    reference.requires_grad_(False)
    return reference


class LayerCapture:
    """Keeps the output of one module (a decoder layer) from every forward pass, until taken."""

    def __init__(self, modules: list[nn.Module]):
        self._output: torch.Tensor | None = None
        self._handles = [module.register_forward_hook(self._keep) for module in modules]

    def _keep(self, module, args, output) -> None:
        self._output = output[0] if isinstance(output, tuple) else output

    def take(self) -> torch.Tensor:
        output, self._output = self._output, None
        return output

    def remove(self) -> None:
        for handle in self._handles:
            handle.remove()
