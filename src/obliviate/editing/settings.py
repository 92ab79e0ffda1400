"""Settings of an AlphaEdit editor; every default is written here once (AlphaEdit's Llama-3 values)."""

from __future__ import annotations

from dataclasses import dataclass, field

from obliviate.editing.requests import KeyToken


@dataclass
class ValueSettings:
    """Optimising δ in z = h + δ (see `values.py`)."""

    steps: int = 25
    lr: float = 0.1
    weight_decay: float = 0.5
    clamp_norm_factor: float = 0.75  # ‖δ‖ ≤ factor·‖h‖
    kl_factor: float = 0.0625  # weight of KL(before ‖ now) on "{subject} is a"


@dataclass
class NullSpaceSettings:
    """The preserved-knowledge keys K0 and the projector P (see `null_space.py`)."""

    tokens: int = 100_000  # of preserved text (sampled from the model unless the caller gives texts)
    threshold: float = 2e-2  # eigenvalues of K0·K0ᵀ/n below this span the null space


@dataclass
class AlphaEditSettings:
    layers: list[int] | None = None  # None: `default_edit_layers` (L/8 … L/4)
    key_token: KeyToken = "subject_last"  # or "prompt_last": the question prompt's last token
    l2: float = 10.0  # λ
    contexts: int = 10  # random prefixes the keys are averaged over and δ is optimised in
    context_tokens: int = 5  # the length of each, sampled from the model
    value: ValueSettings = field(default_factory=ValueSettings)
    null_space: NullSpaceSettings = field(default_factory=NullSpaceSettings)
    seed: int = 0
