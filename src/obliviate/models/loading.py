"""Loading, LoRA-wrapping and saving any Hugging Face causal LM and its tokenizer.

Weights are read and written as safetensors only (pickled `.bin` files can run code when
loaded); remote code runs only when asked for. Saved models appear atomically and are never
written into the directory they were loaded from.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import re
import struct
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Iterator

import torch
import transformers
from packaging.version import Version
from torch import nn
from transformers import AutoModelForCausalLM, AutoTokenizer, PreTrainedModel, PreTrainedTokenizerBase
from transformers.pytorch_utils import Conv1D

from obliviate.errors import ObliviateError
from obliviate.io import atomic_directory, atomic_write_json
from obliviate.models.architecture import decoder_layers, embedding_matrix, module_name, unwrap
from obliviate.models.gguf import gguf_model_dir, is_gguf_source

if TYPE_CHECKING:
    from peft import PeftModel

logger = logging.getLogger(__name__)

DTYPES = {"auto": "auto", "float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}
HALF_DTYPES = (torch.float16, torch.bfloat16)
PAD_TOKEN = "<pad>"
# transformers 4.56 renamed from_pretrained's `torch_dtype` to `dtype` and deprecated the old name.
DTYPE_KWARG = "dtype" if Version(transformers.__version__) >= Version("4.56") else "torch_dtype"
HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*(/[A-Za-z0-9][\w.-]*)?$")
PICKLE_WEIGHTS = ("pytorch_model*.bin", "adapter_model.bin")
FINGERPRINT_SAMPLE_BYTES = 1024
FINGERPRINT_WHOLE_FILE_BYTES = 64 * 1024 * 1024


# ---------------------------------------------------------------- loading


def _resolve_source(name_or_path: str | Path) -> str:
    """An existing local path, or a name that can only mean a Hugging Face Hub repository; a `.gguf` file or
    a named offline model stands for its converted directory (see `obliviate.models.gguf`)."""
    if is_gguf_source(name_or_path):
        return str(gguf_model_dir(name_or_path))
    local = Path(name_or_path).expanduser()
    if local.exists():
        return str(local)
    name = str(name_or_path)
    if HUB_ID.match(name) and ".." not in name:
        return name
    raise ObliviateError(f"model directory '{name}' does not exist")


@contextlib.contextmanager
def _one_line_load_errors(source: str, what: str) -> Iterator[None]:
    try:
        yield
    except (OSError, ValueError, RuntimeError) as error:
        lines = str(error).strip().splitlines()
        reason = lines[0] if lines else type(error).__name__
        if Path(source).exists():
            raise ObliviateError(f"cannot load the {what} from '{source}': {reason}") from error
        raise ObliviateError(
            f"cannot load the {what} '{source}' from the Hugging Face Hub ({reason}) and no local directory "
            "has that name; pass a local model directory, or download it beforehand and set HF_HUB_OFFLINE=1"
        ) from error


def _refuse_pickle_only_dir(source: str) -> None:
    directory = Path(source)
    if not directory.is_dir() or any(directory.glob("*.safetensors")):
        return
    if any(file for pattern in PICKLE_WEIGHTS for file in directory.glob(pattern)):
        raise ObliviateError(
            f"'{source}' holds only pickled .bin weights, which can run code when loaded; convert them to "
            "safetensors (load once and save_pretrained(..., safe_serialization=True)) or pass allow_pickle=True"
        )


def _given(**options) -> dict:
    """The options that were set: passing None explicitly can override transformers' own defaults."""
    return {key: value for key, value in options.items() if value is not None}


def _runs_on_cpu(model: nn.Module) -> bool:
    """The model sits on the CPU and no GPU is there to move it to."""
    return not torch.cuda.is_available() and all(p.device.type == "cpu" for p in model.parameters())


def load_model(
    name_or_path: str | Path,
    *,
    dtype: str = "auto",
    device_map: str | dict | None = None,
    trust_remote_code: bool = False,
    revision: str | None = None,
    attn_implementation: str | None = None,
    allow_pickle: bool = False,
) -> PreTrainedModel:
    """A causal LM from a local directory or the Hugging Face Hub, from safetensors weights.

    `dtype` is "auto" (the checkpoint's), "float32", "bfloat16" or "float16". With "auto", a
    float16/bfloat16 checkpoint is upcast to float32 when the model runs on the CPU (no CUDA
    GPU): half-precision matmuls there are slow, and some ops lack half kernels. `device_map`
    goes to transformers as is ("auto" needs accelerate).
    """
    if dtype not in DTYPES:
        raise ObliviateError(f"unknown dtype '{dtype}': choose one of {', '.join(DTYPES)}")
    source = _resolve_source(name_or_path)
    if not allow_pickle:
        _refuse_pickle_only_dir(source)
    options = {DTYPE_KWARG: DTYPES[dtype], "trust_remote_code": trust_remote_code,
               "use_safetensors": None if allow_pickle else True}
    options |= _given(device_map=device_map, revision=revision, attn_implementation=attn_implementation)
    with _one_line_load_errors(source, "model"):
        model = AutoModelForCausalLM.from_pretrained(source, **options)
    if dtype == "auto" and model.dtype in HALF_DTYPES and _runs_on_cpu(model):
        model = model.float()
    return model


