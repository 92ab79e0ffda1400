"""Linear probe: is a forgotten attribute value still linearly readable from the hidden states?

For each categorical attribute (profession, birthplace, …) a logistic regression over all the
world's values of it is fitted on the hidden state at the question's last prompt token, layer
`probe_layer` (default: the last), for every phrasing about the *retain* people, then applied to the forget people's
phrasings. The unlearned model and the original are read with a probe fitted on the original
(they share its hidden basis); the retain model, trained separately, gets one fitted on itself.
"""

from __future__ import annotations

import torch

from obliviate.attacks.context import AttackContext, Subject
from obliviate.attacks.formats import other_phrasings
from obliviate.attacks.hidden import last_prompt_states
from obliviate.attacks.registry import Measurement, register_attack
from obliviate.data import QARecord
from obliviate.models.architecture import num_layers

FIT_STEPS = 300


def phrasings(records: list[QARecord]) -> tuple[list[str], list[str]]:
    pairs = [(q, r.answer) for r in records for q in [r.question, *other_phrasings(r)]]
    return [q for q, _ in pairs], [a for _, a in pairs]


def fit_probe(features: torch.Tensor, labels: torch.Tensor, classes: int, seed: int) -> torch.nn.Module:
    """Multinomial logistic regression (L2-regularised) on standardised features."""
    torch.manual_seed(seed)
    mean, std = features.mean(0), features.std(0).clamp_min(1e-6)
    linear = torch.nn.Linear(features.shape[1], classes)
    optimiser = torch.optim.Adam(linear.parameters(), lr=0.05, weight_decay=1e-3)
    x = (features - mean) / std
    for _ in range(FIT_STEPS):
        optimiser.zero_grad()
        torch.nn.functional.cross_entropy(linear(x), labels).backward()
        optimiser.step()
    return torch.nn.Sequential(_Standardise(mean, std), linear).eval()


class _Standardise(torch.nn.Module):
    def __init__(self, mean: torch.Tensor, std: torch.Tensor):
        super().__init__()
        self.mean, self.std = mean, std

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) / self.std


@register_attack("linear_probe", "probing", "probe_accuracy")
def linear_probe(subject: Subject, context: AttackContext) -> Measurement:
    world = context.need_world("linear_probe")
    settings = context.settings
    source = subject if subject.role == "floor" else context.original
    layer = settings.probe_layer if settings.probe_layer is not None else num_layers(source.model)
    forget_ids = context.forget_entity_ids()
    correct, total, per_attribute = 0, 0, {}
    for attribute in settings.probe_attributes:
        classes = sorted({p["attributes"][attribute] for p in world.people})
        index = {value: i for i, value in enumerate(classes)}
        retain_records = world.qa(world.retain_entity_ids(forget_ids), attributes=[attribute])
        train_questions, train_answers = phrasings(retain_records)
        test_questions, test_answers = phrasings(world.qa(forget_ids, attributes=[attribute]))
        train = last_prompt_states(source.model, source.tokenizer, train_questions, layer, settings.batch_size)
        probe = fit_probe(train, torch.tensor([index[a] for a in train_answers]), len(classes), settings.seed)
        test = last_prompt_states(subject.model, subject.tokenizer, test_questions, layer, settings.batch_size)
        with torch.no_grad():
            hits = (probe(test).argmax(-1) == torch.tensor([index[a] for a in test_answers])).tolist()
        correct, total = correct + sum(hits), total + len(hits)
        per_attribute[attribute] = sum(hits) / len(hits)
    chance = sum(1 / len({p["attributes"][a] for p in world.people}) for a in settings.probe_attributes)
    return Measurement(correct / max(1, total), total, {"layer": layer, "per_attribute": per_attribute,
                                                        "chance": chance / len(settings.probe_attributes)})
