"""Weights as deployed quantised: each tensor quantised and dequantised again, on the CPU, in the model's dtype.

* `gguf_q8_0`, `gguf_q4_0`, `gguf_q4_1` — llama.cpp's block formats (32 values a block, an fp16 scale; Q4_1 also
  an fp16 minimum), by the gguf package's reference code. Quantised like `obliviate export --gguf` writes them
  (`gguf_storage_type`): every Linear weight and the token embeddings (so a tied LM head too), all at the one
  type as `llama-quantize --pure` does; a matrix whose rows are not a multiple of 32 is stored as F16, as
  llama.cpp's convert_hf_to_gguf.py falls back. Norms and biases stay in float32 in GGUF, so they are untouched.
* `nf4` — bitsandbytes' 4-bit NormalFloat (`Linear4bit`, quant_type "nf4"): the weight flattened into blocks of
  64, each divided by its absmax and rounded to the nearest of the 16 NF4 code values; the absmax is kept in
  float32 (no double quantisation, BitsAndBytesConfig's default).
* `int8` — LLM.int8 (`Linear8bitLt`): each row of the weight (out_features × in_features) divided by its absmax
  and rounded to an int8 in [-127, 127]. Only the weights: the int8 activations and the outlier columns of the
  matmul are not modelled.

bitsandbytes in transformers quantises every Linear but the LM head, so `nf4` and `int8` leave the embeddings and
the head as they are.
"""

from __future__ import annotations

import copy

import numpy as np
import torch
from torch import nn
from transformers.pytorch_utils import Conv1D

from obliviate.errors import ObliviateError
from obliviate.models.architecture import linear_weight_as_out_in, unwrap
from obliviate.models.loading import merge_adapters

GGUF_FORMATS = {"gguf_q8_0": "Q8_0", "gguf_q4_0": "Q4_0", "gguf_q4_1": "Q4_1"}
FORMATS = (*GGUF_FORMATS, "nf4", "int8")

NF4_BLOCK = 64
# bitsandbytes' NF4 code book (functional.get_4bit_type("nf4")): quantiles of N(0, 1) scaled to [-1, 1].
NF4_CODE = torch.tensor([
    -1.0, -0.6961928009986877, -0.5250730514526367, -0.39491748809814453, -0.28444138169288635,
    -0.18477343022823334, -0.09105003625154495, 0.0, 0.07958029955625534, 0.16093020141124725,
    0.24611230194568634, 0.33791524171829224, 0.44070982933044434, 0.5626170039176941,
    0.7229568362236023, 1.0])
INT8_MAX = 127


def gguf_type(name: str):
    """The gguf package's GGMLQuantizationType called `name` (F32, F16, Q8_0, ...)."""
    from gguf import GGMLQuantizationType

    return GGMLQuantizationType[name]


def gguf_storage_type(shape: tuple[int, ...], requested):
    """The type llama.cpp's convert stores a tensor of this shape as: vectors in F32, a matrix in `requested`,
    or in F16 when its rows cannot be cut into `requested`'s blocks."""
    from gguf import GGML_QUANT_SIZES, GGMLQuantizationType

    if len(shape) < 2:
        return GGMLQuantizationType.F32
    block_size = GGML_QUANT_SIZES[requested][0]
    return requested if shape[-1] % block_size == 0 else GGMLQuantizationType.F16


def gguf_round_trip(weight: torch.Tensor, qtype) -> torch.Tensor:
    """A matrix stored as the GGUF type `qtype` (rows a multiple of its block size) and read back."""
    from gguf import quants

    array = np.ascontiguousarray(weight.detach().to(torch.float32).cpu().numpy())
    restored = quants.dequantize(quants.quantize(array, qtype), qtype)
    return torch.from_numpy(restored.reshape(array.shape)).to(weight.dtype)


def nf4_round_trip(weight: torch.Tensor) -> torch.Tensor:
    flat = weight.detach().to(torch.float32).reshape(-1)
    padding = -flat.numel() % NF4_BLOCK  # zeros do not change the last block's absmax
    blocks = torch.cat([flat, flat.new_zeros(padding)]).view(-1, NF4_BLOCK)
    absmax = blocks.abs().amax(dim=1, keepdim=True)
    scaled = torch.clamp(blocks * (1 / torch.where(absmax > 0, absmax, 1)), -1, 1)
    code = NF4_CODE.to(scaled.device)
    nearest = torch.bucketize(scaled, (code[1:] + code[:-1]) / 2)
    restored = (code[nearest] * absmax).reshape(-1)[:flat.numel()]
    return restored.view(weight.shape).to(weight.dtype)


def int8_round_trip(weight: torch.Tensor) -> torch.Tensor:
    """A weight shaped (out_features, in_features), quantised row by row."""
    rows = weight.detach().to(torch.float32)
    absmax = rows.abs().amax(dim=1, keepdim=True)
    scale = torch.where(absmax > 0, absmax, 1)
    codes = torch.round(rows * (INT8_MAX / scale)).clamp(-INT8_MAX, INT8_MAX)
    return (codes * scale / INT8_MAX).to(weight.dtype)


def quantized_weights(model: nn.Module, format: str) -> dict[str, torch.Tensor]:
    """The weights `format` quantises, by module name, each as (out_features, in_features) or (vocab, hidden);
    writes to them go to the model. A weight shared by two modules (tied embeddings) is listed once."""
    if format not in FORMATS:
        raise ObliviateError(f"unknown quantization format '{format}': choose one of {', '.join(FORMATS)}")
    base = unwrap(model)
    head = base.get_output_embeddings()
    chosen: dict[str, torch.Tensor] = {}
    seen: set[int] = set()
    for name, module in base.named_modules():
        if isinstance(module, (nn.Linear, Conv1D)) and (format in GGUF_FORMATS or module is not head):
            weight = linear_weight_as_out_in(module)
        elif isinstance(module, nn.Embedding) and format in GGUF_FORMATS and module is base.get_input_embeddings():
            weight = module.weight
        else:
            continue
        if id(module.weight) not in seen:
            seen.add(id(module.weight))
            chosen[name] = weight
    return chosen


def round_trip(weight: torch.Tensor, format: str) -> torch.Tensor:
    if format in GGUF_FORMATS:
        return gguf_round_trip(weight, gguf_storage_type(tuple(weight.shape), gguf_type(GGUF_FORMATS[format])))
    return nf4_round_trip(weight) if format == "nf4" else int8_round_trip(weight)


def quantize_weights(model: nn.Module, format: str) -> list[str]:
    """Quantise and dequantise the weights `format` covers, in place; the names of the modules changed."""
    weights = quantized_weights(model, format)
    with torch.no_grad():
        for weight in weights.values():
            weight.copy_(round_trip(weight, format))
    return list(weights)


def quantized_copy(model: nn.Module, format: str) -> nn.Module:
    """A copy of `model`, LoRA adapters merged as a deployed model has them, its weights through `format` and back.
    `model` itself is not changed."""
    quantized = merge_adapters(copy.deepcopy(model))
    quantize_weights(quantized, format)
    return quantized
