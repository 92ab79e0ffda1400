"""`obliviate unlearn --method unierase`: load a model directory, unlearn with UniErase, save.

The output directory appears atomically and holds the model (+ tokenizer with the unlearning
token), `config.yaml` (the resolved UniEraseConfig), `run.json` (sizes, timings, the fraction of
parameters changed) and `unierase_state/`. Given such a directory as the input model, the run
continues sequentially: the token is reused, C_prev and the projectors come from its state.
"""

from __future__ import annotations

import time
from dataclasses import asdict
from pathlib import Path

import yaml

from obliviate.config import config_to_dict
from obliviate.config import resolve_config as resolve_settings
from obliviate.data import QARecord
from obliviate.errors import ObliviateError
from obliviate.models import load_model, load_tokenizer
from obliviate.unierase.config import UniEraseConfig
from obliviate.unierase.recipe import STATE_DIR, UniEraser
from obliviate.unlearn.data_spec import load_data
from obliviate.unlearn.run import check_output
from obliviate.world import recorded_world

def unierase_model(model: str | Path, forget: str | list[QARecord], out: str | Path,
                   config: str | Path | UniEraseConfig | None = None, *, overrides: list[str] | None = None,
                   world: str | Path | None = None) -> Path:
    """Unlearn `forget` (a data spec as for --forget, or QA records) from the model directory `model` into `out`."""
    started = time.perf_counter()
    cfg = resolve_config(config, overrides)
    out = Path(out)
    check_output(out, model)
    world = world if world is not None else recorded_world(model)
    records = forget if isinstance(forget, list) else load_data(forget, world, model)
    if not all(isinstance(record, QARecord) for record in records):
        raise ObliviateError("UniErase forgets question/answer records (it edits questions), not texts")
    tokenizer = load_tokenizer(model)
    network = load_model(model, dtype=cfg.dtype)
    if (Path(model) / STATE_DIR).is_dir():
        eraser = UniEraser.resume(network, tokenizer, cfg, model)
    else:
        eraser = UniEraser.start(network, tokenizer, cfg, world)
    stats = eraser.forget(records)
    report = {"method": "unierase", "model": str(model), "forget": forget if isinstance(forget, str) else
              f"<{len(records)} records>", "forget_size": len(records), **asdict(stats),
              "world": None if world is None else str(Path(world).resolve()),
              "wall_seconds": round(time.perf_counter() - started, 2)}
    settings = yaml.safe_dump(config_to_dict(cfg, method="unierase"), sort_keys=False)
    return eraser.save(out, {"config.yaml": settings, "run.json": report})


def resolve_config(config: str | Path | UniEraseConfig | None = None,
                   overrides: list[str] | None = None) -> UniEraseConfig:
    """The defaults, then `config` (a YAML file, or a UniEraseConfig as the base), then "key=value" `overrides`."""
    return resolve_settings(UniEraseConfig, config, overrides, "unierase")

