"""The built-in methods; importing this package registers them (one module per method family)."""

from obliviate.unlearn.methods import dpo, elm, finetune, ga, idk, me, memflex, npo, rmu, simnpo, undial, wga  # noqa: F401
