"""UniErase, registered like every other method: `unlearn(model, "unierase", forget, retain, out, config)` resolves
its UniEraseConfig by the same route and edits the model (obliviate.unierase) instead of training it in the loop;
`retain`, when given, is the knowledge the edit preserves (the config's `preserved`)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from obliviate.errors import ObliviateError
from obliviate.unierase.config import UniEraseConfig
from obliviate.unlearn.registry import register_model_edit

DESCRIPTION = ("UniErase: train an unlearning token that precedes a refusal, then edit the MLPs (AlphaEdit) "
               "so every forget question answers with it; mode=batch|sequential|precise")


def apply_unierase(model, forget, retain, out, cfg: UniEraseConfig, world=None) -> Path:
    from obliviate.unierase.run import unierase_model

    if retain is not None:
        if not isinstance(retain, str):
            raise ObliviateError("unierase: the retained knowledge (what the edit preserves) is a data spec "
                                 "(a file, tofu:…, world:…), not records")
        cfg = dataclasses.replace(cfg, preserved=retain)
    return unierase_model(model, forget, out, cfg, world=world)


register_model_edit("unierase", UniEraseConfig, DESCRIPTION, apply_unierase)
