"""The method API: a method is a small loss function plus a typed config, registered by name.

    @dataclass
    class NPOConfig(UnlearnConfig):
        beta: float = 0.1

    @register_method("npo", NPOConfig, "negative preference optimisation", needs={"reference_logprobs"})
    def npo(step: Step, cfg: NPOConfig) -> LossTerms:
        delta = sequence_logprob(step.logits(step.forget), step.forget.labels) - step.forget.reference_logprobs
        yield "forget", cfg.gamma * -(2 / cfg.beta) * F.logsigmoid(-cfg.beta * delta).mean()
        yield from retain_term(step, cfg)

A loss function yields named, weighted loss terms; the loop back-propagates each one as soon as
it is yielded (so only one term's graph is in memory at a time) and logs it. `needs` says what
the loop must provide, on top of what `retain_loss` implies:

* "retain": retain batches (`step.retain`);
* "alternatives": the forget prompts with alternative answers (`step.alternative`; the config
  has an `alternative` field: "refusal" or "perturbed");
* "reference_logprobs": log p_ref(answer | prompt) per forget (and alternative) sequence,
  computed once before training (`batch.reference_logprobs`);
* "reference_model": the starting model at every step (`step.reference_logits`,
  `step.reference_hidden`): the LoRA model with its adapter disabled, or with full fine-tuning
  a frozen copy, made only for methods that need it;
* "hidden_states": the output of decoder layer `cfg.layer` (`step.hidden`).

A method may also declare a `prepare` step, run once before training on the loaded model (no
adapter yet) with the run's data: it returns a `Preparation` naming the only modules to train
(RMU's few MLP matrices, MemFlex's located ones), files for the run directory and entries for
run.json.

A method that edits the model instead of training it in the loop (UniErase) registers with
`register_model_edit(name, Config, description, apply)`: `unlearn` resolves its config by the same route and
hands the run to `apply(model, forget, retain, out, cfg, world=)`, which writes the run directory.
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator

import torch
from torch import nn

from obliviate.errors import ObliviateError
from obliviate.models import unwrap
from obliviate.unlearn.batches import Batch, MicroBatch, Records, concat_batches
from obliviate.unlearn.config import UnlearnConfig
from obliviate.unlearn.reference import LayerCapture, Reference

LossTerms = Iterator[tuple[str, torch.Tensor]]
NEEDS = frozenset({"retain", "alternatives", "reference_logprobs", "reference_model", "hidden_states"})
RETAIN_NEEDS = {"none": set(), "gd": {"retain"}, "kl": {"retain", "reference_model"},
                "frozen_argmax": {"retain", "reference_model"},
                "activations": {"retain", "reference_model", "hidden_states"}}


class Step:
    """What a loss function sees for one micro-batch: the batches, and the models to run them through."""

    def __init__(self, model: nn.Module, batches: MicroBatch, pad_id: int, reference: Reference | None = None,
                 capture: LayerCapture | None = None):
        self.model, self.pad_id, self.reference, self.capture = model, pad_id, reference, capture
        self.forget, self.retain, self.alternative = batches.forget, batches.retain, batches.alternative

    def logits(self, batch: Batch) -> torch.Tensor:
        """(batch, k, vocab): the logits of the last k = `batch.scored_width` positions, where the model takes
        `logits_to_keep` (transformers' causal LMs do), else of every position. The positions before the first
        answer never count in a loss, and with a real vocabulary (49k for SmolLM2) their logits and gradients
        cost as much memory as several decoder layers' activations. `losses.answer_tokens` aligns them."""
        keep = {"logits_to_keep": batch.scored_width} if _takes_logits_to_keep(self.model) else {}
        return self.model(**batch.inputs, use_cache=False, **keep).logits

    def joint_logits(self, *batches: Batch) -> list[torch.Tensor]:
        """The logits of several batches from one forward pass over all their rows (each batch's positions
        from the first kept one of the joint batch)."""
        joint = concat_batches(list(batches), self.pad_id)
        logits = self.logits(joint)
        dropped = joint.width - logits.shape[1]
        return [part[:, :b.width - dropped] for part, b in zip(logits.split([b.size for b in batches]), batches)]

    @torch.no_grad()
    def reference_logits(self, batch: Batch) -> torch.Tensor:
        with self.reference.active() as reference:
            return reference(**batch.inputs, use_cache=False).logits

    def hidden(self, batch: Batch) -> torch.Tensor:
        """(batch, width, hidden) output of decoder layer `cfg.layer`."""
        self.logits(batch)
        return self.capture.take()

    @torch.no_grad()
    def reference_hidden(self, batch: Batch) -> torch.Tensor:
        self.reference_logits(batch)
        return self.capture.take()


def _takes_logits_to_keep(model: nn.Module) -> bool:
    """Whether the transformers model under accelerate's and peft's wrappers accepts `logits_to_keep`."""
    return _forward_takes(type(unwrap(getattr(model, "module", model))), "logits_to_keep")


@functools.cache
def _forward_takes(model_class: type, argument: str) -> bool:
    return argument in inspect.signature(model_class.forward).parameters


@dataclass
class RunFiles:
    """What a run writes besides the model: files in its directory (name → JSON document, or rows for a
    .jsonl name) and entries for its run.json."""

    files: dict[str, dict | list[dict]] = field(default_factory=dict)
    report: dict = field(default_factory=dict)


@dataclass
class Preparation(RunFiles):
    """What a method's `prepare` step found: the model to train instead of the loaded one (e.g. with an adapter
    it learned first; None: the loaded one), and what of it to train: the names of the only modules to put a
    new adapter on or train (`trainable_modules`), or, on a model that already has its adapter, the names of the
    only parameters to train (`trainable_parameters`). None: all of them. `forget`, `retain`: the records to
    train on instead of the given ones (ELM's passages cut to 700 characters); None: the given ones."""

    model: nn.Module | None = None
    trainable_modules: list[str] | None = None
    trainable_parameters: list[str] | None = None
    forget: Records | None = None
    retain: Records | None = None


@dataclass
class RunInputs:
    """What a `prepare` step is given: the loaded model (with the trained adapter of `adapter=`, else no adapter
    yet) and where it came from, the run's data and its directory."""

    model: nn.Module
    tokenizer: object
    forget: Records
    retain: Records | None
    out: Path
    source: str | Path


Prepare = Callable[[RunInputs, UnlearnConfig], Preparation]
Apply = Callable[..., Path]  # apply(model, forget, retain, out, cfg, world=) -> the run directory


@dataclass(frozen=True)
class Method:
    name: str
    description: str
    config_class: type[UnlearnConfig]
    loss: Callable[[Step, UnlearnConfig], LossTerms] | None  # None: the method edits the model (`apply`)
    needs: frozenset[str]
    prepare: Prepare | None = None  # runs once before training; None: train every module
    apply: Apply | None = None  # a method that edits the model instead of training it in the loop

    @property
    def trains(self) -> bool:
        """Whether the method trains in the loop (so LoRA, --save-adapter, --resume and --entity apply)."""
        return self.apply is None

    def prepare_run(self, inputs: RunInputs, cfg: UnlearnConfig) -> Preparation:
        return self.prepare(inputs, cfg) if self.prepare else Preparation()

    def needs_for(self, cfg: UnlearnConfig) -> set[str]:
        return set(self.needs) | RETAIN_NEEDS[cfg.retain_loss]

    def defaults(self) -> dict:
        """The config values that differ from (or are not in) the shared `UnlearnConfig` defaults; for a method
        with a config of its own (UniErase), its top-level settings."""
        own = dataclasses.asdict(self.config_class())
        if not issubclass(self.config_class, UnlearnConfig):
            return {key: value for key, value in own.items() if not isinstance(value, dict)}
        shared = dataclasses.asdict(UnlearnConfig())
        return {key: value for key, value in own.items() if key not in shared or shared[key] != value}


METHODS: dict[str, Method] = {}


def register_method(name: str, config_class: type[UnlearnConfig], description: str, needs: set[str] = frozenset(),
                    prepare: Prepare | None = None):
    """Decorator registering a loss function as method `name`; stack it to register variants."""
    unknown = set(needs) - NEEDS
    if unknown:
        raise ValueError(f"method {name}: unknown needs {sorted(unknown)}")
    fields = {f.name for f in dataclasses.fields(config_class)}
    for need, field_name in (("alternatives", "alternative"), ("hidden_states", "layer")):
        if need in needs and field_name not in fields:
            raise ValueError(f"method {name} needs {need}, so {config_class.__name__} must have a '{field_name}' field")

    def decorator(loss: Callable[[Step, UnlearnConfig], LossTerms]):
        _add(Method(name, description, config_class, loss, frozenset(needs), prepare))
        return loss

    return decorator


def register_model_edit(name: str, config_class: type, description: str, apply: Apply) -> None:
    """Register a method that edits the model instead of training it in the loop: `apply(model, forget, retain,
    out, cfg, world=)` makes the run directory from the resolved config."""
    _add(Method(name, description, config_class, None, frozenset(), apply=apply))


def _add(method: Method) -> None:
    if method.name in METHODS:
        raise ValueError(f"method '{method.name}' is registered twice")
    METHODS[method.name] = method


def get_method(name: str) -> Method:
    import obliviate.unlearn.methods  # noqa: F401  (registers the built-in methods)

    if name not in METHODS:
        raise ObliviateError(f"unknown method '{name}' (known: {', '.join(sorted(METHODS))})")
    return METHODS[name]


def all_methods() -> list[Method]:
    import obliviate.unlearn.methods  # noqa: F401

    return [METHODS[name] for name in sorted(METHODS)]
