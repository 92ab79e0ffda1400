"""The one training loop every loss-based method plugs into, on accelerate (1 process, DDP, FSDP, DeepSpeed).

Loss normalisation: every loss term is a mean over the sequences of a micro-batch (token values
are first averaged within each sequence, see losses.py); accelerate divides it by grad_accum and
DDP averages the gradients of the processes. All micro-batches have the same size, so a step's
gradient is the mean over its global batch of `batch_size × processes × grad_accum` sequences:
2 processes × batch b, 1 process × batch 2b and 1 process × batch b × grad_accum 2 train alike.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass
from pathlib import Path

import torch
from accelerate import Accelerator
from accelerate.utils import DistributedType
from torch import nn
from transformers import get_scheduler

from obliviate.errors import ObliviateError
from obliviate.models import decoder_layers, is_peft_model
from obliviate.progress import progress
from obliviate.unlearn.batches import TrainingData
from obliviate.unlearn.checkpoint import enable_checkpoints, load_checkpoint, save_checkpoint
from obliviate.unlearn.config import UnlearnConfig
from obliviate.unlearn.reference import LayerCapture, Reference, frozen_copy
from obliviate.unlearn.registry import LossTerms, Method, Step

logger = logging.getLogger(__name__)
SCHEDULERS = {"constant": "constant_with_warmup", "linear": "linear", "cosine": "cosine"}


class RunStopped(Exception):
    """Raised by `stop_after_steps`: the run stops as if killed (tests of --resume)."""


@dataclass
class TrainResult:
    model: nn.Module  # as prepared by accelerate
    steps: int
    log: list[dict]  # per optimizer step: step, lr, each loss term, seconds
    seconds: float  # training time, summed over the runs of a resumed run
    tokens_per_second: float  # this process's, in this run


def count_steps(cfg: UnlearnConfig, forget_size: int, processes: int) -> int:
    if cfg.max_steps is not None:
        return cfg.max_steps
    global_batch = cfg.batch_size * processes * cfg.grad_accum
    return max(1, math.ceil(cfg.epochs * forget_size / global_batch))


def backward_terms(accelerator: Accelerator, terms: LossTerms) -> dict[str, float]:
    """Back-propagate each loss term as soon as it is computed, so one term's graph is in memory at a
    time (peak memory is the largest term's, not their sum). DeepSpeed steps its optimizer inside
    backward(), so there the terms are summed into one backward pass."""
    if accelerator.distributed_type == DistributedType.DEEPSPEED:
        terms = list(terms)
        accelerator.backward(sum(term for _, term in terms))
        return {name: term.item() for name, term in terms}
    values = {}
    for name, term in terms:
        accelerator.backward(term)
        values[name] = term.item()
    return values


def train(model: nn.Module, method: Method, cfg: UnlearnConfig, data: TrainingData, accelerator: Accelerator,
          pad_id: int, run_id: dict, checkpoint_dir: Path | None = None, resume: bool = False,
          stop_after_steps: int | None = None, trained_adapter: bool = False) -> TrainResult:
    """Train `model` (trainable parameters already chosen) with `method`'s loss on `data`.

    `trained_adapter`: the model's LoRA adapter was trained before this run, so the starting model is the one
    with it, and a reference model is a frozen copy rather than the model with its adapter switched off.

    `run_id` identifies the run (method, config, data, processes): --resume refuses a checkpoint
    written by another run.
    """
    needs = method.needs_for(cfg)
    steps = count_steps(cfg, len(data.forget), accelerator.num_processes)
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=cfg.lr,
                                  weight_decay=cfg.weight_decay)
    scheduler = get_scheduler(SCHEDULERS[cfg.scheduler], optimizer, round(cfg.warmup_ratio * steps), steps)

    lora_model = model if is_peft_model(model) and not trained_adapter else None
    reference_copy = None
    if "reference_model" in needs and lora_model is None:
        logger.info("%s trains weights of the starting model: holding a frozen copy as its reference", method.name)
        reference_copy = frozen_copy(model)
    capture = None
    if "hidden_states" in needs:
        capture = LayerCapture([decoder_layers(m)[cfg.layer] for m in (model, reference_copy) if m is not None])
    model, optimizer = accelerator.prepare(model, optimizer)
    accelerator.register_for_checkpointing(scheduler)
    enable_checkpoints(accelerator)
    reference = None
    if "reference_model" in needs:
        if reference_copy is not None:
            reference_copy = accelerator.prepare_model(reference_copy, evaluation_mode=True)
        reference = Reference(model, lora_model, reference_copy)
    if "reference_logprobs" in needs:  # once, from the starting model
        for examples in (data.forget, data.alternative):
            if examples is not None:
                examples.cache_reference_logprobs(model, cfg.batch_size)

    state = {"step": 0, "log": [], "seconds": 0.0, "run": run_id}
    if resume and checkpoint_dir is not None:
        state = load_checkpoint(accelerator, checkpoint_dir) or state
        if state["run"] != run_id:
            raise ObliviateError(f"--resume: the checkpoint in {checkpoint_dir} belongs to a different run "
                                 "(method, config, data or processes differ); delete it or run without --resume")

    model.train()
    tokens, step_seconds, started = 0, 0.0, time.perf_counter() - state["seconds"]
    for step in progress(range(state["step"], steps), f"unlearning ({method.name})", total=steps - state["step"]):
        step_started = time.perf_counter()
        lr = scheduler.get_last_lr()[0]
        totals: dict[str, float] = {}
        for micro in range(cfg.grad_accum):
            batches = data.micro_batch(step * cfg.grad_accum + micro, accelerator.process_index,
                                       accelerator.num_processes).to(accelerator.device)
            tokens += batches.tokens
            with accelerator.accumulate(model):
                terms = method.loss(Step(model, batches, pad_id, reference, capture), cfg)
                for name, value in backward_terms(accelerator, terms).items():
                    totals[name] = totals.get(name, 0.0) + value / cfg.grad_accum
        if cfg.max_grad_norm:
            accelerator.clip_grad_norm_(model.parameters(), cfg.max_grad_norm)
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad(set_to_none=True)

        losses = accelerator.reduce(torch.tensor(list(totals.values()), device=accelerator.device), "mean")
        seconds = time.perf_counter() - step_started
        step_seconds += seconds
        state["log"].append({"step": step + 1, "lr": lr, **dict(zip(totals, losses.tolist())), "seconds": seconds})
        state["step"], state["seconds"] = step + 1, time.perf_counter() - started
        checkpoint_due = cfg.checkpoint_every and state["step"] % cfg.checkpoint_every == 0 and state["step"] < steps
        if checkpoint_dir is not None and checkpoint_due:
            save_checkpoint(accelerator, checkpoint_dir, state)
        if state["step"] == stop_after_steps:
            raise RunStopped(f"stopped after step {state['step']} of {steps}")
    if capture is not None:
        capture.remove()
    return TrainResult(model, steps, state["log"], state["seconds"], tokens / max(step_seconds, 1e-9))
