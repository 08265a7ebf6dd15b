"""The HTML report in a real browser: Debian's headless Chromium, driven by Playwright for Python.

One browser launch and one page load for every check (the launch is most of this file's time):
the timeline has a lane per worker with each worker's tests as bars, hovering a bar shows its
node id, no request leaves the page, nothing is logged as an error, hostile node ids stay text,
and the tables read with JavaScript off. Without Chromium or Playwright the tests are skipped,
except in CI (``CI`` set), where scripts/test.sh installs both and their absence is a failure.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from typing import Any

import pytest

from pytest_feedback.cli import main
from pytest_feedback.report.formatting import visible
from timeline_history import lanes_of, nodeids, write_history

HOSTILE = [
    "tests/test_x.py::test_html[</script><script>window.pwned=1</script>]",
    'tests/test_x.py::test_img["\'><img src=x onerror="window.pwned=2">]',
    "tests/test_x.py::test_newline[a\nb]",
]
IDS = nodeids(60, HOSTILE)
WORKERS = 3


def _chromium() -> str:
    found = os.environ.get("CHROMIUM") or shutil.which("chromium")
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        found = None
    if not found:
        if os.environ.get("CI"):
            pytest.fail("CI needs Chromium and Playwright (scripts/test.sh installs them)")
        pytest.skip("no chromium or playwright (scripts/test.sh installs them)")
    return found


@pytest.fixture(scope="module")
def loaded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """The page, opened once; with what it requested and logged while loading."""
    executable = _chromium()
    from playwright.sync_api import sync_playwright

    tmp = tmp_path_factory.mktemp("browser")
    db = write_history(tmp / "h.db", IDS, WORKERS, runs=3)
    page_path = tmp / "report.html"
    args = ["report", "--db", str(db), "--format", "html", "--top", "100", "-o", str(page_path)]
    assert main(args) == 0
    requests: list[str] = []
    errors: list[str] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=executable, args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1280, "height": 800})
        page.on("request", lambda request: requests.append(request.url))
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.goto(page_path.as_uri())
        page.wait_for_function("window.feedbackTimeline && window.feedbackTimeline.state.ready")
        yield {
            "page": page,
            "requests": requests,
            "errors": errors,
            "url": page_path.as_uri(),
            "browser": browser,
        }
        browser.close()


def test_one_lane_per_worker_with_its_bars(loaded: dict[str, Any]) -> None:
    page = loaded["page"]
    assert page.evaluate("window.feedbackTimeline.lanes") == ["gw0", "gw1", "gw2"]
    per_lane = [len(tests) for tests in lanes_of(IDS, WORKERS)]
    assert page.evaluate("window.feedbackTimeline.state.drawn") == per_lane
    # Zoomed in on the first tenth of the run, fewer bars are drawn.
    page.evaluate("t => window.feedbackTimeline.zoomTo(0, t / 10)", _span(page))
    zoomed = page.evaluate("window.feedbackTimeline.state.drawn")
    assert all(z < n for z, n in zip(zoomed, per_lane))
    page.evaluate("t => window.feedbackTimeline.zoomTo(0, t)", _span(page))


def test_hover_shows_the_node_id_as_text(loaded: dict[str, Any]) -> None:
    page = loaded["page"]
    for nodeid in (IDS[10], *HOSTILE):
        shown = visible(nodeid)
        where = page.evaluate("id => window.feedbackTimeline.locate(id)", shown)
        page.mouse.move(where["x"], where["y"])
        tip = page.locator("#timeline-tip")
        assert tip.is_visible()
        assert tip.text_content().splitlines()[0] == shown
        page.mouse.click(where["x"], where["y"])
        assert page.locator("#timeline-detail").text_content().splitlines()[0] == shown


def test_hostile_ids_stay_text(loaded: dict[str, Any]) -> None:
    page = loaded["page"]
    assert page.evaluate("window.pwned") is None
    assert page.evaluate("document.querySelectorAll('img').length") == 0
    assert page.evaluate("document.scripts.length") == 2
    codes = page.locator("#slowest code").all_text_contents()
    assert {visible(n) for n in HOSTILE} <= set(codes)


def test_nothing_leaves_the_page_and_nothing_fails(loaded: dict[str, Any]) -> None:
    assert loaded["requests"] == [loaded["url"]]
    assert loaded["errors"] == []


def _span(page: Any) -> int:
    return int(
        page.evaluate("JSON.parse(document.getElementById('timeline-data').textContent).span")
    )


def test_tables_read_without_javascript(loaded: dict[str, Any]) -> None:
    context = loaded["browser"].new_context(java_script_enabled=False)
    page = context.new_page()
    page.goto(loaded["url"])
    lanes = page.locator("#timeline table tbody tr").all_inner_texts()
    assert [row.split("\t")[:2] for row in lanes] == [["gw0", "20"], ["gw1", "20"], ["gw2", "20"]]
    assert page.locator("#slowest tbody tr").count() == len(IDS)
    assert page.locator("noscript").count() == 1
    context.close()
