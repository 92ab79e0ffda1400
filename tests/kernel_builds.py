"""Run the test suite once per CPU-kernel build and print every recorded figure beside its bound, per build.

    python tests/kernel_builds.py                       # the whole suite under default, avx2 and avx512
    python tests/kernel_builds.py --builds default,avx2 -- tests/test_attacks.py -m slow
    python tests/kernel_builds.py --table-only --out builds.md   # re-read the last runs' figures

The tiny test models are trained from scratch, so PyTorch's and MKL's choice of vector kernels changes every
weight: each setting below is another build, with other figures. Each build runs from an empty model cache
(`--keep-cache` reuses it) under `.cache/kernel-builds/<build>/`, where its figures (`figures.jsonl`, written by
the `figure` fixture of tests/conftest.py) and pytest's output (`pytest.log`) stay. Whoever retunes a recipe or a
bound checks here that the bound holds on every build, with room to spare. avx512 is skipped on a CPU without it.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
WORK = REPO / ".cache" / "kernel-builds"
# ATen's dispatch level and the MKL code path that matches it
BUILDS = {"default": ("default", "COMPATIBLE"), "avx2": ("avx2", "AVX2"), "avx512": ("avx512", "AVX512")}
COUNTS = re.compile(r"=*\s*((?:\d+ \w+(?:, )?)+) in ([\d.]+)s")


def cpu_has(flag: str) -> bool:
    cpuinfo = Path("/proc/cpuinfo")
    return cpuinfo.is_file() and f" {flag}" in cpuinfo.read_text(errors="replace")


def run_build(name: str, pytest_args: list[str], keep_cache: bool) -> dict:
    folder = WORK / name
    if folder.exists() and not keep_cache:
        shutil.rmtree(folder)
    folder.mkdir(parents=True, exist_ok=True)
    figures = folder / "figures.jsonl"
    figures.unlink(missing_ok=True)
    capability, mkl = BUILDS[name]
    env = {**os.environ, "ATEN_CPU_CAPABILITY": capability, "MKL_CBWR": mkl,
           "OBLIVIATE_CACHE": str(folder / "cache"), "OBLIVIATE_FIGURES": str(figures)}
    command = [sys.executable, "-m", "pytest", "-q", "-rfEX", "-p", "no:cacheprovider", *pytest_args]
    print(f"[{name}] ATEN_CPU_CAPABILITY={capability} MKL_CBWR={mkl} {' '.join(command[1:])}", flush=True)
    start = time.time()
    with open(folder / "pytest.log", "w", encoding="utf-8") as log:
        code = subprocess.run(command, cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT).returncode
    summary = {"build": name, "exit_code": code, "wall_seconds": round(time.time() - start, 1),
               "counts": closing_counts(folder / "pytest.log")}
    (folder / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    print(f"[{name}] {summary['counts']} (exit {code}, {summary['wall_seconds']:.0f} s)", flush=True)
    return summary


def closing_counts(log: Path) -> str:
    lines = [line for line in log.read_text(errors="replace").splitlines() if COUNTS.search(line)]
    return COUNTS.search(lines[-1]).group(1) if lines else "no closing line"


def read_figures(name: str) -> dict[tuple[str, str], dict]:
    path = WORK / name / "figures.jsonl"
    if not path.is_file():
        return {}
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return {(row["test"], row["figure"]): row for row in rows}


def bound_text(row: dict) -> str:
    parts = []
    if row["at_least"] is not None:
        parts.append(f"≥ {row['at_least']:.3g}")
    if row["at_most"] is not None:
        parts.append(f"≤ {row['at_most']:.3g}")
    return " and ".join(parts)


def holds(row: dict) -> bool:
    return ((row["at_least"] is None or row["value"] >= row["at_least"])
            and (row["at_most"] is None or row["value"] <= row["at_most"]))


def table(builds: list[str]) -> str:
    figures = {name: read_figures(name) for name in builds}
    keys = list(dict.fromkeys(key for name in builds for key in figures[name]))
    lines = ["| test | figure | " + " | ".join(f"{name}: value (bound)" for name in builds) + " |",
             "|---|---|" + "---|" * len(builds)]
    for test, figure in keys:
        cells = []
        for name in builds:
            row = figures[name].get((test, figure))
            cells.append("—" if row is None else
                         f"{row['value']:.3g} ({bound_text(row)}){'' if holds(row) else ' ✗'}")
        short = test.removeprefix("tests/")
        lines.append(f"| `{short}` | {figure} | " + " | ".join(cells) + " |")
    summaries = []
    for name in builds:
        path = WORK / name / "summary.json"
        if path.is_file():
            summary = json.loads(path.read_text())
            summaries.append(f"- **{name}**: {summary['counts']} (exit {summary['exit_code']}, "
                             f"{summary['wall_seconds'] / 60:.1f} min)")
    return "\n".join(summaries + [""] + lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--builds", default="default,avx2,avx512", help="comma-separated, of " + ", ".join(BUILDS))
    parser.add_argument("--keep-cache", action="store_true", help="reuse each build's trained models")
    parser.add_argument("--table-only", action="store_true", help="print the table of the last runs, run nothing")
    parser.add_argument("--out", type=Path, help="also write the table (Markdown) here")
    parser.add_argument("pytest_args", nargs="*", help="passed to pytest (after --)")
    args = parser.parse_args()
    builds = [name.strip() for name in args.builds.split(",") if name.strip()]
    unknown = [name for name in builds if name not in BUILDS]
    if unknown:
        parser.error(f"unknown build {unknown[0]!r}; choose from {', '.join(BUILDS)}")
    if "avx512" in builds and not cpu_has("avx512f"):
        print("this CPU has no AVX-512: skipping the avx512 build", flush=True)
        builds.remove("avx512")
    if not args.table_only:
        for name in builds:
            run_build(name, args.pytest_args, args.keep_cache)
    text = table(builds)
    print(text)
    if args.out:
        args.out.write_text(text, encoding="utf-8")


if __name__ == "__main__":
    main()
