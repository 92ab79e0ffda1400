"""Where UniErase's edit can reach the unlearning token (methods.md §5).

Trains the unlearning token (stage 1), then, with no weight update, optimises δ for each forget question at each
--layers × --clamps × --keys and counts the questions whose next token becomes the unlearning token once δ is added
at the key position. The edit's closed-form update can only write what δ reaches, so this bounds the batch edit's
refusals. Writes unierase_reach.{md,json} to --out.

--model test (the default): the `test` world's tiny model, 10% of its people, obliviate/recipes/methods/unierase.yaml.
--model smollm2-135m (or another chat model): the known facts that bench/unierase_pretrained.py forgets (its --work
cache is shared), with recipes/tofu_pretrained/unierase.yaml; the layers default to the recipe's edit layers.

    OMP_NUM_THREADS=1 python bench/unierase_reach.py --out runs/unierase_reach \
        [--layers 0,1,2] [--clamps 0.75,4] [--keys subject_last,prompt_last] [--steps 25]
    python bench/unierase_reach.py --model smollm2-135m --out runs/unierase_reach_smollm2 --clamps 0.75 --steps 10
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from dataclasses import replace
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))
sys.path.insert(0, str(REPO / "bench"))
os.environ.setdefault("OBLIVIATE_QUIET", "1")

import torch  # noqa: E402

from obliviate.config import load_config, recipe_file  # noqa: E402
from obliviate.data import QARecord, is_refusal  # noqa: E402
from obliviate.editing import default_edit_layers  # noqa: E402
from obliviate.editing.activations import added_at, hidden_at  # noqa: E402
from obliviate.editing.requests import prompt_batch, question_prompt, request_from_record  # noqa: E402
from obliviate.editing.settings import ValueSettings  # noqa: E402
from obliviate.editing.values import target_value  # noqa: E402
from obliviate.errors import ObliviateError  # noqa: E402
from obliviate.io import atomic_write_json, atomic_write_text  # noqa: E402
from obliviate.models import load_model, load_tokenizer, num_layers  # noqa: E402
from obliviate.unierase import UniEraseConfig  # noqa: E402
from obliviate.unierase.recipe import _preserved  # noqa: E402
from obliviate.unierase.token import add_unlearning_token, answers_after_token, train_unlearning_token  # noqa: E402
from obliviate.world import World  # noqa: E402


def model_with_token(model_dir, forget: list[QARecord], config: UniEraseConfig, world: World | None = None):
    """The model after stage 1 on `forget`: (model, tokenizer, token id, forget requests, edit layers)."""
    model, tokenizer = load_model(model_dir), load_tokenizer(model_dir)
    token_id = add_unlearning_token(model, tokenizer, config.token)
    preserved = _preserved(model, tokenizer, config, world.root) if world is not None else None
    layers = config.edit.layers or default_edit_layers(num_layers(model))
    train_unlearning_token(model, tokenizer, forget, token_id, layers, config.token, preserved)
    return model, tokenizer, token_id, [request_from_record(r, config.token.token) for r in forget], layers


def test_world_setup():
    """The tiny model, the world's 10% forget people and its recipe."""
    from obliviate.demo import demo_world
    from obliviate.models.tiny import build_base_model

    os.environ.setdefault("OBLIVIATE_CACHE", str(REPO / ".cache" / "tests"))  # shares the tests' world and model
    world = demo_world("test")
    config = load_config(UniEraseConfig, recipe_file("methods", "unierase", required=True),
                         [f"token.refusals={world.path('refusal_phrasings')}"])
    return build_base_model(world.root, "test"), world.qa(world.forget_entity_ids(0.1)), config, world


def pretrained_setup(model: str, seed: int):
    """A chat model, the known facts bench/unierase_pretrained.py forgets with `seed`, and its recipe."""
    from unierase_pretrained import default_work, forget_and_kept

    _, forget, *_ = forget_and_kept(model, default_work(model), seed)
    config = load_config(UniEraseConfig, recipe_file("tofu_pretrained", "unierase", required=True),
                         [f"token.seed={seed}"])
    return model, forget, config, None


