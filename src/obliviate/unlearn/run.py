"""The unlearning recipe behind `obliviate unlearn` and the Python API: load, train, save.

    from obliviate.unlearn import unlearn
    unlearn("models/base", "npo_gd", "world:forget", "world:retain", "runs/npo", overrides=["lr=1e-4"])

The output directory appears atomically and holds a loadable model (merged, or the LoRA adapter
alone with `save_adapter=True`), `config.yaml` (the method and its resolved config: pass it back with
--config to repeat the run), `run.json` (sizes, steps, time, peak memory, losses per step, the world the
data came from) and the files of the method's `prepare` step (e.g. MemFlex's `located.json`).
Checkpoints for `resume=True` live next to it in `<out>.checkpoint` until the run finishes.
The input model directory is never written.
"""

from __future__ import annotations

import dataclasses
import resource
import shutil
import sys
import time
from pathlib import Path

import torch
import yaml
from accelerate import Accelerator
from accelerate.utils import DistributedType, set_seed
from torch import nn

from obliviate.config import config_to_dict
from obliviate.config import resolve_config as resolve_settings
from obliviate.errors import ObliviateError
from obliviate.io import atomic_directory, atomic_write_json, atomic_write_jsonl, atomic_write_text
from obliviate.models import (add_lora, is_peft_model, load_adapter, load_model, load_tokenizer, lora_base_module,
                              lora_matrices, save_model)
from obliviate.unlearn.accelerator import make_accelerator
from obliviate.unlearn.batches import Records, build_training_data
from obliviate.unlearn.config import UnlearnConfig
from obliviate.unlearn.data_spec import load_data
from obliviate.unlearn.loop import TrainResult, train
from obliviate.unlearn.registry import Method, Preparation, RunFiles, RunInputs, get_method
from obliviate.world import recorded_world

DataSpec = str | Records


def unlearn(model: str | Path, method: str, forget: DataSpec, retain: DataSpec | None, out: str | Path,
            config: str | Path | UnlearnConfig | None = None, *,
            overrides: list[str] | None = None, world: str | Path | None = None, save_adapter: bool = False,
            resume: bool = False, stop_after_steps: int | None = None, extras: RunFiles | None = None) -> Path:
    """Unlearn `forget` from `model` with `method`; returns the output directory.

    `forget` / `retain`: a data spec (see `data_spec`) or records; `retain` may be None for methods
    without a retain term. `config`: a YAML file or a config object of the method's class;
    `overrides`: "key=value" settings applied last. `world`: where world:… data comes from (default:
    the one the model records). `extras`: more files and run.json entries for the output directory.
    `stop_after_steps` stops the run as if killed after that many steps (tests of `resume`).
    """
    started = time.perf_counter()
    spec = get_method(method)
    cfg = resolve_config(spec, config, overrides)
    if not spec.trains:
        if save_adapter or resume or stop_after_steps is not None or extras is not None:
            raise ObliviateError(f"method {method} edits the model in one pass: save_adapter, resume, "
                                 "stop_after_steps and extras apply to the methods that train")
        return spec.apply(model, forget, retain, out, cfg, world=world)
    out = Path(out)
    check_output(out, model)
    needs = spec.needs_for(cfg)
    if "retain" in needs and retain is None:
        raise ObliviateError(f"method {method} needs retain data (retain_loss={cfg.retain_loss}): pass --retain DATA")
    world = world if world is not None else recorded_world(model)
    forget_records = _records(forget, world, model)
    retain_records = _records(retain, world, model) if "retain" in needs else None

    accelerator = make_accelerator(cfg.mixed_precision, cfg.grad_accum)
    _check_weights_unsharded(accelerator)
    if accelerator.device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(accelerator.device)
    set_seed(cfg.seed)
    tokenizer = load_tokenizer(model)
    loaded = load_model(model, dtype=cfg.dtype)
    if cfg.adapter is not None:
        loaded = load_adapter(loaded, cfg.adapter)
    inputs = RunInputs(loaded, tokenizer, forget_records, retain_records, out, model)
    preparation = spec.prepare_run(inputs, cfg)
    prepared = inputs.model if preparation.model is None else preparation.model
    trained_adapter = is_peft_model(prepared)  # an adapter before select_trainable adds one was trained already
    network = select_trainable(prepared, cfg, preparation)
    forget_records = forget_records if preparation.forget is None else preparation.forget
    retain_records = retain_records if preparation.retain is None else preparation.retain
    data = build_training_data(tokenizer, forget_records, retain_records, cfg, needs)
    run_id = {"method": method, "config": config_to_dict(cfg), "forget": len(forget_records),
              "retain": len(retain_records or []), "processes": accelerator.num_processes}
    checkpoint_dir = out.with_name(out.name + ".checkpoint")
    result = train(network, spec, cfg, data, accelerator, tokenizer.pad_token_id, run_id, checkpoint_dir, resume,
                   stop_after_steps, trained_adapter=trained_adapter)

    sizes = {"forget": _describe(forget), "retain": _describe(retain), "forget_size": len(forget_records),
             "retain_size": len(retain_records or []), "trainable_parameters": _count_trainable(network),
             "world": None if world is None else str(Path(world).resolve())}
    report = _run_report(method, model, sizes, cfg, result, accelerator, time.perf_counter() - started)
    if accelerator.is_main_process:
        _save(out, accelerator.unwrap_model(result.model), tokenizer, cfg, report, [preparation, extras or RunFiles()],
              save_adapter)
        shutil.rmtree(checkpoint_dir, ignore_errors=True)
    accelerator.wait_for_everyone()
    return out


