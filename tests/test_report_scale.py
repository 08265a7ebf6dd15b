"""The report at scale: its optional blocks within the allowance, the estimates read once, and
recorded tests no longer in the working tree left out (with how many)."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from pytest_feedback.cli.commands import main
from pytest_feedback.history.records import RunRecord, TestRecord
from pytest_feedback.history.store import Store
from pytest_feedback.report import build_report, write_report
from pytest_feedback.report.allowance import ADVICE_S, HINT_S, Allowance
from pytest_feedback.report.details import add_details


def write_history(db: Path, nodeids: list[str], runs: int = 7, rootdir: str = "") -> None:
    """``runs`` runs of ``nodeids``; every run after the first fails one test."""
    with Store(db) as store:
        for index in range(runs):
            run = RunRecord(
                uuid=f"run-{index}",
                started_at=1.7e9 + index * 60,
                finished_at=1.7e9 + index * 60 + 30,
                wall_s=30.0,
                rootdir=rootdir,
            )
            for k, nodeid in enumerate(nodeids):
                failed = index > 0 and k == index % len(nodeids)
                outcome = "failed" if failed else "passed"
                run.tests[nodeid] = TestRecord(nodeid, outcome, 0.01, 0.1 * (k + 1), 0.01)
            store.record_run(run)


NODEIDS = [f"tests/test_{f}.py::test_{n}" for f in "ab" for n in range(6)]


def test_blocks_within_the_allowance_are_computed_and_the_estimates_read_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_history(tmp_path / "h.db", NODEIDS)
    with Store(tmp_path / "h.db", create=False, readonly=True) as store:
        loads = []
        real = store.reads.load_estimates
        monkeypatch.setattr(store.reads, "load_estimates", lambda: loads.append(1) or real())
        allowance = Allowance(store)
        report = build_report(store, allowance=allowance)
        report = add_details(store, report, page=True, allowance=allowance)
    assert report.hint
    assert report.catches is not None
    assert report.plans is not None
    assert report.left_out == ()
    assert len(loads) == 1
    assert allowance.left_s < 0.5


def test_blocks_beyond_the_allowance_are_left_out_and_named(tmp_path: Path) -> None:
    write_history(tmp_path / "h.db", NODEIDS)
    with Store(tmp_path / "h.db", create=False, readonly=True) as store:
        full = build_report(store)
        # Room for the hint only (and the estimates it reads): advice and the replay go.
        room = len(NODEIDS) * (HINT_S + 30e-6) + len(NODEIDS) * ADVICE_S / 2
        report = build_report(store, allowance=Allowance(store, room))
    assert report.hint == full.hint != ""
    assert report.advice == ()
    assert report.catches is None
    assert report.left_out == (
        "advice (`pytest-feedback advise`)",
        "what a budget catches (`pytest-feedback simulate`)",
    )
    out = io.StringIO()
    write_report(report, "text", out)
    assert (
        "Left out (more than a report may cost on 12 tests): advice (`pytest-feedback advise`); "
        "what a budget catches (`pytest-feedback simulate`)"
    ) in " ".join(out.getvalue().split())
    out = io.StringIO()
    write_report(report, "json", out)
    assert json.loads(out.getvalue())["left_out"] == list(report.left_out)
    # The replay's figures do not depend on what else the report computed.
    with Store(tmp_path / "h.db", create=False, readonly=True) as store:
        alone = build_report(store, allowance=Allowance(store, 0.3))
    assert alone.catches == full.catches


def test_the_report_leaves_out_tests_gone_from_the_working_tree(tmp_path: Path) -> None:
    (tmp_path / "tests").mkdir()
    # test_a.py lost test_5 (renamed test_five); test_b.py was deleted.
    body = "".join(f"def test_{n}():\n    pass\n" for n in range(5)) + "def test_five(): pass\n"
    (tmp_path / "tests" / "test_a.py").write_text(body)
    write_history(tmp_path / "h.db", NODEIDS, rootdir=str(tmp_path))
    with Store(tmp_path / "h.db", create=False, readonly=True) as store:
        everything = build_report(store, all_tests=True)
        report = build_report(store, all_tests=True, rootdir=tmp_path)
    assert everything.gone == 0
    assert everything.test_count == 12
    assert report.gone == 7
    assert report.test_count == 5
    assert [f.file for f in report.files] == ["tests/test_a.py"]
    assert {t.nodeid for t in report.tests} == {f"tests/test_a.py::test_{n}" for n in range(5)}
    assert report.total_estimate_s == pytest.approx(sum(t.estimate_s for t in report.tests))

    assert main(["report", "--db", str(tmp_path / "h.db")]) == 0  # the recorded rootdir
    assert (
        main(
            [
                "report",
                "--db",
                str(tmp_path / "h.db"),
                "--format",
                "json",
                "-o",
                str(tmp_path / "r.json"),
            ]
        )
        == 0
    )
    doc = json.loads((tmp_path / "r.json").read_text())
    assert doc["gone_tests"] == 7
    assert len(doc["tests"]) == 5
    out = io.StringIO()
    write_report(report, "markdown", out)
    assert "5 tests (7 recorded tests no longer in the working tree left out)" in out.getvalue()


def test_a_history_read_away_from_its_working_tree_leaves_nothing_out(tmp_path: Path) -> None:
    write_history(tmp_path / "h.db", NODEIDS, rootdir=str(tmp_path / "elsewhere"))
    with Store(tmp_path / "h.db", create=False, readonly=True) as store:
        report = build_report(store, rootdir=tmp_path)
    assert report.gone == 0
    assert report.test_count == 12


def test_a_flaky_test_gone_from_the_working_tree_leaves_the_flaky_section(tmp_path: Path) -> None:
    (tmp_path / "tests").mkdir()
    (tmp_path / "tests" / "test_a.py").write_text("def test_0():\n    pass\n")
    flaky_ids = ["tests/test_a.py::test_0", "tests/test_b.py::test_0"]  # test_b.py deleted
    with Store(tmp_path / "h.db") as store:
        for index, outcome in enumerate(["failed", "passed"]):
            run = RunRecord(
                uuid=f"run-{index}",
                started_at=1.7e9 + index * 60,
                wall_s=1.0,
                rootdir=str(tmp_path),
                git_commit="c" * 40,
                git_dirty=False,  # both outcomes on one clean commit: flaky on evidence
            )
            for nodeid in flaky_ids:
                run.tests[nodeid] = TestRecord(nodeid, outcome, 0.0, 0.1, 0.0)
            store.record_run(run)
    with Store(tmp_path / "h.db", create=False, readonly=True) as store:
        everything = build_report(store)
        report = build_report(store, rootdir=tmp_path)
    assert [f.nodeid for f in everything.flakiness.flaky] == flaky_ids
    assert [f.nodeid for f in report.flakiness.flaky] == ["tests/test_a.py::test_0"]
    assert report.gone == 1
