"""Writing a Llama model as a GGUF file, the way llama.cpp's convert_hf_to_gguf.py writes one.

    export_gguf("runs/idk/model", "idk.Q8_0.gguf", "Q8_0")

What is written, as convert_hf_to_gguf.py does for LlamaForCausalLM:

* metadata `general.*` and `llama.*` (context length, widths, heads, rope base and dimension count, RMS eps,
  vocabulary size, file type), and the tokenizer as `tokenizer.ggml.model` "gpt2" (byte-level BPE): tokens,
  token types (control for special added tokens, user-defined for other added ones, unused for padding rows),
  merges, BOS/EOS/UNK/PAD ids, whether BOS/EOS are added, and the chat template (gguf.SpecialVocab);
* tensors under llama.cpp's names, the rows of `attn_q` and `attn_k` permuted as llama.cpp's rotary embedding
  wants them (transformers' GGUF loader undoes it); no `output.weight` when the LM head is tied;
* vectors (norms) in F32, matrices in the requested type, a matrix whose rows are not whole blocks in F16
  (`obliviate.models.quantization.gguf_storage_type`). Q4_0 and Q4_1 put every matrix at that type, as
  `llama-quantize --pure` does (llama-quantize would give the output matrix Q6_K or Q8_0).

The file appears whole or not at all.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

import numpy as np
import torch

from obliviate.errors import ObliviateError
from obliviate.io import atomic_file
from obliviate.models.architecture import embeddings_tied
from obliviate.models.gguf import GGUF_SUFFIX, gguf_model_dir, is_gguf_source
from obliviate.models.quantization import gguf_storage_type, gguf_type

EXPORT_TYPES = ("F32", "F16", "Q8_0", "Q4_0", "Q4_1")
ARCHITECTURE = "llama"


def _file_type(name: str) -> int:
    from gguf import LlamaFileType

    return LlamaFileType.ALL_F32 if name == "F32" else LlamaFileType[f"MOSTLY_{name}"]


def _model_dir(model: str | os.PathLike) -> Path:
    if is_gguf_source(model):
        return gguf_model_dir(model)
    directory = Path(model).expanduser()
    if not directory.is_dir():
        raise ObliviateError(f"model directory '{model}' does not exist")
    return directory


def _llama_config(directory: Path):
    from transformers import AutoConfig

    try:
        config = AutoConfig.from_pretrained(directory)
    except (OSError, ValueError) as error:
        raise ObliviateError(f"cannot read the model config in '{directory}': {str(error).splitlines()[0]}") from error
    if config.model_type != ARCHITECTURE:
        raise ObliviateError(f"'{directory}' holds a '{config.model_type}' model: GGUF export supports Llama "
                             "(LlamaForCausalLM) only")
    rope_type = (getattr(config, "rope_parameters", None) or {}).get("rope_type", "default")
    if rope_type != "default":
        raise ObliviateError(f"'{directory}' uses '{rope_type}' rope scaling, which GGUF export does not write")
    if getattr(config, "attention_bias", False) or getattr(config, "mlp_bias", False):
        raise ObliviateError(f"'{directory}' has Linear biases, which GGUF export does not write")
    return config


def head_dim(config) -> int:
    return getattr(config, "head_dim", None) or config.hidden_size // config.num_attention_heads


def permute_for_rope(weights: np.ndarray, n_head: int) -> np.ndarray:
    """llama.cpp's `LlamaModel.permute`: each head's rows from (halves) order to interleaved pairs."""
    return (weights.reshape(n_head, 2, weights.shape[0] // n_head // 2, *weights.shape[1:])
            .swapaxes(1, 2).reshape(weights.shape))


def _pre_tokenizer(tokenizer, directory: Path) -> str:
    """llama.cpp's name for how the tokenizer splits text ("gpt2"), after checking it is byte-level BPE."""
    state = json.loads(tokenizer.backend_tokenizer.to_str())
    pre = state.get("pre_tokenizer") or {}
    if state["model"]["type"] != "BPE" or pre.get("type") != "ByteLevel" or not pre.get("use_regex", True):
        raise ObliviateError(f"the tokenizer of '{directory}' is not a byte-level BPE tokenizer with GPT-2's "
                             "pre-tokenizer, the one GGUF export can write (tokenizer.ggml.model gpt2)")
    return "gpt2"


