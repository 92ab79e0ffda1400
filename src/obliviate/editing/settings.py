"""Settings of an AlphaEdit editor; every default is written here once (AlphaEdit's Llama-3 values)."""

from __future__ import annotations

from dataclasses import dataclass, field

from obliviate.editing.requests import KeyToken


@dataclass
class ValueSettings:
    """Optimising δ in z = h + δ (see `values.py`)."""

    steps: int = 25  # forward passes; as in the reference, the last one takes no step (at most steps - 1 updates)
    lr: float = 0.1
    weight_decay: float = 0.5
    clamp_norm_factor: float = 0.75  # ‖δ‖ ≤ factor·‖h‖
    kl_factor: float = 0.0625  # weight of KL(now ‖ before) at the subject's last token of "{subject} is a"


@dataclass
class NullSpaceSettings:
    """The preserved-knowledge keys K0 and the projector P (see `null_space.py`)."""

    tokens: int = 100_000  # of preserved text (general text unless the caller gives texts: see `prepare_editor`)
    threshold: float = 2e-2  # eigenvalues of K0·K0ᵀ/n below this span the null space


@dataclass
class AlphaEditSettings:
    layers: list[int] | None = None  # None: `default_edit_layers` (L/8 … L/4)
    key_token: KeyToken = "subject_last"  # or "prompt_last": the question prompt's last token
    l2: float = 10.0  # λ
    # MEMIT's / AlphaEdit's context templates: "{}" and, from each start word, one text the model samples (top-k
    # `context_top_k`, `context_length` tokens in all, start word and BOS included); the key is the mean of the plain
    # prompt's key and of the sampled contexts' mean, δ is optimised in all of them. [] : the plain prompt only.
    context_starts: list[str] = field(default_factory=lambda: ["The", "Therefore", "Because", "I", "You"])
    context_length: int = 10
    context_top_k: int = 5
    value: ValueSettings = field(default_factory=ValueSettings)
    null_space: NullSpaceSettings = field(default_factory=NullSpaceSettings)
    seed: int = 0
