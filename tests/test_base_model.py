"""The tiny base model: meets its target, loads with plain transformers, is cached."""

import json
import time

import torch

from obliviate.eval.generation import generate_answers
from obliviate.eval.metrics import exact_match_rate
from obliviate.models.tiny import build_base_model


def test_test_preset_meets_its_target(test_model_dir, figure):
    metrics = json.loads((test_model_dir / "base_eval.json").read_text())
    figure("exact match, trained phrasings", metrics["exact_match_trained"], at_least=0.80)
    figure("exact match, world facts", metrics["exact_match_world_facts"], at_least=0.80)
    for key in ("exact_match_heldout", "mcq_accuracy", "mcq_accuracy_per_domain", "train_seconds"):
        assert key in metrics


def test_saved_model_loads_with_plain_transformers_and_answers_the_same(test_model_dir, test_world, test_model):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    plain_model = AutoModelForCausalLM.from_pretrained(test_model_dir)
    plain_tokenizer = AutoTokenizer.from_pretrained(test_model_dir)
    model, tokenizer = test_model
    records = test_world.qa()[:24]
    questions = [r.question for r in records]
    ours = generate_answers(model, tokenizer, questions)
    plain = generate_answers(plain_model, plain_tokenizer, questions)
    assert ours == plain
    assert exact_match_rate(plain, [r.answer for r in records]) >= 0.8
    ids = plain_tokenizer("Question: Where was", return_tensors="pt").input_ids
    with torch.no_grad():
        assert torch.equal(plain_model(ids).logits, model(ids).logits)


def test_second_build_comes_from_the_cache(test_model_dir, test_world, tmp_path):
    start = time.time()
    again = build_base_model(test_world.root, "test")
    copied = build_base_model(test_world.root, "test", out=tmp_path / "copy")
    assert time.time() - start < 10
    assert again == test_model_dir
    assert (copied / "model.safetensors").read_bytes() == (test_model_dir / "model.safetensors").read_bytes()
