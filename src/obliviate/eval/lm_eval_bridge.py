"""The suite "lm_eval:<task>": any lm-eval-harness task, run on the already-loaded model (optional extra).

The harness does its own forward passes, so this suite adds nothing to the shared workload.
Install it with `pip install 'obliviate[lmeval]'`.
"""

from __future__ import annotations

from obliviate.errors import ObliviateError
from obliviate.eval.suites import LM_EVAL_PREFIX, Suite, SuiteOutput
from obliviate.eval.workload import Results, Workload

NO_FILTER_SUFFIX = ",none"


def lm_eval_suite(task: str) -> type[Suite]:
    name = f"{LM_EVAL_PREFIX}{task}"
    if not task:
        raise ObliviateError(f"suite '{name}': name an lm-eval-harness task, e.g. {LM_EVAL_PREFIX}mmlu")
    try:
        import lm_eval  # noqa: F401
    except ImportError:
        raise ObliviateError(f"suite '{name}' needs lm-eval-harness, which is not installed: "
                             "pip install 'obliviate[lmeval]'") from None

    class LMEvalSuite(Suite):
        description = f"lm-eval-harness task {task} (its own metrics, per task)"

        def plan(self, workload: Workload) -> None:
            pass

        def compute(self, results: Results) -> SuiteOutput:
            from lm_eval import simple_evaluate
            from lm_eval.models.huggingface import HFLM

            context = self.context
            harness_model = HFLM(pretrained=context.model, tokenizer=context.tokenizer, batch_size=context.batch_size)
            output = simple_evaluate(model=harness_model, tasks=[task], limit=context.limit)
            return SuiteOutput(metrics={
                f"{task_name}/{metric.removesuffix(NO_FILTER_SUFFIX)}": value
                for task_name, task_metrics in output["results"].items()
                for metric, value in task_metrics.items() if isinstance(value, (int, float))
            })

    LMEvalSuite.name = name
    return LMEvalSuite
