"""Wall time and peak memory of the TOFU suite's evaluation on a given model.

    python bench/eval_speed.py --model DIR [--data ../shared/data/tofu] [--split forget10] [--repeats 3] \
        [--batch-size 32] [--limit N] [--allocator glibc|returning]

Each repeat runs `obliviate eval --suite tofu` in a fresh process, as a user would, and prints:

* wall: the process's wall time, start-up (imports, loading data and model) included;
* phases: the eval JSON's `seconds_by_phase` (loading, scoring answers, generating, metrics);
* peak RSS: the process's resident-set high-water mark (`wait4`'s `ru_maxrss`);
* the suite's headline numbers, so that repeats (and another framework's run) can be compared.

`--allocator returning` runs with glibc told to hand every freed block over 16 KiB back to the
system (`MALLOC_MMAP_THRESHOLD_=16384`, `MALLOC_TRIM_THRESHOLD_=0`): with the default allocator the
peak RSS of identical runs varies with how glibc's free lists happen to fill (see docs/tofu.md).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
ALLOCATORS = {"glibc": {}, "returning": {"MALLOC_MMAP_THRESHOLD_": "16384", "MALLOC_TRIM_THRESHOLD_": "0"}}
HEADLINE = ("forget/probability", "forget/rouge_l_recall", "forget/truth_ratio", "forget/extraction_strength",
            "retain/probability", "retain/rouge_l_recall", "model_utility")


def run_once(args, out: Path) -> dict:
    command = [sys.executable, "-m", "obliviate", "eval", "--model", args.model, "--suite", "tofu",
               "--data", f"tofu={args.data}", "--data", f"forget_split={args.split}", "--out", str(out),
               "--batch-size", str(args.batch_size)]
    if args.limit:
        command += ["--limit", str(args.limit)]
    env = {**os.environ, "OBLIVIATE_QUIET": "1", **ALLOCATORS[args.allocator]}
    start = time.perf_counter()
    process = subprocess.Popen(command, env=env, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    _, status, usage = os.wait4(process.pid, 0)
    wall = time.perf_counter() - start
    if os.waitstatus_to_exitcode(status) != 0:
        sys.exit(f"obliviate eval failed:\n{process.stderr.read()[-2000:]}")
    document = json.loads(out.read_text())
    return {"wall_s": round(wall, 2), "eval_s": document["seconds"], "phases": document.get("seconds_by_phase", {}),
            "peak_rss_gib": round(usage.ru_maxrss / 2**20, 3),
            "metrics": {name: document["metrics"]["tofu"].get(name) for name in HEADLINE}}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", required=True, help="model directory, named offline model or hub name")
    parser.add_argument("--data", default=str(REPO.parent / "shared" / "data" / "tofu"), help="TOFU directory")
    parser.add_argument("--split", default="forget10")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--limit", type=int, default=None, help="at most N samples per set")
    parser.add_argument("--allocator", choices=sorted(ALLOCATORS), default="glibc")
    parser.add_argument("--json", type=Path, default=None, help="also write the figures here")
    args = parser.parse_args(argv)

    runs = []
    with tempfile.TemporaryDirectory() as scratch:
        for repeat in range(args.repeats):
            run = run_once(args, Path(scratch) / f"eval-{repeat}.json")
            runs.append(run)
            phases = ", ".join(f"{name} {seconds:.1f}" for name, seconds in run["phases"].items())
            print(f"repeat {repeat + 1}: wall {run['wall_s']:.1f} s (eval {run['eval_s']:.1f} s: {phases}); "
                  f"peak RSS {run['peak_rss_gib']:.2f} GiB", flush=True)
    walls = [run["wall_s"] for run in runs]
    rss = [run["peak_rss_gib"] for run in runs]
    same = all(run["metrics"] == runs[0]["metrics"] for run in runs)
    print(f"\n{args.model} · TOFU {args.split} · batch {args.batch_size} · allocator {args.allocator}")
    print(f"wall: median {statistics.median(walls):.1f} s (range {min(walls):.1f}–{max(walls):.1f}); "
          f"peak RSS {min(rss):.2f}–{max(rss):.2f} GiB; numbers identical across repeats: {same}")
    for name, value in runs[0]["metrics"].items():
        print(f"  {name:32s} {value}")
    if args.json:
        args.json.write_text(json.dumps({"model": args.model, "split": args.split, "batch_size": args.batch_size,
                                         "allocator": args.allocator, "runs": runs}, indent=1))


if __name__ == "__main__":
    main()
