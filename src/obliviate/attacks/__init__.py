"""Robustness attacks: can forgotten knowledge be brought back?

    from obliviate.attacks import run_attacks
    result = run_attacks("runs/idk", "models/base", "models/retain", forget_records, out="runs/idk/attacks.json")

Every attack is run on three models with the same budget: the unlearned model (`recovered`), the
model before unlearning (`upper`) and a retain model that never saw the facts (`floor`). An attack
has worked when `recovered` lies clearly above `floor`.

Files: registry.py (attack API), context.py (settings, the models under attack), extraction.py
(the shared "does the greedy continuation start with the answer" measure), hidden.py (hidden states,
the lens readout), one module per attack family (relearn, formats, jailbreak, gcg, linear_probe,
logit_lens, quantization), run.py (`run_attacks`).
"""

from obliviate.attacks.context import AttackContext, AttackSettings, Subject
from obliviate.attacks.registry import ATTACKS, Attack, Measurement, attack_names, get_attacks, register_attack
from obliviate.attacks.run import run_attacks

__all__ = ["ATTACKS", "Attack", "AttackContext", "AttackSettings", "Measurement", "Subject", "attack_names",
           "get_attacks", "register_attack", "run_attacks"]
