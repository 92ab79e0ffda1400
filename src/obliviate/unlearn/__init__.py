"""Unlearning: the engine (one training loop on accelerate), the method registry and the `unlearn` recipe.

    from obliviate.unlearn import unlearn
    unlearn(model_dir, "npo_gd", "world:forget", "world:retain", "runs/npo")

The engine: run.py (`unlearn`: load, prepare, train, save), config.py (the settings every method shares),
registry.py (the method API: `register_method`, `Step`, `Preparation`), loop.py (training), losses.py (the loss
pieces the methods share), batches.py (data → batches), data_spec.py (--forget / --retain), reference.py (the
frozen starting model), checkpoint.py (--resume), accelerator.py.
The methods: methods/, one module per method family (ga, npo, simnpo, dpo, idk, me, wga, undial, rmu,
finetune), and a folder for a method with helpers of its own (methods/elm/ with its generations,
methods/memflex/ with its localisation). UniErase edits rather than trains: obliviate.unierase.
"""

from obliviate.unlearn.config import UnlearnConfig
from obliviate.unlearn.data_spec import load_data
from obliviate.unlearn.loop import RunStopped
from obliviate.unlearn.registry import (METHODS, Method, Preparation, RunFiles, RunInputs, Step, all_methods,
                                       get_method, register_method)
from obliviate.unlearn.run import resolve_config, unlearn

__all__ = ["METHODS", "Method", "Preparation", "RunFiles", "RunInputs", "RunStopped", "Step", "UnlearnConfig",
           "all_methods", "get_method", "load_data", "register_method", "resolve_config", "unlearn"]
