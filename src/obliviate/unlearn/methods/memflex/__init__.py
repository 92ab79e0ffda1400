"""MemFlex (KnowUnDo): method.py (configs, prepare step and loss, registered as "memflex" and "memflex_npo") and
localize.py (where in the LoRA matrices the forget knowledge lies, from gradients)."""

from obliviate.unlearn.methods.memflex.localize import Localization, LocalizeSettings
from obliviate.unlearn.methods.memflex.method import LOCATED_FILE, MemFlexConfig, MemFlexNPOConfig, locate_for

__all__ = ["LOCATED_FILE", "Localization", "LocalizeSettings", "MemFlexConfig", "MemFlexNPOConfig", "locate_for"]