def load_tokenizer(name_or_path: str | Path, *, trust_remote_code: bool = False,
                   revision: str | None = None) -> PreTrainedTokenizerBase:
    """The model's tokenizer, padding on the right, with a pad token (see `ensure_pad_token`)."""
    source = _resolve_source(name_or_path)
    options = {"trust_remote_code": trust_remote_code} | _given(revision=revision)
    with _one_line_load_errors(source, "tokenizer"):
        tokenizer = AutoTokenizer.from_pretrained(source, **options)
    tokenizer.padding_side = "right"
    ensure_pad_token(tokenizer)
    return tokenizer


def ensure_pad_token(tokenizer: PreTrainedTokenizerBase, model: nn.Module | None = None) -> bool:
    """Give `tokenizer` a pad token: its EOS token, or else a new `<pad>` token.

    With `model`, its embeddings are resized whenever the tokenizer has outgrown them (so
    calling this again with the model after `load_tokenizer` added `<pad>` does the resize).
    Returns whether a token was added to the vocabulary.
    """
    added = False
    if tokenizer.pad_token is None:
        if tokenizer.eos_token is not None:
            tokenizer.pad_token = tokenizer.eos_token
        else:
            added = tokenizer.add_special_tokens({"pad_token": PAD_TOKEN}) > 0
    if model is not None and len(tokenizer) > embedding_matrix(model).shape[0]:
        model.resize_token_embeddings(len(tokenizer))
    elif model is None and added:
        logger.warning("the tokenizer had no pad or EOS token, so %s was added: the model's embeddings must be "
                       "resized (ensure_pad_token(tokenizer, model) does it)", PAD_TOKEN)
    return added


@contextlib.contextmanager
def left_padded(tokenizer: PreTrainedTokenizerBase) -> Iterator[PreTrainedTokenizerBase]:
    """Pad on the left inside the block (for batched generation), then restore the previous side."""
    previous = tokenizer.padding_side
    tokenizer.padding_side = "left"
    try:
        yield tokenizer
    finally:
        tokenizer.padding_side = previous


# ---------------------------------------------------------------- LoRA


@dataclass
class LoraSettings:
    r: int = 8
    alpha: int = 16
    dropout: float = 0.0
    target_modules: list[str] | None = None  # None: every Linear/Conv1D inside the decoder layers
    layers: list[int] | None = None  # None: every decoder layer


def _linear_names_in_layers(layers: nn.ModuleList) -> list[str]:
    """Names, relative to a decoder layer, of the Linear/Conv1D modules in any layer."""
    return sorted({name for layer in layers for name, module in layer.named_modules()
                   if isinstance(module, (nn.Linear, Conv1D))})


def add_lora(model: PreTrainedModel, settings: LoraSettings | None = None) -> PeftModel:
    """Wrap `model` in LoRA adapters (peft, task CAUSAL_LM); only the adapters are trainable."""
    from peft import LoraConfig, TaskType, get_peft_model

    settings = settings or LoraSettings()
    layers = decoder_layers(model)
    restrict = settings.layers is not None
    config = LoraConfig(
        task_type=TaskType.CAUSAL_LM,
        r=settings.r,
        lora_alpha=settings.alpha,
        lora_dropout=settings.dropout,
        target_modules=list(settings.target_modules or _linear_names_in_layers(layers)),
        # GPT-2's Conv1D stores its weight as (in, out); peft must know to transpose it.
        fan_in_fan_out=any(isinstance(module, Conv1D) for module in layers.modules()),
        layers_to_transform=list(settings.layers) if restrict else None,
        # peft finds the layer index after this attribute name ("layers", GPT-2's "h").
        layers_pattern=module_name(model, layers).rsplit(".", 1)[-1] if restrict else None,
    )
    return get_peft_model(model, config)


def load_adapter(model: PreTrainedModel, adapter_dir: str | Path) -> PeftModel:
    """`model` with the trained LoRA adapter of `adapter_dir` (peft's adapter_config.json and
    adapter_model.safetensors, e.g. a run saved with `save_adapter=True`); its matrices are trainable."""
    from peft import PeftModel

    directory = Path(adapter_dir).expanduser()
    if not (directory / "adapter_config.json").is_file():
        raise ObliviateError(f"adapter '{adapter_dir}': no adapter_config.json there (a LoRA adapter directory "
                             "as peft saves it, e.g. `obliviate unlearn --method finetune --save-adapter`)")
    if not (directory / "adapter_model.safetensors").is_file():
        raise ObliviateError(f"adapter '{adapter_dir}': no adapter_model.safetensors there (pickled adapters are "
                             "not loaded)")
    with _one_line_load_errors(str(directory), "LoRA adapter"):
        return PeftModel.from_pretrained(model, str(directory), is_trainable=True)


LORA_MARKERS = (".lora_A.", ".lora_B.")


def lora_matrices(model: nn.Module) -> dict[str, nn.Parameter]:
    """The LoRA A and B matrices of a peft model, by parameter name."""
    return {name: p for name, p in model.named_parameters() if any(m in name for m in LORA_MARKERS)}


