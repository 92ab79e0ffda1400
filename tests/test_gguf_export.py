"""`obliviate export`: the tiny test Llama written as GGUF, read back by transformers' GGUF loader."""

import json
import shutil
import sys

import pytest
import torch
from typer.testing import CliRunner

from obliviate.attacks.extraction import qa_prompt
from obliviate.models.gguf_export import export_gguf, permute_for_rope
from obliviate.models.quantization import quantized_copy

TEXTS = ["Where does Alice Smith live? Paris.", "<s> numbers 0123 and  two spaces</s>", "émigré naïve"]
Q8_0_LOGIT_ERROR = 0.1  # at most this share of the largest logit


@pytest.fixture(scope="module")
def exported(test_model_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("gguf")
    return {name: export_gguf(test_model_dir, out / f"test.{name}.gguf", name) for name in ("F32", "Q8_0")}


def read_back(path):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(path.parent, gguf_file=path.name)
    model = AutoModelForCausalLM.from_pretrained(path.parent, gguf_file=path.name, dtype=torch.float32).eval()
    return model, tokenizer


def logits(model, ids):
    with torch.no_grad():
        return model(torch.tensor([ids])).logits[0]


def greedy_answers(model, tokenizer, questions):
    answers = []
    for question in questions:
        prompt = torch.tensor([qa_prompt(tokenizer, question)])
        with torch.no_grad():
            output = model.generate(prompt, max_new_tokens=8, do_sample=False, pad_token_id=tokenizer.pad_token_id)
        answers.append(output[0, prompt.shape[1]:].tolist())
    return answers


@pytest.fixture(scope="module")
def questions(test_world):
    return [record.question for record in test_world.qa()[:12]]


def test_f32_reads_back_as_the_same_model(exported, test_model, questions):
    model, tokenizer = test_model
    back, back_tokenizer = read_back(exported["F32"])
    for text in TEXTS:
        ids = tokenizer(text)["input_ids"]
        assert back_tokenizer(text)["input_ids"] == ids
        assert torch.allclose(logits(back, ids), logits(model, ids), atol=1e-5)
    assert (back_tokenizer.bos_token, back_tokenizer.eos_token, back_tokenizer.pad_token) == ("<s>", "</s>", "<pad>")
    assert greedy_answers(back, back_tokenizer, questions) == greedy_answers(model, tokenizer, questions)


def test_q8_0_reads_back_as_the_q8_0_attack_sees_the_model(exported, test_model, questions, figure):
    model, tokenizer = test_model
    back, _ = read_back(exported["Q8_0"])
    attacked = quantized_copy(model, "gguf_q8_0")
    ids = tokenizer(TEXTS[0])["input_ids"]
    assert torch.allclose(logits(back, ids), logits(attacked, ids), atol=1e-4)
    reference = logits(model, ids)
    figure("Q8_0 logit error / largest logit", (logits(back, ids) - reference).abs().max() / reference.abs().max(),
           at_most=Q8_0_LOGIT_ERROR)
    same = [a == b for a, b in zip(greedy_answers(back, tokenizer, questions),
                                   greedy_answers(model, tokenizer, questions))]
    figure("Q8_0 greedy answers unchanged", sum(same) / len(same), at_least=0.9)


def field_value(reader, key):
    """A metadata value (ReaderField.contents() is newer than gguf 0.13): a string, a number, or a list of numbers."""
    import gguf

    field = reader.fields[key]
    values = [field.parts[index] for index in field.data]
    if field.types[-1] == gguf.GGUFValueType.STRING:
        return bytes(values[0]).decode()
    values = [value[0].item() for value in values]
    return values if field.types[0] == gguf.GGUFValueType.ARRAY else values[0]


def test_the_file_is_laid_out_as_llama_cpp_writes_it(exported, test_model):
    import gguf

    reader = gguf.GGUFReader(exported["Q8_0"])
    types = {tensor.name: tensor.tensor_type.name for tensor in reader.tensors}
    assert types["token_embd.weight"] == types["blk.0.attn_q.weight"] == types["blk.3.ffn_down.weight"] == "Q8_0"
    assert types["blk.0.attn_norm.weight"] == types["output_norm.weight"] == "F32"
    assert "output.weight" not in types  # the test model's LM head is tied
    assert field_value(reader, "general.architecture") == "llama"
    assert field_value(reader, "tokenizer.ggml.model") == "gpt2"
    assert field_value(reader, "general.file_type") == gguf.LlamaFileType.MOSTLY_Q8_0
    assert field_value(reader, "tokenizer.ggml.bos_token_id") == test_model[1].bos_token_id
    assert field_value(reader, "tokenizer.ggml.add_bos_token") is True
    token_types = field_value(reader, "tokenizer.ggml.token_type")
    assert token_types[test_model[1].bos_token_id] == gguf.TokenType.CONTROL
    assert token_types[10] == gguf.TokenType.NORMAL


def test_rope_permutation_interleaves_each_heads_halves():
    rows = torch.arange(8).unsqueeze(1).numpy()  # two heads of four rows: (0 1 | 2 3), (4 5 | 6 7)
    assert permute_for_rope(rows, 2)[:, 0].tolist() == [0, 2, 1, 3, 4, 6, 5, 7]


def test_cli_writes_q4_0_over_an_existing_file(test_model_dir, tmp_path):
    import gguf

    from obliviate.cli import app

    out = tmp_path / "model.gguf"
    out.write_text("old")
    result = CliRunner().invoke(app, ["export", str(test_model_dir), "--gguf", "q4_0", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "Q4_0" in result.output and [p.name for p in tmp_path.iterdir()] == ["model.gguf"]
    types = {tensor.name: tensor.tensor_type.name for tensor in gguf.GGUFReader(out).tensors}
    assert types["blk.1.ffn_up.weight"] == types["token_embd.weight"] == "Q4_0"


def bad_inputs(tmp_path, model_dir):
    from transformers import GPT2Config

    gpt2 = tmp_path / "gpt2"
    GPT2Config(n_embd=64, n_layer=1, n_head=2).save_pretrained(gpt2)
    word_level = tmp_path / "word_level"
    shutil.copytree(model_dir, word_level)
    state = json.loads((word_level / "tokenizer.json").read_text())
    state["pre_tokenizer"] = {"type": "Whitespace"}
    (word_level / "tokenizer.json").write_text(json.dumps(state))
    return {
        "architecture": ([str(gpt2)], "holds a 'gpt2' model: GGUF export supports Llama"),
        "type": ([str(model_dir), "--gguf", "Q5_K"], "unknown GGUF type 'Q5_K'"),
        "missing": ([str(tmp_path / "absent")], "model directory"),
        "suffix": ([str(model_dir), "--out", str(tmp_path / "out" / "model.bin")], "must name a .gguf file"),
        "tokenizer": ([str(word_level)], "not a byte-level BPE tokenizer"),
    }


@pytest.mark.parametrize("case", ["architecture", "type", "missing", "suffix", "tokenizer"])
def test_bad_input_is_one_line_and_writes_nothing(case, test_model_dir, tmp_path, monkeypatch, capsys):
    from obliviate import cli

    arguments, expected = bad_inputs(tmp_path, test_model_dir)[case]
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    if "--out" not in arguments:
        arguments = [*arguments, "--out", str(out_dir / "model.gguf")]
    monkeypatch.setattr(sys, "argv", ["obliviate", "export", *arguments])
    with pytest.raises(SystemExit) as exited:
        cli.main()
    err = capsys.readouterr().err
    assert exited.value.code == 2 and err.count("\n") == 1 and "Traceback" not in err
    assert expected in err, err
    assert list(out_dir.iterdir()) == []
