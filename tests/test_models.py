"""obliviate.models on tiny random Llama, Qwen2, Mistral, Gemma and GPT-2 models built from configs."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

from huggingface_hub import constants as hub_constants
import pytest
import torch
from peft import AutoPeftModelForCausalLM, PeftModel
from tokenizers import Tokenizer, models, pre_tokenizers, trainers
from torch import nn
from transformers import (
    AutoModelForCausalLM,
    GemmaConfig,
    GPT2Config,
    GPTNeoXConfig,
    LlamaConfig,
    MistralConfig,
    OPTConfig,
    PhiConfig,
    PreTrainedTokenizerFast,
    Qwen2Config,
)
from transformers.pytorch_utils import Conv1D

from obliviate.errors import ObliviateError
from obliviate.models import (
    LoraSettings,
    add_lora,
    apply_weight_delta,
    decoder_layers,
    embedding_matrix,
    embeddings_tied,
    ensure_pad_token,
    final_norm,
    hidden_size,
    left_padded,
    linear_weight_as_out_in,
    load_model,
    load_tokenizer,
    mlp_down_proj,
    mlp_module,
    model_fingerprint,
    module_name,
    num_layers,
    output_embedding_matrix,
    save_model,
    set_linear_weight,
)

SENTENCES = [
    "Question: Where was Ada Quill born?\nAnswer: Ada Quill was born in Port Elm.",
    "Question: What does Ada Quill do?\nAnswer: She repairs clocks.",
    "the cat sat on the mat and the dog sat on the log",
]
HIDDEN, INTERMEDIATE, LAYERS = 32, 64, 2
ARCHS = ["llama", "qwen2", "mistral", "gemma", "gpt2"]


def tiny_config(arch: str, vocab_size: int):
    common = dict(vocab_size=vocab_size, hidden_size=HIDDEN, intermediate_size=INTERMEDIATE,
                  num_hidden_layers=LAYERS, num_attention_heads=4, num_key_value_heads=2,
                  max_position_embeddings=64)
    if arch == "gpt2":
        return GPT2Config(vocab_size=vocab_size, n_embd=HIDDEN, n_inner=INTERMEDIATE, n_layer=LAYERS, n_head=4,
                          n_positions=64, bos_token_id=1, eos_token_id=2)
    if arch == "gemma":
        return GemmaConfig(head_dim=8, **common)
    return {"llama": LlamaConfig, "qwen2": Qwen2Config, "mistral": MistralConfig}[arch](**common)


def tiny_tokenizer(special: dict[str, str]) -> PreTrainedTokenizerFast:
    backend = Tokenizer(models.WordLevel(unk_token="<unk>"))
    backend.pre_tokenizer = pre_tokenizers.Whitespace()
    backend.train_from_iterator(SENTENCES, trainers.WordLevelTrainer(special_tokens=list(special.values())))
    return PreTrainedTokenizerFast(tokenizer_object=backend, **special)


def save_tiny_model(arch: str, directory: Path, tokenizer) -> Path:
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_config(tiny_config(arch, len(tokenizer)))
    model.save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    return directory


def file_hashes(directory: Path) -> dict[str, str]:
    return {str(f.relative_to(directory)): hashlib.sha256(f.read_bytes()).hexdigest()
            for f in sorted(directory.rglob("*")) if f.is_file()}


def sample_ids(model: nn.Module) -> torch.Tensor:
    generator = torch.Generator().manual_seed(1)
    return torch.randint(3, embedding_matrix(model).shape[0], (2, 7), generator=generator)


def logits(model: nn.Module, ids: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return model(input_ids=ids).logits


def randomize_lora(model: PeftModel) -> None:
    """LoRA B starts at zero; make the adapters change the outputs."""
    torch.manual_seed(2)
    for name, parameter in model.named_parameters():
        if "lora_B" in name:
            nn.init.normal_(parameter, std=0.5)


def assert_one_line(error: pytest.ExceptionInfo) -> str:
    message = str(error.value)
    assert message and "\n" not in message
    return message


@pytest.fixture(scope="module")
def tokenizer():
    return tiny_tokenizer({"unk_token": "<unk>", "bos_token": "<s>", "eos_token": "</s>"})


@pytest.fixture(scope="module")
def model_dirs(tmp_path_factory, tokenizer) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("models")
    return {arch: save_tiny_model(arch, root / arch, tokenizer) for arch in ARCHS}


@pytest.fixture(params=ARCHS)
def arch(request) -> str:
    return request.param


# ---------------------------------------------------------------- loading


def test_load_model_float32(model_dirs, arch):
    model = load_model(model_dirs[arch], dtype="float32")
    assert model.config.model_type == arch
    assert model.dtype == torch.float32
    assert logits(model, sample_ids(model)).shape[:2] == (2, 7)


@pytest.mark.skipif(torch.cuda.is_available(), reason="the upcast applies to CPU-only machines")
def test_auto_dtype_loads_half_checkpoint_as_float32_on_cpu(tmp_path, model_dirs):
    load_model(model_dirs["llama"], dtype="float32").to(torch.bfloat16).save_pretrained(tmp_path / "bf16")
    assert load_model(tmp_path / "bf16").dtype == torch.float32
    assert load_model(tmp_path / "bf16", dtype="bfloat16").dtype == torch.bfloat16


def test_unknown_dtype_is_one_line_error(model_dirs):
    with pytest.raises(ObliviateError) as error:
        load_model(model_dirs["llama"], dtype="fp8")
    assert "fp8" in assert_one_line(error)


def test_missing_local_path_is_one_line_error(tmp_path):
    for missing in (tmp_path / "no-such-model", "./no/such/model"):
        with pytest.raises(ObliviateError) as error:
            load_model(missing)
        assert "does not exist" in assert_one_line(error)


def test_unreachable_hub_model_is_one_line_error(monkeypatch):
    monkeypatch.setattr(hub_constants, "HF_HUB_OFFLINE", True)
    with pytest.raises(ObliviateError) as error:
        load_model("obliviate-tests/no-such-model")
    message = assert_one_line(error)
    assert "obliviate-tests/no-such-model" in message and "HF_HUB_OFFLINE" in message


def test_pickle_only_dir_is_refused_unless_allowed(tmp_path, model_dirs):
    model = load_model(model_dirs["llama"], dtype="float32")
    model.config.save_pretrained(tmp_path)
    torch.save(model.state_dict(), tmp_path / "pytorch_model.bin")
    with pytest.raises(ObliviateError) as error:
        load_model(tmp_path)
    assert "allow_pickle" in assert_one_line(error)
    reloaded = load_model(tmp_path, dtype="float32", allow_pickle=True)
    ids = sample_ids(model)
    torch.testing.assert_close(logits(reloaded, ids), logits(model, ids))


def test_tokenizer_pads_on_the_right_with_eos(model_dirs):
    tokenizer = load_tokenizer(model_dirs["llama"])
    assert tokenizer.pad_token == tokenizer.eos_token == "</s>"
    assert tokenizer.padding_side == "right"
    with left_padded(tokenizer):
        batch = tokenizer(["the cat", "the cat sat on"], padding=True)
        assert batch["input_ids"][0][0] == tokenizer.pad_token_id
    assert tokenizer.padding_side == "right"


def test_tokenizer_without_eos_gets_pad_token_and_model_is_resized(tmp_path):
    model_dir = save_tiny_model("llama", tmp_path, tiny_tokenizer({"unk_token": "<unk>"}))
    tokenizer = load_tokenizer(model_dir)
    assert tokenizer.pad_token == "<pad>"
    model = load_model(model_dir, dtype="float32")
    assert len(tokenizer) == embedding_matrix(model).shape[0] + 1
    assert ensure_pad_token(tokenizer, model) is False  # already added by load_tokenizer
    assert embedding_matrix(model).shape[0] == len(tokenizer)
    padded = torch.tensor([[tokenizer.pad_token_id] * 3])
    assert logits(model, padded).shape == (1, 3, len(tokenizer))


# ---------------------------------------------------------------- architecture


def test_decoder_layers_and_mlp_projection(model_dirs, arch):
    model = load_model(model_dirs[arch], dtype="float32")
    layers = decoder_layers(model)
    assert num_layers(model) == LAYERS
    assert hidden_size(model) == HIDDEN
    if arch == "gpt2":
        expected_layers, down_name, norm = model.transformer.h, "c_proj", model.transformer.ln_f
    else:
        expected_layers, down_name, norm = model.model.layers, "down_proj", model.model.norm
    assert layers is expected_layers
    assert final_norm(model) is norm
    for index in range(LAYERS):
        assert mlp_module(model, index) is layers[index].mlp
        down_proj = mlp_down_proj(model, index)
        assert down_proj is getattr(layers[index].mlp, down_name)
        assert linear_weight_as_out_in(down_proj).shape == (HIDDEN, INTERMEDIATE)
    assert module_name(model, mlp_down_proj(model, 1)).endswith(f".1.mlp.{down_name}")
    assert decoder_layers(add_lora(model)) is layers  # found through the peft wrapper too


@pytest.mark.parametrize("config, down_proj_name, norm_name", [
    (OPTConfig(ffn_dim=INTERMEDIATE, word_embed_proj_dim=HIDDEN), "model.decoder.layers.1.fc2",
     "model.decoder.final_layer_norm"),
    (GPTNeoXConfig(intermediate_size=INTERMEDIATE), "gpt_neox.layers.1.mlp.dense_4h_to_h", "gpt_neox.final_layer_norm"),
    (PhiConfig(intermediate_size=INTERMEDIATE), "model.layers.1.mlp.fc2", "model.final_layernorm"),
], ids=["opt", "gpt_neox", "phi"])
def test_other_architectures_have_layers_down_proj_and_final_norm(config, down_proj_name, norm_name):
    config.update(dict(vocab_size=40, hidden_size=HIDDEN, num_hidden_layers=LAYERS, num_attention_heads=4,
                       bos_token_id=1, eos_token_id=2))
    model = AutoModelForCausalLM.from_config(config)
    assert num_layers(model) == LAYERS
    down_proj = mlp_down_proj(model, 1)
    assert module_name(model, down_proj) == down_proj_name
    assert linear_weight_as_out_in(down_proj).shape == (HIDDEN, INTERMEDIATE)
    assert module_name(model, final_norm(model)) == norm_name


def test_embeddings(model_dirs, arch):
    model = load_model(model_dirs[arch], dtype="float32")
    vocab = model.config.vocab_size
    assert embedding_matrix(model).shape == output_embedding_matrix(model).shape == (vocab, HIDDEN)
    assert embeddings_tied(model) == (arch in ("gemma", "gpt2"))


def test_unsupported_architecture_is_one_line_error():
    with pytest.raises(ObliviateError) as error:
        decoder_layers(nn.Sequential(nn.Linear(2, 2)))
    assert "Sequential" in assert_one_line(error)


@pytest.mark.parametrize("layer", [nn.Linear(4, 3), Conv1D(3, 4)], ids=["linear", "conv1d"])
def test_weight_view_and_delta_act_as_out_in(layer):
    x = torch.randn(5, 4)
    weight = linear_weight_as_out_in(layer).detach().clone()
    assert weight.shape == (3, 4)
    torch.testing.assert_close(layer(x), x @ weight.T + layer.bias)

    delta = torch.randn(3, 4)
    apply_weight_delta(layer, delta)
    torch.testing.assert_close(layer(x), x @ (weight + delta).T + layer.bias)

    replacement = torch.randn(3, 4)
    set_linear_weight(layer, replacement)
    torch.testing.assert_close(layer(x), x @ replacement.T + layer.bias)
    with pytest.raises(ValueError):
        apply_weight_delta(layer, delta.T)


# ---------------------------------------------------------------- LoRA


def lora_layer_names(model: PeftModel) -> list[str]:
    return [name for name, module in model.named_modules() if hasattr(module, "lora_A") and module.lora_A]


def test_lora_wraps_every_decoder_linear_and_runs(model_dirs, arch):
    model = load_model(model_dirs[arch], dtype="float32")
    ids = sample_ids(model)
    before = logits(model, ids)
    peft_model = add_lora(model, LoraSettings(r=4))
    assert isinstance(peft_model, PeftModel)
    names = lora_layer_names(peft_model)
    # q/k/v/o + gate/up/down; GPT-2: c_attn, attn.c_proj, c_fc, mlp.c_proj
    assert len(names) == LAYERS * (4 if arch == "gpt2" else 7)
    assert not any("lm_head" in name for name in names)
    trainable = [name for name, p in peft_model.named_parameters() if p.requires_grad]
    assert trainable and all("lora_" in name for name in trainable)
    torch.testing.assert_close(logits(peft_model, ids), before)  # LoRA B starts at zero


@pytest.mark.parametrize("name", ["llama", "gpt2"])
def test_lora_restricted_to_chosen_layers(model_dirs, name):
    model = load_model(model_dirs[name], dtype="float32")
    peft_model = add_lora(model, LoraSettings(layers=[1]))
    layer_prefix = module_name(peft_model, decoder_layers(peft_model)) + ".1."
    names = lora_layer_names(peft_model)
    assert names and all(layer_prefix in name for name in names)


# ---------------------------------------------------------------- saving


def test_save_merged_loads_as_plain_model_with_same_logits(tmp_path, model_dirs, arch):
    before = file_hashes(model_dirs[arch])
    tokenizer = load_tokenizer(model_dirs[arch])
    peft_model = add_lora(load_model(model_dirs[arch], dtype="float32"))
    randomize_lora(peft_model)
    ids = sample_ids(peft_model)
    expected = logits(peft_model, ids)

    out = save_model(peft_model, tokenizer, tmp_path / "merged", extra_json={"run.json": {"method": "test"}})
    assert (out / "model.safetensors").exists() and (out / "run.json").exists()
    assert not (out / "adapter_config.json").exists()
    reloaded = AutoModelForCausalLM.from_pretrained(out)
    torch.testing.assert_close(logits(reloaded, ids), expected, atol=1e-5, rtol=0)
    assert load_tokenizer(out).get_vocab() == tokenizer.get_vocab()
    assert file_hashes(model_dirs[arch]) == before


def test_save_adapter_only_reloads_with_peft(tmp_path, model_dirs, tokenizer):
    base_dir = model_dirs["gpt2"]
    peft_model = add_lora(load_model(base_dir, dtype="float32"), LoraSettings(layers=[0]))
    randomize_lora(peft_model)
    ids = sample_ids(peft_model)
    expected = logits(peft_model, ids)

    out = save_model(peft_model, tokenizer, tmp_path / "adapter", merge_lora=False)
    assert (out / "adapter_model.safetensors").exists() and not (out / "model.safetensors").exists()
    reloaded = PeftModel.from_pretrained(load_model(base_dir, dtype="float32"), out)
    torch.testing.assert_close(logits(reloaded, ids), expected, atol=1e-5, rtol=0)
    torch.testing.assert_close(logits(AutoPeftModelForCausalLM.from_pretrained(out), ids), expected,
                               atol=1e-5, rtol=0)


def test_save_refuses_to_replace_the_input_directory(model_dirs, tokenizer):
    before = file_hashes(model_dirs["llama"])
    model = load_model(model_dirs["llama"])
    for out_dir in (model_dirs["llama"], model_dirs["llama"].parent):
        with pytest.raises(ObliviateError) as error:
            save_model(model, tokenizer, out_dir)
        assert "input model directory" in assert_one_line(error)
    assert file_hashes(model_dirs["llama"]) == before


def test_failed_save_leaves_no_partial_directory(tmp_path, model_dirs, tokenizer, monkeypatch):
    def fail(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(type(tokenizer), "save_pretrained", fail)
    with pytest.raises(RuntimeError, match="disk full"):
        save_model(load_model(model_dirs["llama"]), tokenizer, tmp_path / "out")
    assert list(tmp_path.iterdir()) == []


def test_extra_json_needs_plain_file_names(tmp_path, model_dirs, tokenizer):
    with pytest.raises(ObliviateError):
        save_model(load_model(model_dirs["llama"]), tokenizer, tmp_path / "out", extra_json={"../run.json": {}})


def test_model_fingerprint_follows_content_not_location(tmp_path, model_dirs, tokenizer):
    source = model_dirs["llama"]
    fingerprint = model_fingerprint(source)
    assert len(fingerprint) == 16 and fingerprint == model_fingerprint(source)
    copy = shutil.copytree(source, tmp_path / "copy")
    assert model_fingerprint(copy) == fingerprint

    model = load_model(source, dtype="float32")
    apply_weight_delta(mlp_down_proj(model, 1), torch.full((HIDDEN, INTERMEDIATE), 0.01))
    assert model_fingerprint(save_model(model, tokenizer, tmp_path / "edited")) != fingerprint
    with pytest.raises(ObliviateError):
        model_fingerprint(tmp_path / "missing")
