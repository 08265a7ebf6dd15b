"""A 1280x800 screenshot of an HTML report, as docs/reports.md shows it.

    .venv/bin/python scripts/report_screenshot.py report.html docs/images/report.png

Opens the page in headless Chromium (Debian's ``chromium``, or $CHROMIUM) through Playwright for
Python, waits for the timeline to be drawn, and saves the top of the page.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
from pathlib import Path


def chromium() -> str:
    found = os.environ.get("CHROMIUM") or shutil.which("chromium")
    if not found:
        sys.exit("report_screenshot: no chromium on PATH (apt-get install chromium; or $CHROMIUM)")
    return found


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("page", type=Path, help="the HTML report")
    parser.add_argument("png", type=Path, help="where to save the screenshot")
    parser.add_argument("--width", type=int, default=1280)
    parser.add_argument("--height", type=int, default=800)
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium(), args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": args.width, "height": args.height})
        page.goto(args.page.resolve().as_uri())
        page.wait_for_function("!window.feedbackTimeline || window.feedbackTimeline.state.ready")
        args.png.parent.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(args.png))
        browser.close()
    print(f"{args.png}: {args.width}x{args.height}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
