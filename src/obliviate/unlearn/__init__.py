"""Unlearning: the one training loop (accelerate), the method registry and the `unlearn` recipe.

    from obliviate.unlearn import unlearn
    unlearn(model_dir, "npo_gd", "world:forget", "world:retain", "runs/npo")

Files: config.py (shared settings), registry.py (method API), methods/ (one file per method
family), losses.py (shared loss pieces), batches.py (data), data_spec.py (--forget / --retain),
reference.py (the frozen starting model), loop.py (training), checkpoint.py (--resume), accelerator.py,
localize.py (MemFlex's localisation), run.py.
"""

from obliviate.unlearn.config import UnlearnConfig
from obliviate.unlearn.data_spec import load_data
from obliviate.unlearn.loop import RunStopped
from obliviate.unlearn.registry import (METHODS, Method, Preparation, RunFiles, RunInputs, Step, all_methods, get_method,
                                       register_method)
from obliviate.unlearn.run import resolve_config, unlearn

__all__ = ["METHODS", "Method", "Preparation", "RunFiles", "RunInputs", "RunStopped", "Step", "UnlearnConfig",
           "all_methods", "get_method", "load_data", "register_method", "resolve_config", "unlearn"]
