"""UniErase (methods.md §5): an unlearning token trained to precede a refusal, and an AlphaEdit edit that
makes every forget question answer with it.

Files: config.py (settings and defaults), token.py (stage 1: the token and its training in the
engine's loop), recipe.py (stage 2 and the modes: `UniEraser`, `unierase`), run.py (model
directory in, model directory out: `unierase_model`). obliviate.unlearn.methods.unierase registers it as the
method "unierase", so `unlearn(..., "unierase", ...)` and `obliviate unlearn --method unierase` run it.
"""

from obliviate.unierase.config import TokenSettings, UniEraseConfig
from obliviate.unierase.recipe import STATE_DIR, UniEraser, UniEraseStats, unierase
from obliviate.unierase.run import resolve_config, unierase_model

__all__ = ["STATE_DIR", "TokenSettings", "UniEraseConfig", "UniEraseStats", "UniEraser",
           "resolve_config", "unierase", "unierase_model"]
