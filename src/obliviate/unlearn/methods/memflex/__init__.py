"""MemFlex (KnowUnDo): method.py (configs, prepare step and loss, registered as "memflex" and "memflex_npo") and
localize.py (where in the LoRA adapter that learned the data the forget knowledge lies, from gradients)."""

from obliviate.unlearn.methods.memflex.localize import Localization, LocalizeSettings, localize
from obliviate.unlearn.methods.memflex.method import LOCATED_FILE, LearnSettings, MemFlexConfig, MemFlexNPOConfig

__all__ = ["LOCATED_FILE", "LearnSettings", "Localization", "LocalizeSettings", "MemFlexConfig", "MemFlexNPOConfig",
           "localize"]