def _vocabulary(tokenizer, vocab_size: int, directory: Path) -> tuple[list[str], list[int]]:
    """Tokens and llama.cpp token types for every embedding row, as convert's `get_vocab_base` lists them."""
    from gguf import TokenType

    by_id = {index: token for token, index in tokenizer.get_vocab().items()}
    if len(by_id) > vocab_size:
        raise ObliviateError(f"the tokenizer of '{directory}' has {len(by_id)} tokens, more than the model's "
                             f"{vocab_size} embedding rows")
    added = tokenizer.added_tokens_decoder
    tokens, types = [], []
    for index in range(vocab_size):
        if index not in by_id:
            tokens.append(f"[PAD{index}]")
            types.append(TokenType.UNUSED)
        elif index in added:
            tokens.append(by_id[index])
            types.append(TokenType.CONTROL if added[index].special else TokenType.USER_DEFINED)
        else:
            tokens.append(by_id[index])
            types.append(TokenType.NORMAL)
    return tokens, types


def _add_metadata(writer, config, directory: Path, type_name: str) -> None:
    import gguf
    from transformers import AutoTokenizer

    writer.add_name(directory.resolve().name)
    writer.add_context_length(config.max_position_embeddings)
    writer.add_embedding_length(config.hidden_size)
    writer.add_block_count(config.num_hidden_layers)
    writer.add_feed_forward_length(config.intermediate_size)
    writer.add_head_count(config.num_attention_heads)
    writer.add_head_count_kv(config.num_key_value_heads)
    writer.add_rope_freq_base(config.rope_parameters["rope_theta"])
    writer.add_layer_norm_rms_eps(config.rms_norm_eps)
    writer.add_file_type(_file_type(type_name))
    writer.add_vocab_size(config.vocab_size)
    writer.add_rope_dimension_count(head_dim(config))
    if head_dim(config) * config.num_attention_heads != config.hidden_size:
        writer.add_key_length(head_dim(config))
        writer.add_value_length(head_dim(config))

    tokenizer = AutoTokenizer.from_pretrained(directory)
    writer.add_tokenizer_model("gpt2")
    writer.add_tokenizer_pre(_pre_tokenizer(tokenizer, directory))
    tokens, types = _vocabulary(tokenizer, config.vocab_size, directory)
    writer.add_token_list(tokens)
    writer.add_token_types(types)
    # SpecialVocab warns about a pair template's second <s>, which a GGUF has no place for.
    vocab_logger = logging.getLogger("gguf.vocab")
    level = vocab_logger.level
    vocab_logger.setLevel(logging.ERROR)
    try:
        special_vocab = gguf.SpecialVocab(directory, load_merges=True, n_vocab=config.vocab_size)
    finally:
        vocab_logger.setLevel(level)
    special_vocab.add_to_gguf(writer, quiet=True)
    writer.add_quantization_version(gguf.GGML_QUANT_VERSION)


def _add_tensors(writer, model, config, requested) -> None:
    import gguf

    names = gguf.get_tensor_name_map(gguf.MODEL_ARCH.LLAMA, config.num_hidden_layers)
    tied = embeddings_tied(model)
    for hf_name, tensor in model.state_dict().items():
        if tied and hf_name == "lm_head.weight":
            continue
        name = names.get_name(hf_name, try_suffixes=(".weight", ".bias"))
        if name is None:
            raise ObliviateError(f"tensor '{hf_name}' has no llama.cpp name")
        data = tensor.detach().to(torch.float32).numpy()
        if hf_name.endswith("q_proj.weight"):
            data = permute_for_rope(data, config.num_attention_heads)
        elif hf_name.endswith("k_proj.weight"):
            data = permute_for_rope(data, config.num_key_value_heads)
        storage = gguf_storage_type(data.shape, requested)
        writer.add_tensor(name, gguf.quants.quantize(np.ascontiguousarray(data), storage), raw_dtype=storage)


def export_gguf(model: str | os.PathLike, out: str | os.PathLike, type_name: str = "Q8_0") -> Path:
    """Write the Llama `model` (a directory, or a `.gguf` source) to the GGUF file `out`, matrices in `type_name`
    (F32, F16, Q8_0, Q4_0 or Q4_1); an existing file is replaced. Returns `out`."""
    import gguf

    from obliviate.models.loading import load_model

    out = Path(out).expanduser()
    if type_name not in EXPORT_TYPES:
        raise ObliviateError(f"unknown GGUF type '{type_name}': choose one of {', '.join(EXPORT_TYPES)}")
    if out.suffix.lower() != GGUF_SUFFIX:
        raise ObliviateError(f"--out '{out}' must name a {GGUF_SUFFIX} file")
    if out.is_dir():
        raise ObliviateError(f"--out '{out}' is a directory")
    directory = _model_dir(model)
    config = _llama_config(directory)
    with atomic_file(out) as staging:
        writer = gguf.GGUFWriter(staging, ARCHITECTURE)
        _add_metadata(writer, config, directory, type_name)
        _add_tensors(writer, load_model(directory, dtype="float32"), config, gguf_type(type_name))
        writer.write_header_to_file()
        writer.write_kv_data_to_file()
        writer.write_tensors_to_file()
        writer.close()
    return out
