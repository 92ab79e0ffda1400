"""Quantisation round trips against hand computations, which weights each format touches, and the attacks."""

import pytest
import torch
from gguf import GGMLQuantizationType
from torch import nn

from obliviate.attacks import attack_names, get_attacks, run_attacks
from obliviate.errors import ObliviateError
from obliviate.models import add_lora, embedding_matrix
from obliviate.models.quantization import (FORMATS, GGUF_FORMATS, NF4_CODE, gguf_round_trip, gguf_storage_type,
                                           int8_round_trip, nf4_round_trip, quantize_weights, quantized_copy,
                                           quantized_weights, round_trip)


@pytest.fixture
def weight():
    torch.manual_seed(0)
    return torch.randn(4, 96) * torch.tensor([0.01, 0.1, 1.0, 5.0]).unsqueeze(1)


def toy_llama(tie=False):
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=96, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=64,
                         initializer_range=0.1, tie_word_embeddings=tie)
    return LlamaForCausalLM(config).eval()


def blocks_of(tensor, size):
    return tensor.reshape(-1, size)


# ---- the formats, on one small matrix ----------------------------------------------------------------

def test_q8_0_is_a_rounded_multiple_of_the_block_absmax_over_127(weight):
    blocks = blocks_of(weight, 32)
    scale = blocks.abs().amax(dim=1, keepdim=True) / 127
    expected = torch.round(blocks / scale) * scale.half().float()  # the scale is stored as fp16
    restored = blocks_of(gguf_round_trip(weight, GGMLQuantizationType.Q8_0), 32)
    assert torch.allclose(restored, expected, rtol=0, atol=1e-6 * float(weight.abs().max()))
    assert ((restored - blocks).abs() <= scale).all()


def test_q4_0_is_a_multiple_of_a_sixteenth_of_the_block_range(weight):
    blocks = blocks_of(weight, 32)
    signed_max = blocks.gather(1, blocks.abs().argmax(dim=1, keepdim=True))
    scale = (signed_max / -8).half().float()
    restored = blocks_of(gguf_round_trip(weight, GGMLQuantizationType.Q4_0), 32)
    steps = restored / scale
    assert torch.allclose(steps, steps.round(), atol=1e-4) and steps.round().min() >= -8 and steps.round().max() <= 7
    assert ((restored - blocks).abs() <= scale.abs() * 1.01).all()  # half a step, a whole one at the clipped end
    assert torch.allclose(restored.gather(1, blocks.abs().argmax(dim=1, keepdim=True)), signed_max, rtol=1e-3)


def test_q4_1_is_the_block_minimum_plus_fifteenths_of_its_range(weight):
    blocks = blocks_of(weight, 32)
    low, high = blocks.amin(dim=1, keepdim=True), blocks.amax(dim=1, keepdim=True)
    step = ((high - low) / 15).half().float()
    restored = blocks_of(gguf_round_trip(weight, GGMLQuantizationType.Q4_1), 32)
    steps = (restored - low.half().float()) / step
    assert torch.allclose(steps, steps.round(), atol=1e-3) and steps.round().min() >= 0 and steps.round().max() <= 15
    assert ((restored - blocks).abs() <= step * 0.51).all()


def test_nf4_values_are_the_nearest_code_times_the_block_absmax():
    torch.manual_seed(1)
    weight = torch.randn(3, 40)  # 120 values: one block of 64 and a last one of 56
    restored = nf4_round_trip(weight).reshape(-1)
    for block, back in zip(weight.reshape(-1).split(64), restored.split(64)):
        absmax = block.abs().max()
        nearest = NF4_CODE[(block.unsqueeze(1) / absmax - NF4_CODE).abs().argmin(dim=1)]
        assert torch.allclose(back, nearest * absmax, atol=1e-6)
    assert restored.abs().max() == weight.abs().max()


def test_int8_is_row_wise_absmax():
    weight = torch.tensor([[0.5, -1.0, 0.25, 0.1], [3.0, 0.01, -0.3, 2.0], [0.0, 0.0, 0.0, 0.0]])
    absmax = torch.tensor([[1.0], [3.0], [1.0]])
    expected = torch.round(weight * 127 / absmax) * absmax / 127
    restored = int8_round_trip(weight)
    assert torch.allclose(restored, expected) and (restored[2] == 0).all()
    assert ((restored - weight).abs() <= absmax / 254 + 1e-7).all()


