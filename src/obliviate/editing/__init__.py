"""Locate-then-edit model editing: AlphaEdit (MEMIT with null-space-projected updates) for any HF causal LM.

    editor = prepare_editor(model, tokenizer, AlphaEditSettings())
    editor.edit([EditRequest("Where was Ada Lovelace born?", "Ada Lovelace", "Paris")])

Files: settings.py (defaults), requests.py (requests → tokens, subject positions), activations.py
(keys and hidden states by hooks), values.py (z = h + δ), null_space.py (K0·K0ᵀ, the projector P,
its disk cache), general_text.py (the preserved text, offline), alphaedit.py (the closed-form update, C_prev), prepare.py (a ready editor),
state.py (an editor on disk, for sequential editing across processes).
"""

from obliviate.editing.alphaedit import AlphaEditor, EditReport, default_edit_layers
from obliviate.editing.null_space import null_space_dimension, projector
from obliviate.editing.prepare import prepare_editor
from obliviate.editing.requests import EditRequest, request_from_record
from obliviate.editing.settings import AlphaEditSettings, NullSpaceSettings, ValueSettings
from obliviate.editing.state import load_editor, save_editor

__all__ = ["AlphaEditSettings", "AlphaEditor", "EditReport", "EditRequest", "NullSpaceSettings", "ValueSettings",
           "default_edit_layers", "load_editor", "null_space_dimension", "prepare_editor", "projector",
           "request_from_record", "save_editor"]
