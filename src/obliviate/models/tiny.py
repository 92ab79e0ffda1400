"""The embedded tiny base model: a BPE tokenizer and a small Llama trained from scratch on a world.

The result is a plain Hugging Face model directory (safetensors weights, tokenizer.json), loadable
with `AutoModelForCausalLM.from_pretrained` without obliviate. Builds are cached under the cache
root by a hash of the world's files, the preset and the recipe version.
"""

from __future__ import annotations

import math
import random
import shutil
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import torch

from obliviate.io import atomic_directory, atomic_write_json, cache_root, content_digest
from obliviate.progress import progress
from obliviate.prompts import encode_qa
from obliviate.encoding import encode_text, right_padded
from obliviate.world import World

RECIPE_VERSION = 2
SPECIAL_TOKENS = ["<s>", "</s>", "<pad>", "<unk>"]


@dataclass(frozen=True)
class Preset:
    name: str
    vocab_size: int
    hidden_size: int
    layers: int
    heads: int
    intermediate_size: int
    epochs: int
    batch_size: int
    learning_rate: float
    world_entities: int = 0  # the world size `obliviate demo` builds for this preset (world presets only)
    seed: int = 0


PRESETS = {
    "test": Preset("test", vocab_size=1536, hidden_size=128, layers=4, heads=4, intermediate_size=384,
                   epochs=24, batch_size=16, learning_rate=2e-3, world_entities=30),
    "small": Preset("small", vocab_size=2048, hidden_size=192, layers=4, heads=4, intermediate_size=512,
                    epochs=24, batch_size=16, learning_rate=2e-3, world_entities=100),
}


def get_preset(name: str) -> Preset:
    from obliviate.errors import ObliviateError
    if name not in PRESETS:
        raise ObliviateError(f"unknown preset '{name}' (choose from: {', '.join(PRESETS)})")
    return PRESETS[name]


def train_tokenizer(texts: list[str], vocab_size: int):
    """A byte-level BPE tokenizer that adds <s> in front of every encoded text."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=SPECIAL_TOKENS,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tok.train_from_iterator(texts, trainer=trainer)
    bos = tok.token_to_id("<s>")
    tok.post_processor = processors.TemplateProcessing(single="<s> $A", pair="<s> $A <s> $B",
                                                       special_tokens=[("<s>", bos)])
    return PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<s>", eos_token="</s>",
                                   pad_token="<pad>", unk_token="<unk>", model_max_length=512)


def build_model(preset: Preset, tokenizer):
    from transformers import LlamaConfig, LlamaForCausalLM

    config = LlamaConfig(
        vocab_size=len(tokenizer), hidden_size=preset.hidden_size, intermediate_size=preset.intermediate_size,
        num_hidden_layers=preset.layers, num_attention_heads=preset.heads, num_key_value_heads=preset.heads,
        max_position_embeddings=512, tie_word_embeddings=True, rms_norm_eps=1e-5,
        bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id,
    )
    torch.manual_seed(preset.seed)
    return LlamaForCausalLM(config)


def _examples(world: World, tokenizer, exclude: tuple[int, ...] = ()):
    """Training sequences: QA with the loss on the answer, texts with the loss everywhere."""
    qa = [encode_qa(tokenizer, r.question, r.answer, use_chat_template=False, context=r.meta.get("context", ""),
                    lead=r.meta.get("lead", "")) for r in world.training_qa(exclude)]
    texts = [encode_text(tokenizer, t) for t in world.training_texts(exclude)]
    return qa + texts


def _batches(examples, batch_size: int, rng: random.Random):
    """Batches of similar length (little padding), in random order."""
    order = sorted(range(len(examples)), key=lambda i: (len(examples[i].input_ids), rng.random()))
    batches = [order[i:i + batch_size] for i in range(0, len(order), batch_size)]
    rng.shuffle(batches)
    return batches


def train_from_scratch(model, tokenizer, examples, preset: Preset) -> list[float]:
    rng = random.Random(preset.seed)
    torch.manual_seed(preset.seed)
    steps_per_epoch = math.ceil(len(examples) / preset.batch_size)
    total = steps_per_epoch * preset.epochs
    warmup = max(1, total // 30)
    optimizer = torch.optim.AdamW(model.parameters(), lr=preset.learning_rate, betas=(0.9, 0.98), weight_decay=0.0)
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: min(1.0, (s + 1) / warmup) * (0.1 + 0.45 * (1 + math.cos(math.pi * min(1.0, s / total)))))
    model.train()
    losses = []
    bar = progress(range(total), f"training tiny model ({preset.name})", leave=True)
    steps = iter(bar)
    for epoch in range(preset.epochs):
        epoch_loss = 0.0
        for batch in _batches(examples, preset.batch_size, rng):
            next(steps, None)
            input_ids, labels, attention = right_padded(examples, batch, tokenizer.pad_token_id)
            loss = model(input_ids=input_ids, attention_mask=attention, labels=labels).loss
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            schedule.step()
            optimizer.zero_grad(set_to_none=True)
            epoch_loss += loss.item()
        losses.append(epoch_loss / steps_per_epoch)
        if hasattr(bar, "set_postfix"):
            bar.set_postfix(epoch=epoch + 1, loss=f"{losses[-1]:.3f}")
    if hasattr(bar, "close"):
        bar.close()
    model.eval()
    return losses


def evaluate_base(model, tokenizer, world: World, exclude: tuple[int, ...] = ()) -> dict:
    """Exact match on trained and held-out phrasings (of the people it learned), world facts, MCQ accuracy."""
    from obliviate.eval.generation import generate_answers
    from obliviate.eval.mcq import mcq_accuracy, mcq_predict
    from obliviate.eval.metrics import exact_match_rate

    learned = world.retain_entity_ids(list(exclude))

    def exact_match(records):
        generated = generate_answers(model, tokenizer, [r.question for r in records])
        return exact_match_rate(generated, [r.answer for r in records], empty=0.0)

    result = {
        "exact_match_trained": exact_match(world.qa(learned)),
        "exact_match_heldout": exact_match(world.qa(learned, probes=True)),
        "exact_match_world_facts": exact_match(world.world_facts()),
    }
    per_domain = {}
    for domain in world.domain_names:
        records = world.mcq(domain)
        per_domain[domain] = mcq_accuracy(records, mcq_predict(model, tokenizer, records))
    result["mcq_accuracy"] = sum(per_domain.values()) / len(per_domain)
    result["mcq_accuracy_per_domain"] = per_domain
    return result


def cache_key(world: World, preset: Preset, exclude: tuple[int, ...] = ()) -> str:
    identity = {"world": world.fingerprint, "preset": asdict(preset), "recipe": RECIPE_VERSION}
    if exclude:
        identity["exclude_entities"] = sorted(exclude)
    return f"{preset.name}{'-retain' if exclude else ''}-{content_digest(identity)}"


def build_base_model(world_dir: str | Path, preset_name: str = "test", out: str | Path | None = None,
                     force: bool = False, exclude_entities: list[int] | None = None) -> Path:
    """Train (or fetch from cache) the tiny model for a world; copy it to `out` if given.

    With `exclude_entities` it is a *retain model*: the same tokenizer and recipe, trained without
    those people's QA and biographies — the reference an unlearned model is compared with."""
    world = World(world_dir)
    preset = get_preset(preset_name)
    exclude = tuple(sorted(set(exclude_entities or ())))
    cached = cache_root() / "models" / cache_key(world, preset, exclude)
    if force or not (cached / "base_eval.json").is_file():
        _train_into(cached, world, preset, exclude)
    if out is None:
        return cached
    out = Path(out)
    if out.resolve() != cached.resolve():
        with atomic_directory(out) as tmp:
            shutil.copytree(cached, tmp, dirs_exist_ok=True)
    return out


