"""ELM (Erasure of Language Memory): method.py (config, prepare step and loss, registered as "elm") and
generations.py (the frozen model's novice-guided continuations of the forget prompts, prepared once)."""

from obliviate.unlearn.methods.elm.method import ELMConfig, ELMData, erase_target, eta_ramp, load_elm_data

__all__ = ["ELMConfig", "ELMData", "erase_target", "eta_ramp", "load_elm_data"]
