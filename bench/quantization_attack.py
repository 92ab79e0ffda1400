"""Does unlearning on a pretrained chat model survive quantisation? Each method's run, quantised and attacked.

    PYTHONPATH=src python bench/quantization_attack.py [--model smollm2-135m] [--methods ga,npo,graddiff,npo_gd,npo_kl]
        [--attacks quantization,paraphrase,multiple_choice,relearn] [--limit N] [--out bench/results/quantization_attack]

The setup is `obliviate demo --model`'s (obliviate.demo_pretrained): the model as it came is taught four
fictitious people (LoRA, merged), then each method unlearns one person of each co-author pair with its
pretrained recipe (recipes/pretrained/<method>.yaml: LoRA r 16, merged when saved), their co-authors as the
retain set. The taught model and the runs (run-<method>) live in the demo's work directory (`--workdir`), so
the demo and this bench share them; `--unlearn-set KEY=VALUE` changes the runs, so give it a --workdir of its
own. `run_attacks` attacks each run on the forget people's questions (one phrasing per fact; `--limit`: the
first N), with the taught model as the upper bound and the model as it came, which never saw these people, as
the floor. The people's world has no biographies or craft texts, so of the `formats` family only paraphrase
and multiple_choice apply.

Writes quantization_attack.md and .json to --out: per method the forget extraction in full precision, then what
each attack recovered; and checks Zhang et al.'s claim (ICLR 2025) that utility-constrained methods (a retain
term: graddiff, npo_gd, npo_kl) bring much of the forgotten knowledge back at 4 bits while GA-style ones do not.

`--taught DIR --people DIR` skip the teaching: a model that knows the people of the world at --people. The smoke
run on the tiny test model uses them (the tiny model taught by `teach_people` beforehand):

    OBLIVIATE_CACHE=.cache/tests PYTHONPATH=src python bench/quantization_attack.py --model TINY_DIR \\
        --taught WORK/taught --people WORK/people --workdir WORK --out /tmp/quant-smoke --limit 8 \\
        --unlearn-set max_steps=2 --attack-set relearn_steps=2
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from robustness import markdown, plain_extraction  # bench/robustness.py, beside this script

from obliviate.attacks import AttackSettings, run_attacks
from obliviate.config import load_config, recipe_file
from obliviate.demo_pretrained import RECIPES, model_workdir, one_of_each_pair, teach_people, unlearn_people
from obliviate.io import atomic_write_json, atomic_write_text
from obliviate.unlearn import get_method, resolve_config
from obliviate.world import World

REPO = Path(__file__).resolve().parents[1]
ATTACKS = "quantization,paraphrase,multiple_choice,relearn"
FOUR_BIT = ("quant_gguf_q4_0", "quant_gguf_q4_1", "quant_nf4")
MUCH = 0.5  # "much of the forgotten knowledge": at least half the floor→upper gap back


def constrained(method: str) -> bool:
    """Whether the method's pretrained recipe has a retain term (the paper's utility-constrained methods)."""
    spec = get_method(method)
    return "retain" in spec.needs_for(resolve_config(spec, recipe_file(RECIPES, method, required=True)))


def share(value: float | None, floor: float | None, upper: float | None) -> float | None:
    """The share of the floor→upper gap that `value` brings back."""
    if None in (value, floor, upper) or upper == floor:
        return None
    return (value - floor) / (upper - floor)


def attack_share(row: dict) -> float | None:
    return share(row["recovered"], row["floor"], row["upper"])


def claim(results: dict[str, dict], unattacked: dict[str, float]) -> dict:
    """Per method: full precision and the 4-bit attack that brought back most; whether the claim holds."""
    rows = {}
    for method, document in results.items():
        four_bit = {name: row for name, row in document["attacks"].items() if name in FOUR_BIT}
        if not four_bit:
            continue
        best = max(four_bit, key=lambda name: attack_share(four_bit[name]) or float("-inf"))
        row = four_bit[best]
        rows[method] = {"constrained": constrained(method), "full_precision": unattacked[method],
                        "full_precision_share": share(unattacked[method], unattacked["floor"], unattacked["upper"]),
                        "four_bit_attack": best, "four_bit": row["recovered"],
                        "four_bit_share": attack_share(row)}
    kinds = {row["constrained"] for row in rows.values()}
    shares = [row["four_bit_share"] for row in rows.values()]
    holds = None
    if kinds == {True, False} and None not in shares:
        holds = all((row["four_bit_share"] >= MUCH) == row["constrained"] for row in rows.values())
    return {"methods": rows, "holds": holds}


def percent(value: float | None) -> str:
    return "–" if value is None else f"{100 * value:.0f}%"


def claim_text(check: dict) -> str:
    lines = [(f"Zhang et al.'s claim: utility-constrained methods bring back much (≥ {MUCH:.0%} of the floor→upper "
              "gap) of the forgotten knowledge at 4 bits, GA-style ones do not."), ""]
    for method, row in check["methods"].items():
        kind = "retain term" if row["constrained"] else "no retain term"
        lines.append(f"- {method} ({kind}): full precision {row['full_precision']:.2f} "
                     f"({percent(row['full_precision_share'])}) → 4-bit {row['four_bit']:.2f} "
                     f"({percent(row['four_bit_share'])}, {row['four_bit_attack']})")
    verdict = {True: "holds", False: "does not hold",
               None: "not checked: it needs a 4-bit attack, a defined gap, and methods of both kinds"}
    lines += ["", f"The claim {verdict[check['holds']]}."]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="smollm2-135m", help="the model as it came (the floor)")
    parser.add_argument("--methods", default="ga,npo,graddiff,npo_gd,npo_kl")
    parser.add_argument("--attacks", default=ATTACKS, help="attack or family names, comma-separated")
    parser.add_argument("--limit", type=int, help="attack only the first N forget questions")
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "quantization_attack")
    parser.add_argument("--workdir", type=Path, help="the taught model and the runs (default: the demo's)")
    parser.add_argument("--taught", type=Path, help="skip the teaching: a model that knows --people's people")
    parser.add_argument("--people", type=Path, help="the world directory of the people --taught knows")
    parser.add_argument("--unlearn-set", action="append", default=[], metavar="KEY=VALUE",
                        help="unlearning setting over the recipes (repeatable)")
    parser.add_argument("--attack-set", action="append", default=[], metavar="KEY=VALUE",
                        help="attack setting, as `obliviate attack --set` (repeatable)")
    args = parser.parse_args()
    if (args.taught is None) != (args.people is None):
        parser.error("--taught and --people go together")
    methods = args.methods.split(",")
    for method in methods:
        recipe_file(RECIPES, method, required=True)
    workdir = args.workdir or model_workdir(args.model)
    started = time.monotonic()
    taught, people = (args.taught, World(args.people)) if args.taught else teach_people(args.model, workdir)
    forget = people.qa(one_of_each_pair(people))[:args.limit]
    settings = load_config(AttackSettings, None, args.attack_set)
    unattacked = {"floor": plain_extraction(args.model, forget), "upper": plain_extraction(taught, forget)}
    results, seconds = {}, {}
    for method in methods:
        start = time.monotonic()
        run_dir = unlearn_people(taught, people, method, workdir / f"run-{method}", args.unlearn_set)
        unlearned = time.monotonic()
        unattacked[method] = plain_extraction(run_dir, forget)
        results[method] = run_attacks(run_dir, taught, args.model, forget, args.attacks, world=people,
                                      settings=settings, out=run_dir / "attacks.json")
        seconds[method] = {"unlearn": round(unlearned - start, 1), "attacks": round(time.monotonic() - unlearned, 1)}
        print(method, f"full precision {unattacked[method]:.2f}",
              {name: row["recovered"] for name, row in results[method]["attacks"].items()}, seconds[method], flush=True)
    check = claim(results, unattacked)
    table = markdown(results, unattacked, f"Unlearning vs quantisation on {args.model}",
                     "floor (the model as it came) and upper (taught)")
    text = f"{table}\n{len(forget)} forget questions; taught model {taught}.\n\n{claim_text(check)}"
    atomic_write_json(args.out / "quantization_attack.json",
                      {"model": str(args.model), "taught": str(taught), "people": str(people.root),
                       "forget_questions": len(forget), "no_attack": unattacked,
                       "attacks": {method: d["attacks"] for method, d in results.items()}, "claim": check,
                       "seconds": {**seconds, "total": round(time.monotonic() - started, 1)}})
    atomic_write_text(args.out / "quantization_attack.md", text)
    print(text)
    print(f"wrote {args.out}/quantization_attack.{{md,json}} ({time.monotonic() - started:.0f} s)")


if __name__ == "__main__":
    main()
