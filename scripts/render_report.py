#!/usr/bin/env python
"""Render an HTML report to a PNG with headless Chromium and check the picture is not blank.

    python scripts/render_report.py REPORT.html OUT.png

Prints one line; exits 0 when OUT.png exists, is larger than a few kilobytes and holds more than
one colour, 1 when it does not, 2 when Chromium or the report cannot be found.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from PIL import Image

WINDOW_SIZE = "1280,4000"
MIN_PNG_BYTES = 10_000
TIMEOUT_SECONDS = 120


def find_chromium() -> str | None:
    if Path("/usr/bin/chromium").is_file():
        return "/usr/bin/chromium"
    return shutil.which("chromium") or shutil.which("chromium-browser")


def screenshot(chromium: str, report: Path, out: Path) -> subprocess.CompletedProcess:
    with tempfile.TemporaryDirectory(prefix="obliviate-chromium-") as profile:
        command = [
            chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
            "--disable-background-networking", "--disable-component-update", "--disable-sync",
            f"--user-data-dir={profile}", f"--screenshot={out}", f"--window-size={WINDOW_SIZE}",
            report.resolve().as_uri(),
        ]
        return subprocess.run(command, capture_output=True, text=True, timeout=TIMEOUT_SECONDS)


def problem_with(png: Path) -> str | None:
    """Why the screenshot is unusable, or None when it looks like a rendered page."""
    if not png.is_file():
        return "no screenshot was written"
    if png.stat().st_size < MIN_PNG_BYTES:
        return f"screenshot is only {png.stat().st_size} bytes"
    with Image.open(png) as image:
        extrema = image.convert("RGB").getextrema()
    if all(low == high for low, high in extrema):
        return "screenshot is a single colour"
    return None


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("report", type=Path, help="the HTML report")
    parser.add_argument("out", type=Path, help="where to write the PNG")
    args = parser.parse_args()
    chromium = find_chromium()
    if chromium is None:
        print("render_report: chromium not found (install it, e.g. apt-get install -y chromium)")
        return 2
    if not args.report.is_file():
        print(f"render_report: {args.report}: no such file")
        return 2
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.unlink(missing_ok=True)
    result = screenshot(chromium, args.report, args.out)
    problem = problem_with(args.out)
    if problem:
        last_error = result.stderr.strip().splitlines()[-1:] if result.returncode else []
        detail = f": {last_error[0]}" if last_error else ""
        print(f"render_report: FAILED: {problem} (chromium exit {result.returncode}{detail})")
        return 1
    with Image.open(args.out) as image:
        width, height = image.size
    print(f"render_report: OK: {args.out} ({width}x{height}, {args.out.stat().st_size} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