def resolve_config(method: Method, config: str | Path | UnlearnConfig | None = None,
                   overrides: list[str] | None = None) -> UnlearnConfig:
    """The method's defaults, then `config` (a YAML file, or a config object as the base), then `overrides`."""
    return resolve_settings(method.config_class, config, overrides, method.name)


def select_trainable(model: nn.Module, cfg: UnlearnConfig, preparation: Preparation | None = None) -> nn.Module:
    """On a model that has its trained adapter: that adapter's matrices (only the prepared `trainable_parameters`
    and only on the prepared `trainable_modules`, where given). Otherwise: new LoRA adapters (on the prepared
    `trainable_modules`, if given), or those modules' own weights, or everything."""
    preparation = preparation or Preparation()
    modules, chosen = preparation.trainable_modules, preparation.trainable_parameters
    if cfg.gradient_checkpointing:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    if is_peft_model(model):
        adapted = None if modules is None else {lora_base_module(name) for name in modules}  # named in the PeftModel
        matrices = lora_matrices(model)
        for name, parameter in model.named_parameters():
            parameter.requires_grad_(name in matrices and (chosen is None or name in chosen)
                                     and (adapted is None or lora_base_module(name) in adapted))
        return model
    if cfg.use_lora:
        settings = dataclasses.replace(cfg.lora, target_modules=modules, layers=None) if modules else cfg.lora
        return add_lora(model, settings)
    if modules:
        model.requires_grad_(False)
        for name in modules:
            model.get_submodule(name).requires_grad_(True)
    return model


def _save(out: Path, model: nn.Module, tokenizer, cfg: UnlearnConfig, report: dict, attachments: list[RunFiles],
          save_adapter: bool) -> None:
    """The model, config.yaml, run.json (with the attachments' entries) and the attachments' files, atomically."""
    with atomic_directory(out) as staging:
        save_model(model, tokenizer, staging, merge_lora=not save_adapter)
        settings = config_to_dict(cfg, method=report["method"])
        atomic_write_text(staging / "config.yaml", yaml.safe_dump(settings, sort_keys=False))
        for attachment in attachments:
            report = report | attachment.report
            for name, content in attachment.files.items():
                (atomic_write_jsonl if name.endswith(".jsonl") else atomic_write_json)(staging / name, content)
        atomic_write_json(staging / "run.json", report)


def _check_weights_unsharded(accelerator: Accelerator) -> None:
    """The output is saved from the trained module itself, so its weights must be whole on the main process."""
    deepspeed = accelerator.state.deepspeed_plugin
    if accelerator.distributed_type == DistributedType.FSDP or (deepspeed is not None and deepspeed.zero_stage == 3):
        raise ObliviateError("FSDP and DeepSpeed ZeRO-3 shard the weights, and saving the unlearned model from "
                             "shards is not supported yet: use recipes/accelerate/ddp.yaml or deepspeed_zero2.yaml")


def check_output(out: Path, model: str | Path) -> None:
    """Refuse an output directory that is, or lies inside or around, the input model directory (or that would
    replace the directory holding an input model file, a .gguf)."""
    model_dir = Path(model).expanduser()
    if model_dir.is_file() and out.expanduser().resolve() in [*model_dir.resolve().parents]:
        raise ObliviateError(f"--out '{out}' would replace the directory holding the input model '{model}'")
    if not model_dir.is_dir():
        return
    model_dir, target = model_dir.resolve(), out.expanduser().resolve()
    if target == model_dir or model_dir in target.parents or target in model_dir.parents:
        raise ObliviateError(f"--out '{out}' would write into the input model directory '{model}'")


def _records(spec: DataSpec | None, world, model) -> Records | None:
    if spec is None or isinstance(spec, list):
        return spec
    return load_data(spec, world, model)


def _describe(spec: DataSpec | None) -> str | None:
    return f"<{len(spec)} records>" if isinstance(spec, list) else spec


def _run_report(method: str, model, sizes: dict, cfg: UnlearnConfig, result: TrainResult, accelerator: Accelerator,
                seconds: float) -> dict:
    global_batch = cfg.batch_size * accelerator.num_processes * cfg.grad_accum
    final_losses = {k: v for k, v in result.log[-1].items() if k not in ("step", "lr", "seconds")}
    return {"method": method, "model": str(model), **sizes, "processes": accelerator.num_processes,
            "global_batch": global_batch, **_timing(result, accelerator), "wall_seconds": round(seconds, 2),
            **_peak_memory(accelerator), "final_losses": final_losses, "loss_log": result.log}


def _count_trainable(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def _timing(result: TrainResult, accelerator: Accelerator) -> dict:
    rate = accelerator.reduce(torch.tensor(result.tokens_per_second, device=accelerator.device), "sum")
    return {"steps": result.steps, "train_seconds": round(result.seconds, 2),
            "tokens_per_second": round(float(rate), 1)}


def _peak_memory(accelerator: Accelerator) -> dict:
    """GPU: the most memory torch allocated; CPU: the process's maximum resident set size. Max over processes."""
    if accelerator.device.type == "cuda":
        kind, peak = "cuda_max_allocated", torch.cuda.max_memory_allocated(accelerator.device)
    else:
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        kind, peak = "cpu_max_rss", rss if sys.platform == "darwin" else rss * 1024  # Linux counts KiB
    peak = int(accelerator.gather(torch.tensor([peak], device=accelerator.device)).max())
    return {"peak_memory_bytes": peak, "peak_memory_kind": kind}
