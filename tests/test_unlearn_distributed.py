"""Two CPU processes (gloo) train exactly like one process with the same global batch."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from safetensors.torch import load_file

from obliviate.config import recipe_file
from obliviate.unlearn import unlearn

REPO = Path(__file__).resolve().parents[1]
SETTINGS = ["max_steps=4", "lr=1e-3", "checkpoint_every=0"]
RUN = """
import sys
from obliviate.unlearn import unlearn
model, out, *settings = sys.argv[1:]
unlearn(model, "npo_gd", "world:forget", "world:retain", out, overrides=settings)
"""


def launch(launcher: list[str], script: Path, model_dir, out: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO / "src"), "OBLIVIATE_QUIET": "1"}
    command = [*launcher, str(script), str(model_dir), str(out), *SETTINGS, "batch_size=4", "retain_batch_size=4"]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]


def losses(out: Path) -> list[list[float]]:
    return [[entry["forget"], entry["retain"]] for entry in json.loads((out / "run.json").read_text())["loss_log"]]


def max_difference(a: Path, b: Path) -> float:
    wa, wb = load_file(a / "model.safetensors"), load_file(b / "model.safetensors")
    return max(float((wa[k] - wb[k]).abs().max()) for k in wa)


@pytest.mark.slow
def test_two_processes_match_one_process_with_the_same_global_batch(test_model_dir, tmp_path):
    script = tmp_path / "run.py"
    script.write_text(RUN)
    single = unlearn(test_model_dir, "npo_gd", "world:forget", "world:retain", tmp_path / "single",
                     overrides=SETTINGS + ["batch_size=8", "retain_batch_size=8"])
    launch([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2"], script, test_model_dir,
           tmp_path / "torchrun")
    launch([sys.executable, "-m", "accelerate.commands.launch", "--config_file",
            str(recipe_file("accelerate", "ddp", required=True))], script, test_model_dir, tmp_path / "accelerate")
    moved = max_difference(single, Path(test_model_dir))
    assert moved > 1e-3
    for run in ("torchrun", "accelerate"):
        # Adam divides by the gradients' size, so float-level differences in tiny gradients show up
        # in the weights at ~1e-3 of the update; different batches would differ by the update itself.
        assert max_difference(single, tmp_path / run) < 1e-2 * moved, run
        report = json.loads((tmp_path / run / "run.json").read_text())
        assert report["processes"] == 2
        for mine, theirs in zip(losses(single), losses(tmp_path / run)):
            assert mine == pytest.approx(theirs, rel=1e-4), run
