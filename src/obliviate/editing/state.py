"""An editor's state on disk, so sequential editing can go on in a later process: the edit layers, the
null-space projectors (of the model before its first edit), the context groups and C_prev."""

from __future__ import annotations

import json
from pathlib import Path

from safetensors.torch import load_file, save_file
from torch import nn

from obliviate.editing.alphaedit import AlphaEditor
from obliviate.editing.settings import AlphaEditSettings
from obliviate.errors import ObliviateError
from obliviate.io import atomic_directory, atomic_write_json

TENSORS = "editor.safetensors"
MANIFEST = "editor.json"


def save_editor(editor: AlphaEditor, directory: str | Path) -> Path:
    with atomic_directory(directory) as staging:
        tensors = {f"projector.{layer}": editor.projectors[layer].contiguous().cpu() for layer in editor.layers}
        tensors |= {f"edited_keys.{layer}": editor.edited_keys[layer].contiguous().cpu() for layer in editor.layers}
        save_file(tensors, staging / TENSORS)
        atomic_write_json(staging / MANIFEST, {"layers": editor.layers, "context_groups": editor.context_groups})
    return Path(directory)


def load_editor(model: nn.Module, tokenizer, settings: AlphaEditSettings, directory: str | Path) -> AlphaEditor:
    directory = Path(directory)
    if not (directory / MANIFEST).is_file():
        raise ObliviateError(f"{directory}: no saved editor state ({MANIFEST} is missing)")
    manifest = json.loads((directory / MANIFEST).read_text(encoding="utf-8"))
    layers = manifest["layers"]
    if settings.layers is not None and sorted(settings.layers) != layers:
        raise ObliviateError(f"{directory}: earlier edits used layers {layers}; sequential edits cannot switch "
                             f"to {sorted(settings.layers)}")
    tensors = load_file(directory / TENSORS)
    return AlphaEditor(model, tokenizer, layers, {layer: tensors[f"projector.{layer}"] for layer in layers},
                       manifest["context_groups"], settings,
                       edited_keys={layer: tensors[f"edited_keys.{layer}"] for layer in layers})
