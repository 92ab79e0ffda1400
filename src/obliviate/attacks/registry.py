"""The attack API: an attack measures, on one model, how much of the forget set it brings back.

    @register_attack("paraphrase", "formats", "extraction")
    def paraphrase(subject: Subject, context: AttackContext) -> Measurement: ...

`run_attacks` calls it once per model (attacked, upper, floor) with the same settings and budget.
`--attack` takes attack names or family names (`formats` = every attack of formats.py).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Callable

from obliviate.errors import ObliviateError

if TYPE_CHECKING:
    from obliviate.attacks.context import AttackContext, Subject

# What `recovered` counts, per metric name.
METRICS = {
    "extraction": "fraction of forget answers the greedy continuation starts with",
    "mcq_accuracy": "multiple-choice accuracy (answer vs its wrong answers) by log-likelihood",
    "probe_accuracy": "linear-probe accuracy of the attribute value among all values in the world",
    "lens_extraction": "fraction of answers every token of which is the top-1 of the logit lens at the best layer",
}


@dataclass
class Measurement:
    value: float
    n: int  # how many items the value is a fraction of
    details: dict = field(default_factory=dict)


@dataclass(frozen=True)
class Attack:
    name: str
    family: str
    metric: str
    run: Callable[["Subject", "AttackContext"], Measurement]


ATTACKS: dict[str, Attack] = {}


def register_attack(name: str, family: str, metric: str):
    if metric not in METRICS:
        raise ValueError(f"attack {name}: unknown metric {metric}")

    def decorator(run: Callable[["Subject", "AttackContext"], Measurement]):
        if name in ATTACKS:
            raise ValueError(f"attack '{name}' is registered twice")
        ATTACKS[name] = Attack(name, family, metric, run)
        return run

    return decorator


def _load_builtin() -> None:
    from obliviate.attacks import formats, gcg, jailbreak, linear_probe, logit_lens, quantization, relearn  # noqa: F401


def attack_names() -> list[str]:
    _load_builtin()
    return list(ATTACKS)


def get_attacks(names: list[str] | str | None = None) -> list[Attack]:
    """The attacks named (attack or family names, comma-separated or a list); None: all of them."""
    _load_builtin()
    if names is None or names == "all":
        return list(ATTACKS.values())
    wanted = [n.strip() for n in (names.split(",") if isinstance(names, str) else names) if n.strip()]
    chosen: dict[str, Attack] = {}
    for name in wanted:
        matches = [a for a in ATTACKS.values() if name in (a.name, a.family)]
        if not matches:
            families = sorted({a.family for a in ATTACKS.values()})
            raise ObliviateError(f"unknown attack '{name}' (attacks: {', '.join(ATTACKS)}; "
                                 f"families: {', '.join(families)})")
        chosen.update((a.name, a) for a in matches)
    return list(chosen.values())
