"""The synthetic world out of the box: forget set, held-out probes, neighbours, retain, world facts, crafts, MIA.

The forget entities are the world's standard split (`World.forget_entity_ids(0.1)`) unless
`--data entities=…` names others; retain is every other person, neighbours the retain people
related to a forget entity (same city, same profession, co-authors).

World models learn short answers ("herbalist"), so the truth ratio compares the answer with the
record's same-type `wrong_answers` ("glassblower", …), not with TOFU-style sentences ("their
profession is glassblower") that such a model has never seen.
"""

from __future__ import annotations

from dataclasses import replace

from obliviate.data import QARecord
from obliviate.errors import ObliviateError
from obliviate.eval.mcq import MCQSet
from obliviate.eval.meaning import COMPARISON_MEANINGS, MIA_MEANINGS
from obliviate.eval.metrics import MIA_SCORES
from obliviate.eval.qa_set import QASet
from obliviate.eval.suites import Suite, SuiteContext, SuiteOutput, register_suite
from obliviate.eval.suites.comparisons import forget_quality, membership_inference, model_utility
from obliviate.eval.workload import Results

DEFAULT_FORGET_FRACTION = 0.1
ENTITIES_HELP = "forget entities: comma-separated ids or names (default: the world's standard 10% split)"
UTILITY = (
    "retain/probability", "retain/rouge_l_recall", "retain/truth_ratio",
    "neighbours/probability", "neighbours/rouge_l_recall", "neighbours/truth_ratio",
    "world_facts/normalised_probability", "world_facts/rouge_l_recall", "world_facts/truth_ratio",
)


def forget_entity_ids(context: SuiteContext) -> list[int]:
    world = context.world
    spec = context.data.get("entities")
    if spec is None:
        return world.forget_entity_ids(DEFAULT_FORGET_FRACTION)
    items = [item.strip() for item in spec.split(",") if item.strip()]
    ids = [int(item) for item in items if item.isdigit()]
    invalid = [i for i in ids if not 0 <= i < len(world.people)]
    if invalid or not items:
        raise ObliviateError(f"--data entities={spec}: expected ids between 0 and {len(world.people) - 1} or names")
    return sorted(set(ids + world.entity_ids([item for item in items if not item.isdigit()])))


def short_form(records: list[QARecord]) -> list[QARecord]:
    """Records whose truth ratio compares the answer itself with its short wrong answers."""
    return [replace(r, paraphrased_answer=None, perturbed_answer=r.meta.get("wrong_answers", r.perturbed_answer))
            for r in records]


def people_sets(context: SuiteContext, forget_ids: list[int], forget: list[QARecord] | None = None,
                probes: list[QARecord] | None = None) -> list[QASet]:
    """The forget entities' QA (trained phrasing), their held-out probes, and their neighbours' QA;
    `forget` / `probes` replace the first two (e.g. an entity run's own split)."""
    world = context.world
    sets = {
        "forget": (world.qa(forget_ids) if forget is None else forget, True),
        "probes": (world.qa(forget_ids, probes=True) if probes is None else probes, True),
        "neighbours": (world.qa(world.neighbour_ids(forget_ids)), False),
    }
    return [QASet(name, context.limited(short_form(records)), forget=forget, refusals=context.refusals)
            for name, (records, forget) in sets.items()]


@register_suite("world")
class WorldSuite(Suite):
    description = ("the synthetic world: exact_match, rouge_l_recall, probability, truth_ratio on forget/probes/"
                   "neighbours/retain/world_facts; mcq_<craft>/accuracy; model_utility; auc_<score> (forget vs "
                   "retain); with --reference-eval: forget_quality and privleak_<score>")
    data_keys = {"entities": ENTITIES_HELP}
    reference_sets = ("forget",)
    reference_metrics = tuple(f"auc_{score}" for score in MIA_SCORES)
    forget_sets = ("forget", "probes")
    metric_meanings = COMPARISON_MEANINGS | MIA_MEANINGS

    def __init__(self, context):
        super().__init__(context)
        world = context.world
        forget_ids = forget_entity_ids(context)
        self.sets = [
            *people_sets(context, forget_ids),
            *(QASet(name, context.limited(short_form(records)), refusals=context.refusals)
              for name, records in (("retain", world.qa(world.retain_entity_ids(forget_ids))),
                                    ("world_facts", world.world_facts()))),
            *(MCQSet(f"mcq_{domain}", context.limited(world.mcq(domain))) for domain in world.domain_names),
        ]
        self.domains = world.domain_names

    def compute(self, results: Results) -> SuiteOutput:
        output = super().compute(results)
        accuracies = [output.metrics[f"mcq_{domain}/accuracy"] for domain in self.domains]
        output.metrics["mcq/accuracy"] = sum(accuracies) / len(accuracies)
        output.metrics["model_utility"] = model_utility(output.metrics, UTILITY)
        reference = self.context.reference
        output.metrics |= forget_quality(reference, self.name, "forget", output.rows("forget"))
        output.metrics |= membership_inference(output.rows("forget"), output.rows("retain"), reference, self.name)
        return output