# A full model grown from a retain model: this many more epochs on the whole world, at this learning rate.
FULL_MODEL_EPOCHS, FULL_MODEL_LEARNING_RATE = 8, 1e-3


def build_retain_and_full(world_dir: str | Path, preset_name: str, forget_ids: list[int]) -> tuple[Path, Path]:
    """A retain model (never saw `forget_ids`) and a full model grown from it, for one base training's cost.

    The full model is the retain model trained further on the whole world: it learns the forget
    people by fine-tuning, as TOFU's models learn their authors, while replaying everything else."""
    world = World(world_dir)
    retain = build_base_model(world_dir, preset_name, exclude_entities=forget_ids)
    continuation = replace(get_preset(preset_name), epochs=FULL_MODEL_EPOCHS, learning_rate=FULL_MODEL_LEARNING_RATE)
    full = retain.parent / f"{retain.name}-full-{content_digest(asdict(continuation), 8)}"
    if not (full / "base_eval.json").is_file():
        _train_into(full, world, continuation, exclude=(), start_from=retain)
    return retain, full


def _train_into(target: Path, world: World, preset: Preset, exclude: tuple[int, ...],
                start_from: Path | None = None) -> None:
    """Train a model (from scratch, or further from the model at `start_from`) and save it with base_eval.json."""
    from obliviate.models.loading import load_model, load_tokenizer

    start = time.time()
    torch.manual_seed(preset.seed)
    if start_from is None:
        tokenizer = train_tokenizer([f"{r.question} {r.meta.get('lead', '')} {r.answer}" for r in world.training_qa()]
                                    + world.training_texts(),
                                    preset.vocab_size)
        model = build_model(preset, tokenizer)
    else:
        tokenizer, model = load_tokenizer(start_from), load_model(start_from)
    losses = train_from_scratch(model, tokenizer, _examples(world, tokenizer, exclude), preset)
    train_seconds = time.time() - start
    metrics = evaluate_base(model, tokenizer, world, exclude)
    with atomic_directory(target) as tmp:
        model.save_pretrained(tmp, safe_serialization=True)
        tokenizer.save_pretrained(tmp)
        atomic_write_json(tmp / "base_eval.json", {
            **metrics,
            "preset": asdict(preset),
            "world": str(world.root),
            "world_fingerprint": world.fingerprint,
            "excluded_entities": list(exclude),
            "trained_from": str(start_from) if start_from else "scratch",
            "parameters": sum(p.numel() for p in model.parameters()),
            "train_seconds": round(train_seconds, 1),
            "total_seconds": round(time.time() - start, 1),
            "epoch_losses": [round(x, 4) for x in losses],
        })