def lora_base_module(parameter_name: str) -> str:
    """The name of the model's module a LoRA matrix adapts:
    'base_model.model.model.layers.0.mlp.up_proj.lora_B.default.weight' → 'model.layers.0.mlp.up_proj'."""
    return parameter_name.split(".lora_")[0].removeprefix("base_model.model.")


def merge_adapters(model: nn.Module) -> PreTrainedModel:
    """The plain transformers model with the LoRA adapters merged into its weights, in place.

    No weights are copied: the adapter layers are replaced by their merged base layers, so
    `model` keeps computing the same outputs but no longer has a trainable adapter.
    """
    return model.merge_and_unload() if is_peft_model(model) else model


def is_peft_model(model) -> bool:
    """Whether `model` is a peft model, without importing peft (seconds of an evaluation's start-up): a model can
    only be one once peft is loaded."""
    peft = sys.modules.get("peft")
    return peft is not None and isinstance(model, peft.PeftModel)


# ---------------------------------------------------------------- saving


def _source_dir(model: nn.Module) -> Path | None:
    name = getattr(unwrap(model), "name_or_path", "")
    return Path(name).resolve() if name and Path(name).is_dir() else None


def save_model(
    model: nn.Module,
    tokenizer: PreTrainedTokenizerBase | None,
    out_dir: str | Path,
    *,
    merge_lora: bool = True,
    extra_json: dict[str, dict] | None = None,
) -> Path:
    """Write `model` (+ `tokenizer` and `extra_json` files) to `out_dir` as safetensors, atomically.

    A PeftModel is saved with its adapters merged (`merge_lora=True`: the directory loads with
    plain `AutoModelForCausalLM.from_pretrained`; the merge happens in place, see `merge_adapters`,
    so save with `merge_lora=False` while the adapter is still needed), or as the adapter alone
    (`merge_lora=False`: loads with peft's `AutoPeftModelForCausalLM`).
    """
    out_dir = Path(out_dir)
    source = _source_dir(model)
    # The output directory is replaced as a whole, so it must not be or contain the input.
    if source is not None and (source == out_dir.resolve() or out_dir.resolve() in source.parents):
        raise ObliviateError(f"saving to '{out_dir}' would replace the input model directory '{source}'")
    for name in extra_json or {}:
        if Path(name).name != name:
            raise ObliviateError(f"extra_json file name '{name}' must be a plain file name")
    to_save = merge_adapters(model) if merge_lora else model
    with atomic_directory(out_dir) as staging:
        to_save.save_pretrained(staging, safe_serialization=True)
        if tokenizer is not None:
            tokenizer.save_pretrained(staging)
        for name, content in (extra_json or {}).items():
            atomic_write_json(staging / name, content)
    return out_dir


# ---------------------------------------------------------------- fingerprint


def _hash_samples(digest, handle, start: int, end: int) -> None:
    """Hash the first, middle and last sample of handle[start:end] (all of it when short)."""
    size = FINGERPRINT_SAMPLE_BYTES
    if end - start <= 3 * size:
        spans = [(start, end - start)]
    else:
        spans = [(start, size), ((start + end) // 2, size), (end - size, size)]
    for offset, length in spans:
        handle.seek(offset)
        digest.update(handle.read(length))


def _hash_safetensors(digest, path: Path) -> None:
    """The header (names, dtypes, shapes) plus a sample of every tensor's bytes."""
    with path.open("rb") as handle:
        (header_size,) = struct.unpack("<Q", handle.read(8))
        header = handle.read(header_size)
        digest.update(header)
        data_start = 8 + header_size
        tensors = [entry for key, entry in json.loads(header).items() if key != "__metadata__"]
        for entry in sorted(tensors, key=lambda entry: entry["data_offsets"]):
            begin, end = entry["data_offsets"]
            _hash_samples(digest, handle, data_start + begin, data_start + end)


def model_fingerprint(path: str | Path) -> str:
    """A short content hash of a model directory, cheap enough for a cache key.

    Every top-level file counts by name and size; small files by content; safetensors files by
    their header and the first, middle and last KiB of each tensor; other large files by samples.
    Not reading all the weights means a change confined to unsampled bytes goes unseen. An
    adapter directory's fingerprint does not cover its base model. A `.gguf` file or named offline model
    counts as its converted directory.
    """
    directory = gguf_model_dir(path) if is_gguf_source(path) else Path(path)
    if not directory.is_dir():
        raise ObliviateError(f"model directory '{directory}' does not exist")
    digest = hashlib.sha256()
    for file in sorted(f for f in directory.iterdir() if f.is_file() and not f.name.startswith(".")):
        size = file.stat().st_size
        digest.update(f"{file.name}\0{size}\0".encode())
        if file.suffix == ".safetensors":
            _hash_safetensors(digest, file)
        elif size <= FINGERPRINT_WHOLE_FILE_BYTES:
            digest.update(file.read_bytes())
        else:
            with file.open("rb") as handle:
                _hash_samples(digest, handle, 0, size)
    return digest.hexdigest()[:16]
