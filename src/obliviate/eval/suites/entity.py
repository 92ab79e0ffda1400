"""Per forget entity (RWKU-style): the trained forget set, held-out probes of the same facts, and neighbours.

Efficacy is measured on the held-out probes separately from the phrasings the unlearning saw;
neighbour retention on the people related to each entity. Besides the set metrics it writes the
table "entities": one row per forget entity with n, exact_match, rouge_l_recall and probability
for each of forget, probes and neighbours.

On a run of `obliviate unlearn --entity` (the model itself, or `--data run=DIR`) the sets are that
run's: forget is what it unlearned at its coverage, probes everything else about the entities
(the uncovered attributes and every held-out phrasing).
"""

from __future__ import annotations

import numpy as np

from obliviate.entity.runs import EntityRun
from obliviate.errors import ObliviateError
from obliviate.eval.suites import Suite, SuiteContext, SuiteOutput, register_suite
from obliviate.eval.suites.world import ENTITIES_HELP, forget_entity_ids, people_sets
from obliviate.eval.workload import Results

TABLE_METRICS = ("exact_match", "rouge_l_recall", "probability")


@register_suite("entity")
class EntitySuite(Suite):
    description = ("per forget entity: exact_match, rouge_l_recall, probability on its forget QA, held-out probes "
                   "and neighbours' QA (table 'entities'), plus the same per set")
    data_keys = {"entities": ENTITIES_HELP,
                 "run": "an `obliviate unlearn --entity` run whose split to use (default: the model's own, if it is "
                        "one; e.g. to evaluate the model before that run)"}

    forget_sets = ("forget", "probes")

    def __init__(self, context):
        super().__init__(context)
        run = entity_run(context)
        if run is None:
            self.forget_ids = forget_entity_ids(context)
            self.sets = people_sets(context, self.forget_ids)
        else:
            self.forget_ids = run.entity_ids
            self.sets = people_sets(context, self.forget_ids, run.forget, run.probes)

    def compute(self, results: Results) -> SuiteOutput:
        output = super().compute(results)
        output.tables["entities"] = [self._entity_row(entity_id, output) for entity_id in self.forget_ids]
        return output

    def _entity_row(self, entity_id: int, output: SuiteOutput) -> dict:
        world = self.context.world
        name = world.people[entity_id]["name"]
        neighbours = {world.people[i]["name"] for i in world.neighbour_ids([entity_id])}
        row = {"entity_id": entity_id, "entity": name}
        for set_name, entities in (("forget", {name}), ("probes", {name}), ("neighbours", neighbours)):
            rows = [r for r in output.rows(set_name) if r.get("entity") in entities]
            row[f"{set_name}/n"] = len(rows)
            for metric in TABLE_METRICS:
                row[f"{set_name}/{metric}"] = float(np.mean([r[metric] for r in rows])) if rows else float("nan")
        return row


def entity_run(context: SuiteContext) -> EntityRun | None:
    """The entity run whose split to evaluate: `--data run=DIR`, else the model's own unless `--data entities=…`."""
    if "run" in context.data:
        run = EntityRun.load(context.data["run"])
        if run is None:
            raise ObliviateError(f"--data run={context.data['run']}: not an `obliviate unlearn --entity` run "
                                 "(its run.json has no 'entity' entry)")
        return run
    if "entities" in context.data or context.model_dir is None:
        return None
    return EntityRun.load(context.model_dir)
