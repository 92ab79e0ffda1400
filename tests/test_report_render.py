"""The report in a real browser (scripts/render_report.py: headless Chromium driven by Playwright) at a laptop's
and a phone's screen size: the scorecard is on the first screen and nothing sticks out past the page's edge."""

import importlib.util
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from obliviate.report import write_report
from test_report import eval_document, make_run, write_json

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "render_report.py"
CHROMIUM = "/usr/bin/chromium" if Path("/usr/bin/chromium").is_file() else shutil.which("chromium")
needs_browser = pytest.mark.skipif(
    CHROMIUM is None or importlib.util.find_spec("playwright") is None,
    reason="needs chromium and playwright (apt-get install -y chromium; pip install -e '.[browser]')",
)


def render(report: Path, out: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(SCRIPT), str(report), str(out)], capture_output=True, text=True,
                          timeout=300)


def browser_check(report: Path, out: Path) -> None:
    """Assert the report passes render_report's checks at 1280x800 and 390x844."""
    result = render(report, out)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count(": OK") == 2
    for size in ("1280x800", "390x844"):
        assert (out / f"{report.stem}-{size}.png").stat().st_size > 10_000


@needs_browser
def test_report_passes_the_browser_check_with_one_run_and_with_two(tmp_path):
    retain = write_json(tmp_path / "retain.json", eval_document("retain", forget=0.05, kept=0.86))
    run = make_run(tmp_path)
    browser_check(write_report([run, retain], tmp_path / "one.html"), tmp_path / "shots")
    ga = make_run(tmp_path, method="ga")
    browser_check(write_report([run, ga, retain], tmp_path / "two.html"), tmp_path / "shots")


@needs_browser
def test_browser_check_fails_without_a_scorecard_or_with_a_too_wide_element(tmp_path):
    blank = tmp_path / "blank.html"
    blank.write_text("<!DOCTYPE html><html><body></body></html>", encoding="utf-8")
    result = render(blank, tmp_path / "shots")
    assert result.returncode == 1 and "single colour" in result.stdout and "no scorecard" in result.stdout

    report = write_report([make_run(tmp_path), write_json(tmp_path / "r.json", eval_document("retain", 0.05, 0.86))],
                          tmp_path / "wide.html")
    text = report.read_text(encoding="utf-8")
    report.write_text(text.replace("<footer>", '<footer><div style="width: 2000px">wide</div>'), encoding="utf-8")
    result = render(report, tmp_path / "shots")
    assert result.returncode == 1 and "the page scrolls sideways" in result.stdout
