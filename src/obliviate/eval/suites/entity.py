"""Per forget entity (RWKU-style): the trained forget set, held-out probes of the same facts, and neighbours.

Efficacy is measured on the held-out probes separately from the phrasings the unlearning saw;
neighbour retention on the people related to each entity. Besides the set metrics it writes the
table "entities": one row per forget entity with n, exact_match, rouge_l_recall and probability
for each of forget, probes and neighbours.
"""

from __future__ import annotations

import numpy as np

from obliviate.eval.suites import Suite, SuiteOutput, register_suite
from obliviate.eval.suites.world import ENTITIES_HELP, forget_entity_ids, people_sets
from obliviate.eval.workload import Results

TABLE_METRICS = ("exact_match", "rouge_l_recall", "probability")


@register_suite("entity")
class EntitySuite(Suite):
    description = ("per forget entity: exact_match, rouge_l_recall, probability on its forget QA, held-out probes "
                   "and neighbours' QA (table 'entities'), plus the same per set")
    data_keys = {"entities": ENTITIES_HELP}

    def __init__(self, context):
        super().__init__(context)
        self.forget_ids = forget_entity_ids(context)
        self.sets = people_sets(context, self.forget_ids)

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
