"""The built-in methods; importing this package registers them (one module per method family, a folder for a
method with helpers of its own; unierase.py registers UniErase, which edits the model instead of training it)."""

from obliviate.unlearn.methods import (dpo, elm, finetune, ga, idk, me, memflex, npo, rmu, simnpo,  # noqa: F401
                                       undial, unierase, wga)