def test_rows_that_are_not_whole_blocks_are_stored_as_f16():
    assert gguf_storage_type((8, 48), GGMLQuantizationType.Q4_0) == GGMLQuantizationType.F16
    assert gguf_storage_type((8, 64), GGMLQuantizationType.Q4_0) == GGMLQuantizationType.Q4_0
    assert gguf_storage_type((64,), GGMLQuantizationType.Q8_0) == GGMLQuantizationType.F32
    assert gguf_storage_type((8, 48), GGMLQuantizationType.F32) == GGMLQuantizationType.F32


# ---- which weights, on a toy model --------------------------------------------------------------------

@pytest.mark.parametrize("format", FORMATS)
def test_copy_quantises_the_linear_weights_and_leaves_the_input_alone(format):
    model = toy_llama()
    before = {name: tensor.clone() for name, tensor in model.state_dict().items()}
    quantized = quantized_copy(model, format)
    assert all(torch.equal(tensor, before[name]) for name, tensor in model.state_dict().items())
    after = quantized.state_dict()
    for name, tensor in before.items():
        changed = not torch.equal(after[name], tensor)
        if tensor.dim() == 1:  # norms
            assert not changed, name
        elif name in ("model.embed_tokens.weight", "lm_head.weight"):
            assert changed == (format in GGUF_FORMATS), name
        else:
            assert changed, name
            assert torch.equal(after[name], round_trip(tensor, format)), name


def test_a_tied_embedding_is_quantised_once():
    model = toy_llama(tie=True)
    gguf_weights, nf4_weights = quantized_weights(model, "gguf_q4_0"), quantized_weights(model, "nf4")
    assert "model.embed_tokens" in gguf_weights and "lm_head" not in gguf_weights
    assert "model.embed_tokens" not in nf4_weights and "lm_head" not in nf4_weights
    quantized = quantized_copy(model, "gguf_q4_0")
    assert embedding_matrix(quantized) is quantized.lm_head.weight
    assert torch.equal(embedding_matrix(quantized), round_trip(embedding_matrix(model), "gguf_q4_0"))


def test_lora_adapters_are_merged_before_quantising():
    model = add_lora(toy_llama())
    for name, parameter in model.named_parameters():
        if "lora_B" in name:
            nn.init.normal_(parameter, std=0.1)
    merged = toy_llama()
    merged.load_state_dict(quantized_copy(model, "int8").state_dict(), strict=True)  # a plain model's keys
    expected = round_trip(model.get_base_model().model.layers[0].self_attn.q_proj.get_delta_weight("default")
                          + model.get_base_model().model.layers[0].self_attn.q_proj.base_layer.weight, "int8")
    assert torch.allclose(merged.model.layers[0].self_attn.q_proj.weight, expected, atol=1e-6)
    assert hasattr(model.get_base_model().model.layers[0].self_attn.q_proj, "lora_A")  # the input keeps its adapter


def test_eight_bits_move_the_logits_less_than_four():
    model = toy_llama()
    ids = torch.tensor([[1, 5, 9, 20, 33, 70]])
    with torch.no_grad():
        reference = model(ids).logits
        error = {format: float((quantized_copy(model, format)(ids).logits - reference).abs().max())
                 for format in FORMATS}
    assert 0 < error["gguf_q8_0"] < error["gguf_q4_0"] / 4 and 0 < error["int8"] < error["nf4"] / 4


def test_unknown_format_is_one_line():
    with pytest.raises(ObliviateError, match="unknown quantization format 'q3'"):
        quantize_weights(toy_llama(), "q3")


# ---- the attacks --------------------------------------------------------------------------------------

def test_one_attack_per_format_in_the_quantization_family():
    names = [f"quant_{format}" for format in FORMATS]
    assert set(names) <= set(attack_names())
    assert [a.name for a in get_attacks("quantization")] == names
    assert {a.metric for a in get_attacks("quantization")} == {"extraction"}


def test_quantization_attacks_run_on_the_test_model(test_model_dir, figure):
    from obliviate.unlearn import load_data

    forget = load_data("world:forget", model=test_model_dir)
    document = run_attacks(test_model_dir, test_model_dir, None, forget, "quantization")
    assert list(document["attacks"]) == [f"quant_{format}" for format in FORMATS]
    for row in document["attacks"].values():
        assert row["recovered"] == row["upper"] and row["floor"] is None and row["n"] == len(forget)
    # The model knows its facts; 8-bit weights keep them.
    figure("quant_gguf_q8_0: upper", document["attacks"]["quant_gguf_q8_0"]["upper"], at_least=0.8)
    figure("quant_int8: upper", document["attacks"]["quant_int8"]["upper"], at_least=0.8)
