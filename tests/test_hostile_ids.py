"""Hostile node ids are stored and read back exactly (docs/reliability.md).

Reports escape them too; that part is tested with each report format.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pytest_feedback.history.records import FixtureExecution, FixtureKey, RunRecord, TestRecord
from pytest_feedback.history.store import Store

HOSTILE_IDS = [
    "<script>alert('x')</script>",
    "a|b||c",
    "line1\nline2\r\nline3",
    "naïve-日本語-🙂-\u200b",
    "x" * 5000,
    "back\\slash\t'\"`$(true)",
    "'; DROP TABLE tests; --",
    "[]::",
    " spaced ",
]

SUITE = f"""
import pytest

IDS = {HOSTILE_IDS!r}

@pytest.mark.parametrize("value", range(len(IDS)), ids=IDS)
def test_param(value):
    pass

class TestClassé:
    def test_unicodé_名前(self):
        pass
"""


@pytest.mark.parametrize("escaping", ["raw", "escaped"])
def test_hostile_node_ids_round_trip(pytester: pytest.Pytester, escaping: str) -> None:
    if escaping == "raw":  # pytest keeps ids as given only when told to
        pytester.makeini(
            "[pytest]\ndisable_test_id_escaping_and_forfeit_all_rights_to_community_support = 1\n"
        )
    pytester.makepyfile(test_hostile=SUITE)
    (pytester.path / "test_spaced ü.py").write_text("def test_odd_file(): pass\n")
    reprec = pytester.inline_run("--feedback", "-p", "no:cacheprovider")
    reported = {r.nodeid for r in reprec.getreports("pytest_runtest_logreport")}
    assert len(reported) == len(HOSTILE_IDS) + 2
    if escaping == "raw":
        assert f"test_hostile.py::test_param[{'x' * 5000}]" in reported
        assert "test_hostile.py::test_param[line1\nline2\r\nline3]" in reported

    with Store.open_existing(pytester.path / ".pytest-feedback" / "history.db") as store:
        stored = {r["nodeid"] for r in store.reads.results(store.reads.runs()[0]["id"])}
        estimates = store.reads.load_estimates()
        samples = store.reads.recent_samples(reported)
        files = store.reads.known_files()
    assert stored == reported
    assert set(estimates.tests) == reported
    assert set(samples) == reported
    assert files == {"test_hostile.py", "test_spaced ü.py"}


def test_the_store_keeps_any_text(tmp_path: Path) -> None:
    nodeids = [f"t.py::test[{text}]" for text in HOSTILE_IDS] + ["t.py::nul[\x00]"]
    key = FixtureKey("db<script>", "module", "con|ftest.py::db\n")
    run = RunRecord(uuid="u", started_at=1.0, args=["-k", "a\nb|<c>"], rootdir="/tmp/ü")
    for nodeid in nodeids:
        run.tests[nodeid] = TestRecord(nodeid, call_s=0.5)
    run.fixtures = [FixtureExecution(key, 0.1, nodeids[0], teardown_s=0.1)]
    run.uses = {nodeids[0]: [key]}
    with Store(tmp_path / "h.db") as store:
        store.record_run(run)
        (row,) = store.reads.runs()
        assert row["args"] == ["-k", "a\nb|<c>"]
        assert row["rootdir"] == "/tmp/ü"
        assert {r["nodeid"] for r in store.reads.results(row["id"])} == set(nodeids)
        (fixture,) = store.reads.fixture_executions(row["id"])
        assert (fixture["name"], fixture["location"]) == (key.name, key.location)
        assert fixture["setup_test"] == nodeids[0]
        assert set(store.reads.load_estimates().tests) == set(nodeids)


def test_names_that_are_not_unicode_are_recorded_escaped(tmp_path: Path) -> None:
    # A file name with bytes that are not UTF-8 reaches Python as lone surrogates.
    odd = "test_\udcff.py::test_x"
    run = RunRecord(uuid="u", started_at=1.0, rootdir="/srv/\udcfe")
    run.tests = {odd: TestRecord(odd, call_s=1.0), "ok.py::test": TestRecord("ok.py::test")}
    with Store(tmp_path / "h.db") as store:
        store.record_run(run)
        stored = {r["nodeid"] for r in store.reads.results(store.reads.runs()[0]["id"])}
        assert store.reads.recent_samples([odd])[odd][0].call_s == 1.0
        assert json.dumps(store.reads.runs()[0]["rootdir"]) == '"/srv/\\\\udcfe"'
    assert stored == {"test_\\udcff.py::test_x", "ok.py::test"}
