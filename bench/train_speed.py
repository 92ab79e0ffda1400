"""Training speed of every method on the tiny test model or a real one, next to a bare PyTorch loop.

    PYTHONPATH=src python bench/train_speed.py [--steps 40] [--threads 1]
    PYTHONPATH=src python bench/train_speed.py --model smollm2-135m --data tofu --steps 5 --warmup 2 --memory-steps 3 \
        --threads 2 --runs bare ga npo_gd ga+lora npo_gd+lora

Every method trains `--steps` steps on the same forget (and retain) batches: batch 8, the
`test` world's forget / retain split (`--data tofu`: TOFU's forget01 / retain90, for a pretrained
model), AdamW. The bare loop runs forward + backward + AdamW on the
same forget batches with nothing else (the cost floor of gradient ascent). Each measurement runs
in its own process so that its peak memory is its own:

* step: median seconds per optimizer step after `--warmup` steps. `--clock cpu` (the default
  without a GPU) counts the process's CPU time rather than wall time, so that other programs on
  a shared machine do not skew the comparison;
* tokens/s: the tokens (forget + retain + alternative batches) trained per second;
* train memory: peak memory above what the process held when training started (GPU: torch's
  allocations; CPU: resident set size, via Linux's resettable high-water mark, measured in a
  separate short run where glibc returns every freed block over 16 KiB to the system, so that
  the resident set follows the live tensors rather than the allocator's free lists).

Targets: GA step ≤ 1.10 × bare; NPO / DPO / SimNPO step ≤ 1.15 × GradDiff;
LoRA GA+KL train memory ≤ 1.10 × LoRA GA.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
import types
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
RUNS = ["bare", "ga", "graddiff", "ga_kl", "npo", "npo_gd", "npo_kl", "simnpo", "dpo", "idkpo", "idk", "rmu",
        "undial", "wga", "me_gd", "finetune", "ga+lora", "ga_kl+lora", "npo_gd+lora"]
SETTINGS = ["batch_size=8", "retain_batch_size=8", "lr=1e-5", "checkpoint_every=0"]
METHOD_SETTINGS = {"rmu": ["layer=2"]}
DATA = {"world": ("world:forget", "world:retain"), "tofu": ("tofu:forget01", "tofu:retain90")}


# ---- one measurement (in its own process) ------------------------------------------------------

class TrainingMemory:
    """Peak memory above the level when `start` was called."""

    def __init__(self, device):
        self.device = device

    def start(self) -> None:
        import torch

        if self.device.type == "cuda":
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
            self.base = torch.cuda.memory_allocated()
        else:
            Path("/proc/self/clear_refs").write_text("5")  # resets VmHWM to the current RSS
            self.base = self._status("VmRSS")

    def peak(self) -> int:
        import torch

        if self.device.type == "cuda":
            return torch.cuda.max_memory_allocated() - self.base
        return self._status("VmHWM") - self.base

    @staticmethod
    def _status(field: str) -> int:
        line = next(l for l in Path("/proc/self/status").read_text().splitlines() if l.startswith(field + ":"))
        return int(line.split()[1]) * 1024


def measure(run: str, model_dir: str, steps: int, warmup: int, clock: str, out: Path, data: str) -> dict:
    import torch

    import obliviate.unlearn.loop as loop
    import obliviate.unlearn.run as recipe
    from obliviate.unlearn import unlearn

    if clock == "cpu":  # the loop times its steps with time.perf_counter
        loop.time = types.SimpleNamespace(perf_counter=time.process_time)

    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    memory = TrainingMemory(device)
    if run == "bare":
        return bare_loop(model_dir, steps, warmup, memory, device, loop.time.perf_counter, DATA[data][0])
    method, _, variant = run.partition("+")
    train = recipe.train

    def measured_train(*args, **kwargs):
        memory.start()
        return train(*args, **kwargs)

    recipe.train = measured_train
    lora = ["use_lora=true"] if variant else []
    settings = [*SETTINGS, f"max_steps={steps}", *METHOD_SETTINGS.get(method, []), *lora]
    unlearn(model_dir, method, *DATA[data], out, overrides=settings)
    peak = memory.peak()
    report = json.loads((out / "run.json").read_text())
    return {"step": statistics.median(e["seconds"] for e in report["loss_log"][warmup:]),
            "tokens_per_second": report["tokens_per_second"], "memory": peak}


def bare_loop(model_dir: str, steps: int, warmup: int, memory: TrainingMemory, device, clock, forget: str) -> dict:
    """forward + backward + AdamW on the forget batches the methods see, nothing else."""
    import torch

    from obliviate.config import load_config
    from obliviate.models import load_model, load_tokenizer
    from obliviate.unlearn import UnlearnConfig, load_data
    from obliviate.unlearn.batches import build_training_data

    tokenizer, model = load_tokenizer(model_dir), load_model(model_dir).to(device)
    cfg = load_config(UnlearnConfig, None, SETTINGS)
    data = build_training_data(tokenizer, load_data(forget, model=model_dir), None, cfg, set())
    optimizer = torch.optim.AdamW(model.parameters(), lr=cfg.lr)
    model.train()
    memory.start()
    times, tokens = [], 0
    for step in range(steps):
        started = clock()
        batch = data.micro_batch(step, 0, 1).forget.to(device)
        loss = -model(**batch.inputs, labels=batch.labels, use_cache=False).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        loss.item()
        times.append(clock() - started)
        tokens += batch.tokens
    return {"step": statistics.median(times[warmup:]), "tokens_per_second": tokens / sum(times),
            "memory": memory.peak()}


# ---- the table -------------------------------------------------------------------------------

MEMORY_ENV = {"MALLOC_MMAP_THRESHOLD_": "16384", "MALLOC_TRIM_THRESHOLD_": "0"}


def measure_in_child(args, run: str, steps: int, extra_env: dict | None = None) -> dict:
    env = {**os.environ, "PYTHONPATH": str(REPO / "src"), "OBLIVIATE_QUIET": "1",
           "OMP_NUM_THREADS": str(args.threads), **(extra_env or {})}
    command = [sys.executable, __file__, "--one", run, "--model", str(args.model), "--steps", str(steps),
               "--warmup", str(min(args.warmup, steps - 1)), "--clock", args.clock, "--data", args.data]
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def run_all(args) -> dict[str, dict]:
    results = {}
    for run in args.runs:
        timings = [measure_in_child(args, run, args.steps) for _ in range(args.repeat)]
        best = min(timings, key=lambda result: result["step"])
        best["memory"] = measure_in_child(args, run, args.memory_steps, MEMORY_ENV)["memory"]
        results[run] = best
        print(f"  {run}: {best['step'] * 1000:.1f} ms/step", file=sys.stderr, flush=True)
    return results


def print_table(results: dict[str, dict]) -> None:
    bare, graddiff = results.get("bare"), results.get("graddiff")
    print(f"{'run':<12} {'ms/step':>8} {'× bare':>7} {'× graddiff':>10} {'tokens/s':>9} {'train MiB':>10}")
    for run, r in results.items():
        ratio_bare = f"{r['step'] / bare['step']:.2f}" if bare else "-"
        ratio_gd = f"{r['step'] / graddiff['step']:.2f}" if graddiff else "-"
        print(f"{run:<12} {r['step'] * 1000:8.1f} {ratio_bare:>7} {ratio_gd:>10} {r['tokens_per_second']:9.0f} "
              f"{r['memory'] / 2**20:10.1f}")
    checks = [("GA step ≤ 1.10 × bare", "ga", "bare", "step", 1.10)]
    checks += [(f"{name} step ≤ 1.15 × GradDiff", name, "graddiff", "step", 1.15) for name in ("npo", "dpo", "simnpo")]
    checks += [("LoRA GA+KL train memory ≤ 1.10 × LoRA GA", "ga_kl+lora", "ga+lora", "memory", 1.10)]
    print()
    for label, run, reference, key, limit in checks:
        if run in results and reference in results:
            ratio = results[run][key] / results[reference][key]
            print(f"{'ok  ' if ratio <= limit else 'MISS'} {label}: {ratio:.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", help="model directory, .gguf file or named model such as smollm2-135m "
                        "(default: the tiny test model, built if needed)")
    parser.add_argument("--data", choices=sorted(DATA), default="world",
                        help="forget / retain data: the test world's split, or TOFU forget01 / retain90")
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--memory-steps", type=int, default=8, help="steps of the separate memory measurement")
    parser.add_argument("--repeat", type=int, default=1, help="measure each run this many times, keep the fastest")
    parser.add_argument("--threads", type=int, default=1, help="CPU threads per measurement (OMP_NUM_THREADS)")
    parser.add_argument("--clock", choices=["cpu", "wall"], help="time steps by process CPU time or wall time "
                        "(default: cpu without a GPU, else wall)")
    parser.add_argument("--runs", nargs="+", default=RUNS, choices=RUNS)
    parser.add_argument("--one", choices=RUNS, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.model is None:
        args.model = test_model_dir()
    if args.clock is None:
        import torch

        args.clock = "wall" if torch.cuda.is_available() else "cpu"
    if args.one:
        import tempfile

        with tempfile.TemporaryDirectory() as scratch:
            print(json.dumps(measure(args.one, args.model, args.steps, args.warmup, args.clock, Path(scratch) / "out",
                                    args.data)))
        return
    print_table(run_all(args))


def test_model_dir() -> Path:
    os.environ.setdefault("OBLIVIATE_CACHE", str(REPO / ".cache" / "tests"))
    from obliviate.demo import demo_world
    from obliviate.models.tiny import build_base_model

    return build_base_model(demo_world("test").root, "test")


if __name__ == "__main__":
    main()
