"""Checkpoints for `--resume`: accelerate's full training state plus the loop's position and log.

`accelerator.save_state` writes the trainable weights (with LoRA: the adapter only), the
optimizer, the scheduler and every process's RNG states (FSDP and DeepSpeed save their own
shards). The batches are a function of the step (see batches.py), so the step is the whole data
position. A checkpoint directory appears atomically: every process writes into one staging
directory that the main process renames into place.
"""

from __future__ import annotations

import contextlib
import json
from pathlib import Path

from accelerate.utils import broadcast_object_list

from obliviate.io import atomic_directory, atomic_write_json

STATE_FILE = "trainer_state.json"


def _keep_trainable_weights(models, weights, _output_dir) -> None:
    """accelerate save hook: frozen weights are the input model's, so only trainable ones are saved."""
    for model, state in zip(models, weights):
        trainable = {name for name, parameter in model.named_parameters() if parameter.requires_grad}
        for key in [key for key in state if key not in trainable]:
            del state[key]


def enable_checkpoints(accelerator) -> None:
    accelerator.register_save_state_pre_hook(_keep_trainable_weights)


def save_checkpoint(accelerator, directory: Path, state: dict) -> None:
    main = accelerator.is_main_process
    with atomic_directory(directory) if main else contextlib.nullcontext() as staging:
        staging = broadcast_object_list([staging])[0]
        accelerator.save_state(str(staging))
        if main:
            atomic_write_json(Path(staging) / STATE_FILE, state)
        accelerator.wait_for_everyone()
    accelerator.wait_for_everyone()


def load_checkpoint(accelerator, directory: Path) -> dict | None:
    """The loop state saved in `directory` after restoring the training state; None if there is no checkpoint."""
    state_file = directory / STATE_FILE
    if not state_file.is_file():
        return None
    accelerator.load_state(str(directory), strict=False)  # the checkpoint holds the trainable weights only
    return json.loads(state_file.read_text(encoding="utf-8"))
