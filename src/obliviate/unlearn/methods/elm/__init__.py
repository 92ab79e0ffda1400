"""ELM (Erasure of Language Memory): method.py (config, prepare step and loss, registered as "elm") and
generations.py (the frozen model's novice-guided continuations of the forget prompts, prepared once)."""

from obliviate.unlearn.methods.elm.method import ELMConfig, ELMData, erase_target, load_elm_data, position_ramp

__all__ = ["ELMConfig", "ELMData", "erase_target", "load_elm_data", "position_ramp"]
