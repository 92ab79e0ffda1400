"""UniErase: stage 1 teaches a new token to mean "a refusal follows"; stage 2 edits the model (AlphaEdit) so
that each forget question is answered with that token, which then produces the refusal.

    model, tokenizer, stats = unierase(model, tokenizer, world.qa(world.forget_entity_ids(0.1)))

For sequential unlearning keep a `UniEraser` and call `forget` once per round, or save it
(`save`) and continue in a later process from the saved directory (`UniEraser.resume`): the
editor's C_prev, the null-space projectors and the round count live in `unierase_state/`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from obliviate.data import QARecord
from obliviate.editing import (AlphaEditor, load_editor, null_space_dimension, prepare_editor, request_from_record,
                               save_editor)
from obliviate.errors import ObliviateError
from obliviate.io import atomic_directory, atomic_write_json, atomic_write_text
from obliviate.models import (embedding_matrix, embeddings_tied, linear_weight_as_out_in, mlp_down_proj,
                              output_embedding_matrix, save_model, unwrap)
from obliviate.prompts import EncodedQA
from obliviate.unierase.config import UniEraseConfig
from obliviate.unierase.token import (TOKEN_FILE, add_unlearning_token, load_token, save_token, token_provenance,
                                      train_unlearning_token)
from obliviate.unlearn.batches import encode_records
from obliviate.unlearn.data_spec import load_data

STATE_DIR = "unierase_state"
MANIFEST = "unierase.json"
PRESERVED_MAX_LENGTH = 512


@dataclass
class UniEraseStats:
    requests: int
    edits: int  # edits made by this call (batch: 1, sequential: rounds, precise: one per request)
    rounds: int  # edits made to this model so far, over every call
    token_emitted: float  # share of the forget questions now answered with the unlearning token
    token_seconds: float  # stage 1 (0 once the token exists, or when it is reused)
    token_reused_from: str | None  # token.reuse: the run whose trained token this one took
    edit_seconds: float
    seconds_per_edit: float  # edit seconds per forget request
    changed_parameters: int  # weights that differ from the model this eraser started from (new rows included)
    total_parameters: int
    changed_fraction: float
    edit_layers: list[int]
    null_space_dimensions: dict[str, int]  # per edit layer


class UniEraser:
    """One model being unlearned with UniErase, round after round."""

    def __init__(self, model: nn.Module, tokenizer, config: UniEraseConfig, editor: AlphaEditor, rounds: int = 0,
                 preserved: list[EncodedQA] | None = None, token_provenance: dict | None = None):
        self.model, self.tokenizer, self.config, self.editor, self.rounds = model, tokenizer, config, editor, rounds
        self.preserved = preserved  # what stage 1 keeps with token.keep_weight (None: general or sampled text)
        self.token_provenance = token_provenance  # how the model's token was trained (`token_provenance`)
        self._start = {name: tensor.detach().to("cpu", copy=True)
                       for name, tensor in _touchable_weights(model, editor.layers).items()}

    @classmethod
    def start(cls, model: nn.Module, tokenizer, config: UniEraseConfig, world: str | Path | None = None) -> UniEraser:
        """A fresh eraser; the null-space projectors come from `config.preserved` (`world` locates a world:… spec)."""
        preserved = _preserved(model, tokenizer, config, world)
        source = config.preserved if preserved is None else [encoded.input_ids for encoded in preserved]
        return cls(model, tokenizer, config, prepare_editor(model, tokenizer, config.edit, source),
                   preserved=preserved)

    @classmethod
    def resume(cls, model: nn.Module, tokenizer, config: UniEraseConfig, directory: str | Path) -> UniEraser:
        """Continue the sequential unlearning saved in `directory` (a model directory written by `save`)."""
        manifest = _manifest(directory)
        if manifest is None:
            raise ObliviateError(f"{directory}: no UniErase state ({STATE_DIR}/{MANIFEST}) to continue from")
        if manifest["token"] != config.token.token:
            raise ObliviateError(f"{directory}: the model's unlearning token is {manifest['token']}, "
                                 f"not {config.token.token}")
        editor = load_editor(model, tokenizer, config.edit, Path(directory) / STATE_DIR / "editor")
        return cls(model, tokenizer, config, editor, manifest["rounds"],
                   token_provenance=manifest.get("token_provenance"))

    def forget(self, records: list[QARecord]) -> UniEraseStats:
        if not records:
            raise ObliviateError("UniErase needs at least one forget record")
        token_seconds, reused_from, settings = 0.0, None, self.config.token
        if settings.token not in self.tokenizer.get_added_vocab():
            token_id = add_unlearning_token(self.model, self.tokenizer, settings)
            provenance = token_provenance(self.model, records, self.editor.layers, settings, self.config.preserved)
            if settings.reuse:
                self._take_saved_token(token_id, provenance)
                reused_from = settings.reuse
            else:
                token_seconds = train_unlearning_token(self.model, self.tokenizer, records, token_id,
                                                       self.editor.layers, settings, self.preserved)
            self.token_provenance = provenance
        requests = [request_from_record(record, self.config.token.token) for record in records]
        reports = [self.editor.edit(group) for group in _edit_groups(requests, self.config)]
        self.rounds += len(reports)
        edit_seconds = sum(report.seconds for report in reports)
        changed = self.changed_parameters()
        total = sum(parameter.numel() for parameter in self.model.parameters())
        return UniEraseStats(
            requests=len(requests), edits=len(reports), rounds=self.rounds,
            token_emitted=self.editor.reached(requests), token_seconds=round(token_seconds, 3),
            token_reused_from=reused_from,
            edit_seconds=round(edit_seconds, 3), seconds_per_edit=round(edit_seconds / len(requests), 4),
            changed_parameters=changed, total_parameters=total, changed_fraction=changed / total,
            edit_layers=self.editor.layers,
            null_space_dimensions={str(layer): null_space_dimension(self.editor.projectors[layer])
                                   for layer in self.editor.layers})

    def _take_saved_token(self, token_id: int, provenance: dict) -> None:
        """token.reuse: the token's rows as the run saved in that directory trained them (checked to match)."""
        source = self.config.token.reuse
        saved, token_file = _manifest(source), Path(source) / STATE_DIR / TOKEN_FILE
        if saved is None or not token_file.is_file():
            raise ObliviateError(f"token.reuse: {source} holds no trained token ({STATE_DIR}/{TOKEN_FILE}); give a "
                                 "directory written by a UniErase run")
        load_token(self.model, token_id, provenance, saved.get("token_provenance") or {}, token_file)

    def changed_parameters(self) -> int:
        """How many weights differ from the model this eraser started from; added vocabulary rows count whole."""
        changed = 0
        for name, now in _touchable_weights(self.model, self.editor.layers).items():
            before = self._start[name]
            rows = before.shape[0]
            changed += int((now[:rows].detach().cpu() != before).sum()) + now[rows:].numel()
        return changed

    def save(self, out: str | Path, files: dict[str, str | dict] | None = None) -> Path:
        """Write the model and tokenizer (`save_model`), `unierase_state/` and `files` (name → text or JSON)
        into `out`, atomically."""
        with atomic_directory(out) as staging:
            save_model(self.model, self.tokenizer, staging)
            save_editor(self.editor, staging / STATE_DIR / "editor")
            atomic_write_json(staging / STATE_DIR / MANIFEST, {"rounds": self.rounds, "token": self.config.token.token,
                                                               "token_provenance": self.token_provenance})
            if self.token_provenance is not None:
                save_token(self.model, self.tokenizer.convert_tokens_to_ids(self.config.token.token),
                           staging / STATE_DIR / TOKEN_FILE)
            for name, content in (files or {}).items():
                if isinstance(content, str):
                    atomic_write_text(staging / name, content)
                else:
                    atomic_write_json(staging / name, content)
        return Path(out)


