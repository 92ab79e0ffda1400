"""Render an HTML report with headless Chromium (scripts/render_report.py) and check the screenshot."""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from obliviate.report import write_report
from test_report import eval_document, make_run, write_json

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "render_report.py"
CHROMIUM = "/usr/bin/chromium" if Path("/usr/bin/chromium").is_file() else shutil.which("chromium")
needs_chromium = pytest.mark.skipif(
    CHROMIUM is None, reason="chromium is not installed (apt-get install -y chromium to run this check)"
)


def render(report: Path, png: Path) -> subprocess.CompletedProcess:
    command = [sys.executable, str(SCRIPT), str(report), str(png)]
    return subprocess.run(command, capture_output=True, text=True, timeout=180)


@needs_chromium
def test_report_renders_to_a_non_blank_png(tmp_path):
    retain = write_json(tmp_path / "retain.json", eval_document("retain", forget=0.05, kept=0.86))
    report = write_report([make_run(tmp_path), retain], tmp_path / "report.html")
    png = tmp_path / "report.png"
    result = render(report, png)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.startswith("render_report: OK") and png.stat().st_size > 10_000


@needs_chromium
def test_render_script_fails_on_a_blank_page(tmp_path):
    blank = tmp_path / "blank.html"
    blank.write_text("<!DOCTYPE html><html><body></body></html>", encoding="utf-8")
    result = render(blank, tmp_path / "blank.png")
    assert result.returncode == 1 and "FAILED" in result.stdout
