"""The HTML report on a large run. Goals (issue 22): a 20,000-test, 4-worker history gives a page
under 5 MB that headless Chromium renders in under 2 s, and stays responsive when zoomed.

Builds the history through `Store.record_run` (every test and fixture execution with its start),
writes the page with ``pytest-feedback report --format html`` (timed as a subprocess, against
``--format markdown`` on the same history: the baseline measured in the same run), then opens it
in headless Chromium (Debian's ``chromium`` through Playwright) and prints:

- the page's size;
- load to first timeline drawn (``performance.now()`` at the end of the first drawing), against
  the same for a 60-test page (the baseline);
- one redraw of the whole run, and of a zoomed view, and a hover.

    .venv/bin/python benchmarks/report_html.py [--tests 20000] [--workers 4] [--runs 5]
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "tests"))

from timeline_history import nodeids, write_history  # type: ignore[import-not-found]  # noqa: E402

CLI = [sys.executable, "-m", "pytest_feedback"]


def timed(args: list[str]) -> tuple[float, float]:
    """Wall and CPU seconds (user + system) of one command."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run([*CLI, *args], check=True, cwd=ROOT, env={**os.environ, "PYTHONPATH": "src"})
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def browse(pages: dict[str, Path]) -> dict[str, dict[str, float]]:
    """Per page: load to first drawing, a full redraw, a zoomed redraw, a hover (ms)."""
    from playwright.sync_api import sync_playwright

    executable = os.environ.get("CHROMIUM") or shutil.which("chromium")
    if not executable:
        sys.exit("report_html: no chromium on PATH (apt-get install chromium)")
    out: dict[str, dict[str, float]] = {}
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=executable, args=["--no-sandbox"])
        for name, path in pages.items():
            page = browser.new_page(viewport={"width": 1280, "height": 800})
            page.goto(path.as_uri())
            page.wait_for_function("window.feedbackTimeline && window.feedbackTimeline.state.ready")
            first = page.evaluate("window.feedbackTimeline.state.firstDrawMs")
            span = page.evaluate(
                "JSON.parse(document.getElementById('timeline-data').textContent).span"
            )
            page.evaluate(f"window.feedbackTimeline.zoomTo(0, {span})")
            full = page.evaluate("window.feedbackTimeline.state.lastDrawMs")
            page.evaluate(f"window.feedbackTimeline.zoomTo({span // 3}, {span // 3 + span // 50})")
            zoomed = page.evaluate("window.feedbackTimeline.state.lastDrawMs")
            box = page.locator("#timeline-canvas").bounding_box()
            assert box is not None
            start = time.perf_counter()
            page.mouse.move(box["x"] + box["width"] / 2, box["y"] + 30)
            page.evaluate("0")  # the hover's handler has run once this returns
            hover = (time.perf_counter() - start) * 1000
            out[name] = {"first": first, "full": full, "zoomed": zoomed, "hover": hover}
            page.close()
        browser.close()
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tests", type=int, default=20_000)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        start = time.perf_counter()
        big = write_history(tmp / "big.db", nodeids(args.tests), args.workers, args.runs)
        small = write_history(tmp / "small.db", nodeids(60), args.workers, 3)
        print(
            f"history: {args.tests:,} tests x {args.runs} runs on {args.workers} workers, "
            f"written in {time.perf_counter() - start:.1f}s"
        )
        markdown_s, markdown_cpu = timed(
            ["report", "--db", str(big), "--format", "markdown", "-o", "/dev/null"]
        )
        html_s, html_cpu = timed(
            ["report", "--db", str(big), "--format", "html", "-o", str(tmp / "big.html")]
        )
        timed(["report", "--db", str(small), "--format", "html", "-o", str(tmp / "small.html")])
        size = (tmp / "big.html").stat().st_size
        print(
            f"report --format html: {html_s:.2f}s wall, {html_cpu:.2f}s CPU (markdown on the "
            f"same history: {markdown_s:.2f}s wall, {markdown_cpu:.2f}s CPU; "
            f"CPU x{html_cpu / markdown_cpu:.1f})"
        )
        print(f"page size: {size / 1e6:.2f} MB (goal < 5 MB)")
        figures = browse({"big": tmp / "big.html", "small": tmp / "small.html"})
        big_f, small_f = figures["big"], figures["small"]
        print(
            f"headless Chromium, load to first timeline drawn: {big_f['first'] / 1000:.2f}s "
            f"(goal < 2 s; a 60-test page: {small_f['first'] / 1000:.2f}s, "
            f"x{big_f['first'] / small_f['first']:.1f})"
        )
        print(
            f"redraw: whole run {big_f['full']:.1f} ms, zoomed to 1/50 {big_f['zoomed']:.1f} ms; "
            f"hover {big_f['hover']:.1f} ms (60-test page: whole run {small_f['full']:.1f} ms)"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