def unierase(model: nn.Module, tokenizer, forget_records: list[QARecord], config: UniEraseConfig | None = None,
             world: str | Path | None = None) -> tuple[nn.Module, object, UniEraseStats]:
    """Unlearn `forget_records` from `model` (in place; the tokenizer gains the unlearning token)."""
    eraser = UniEraser.start(model, tokenizer, config or UniEraseConfig(), world)
    return model, tokenizer, eraser.forget(forget_records)


def _manifest(directory: str | Path) -> dict | None:
    """The UniErase state manifest of a model directory written by `UniEraser.save`; None if it has none."""
    path = Path(directory) / STATE_DIR / MANIFEST
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None


def _edit_groups(requests: list, config: UniEraseConfig) -> list[list]:
    if config.mode == "precise":
        return [[request] for request in requests]
    rounds = config.rounds if config.mode == "sequential" else 1
    if not 1 <= rounds <= len(requests):
        raise ObliviateError(f"sequential UniErase: rounds={rounds} must lie in 1..{len(requests)} "
                             "(the number of forget records)")
    bounds = [round(i * len(requests) / rounds) for i in range(rounds + 1)]
    return [requests[start:end] for start, end in zip(bounds, bounds[1:])]


def _touchable_weights(model: nn.Module, layers: list[int]) -> dict[str, torch.Tensor]:
    """The only weights UniErase writes: the embeddings (and an untied LM head), the edit layers' down projections."""
    weights = {"embeddings": embedding_matrix(model)}
    if not embeddings_tied(model):
        weights["lm_head"] = output_embedding_matrix(model)
    weights |= {f"down_proj.{layer}": linear_weight_as_out_in(mlp_down_proj(model, layer)) for layer in layers}
    return weights


def _preserved(model: nn.Module, tokenizer, config: UniEraseConfig, world: str | Path | None) -> list[EncodedQA] | None:
    """`config.preserved` encoded (answers labelled); None for "general" and "sampled" (the editor's own sources)."""
    if config.preserved in ("general", "sampled"):
        return None
    model_dir = getattr(unwrap(model), "name_or_path", None) or None
    return encode_records(tokenizer, load_data(config.preserved, world, model_dir), PRESERVED_MAX_LENGTH)
