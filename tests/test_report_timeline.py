"""The last run's timeline: read from the history, as a trace file, at the terminal, in the page."""

from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path

import pytest

from pytest_feedback.cli import main
from pytest_feedback.history.records import RunRecord, TestRecord
from pytest_feedback.history.store import Store
from pytest_feedback.report import html, trace
from pytest_feedback.report.details import add_details
from pytest_feedback.report.flaky import FlakySection
from pytest_feedback.report.formatting import visible
from pytest_feedback.report.lanes import lane_lines
from pytest_feedback.report.model import Report, build_report
from pytest_feedback.report.timeline import Timeline, assemble
from timeline_history import (
    PAUSE_S,
    STARTUP_S,
    lanes_of,
    make_run,
    nodeids,
    write_history,
)

HOSTILE = [
    "tests/test_x.py::test_html[</script><script>window.pwned=1</script>]",
    "tests/test_x.py::test_quote[\"'><img src=x onerror=alert(1)>]",
    "tests/test_x.py::test_newline[a\nb\u2028c]",
    "tests/test_x.py::test_comment[<!--x-->&amp;]",
]


def page_report(path: Path, *, page: bool = True) -> Report:
    with Store.open_existing(path) as store:
        return add_details(store, build_report(store), page=page)


@pytest.fixture(scope="module")
def history(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("timeline") / "h.db"
    return write_history(path, nodeids(60, HOSTILE), workers=3, runs=3)


def test_one_lane_per_worker_with_its_tests(history: Path) -> None:
    timeline = page_report(history).timeline
    assert timeline is not None
    expected = lanes_of(nodeids(60, HOSTILE), 3)
    assert [lane.name for lane in timeline.lanes] == ["gw0", "gw1", "gw2"]
    for i, lane in enumerate(timeline.lanes):
        bars = timeline.lane_tests(i)
        assert [b.nodeid for b in bars] == expected[i]  # in the order they ran
        assert lane.tests == len(bars)
        assert bars[0].start_s == pytest.approx(STARTUP_S)
        assert all(a.end_s <= b.start_s for a, b in zip(bars, bars[1:]))
        assert lane.busy_s == pytest.approx(sum(b.end_s - b.start_s for b in bars))

    def longest_gap(lane: int) -> float:
        bars = timeline.lane_tests(lane)
        return max(b.start_s - a.end_s for a, b in zip(bars, bars[1:]))

    assert longest_gap(0) == pytest.approx(PAUSE_S, abs=0.01)
    assert longest_gap(1) < 0.01
    for lane in timeline.lanes:
        assert lane.idle_s == pytest.approx(lane.end_s - lane.start_s - lane.busy_s)
    assert {f.phase for f in timeline.fixtures} == {"setup", "teardown"}
    assert timeline.untimed == 0


def test_a_merged_run_puts_each_shard_at_its_own_start() -> None:
    tests = [
        ("t1", "passed", "s1/gw0", 1.0, 0.0, 2.0, 0.0),
        ("t2", "passed", "s1/gw1", 1.0, 0.0, 1.0, 0.0),
        ("t3", "passed", "s2", 0.5, 0.0, 1.0, 0.0),
    ]
    parts = [("1/2", 100.0, 4.0), ("2/2", 103.0, 2.0)]
    timeline = assemble(7, 4.0, tests, [], parts)
    assert [lane.name for lane in timeline.lanes] == ["s1/gw0", "s1/gw1", "s2"]
    assert [b.start_s for b in timeline.tests] == [1.0, 1.0, 3.5]
    assert (timeline.lanes[2].start_s, timeline.lanes[2].end_s) == (3.0, 5.0)
    assert timeline.span_s == 5.0


def test_trace_file_is_trace_events_one_track_per_worker(history: Path, tmp_path: Path) -> None:
    out = tmp_path / "run.json"
    assert main(["report", "--db", str(history), "--format", "trace", "-o", str(out)]) == 0
    events = json.loads(out.read_text(encoding="utf-8"))["traceEvents"]
    slices = [e for e in events if e["ph"] == "X"]
    for event in slices:
        assert {"ph", "ts", "dur", "pid", "tid", "name"} <= set(event)
        assert isinstance(event["ts"], int)
        assert event["dur"] >= 0
    processes = {e["pid"]: e["args"]["name"] for e in events if e["name"] == "process_name"}
    assert sorted(processes.values()) == ["gw0", "gw1", "gw2"]
    assert {e["pid"] for e in slices} == set(processes)
    expected = lanes_of(nodeids(60, HOSTILE), 3)
    for pid, name in processes.items():
        phases = [e for e in slices if e["pid"] == pid and e["cat"].startswith("test.")]
        assert len(phases) == 3 * len(expected[int(name[2:])])  # set-up, call, tear-down each
    tracks: dict[tuple[int, int], list[dict[str, object]]] = {}
    for event in slices:
        tracks.setdefault((event["pid"], event["tid"]), []).append(event)
    for track in tracks.values():
        track.sort(key=lambda e: e["ts"])  # type: ignore[arg-type,return-value]
        for a, b in zip(track, track[1:]):
            assert a["ts"] + a["dur"] <= b["ts"], (a, b)  # type: ignore[operator]


def test_nested_fixture_set_ups_go_on_another_thread() -> None:
    fixtures = [
        ("outer", "session", "gw0", 0.0, 1.0, None, None),
        ("inner", "session", "gw0", 0.2, 0.3, None, None),
    ]
    timeline = assemble(1, 2.0, [("t", "passed", "gw0", 0.0, 1.0, 0.5, 0.0)], fixtures)
    fixture_slices = [e for e in trace.events(timeline) if e.get("cat", "").startswith("fixture")]
    assert [(e["name"], e["tid"]) for e in fixture_slices] == [("outer", 2), ("inner", 3)]


def test_terminal_timeline_fits_80_columns(history: Path) -> None:
    timeline = page_report(history, page=False).timeline
    assert timeline is not None
    lines = lane_lines(timeline, 80)
    assert len(lines) == 1 + 3
    assert all(len(line) <= 80 for line in lines)
    gw0, gw1 = lines[1], lines[2]
    assert gw0.startswith("gw0 ")
    assert gw0.endswith("busy")
    bar0 = gw0[9:-10]
    assert re.search("█·+█", bar0)
    assert not re.search("█·+█", gw1[9:-10])
    assert "█" in bar0
    assert bar0[0] == "·"
    ascii_lines = lane_lines(timeline, 60, ascii_only=True)
    assert all(len(line) <= 60 and line.isascii() for line in ascii_lines)


def test_text_report_shows_the_timeline(history: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["report", "--db", str(history)]) == 0
    out = capsys.readouterr().out
    assert "Timeline (busy/idle per worker)" in out
    assert re.search(r"^gw2 +.*busy$", out, re.MULTILINE)


def test_page_is_self_contained_and_escapes_every_id(history: Path, tmp_path: Path) -> None:
    out = tmp_path / "report.html"
    assert main(["report", "--db", str(history), "--format", "html", "-o", str(out)]) == 0
    page = out.read_text(encoding="utf-8")
    # Nothing from elsewhere: no URL in any attribute, a policy that forbids loading.
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", page)
    assert "default-src 'none'" in page
    # Exactly our two scripts (the data and the timeline's), whatever the ids hold.
    assert len(re.findall(r"<script\b", page)) == 2
    assert "<img" not in page
    assert "<!--x" not in page
    data = re.search(r'<script type="application/json" id="timeline-data">(.*?)</script>', page)
    assert data is not None
    ids = json.loads(data.group(1))["ids"]
    assert set(map(visible, HOSTILE)) <= set(ids)
    assert "<code>tests/test_x.py::test_html[&lt;/script&gt;&lt;script&gt;" in page
    for section in ("timeline", "trends", "slowest", "fixtures", "files", "plans"):
        assert f'<section id="{section}">' in page
    # The lane table reads without the script.
    assert re.search(r"<td>gw1</td><td class=\"num\">20</td>", page)


def test_html_sections_are_functions_of_the_report(history: Path) -> None:
    report = page_report(history)
    extra = html.Section("extra", lambda r: "Extra <b>", lambda r: "<p>filled</p>")
    page = html.render(report, [*html.SECTIONS[:1], extra])
    assert '<section id="extra"><h2>Extra &lt;b&gt;</h2><p>filled</p></section>' in page
    assert '<section id="slowest">' not in page
    empty = html.Section("empty", lambda r: "Empty", lambda r: None)
    assert 'id="empty"' not in html.render(report, [empty])


def test_runs_without_start_times(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = tmp_path / "h.db"
    with Store(db) as store:
        run = RunRecord(uuid="old", started_at=1.0, finished_at=2.0, wall_s=1.0)
        run.tests["t.py::t"] = TestRecord("t.py::t", "passed", 0.0, 0.1, 0.0)
        store.record_run(run)
    assert main(["report", "--db", str(db), "--format", "trace", "-o", str(tmp_path / "t")]) == 1
    assert "no recorded start times" in capsys.readouterr().err
    assert main(["report", "--db", str(db), "--format", "html", "-o", str(tmp_path / "p")]) == 0
    assert "has no recorded start times" in (tmp_path / "p").read_text(encoding="utf-8")


def test_pytest_writes_the_page(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_a="def test_one(): pass\ndef test_two(): pass\n")
    result = pytester.runpytest("--feedback-html=out/report.html", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(["feedback: HTML report written to *report.html"])
    page = (pytester.path / "out" / "report.html").read_text(encoding="utf-8")
    assert "test_a.py::test_two" in page
    assert '<section id="timeline">' in page


def test_shards_of_a_timeline_are_numbered_naturally() -> None:
    run = make_run(0, nodeids(24), 12, fixtures=False)
    rows = [
        (t.nodeid, t.outcome, t.worker, (t.started_at or 0) - run.started_at, t.setup_s, 0.1, 0.0)
        for t in run.tests.values()
    ]
    timeline: Timeline = assemble(1, run.wall_s, rows, [])
    assert [lane.name for lane in timeline.lanes][:3] == ["gw0", "gw1", "gw2"]
    assert timeline.lanes[-1].name == "gw11"


def test_page_shows_what_a_budget_catches(tmp_path: Path) -> None:
    db = write_history(tmp_path / "h.db", nodeids(30), workers=2, runs=7, fixtures=False)
    page = html.render(page_report(db))
    section = re.search(r'<section id="catches">(.*?)</section>', page)
    assert section is not None
    assert "Replayed over 6 failing runs" in section.group(1)
    assert re.search(r"<td>1s</td><td class=\"num\">\d+% \(\d/6\)</td>", section.group(1))


def test_page_shows_the_advice(history: Path) -> None:
    report = dataclasses.replace(page_report(history), advice=("1. Widen <fixture> `db`",))
    section = re.search(r'<section id="advice">(.*?)</section>', html.render(report))
    assert section is not None
    assert "<p>1. Widen &lt;fixture&gt; `db`</p>" in section.group(1)


def test_page_shows_the_flaky_and_quarantine_block(history: Path) -> None:
    block = FlakySection([], ["tests/x.py::t[<b>]"], [], [], [])
    report = dataclasses.replace(page_report(history), flakiness=block)
    section = re.search(r'<section id="quarantine">(.*?)</section>', html.render(report))
    assert section is not None
    assert "<code>tests/x.py::t[&lt;b&gt;]</code>" in section.group(1)
    assert "unstable, not flaky" in section.group(1)


def test_a_page_that_cannot_be_written_is_one_warning(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_a="def test_one(): pass\n")
    pytester.mkdir("taken")
    result = pytester.runpytest("--feedback-html=taken", "-p", "no:cacheprovider")
    assert result.ret == 0
    result.stdout.fnmatch_lines(["feedback: warning: no HTML report (IsADirectoryError*"])