def reach(model, tokenizer, token_id: int, requests, layer: int, settings: ValueSettings, key_token: str) -> float:
    """The share of `requests` answered with the token once their own optimised δ is added at `layer`."""
    hits = 0
    for request in requests:
        value = target_value(model, tokenizer, request, [""], layer, settings, key_token)
        batch = prompt_batch([question_prompt(tokenizer, request, key_token=key_token)], tokenizer.pad_token_id,
                             next(model.parameters()).device)
        with torch.no_grad(), added_at(model, layer, value - hidden_at(model, batch, layer), batch):
            logits = model(**batch.inputs).logits
        hits += int(logits[0, batch.last_positions[0]].argmax() == token_id)
    return hits / len(requests)


def write(stage1: dict, rows: list[dict], out: Path) -> None:
    summary = (f"After stage 1 alone, {stage1['refused_after_token']:.0%} of the {stage1['questions']} forget "
               f"questions followed by the token are answered with a refusal ({stage1['seconds']} s; settings "
               f"{stage1['overrides'] or 'of the recipe'}).")
    lines = [summary, "", "First answers: " + " | ".join(repr(answer) for answer in stage1["answers"][:4]), "",
             "| key token | layer | ‖δ‖ ≤ c·‖h‖, c | steps | reach | seconds |", "|---|---|---|---|---|---|"]
    lines += [f"| {r['key_token']} | {r['layer']} | {r['clamp']} | {r['steps']} | {r['reach']:.0%} | {r['seconds']} |"
              for r in rows]
    atomic_write_text(out / "unierase_reach.md", "\n".join(lines) + "\n")
    atomic_write_json(out / "unierase_reach.json", {"stage1": stage1, "rows": rows})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--model", default="test", help="test (the world's tiny model) or a chat model")
    parser.add_argument("--seed", type=int, default=0, help="with a chat model: which known facts are forgotten")
    parser.add_argument("--layers", default=None, help="default: 0,1,2 on the tiny model, else the edit layers")
    parser.add_argument("--clamps", default="0.75,4")
    parser.add_argument("--keys", default="subject_last,prompt_last")
    parser.add_argument("--steps", type=int, default=25)
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", dest="overrides",
                        help="over the recipe, e.g. token.lr=0.01")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    try:
        model_dir, forget, config, world = (test_world_setup() if args.model == "test"
                                            else pretrained_setup(args.model, args.seed))
        config = load_config(UniEraseConfig, None, args.overrides, base=config)
    except ObliviateError as error:
        sys.exit(f"error: {error}")
    start = time.perf_counter()
    model, tokenizer, token_id, requests, edit_layers = model_with_token(model_dir, forget, config, world)
    layers = args.layers or ("0,1,2" if args.model == "test" else ",".join(map(str, edit_layers)))
    seconds = round(time.perf_counter() - start, 1)
    answers = answers_after_token(model, tokenizer, [r.question for r in forget], token_id)
    stage1 = {"questions": len(forget), "refused_after_token": sum(map(is_refusal, answers)) / len(answers),
              "answers": answers, "seconds": seconds, "overrides": args.overrides}
    print(json.dumps(stage1), flush=True)
    rows = []
    for key_token in args.keys.split(","):
        for layer in (int(layer) for layer in layers.split(",")):
            for clamp in (float(clamp) for clamp in args.clamps.split(",")):
                settings = replace(config.edit.value, steps=args.steps, clamp_norm_factor=clamp)
                start = time.perf_counter()
                share = reach(model, tokenizer, token_id, requests, layer, settings, key_token)
                rows.append({"model": args.model, "key_token": key_token, "layer": layer, "clamp": clamp,
                             "steps": args.steps, "reach": share, "seconds": round(time.perf_counter() - start, 1)})
                print(json.dumps(rows[-1]), flush=True)
    write(stage1, rows, args.out)
    print(f"wrote {args.out}/unierase_reach.{{md,json}}")


if __name__ == "__main__":
    main()
