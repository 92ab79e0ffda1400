#!/usr/bin/env python
"""Render an HTML report in headless Chromium (driven by Playwright) at each screen size and check its layout.

    python scripts/render_report.py REPORT.html OUT_DIR [--size 1280x800 --size 390x844]

Per size it writes OUT_DIR/<report>-<W>x<H>.png, the first screen as a person sees it, and checks:
  * the page is rendered (the screenshot holds more than one colour);
  * the scorecard lies in the first screen: at a width of 1000 px or more the whole card (one run) or the first
    three rows of the scorecard table (several), on a narrower screen its first measure;
  * no element reaches past the right edge of the page: the page does not scroll sideways, and no element
    outside a table's scroll box sticks out; at 1000 px or more not even a table scrolls inside its box, with
    every folded block opened.
Prints one line per size; exits 0 when every check holds, 1 when one fails, 2 when Chromium, Playwright or the
report cannot be found. Needs `pip install playwright` (the `browser` extra) and a Chromium: the system's
(`apt-get install -y chromium` on Debian), or Playwright's own (`playwright install chromium`).
"""

from __future__ import annotations

import argparse
import re
import shutil
import sys
from pathlib import Path

from PIL import Image

SIZES = ("1280x800", "390x844")
WIDE = 1000  # from this width on, the whole scorecard and every table must fit
FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync"]

# Evaluated in the loaded page; returns what it found.
LAYOUT_PROBE = """
(wide) => {
  var width = window.innerWidth, height = window.innerHeight;
  var found = {width: width, height: height, problems: []};
  var card = document.querySelector("#glance .card, #glance table.scorecards");
  if (!card) {
    found.problems.push("no scorecard in the At a glance section");
  } else {
    var box = card.getBoundingClientRect();
    var firstMeasure = card.querySelector(".tile, tbody tr td:nth-child(2)");
    var bottom = wide ? (card.tagName === "TABLE"
      ? card.querySelectorAll("tbody tr")[Math.min(2, card.tBodies[0].rows.length - 1)].getBoundingClientRect().bottom
      : box.bottom) : (firstMeasure ? firstMeasure.getBoundingClientRect().bottom : box.top);
    found.scorecard = {top: Math.round(box.top), bottom: Math.round(bottom)};
    if (bottom > height) found.problems.push("scorecard ends at " + Math.round(bottom) + " px, below the first screen (" + height + " px)");
  }
  function describe(element) {
    return element.tagName.toLowerCase() + (element.id ? "#" + element.id : "") +
      (element.className && typeof element.className === "string" ? "." + element.className.split(" ")[0] : "");
  }
  function inScrollBox(element) {
    for (var parent = element.parentElement; parent; parent = parent.parentElement) {
      if (parent.classList.contains("table-wrap")) return true;
    }
    return false;
  }
  if (document.documentElement.scrollWidth > width + 1) {
    found.problems.push("the page scrolls sideways: " + document.documentElement.scrollWidth + " px wide at " + width + " px");
  }
  if (wide) document.querySelectorAll("details").forEach(function (block) { block.open = true; });
  document.querySelectorAll("body *").forEach(function (element) {
    var box = element.getBoundingClientRect();
    if (box.width === 0 || inScrollBox(element)) return;
    if (box.right > width + 1) found.problems.push(describe(element) + " reaches " + Math.round(box.right) + " px");
  });
  if (wide) document.querySelectorAll(".table-wrap").forEach(function (wrap) {
    if (wrap.scrollWidth > wrap.clientWidth + 1) {
      var title = wrap.previousElementSibling ? wrap.previousElementSibling.textContent : "";
      found.problems.push("table " + JSON.stringify(title.slice(0, 60)) + " is " + wrap.scrollWidth + " px in a " + wrap.clientWidth + " px box");
    }
  });
  return found;
}
"""


def find_chromium() -> str | None:
    if Path("/usr/bin/chromium").is_file():
        return "/usr/bin/chromium"
    return shutil.which("chromium") or shutil.which("chromium-browser")


def check(page, report: Path, out: Path, size: str) -> list[str]:
    """Render the report at `size` in `page`, save the first screen and return the layout's problems."""
    width, height = map(int, size.split("x"))
    page.set_viewport_size({"width": width, "height": height})
    page.goto(report.resolve().as_uri())
    png = out / f"{report.stem}-{size}.png"
    page.screenshot(path=png)
    problem = screenshot_problem(png)
    return ([problem] if problem else []) + page.evaluate(LAYOUT_PROBE, width >= WIDE)["problems"]


def screenshot_problem(png: Path) -> str | None:
    """Why the screenshot is unusable, or None when it looks like a rendered page."""
    if not png.is_file():
        return "no screenshot was written"
    with Image.open(png) as image:
        extrema = image.convert("RGB").getextrema()
    return "screenshot is a single colour" if all(low == high for low, high in extrema) else None


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("report", type=Path, help="the HTML report")
    parser.add_argument("out", type=Path, help="the folder the screenshots go to")
    parser.add_argument("--size", action="append", help=f"WIDTHxHEIGHT, repeatable (default: {' and '.join(SIZES)})")
    args = parser.parse_args()
    chromium = find_chromium()
    if chromium is None:
        print("render_report: chromium not found (install it, e.g. apt-get install -y chromium)")
        return 2
    if not args.report.is_file():
        print(f"render_report: {args.report}: no such file")
        return 2
    sizes = args.size or list(SIZES)
    bad = [size for size in sizes if not re.fullmatch(r"\d+x\d+", size)]
    if bad:
        print(f"render_report: --size {bad[0]}: expected WIDTHxHEIGHT, e.g. 1280x800")
        return 2
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        print("render_report: playwright not installed (pip install playwright)")
        return 2
    args.out.mkdir(parents=True, exist_ok=True)
    failed = False
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, args=FLAGS)
        page = browser.new_page()
        for size in sizes:
            problems = check(page, args.report, args.out, size)
            failed |= bool(problems)
            verdict = "FAILED: " + "; ".join(problems[:5]) if problems else "OK"
            print(f"render_report: {size}: {verdict} ({args.out / f'{args.report.stem}-{size}.png'})")
        browser.close()
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
