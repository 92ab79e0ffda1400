"""Where things live inside a Hugging Face causal LM: decoder layers, MLPs, the final norm, embeddings.

Every function accepts a plain transformers model or a peft `PeftModel` wrapping one. Known
layouts are tried first (Llama/Qwen2/Mistral/Gemma/Phi `model.layers`, GPT-2 `transformer.h`,
GPT-NeoX `gpt_neox.layers`, OPT `model.decoder.layers`); any other model is searched for the
one `nn.ModuleList` with `config.num_hidden_layers` entries.

GPT-2 style models store their projections as `Conv1D` with an (in, out) weight; use
`linear_weight_as_out_in` / `apply_weight_delta` to treat them like `nn.Linear` (out, in).
"""

from __future__ import annotations

import torch
from torch import nn
from transformers.pytorch_utils import Conv1D

from obliviate.errors import ObliviateError

DECODER_LAYER_PATHS = ("model.layers", "transformer.h", "gpt_neox.layers", "model.decoder.layers",
                       "model.language_model.layers", "transformer.blocks", "transformer.layers")
MLP_NAMES = ("mlp", "feed_forward", "ffn")
DOWN_PROJ_NAMES = ("down_proj", "c_proj", "dense_4h_to_h", "fc2", "fc_out", "w2")
FINAL_NORM_NAMES = ("norm", "ln_f", "final_layer_norm", "final_layernorm")


def unwrap(model: nn.Module) -> nn.Module:
    """The transformers model under a peft wrapper (the model itself otherwise)."""
    get_base_model = getattr(model, "get_base_model", None)
    return get_base_model() if callable(get_base_model) else model


def _get_path(root: nn.Module, dotted: str) -> nn.Module | None:
    module = root
    for part in dotted.split("."):
        module = getattr(module, part, None)
        if module is None:
            return None
    return module


def _layer_count_from_config(model: nn.Module) -> int | None:
    config = getattr(model, "config", None)
    if config is None:
        return None
    text_config = config.get_text_config() if hasattr(config, "get_text_config") else config
    return getattr(text_config, "num_hidden_layers", None)


def decoder_layers(model: nn.Module) -> nn.ModuleList:
    """The model's stack of transformer blocks, in order."""
    base = unwrap(model)
    for path in DECODER_LAYER_PATHS:
        layers = _get_path(base, path)
        if isinstance(layers, nn.ModuleList):
            return layers
    expected = _layer_count_from_config(base)
    candidates = [m for m in base.modules() if isinstance(m, nn.ModuleList) and len(m) == expected]
    if len(candidates) == 1:
        return candidates[0]
    raise ObliviateError(f"cannot find the decoder layers of {type(base).__name__}: unsupported architecture")


def num_layers(model: nn.Module) -> int:
    return len(decoder_layers(model))


def final_norm(model: nn.Module) -> nn.Module:
    """The norm between the last decoder layer and the LM head."""
    layers = decoder_layers(model)
    for name, module in unwrap(model).named_modules():
        if name.rsplit(".", 1)[-1] in FINAL_NORM_NAMES and not any(module is m for m in layers.modules()):
            return module
    raise ObliviateError(f"cannot find the final norm of {type(unwrap(model)).__name__}")


def _first_child(module: nn.Module, names: tuple[str, ...]) -> nn.Module | None:
    """The submodule under the first of `names` that `module` has."""
    for name in names:
        child = getattr(module, name, None)
        if isinstance(child, nn.Module):
            return child
    return None


def mlp_module(model: nn.Module, layer: int) -> nn.Module:
    """The feed-forward block of decoder layer `layer`."""
    block = decoder_layers(model)[layer]
    mlp = _first_child(block, MLP_NAMES)
    if mlp is None:
        raise ObliviateError(f"cannot find the MLP of layer {layer} in {type(unwrap(model)).__name__}")
    return mlp


def mlp_down_proj(model: nn.Module, layer: int) -> nn.Module:
    """The MLP's output projection of decoder layer `layer` (hidden ← intermediate)."""
    block = decoder_layers(model)[layer]
    # OPT keeps fc1/fc2 directly on the decoder layer, without an MLP submodule.
    mlp = _first_child(block, MLP_NAMES)
    down_proj = _first_child(mlp if mlp is not None else block, DOWN_PROJ_NAMES)
    if down_proj is None:
        raise ObliviateError(
            f"cannot find the MLP down projection of layer {layer} in {type(unwrap(model)).__name__} "
            "(mixture-of-experts MLPs have no single one)"
        )
    return down_proj


def linear_weight_as_out_in(module: nn.Module) -> torch.Tensor:
    """A view of a Linear or Conv1D weight shaped (out_features, in_features); writes go to the module.

    A peft LoRA layer stands for its base layer's weight.
    """
    module = getattr(module, "base_layer", module)
    if isinstance(module, Conv1D):
        return module.weight.T
    if isinstance(module, nn.Linear):
        return module.weight
    raise ObliviateError(f"expected a Linear or Conv1D layer, got {type(module).__name__}")


def set_linear_weight(module: nn.Module, weight_out_in: torch.Tensor) -> None:
    """Overwrite a Linear or Conv1D weight with `weight_out_in`, given as (out_features, in_features)."""
    weight = linear_weight_as_out_in(module)
    _check_shape(weight, weight_out_in)
    with torch.no_grad():
        weight.copy_(weight_out_in.to(dtype=weight.dtype, device=weight.device))


def apply_weight_delta(module: nn.Module, delta_out_in: torch.Tensor) -> None:
    """Add `delta_out_in`, shaped (out_features, in_features), to a Linear or Conv1D weight in place."""
    weight = linear_weight_as_out_in(module)
    _check_shape(weight, delta_out_in)
    with torch.no_grad():
        weight.add_(delta_out_in.to(dtype=weight.dtype, device=weight.device))


def _check_shape(weight: torch.Tensor, given: torch.Tensor) -> None:
    if given.shape != weight.shape:
        raise ValueError(f"expected a tensor of shape (out, in) = {tuple(weight.shape)}, got {tuple(given.shape)}")


def hidden_size(model: nn.Module) -> int:
    base = unwrap(model)
    size = getattr(base.config.get_text_config(), "hidden_size", None)
    return size if size is not None else embedding_matrix(base).shape[1]


def embedding_matrix(model: nn.Module) -> torch.Tensor:
    """The input token embeddings, (vocab, hidden)."""
    return unwrap(model).get_input_embeddings().weight


def output_embedding_matrix(model: nn.Module) -> torch.Tensor:
    """The output projection (LM head) weight, (vocab, hidden)."""
    base = unwrap(model)
    head = base.get_output_embeddings()
    if head is None:
        raise ObliviateError(f"{type(base).__name__} has no output embeddings (LM head)")
    return head.weight


def embeddings_tied(model: nn.Module) -> bool:
    """Whether the input embeddings and the LM head share one weight tensor."""
    return embedding_matrix(model) is output_embedding_matrix(model)


def module_name(model: nn.Module, module: nn.Module) -> str:
    """The dotted name of `module` inside the transformers model (a peft wrapper is looked through)."""
    base = unwrap(model)
    name = next((name for name, candidate in base.named_modules() if candidate is module), None)
    if name is None:
        raise ObliviateError(f"the given {type(module).__name__} is not part of {type(base).__name__}")
    return name
