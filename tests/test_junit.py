"""import-junit: JUnit XML reports become runs, with classname/name mapped back to node ids."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from pytest_feedback.cli.commands import main
from pytest_feedback.history.junit import NodeIdMapper, junit_address, report_run
from pytest_feedback.history.store import Store

SUITE = {
    "test_top.py": """
        import pytest

        def test_plain():
            pass

        @pytest.mark.parametrize("value", ["a.b", "x/y", "1-2", "sp ace", "[z]"])
        def test_params(value):
            assert value != "1-2"

        @pytest.mark.skip(reason="no")
        def test_skipped():
            pass

        @pytest.mark.xfail(reason="known")
        def test_xfail():
            assert False
    """,
    "tests/unit/test_deep.py": """
        import pytest

        @pytest.fixture
        def broken():
            raise RuntimeError("setup fails")

        class TestOuter:
            class TestInner:
                def test_nested(self):
                    pass

            @pytest.mark.parametrize("n", [1, 2])
            def test_method(self, n):
                pass

        def test_error(broken):
            pass
    """,
    "pkg/__init__.py": "",
    "pkg/test_in_package.py": """
        class TestThing:
            def test_it(self):
                pass
    """,
    "tests/v1.2/test_dotted_dir.py": """
        def test_dot():
            pass
    """,
}


def _run_with_junit(pytester: pytest.Pytester, family: str) -> tuple[Path, set[str]]:
    pytester.makepyfile(**{k: textwrap.dedent(v) for k, v in SUITE.items()})
    report = pytester.path / f"junit-{family}.xml"
    result = pytester.runpytest(
        f"--junitxml={report}",
        "-o",
        f"junit_family={family}",
        "--feedback",
        "-p",
        "no:cacheprovider",
    )
    result.assert_outcomes(passed=10, failed=1, skipped=1, xfailed=1, errors=1)
    with Store.open_existing(pytester.path / ".pytest-feedback" / "history.db") as store:
        recorded = {r["nodeid"] for r in store.reads.results(store.reads.runs()[0]["id"])}
    return report, recorded


@pytest.mark.parametrize("family", ["xunit2", "xunit1"])
def test_a_pytest_report_maps_every_test_to_its_node_id(
    pytester: pytest.Pytester, family: str, capsys: pytest.CaptureFixture[str]
) -> None:
    report, recorded = _run_with_junit(pytester, family)
    assert "tests/unit/test_deep.py::TestOuter::TestInner::test_nested" in recorded
    assert "test_top.py::test_params[[z]]" in recorded
    db = pytester.path / "imported.db"
    capsys.readouterr()  # the pytester run's output
    code = main(["import-junit", str(report), "--db", str(db), "--rootdir", str(pytester.path)])
    assert code == 0
    out = capsys.readouterr()
    assert out.err == ""
    assert out.out.splitlines() == [
        f"{report}: 14 of 14 tests mapped to node ids",
        f"imported 1 new run into {db}",
    ]
    with Store.open_existing(db) as store:
        (run,) = store.reads.runs()
        results = {r["nodeid"]: r for r in store.reads.results(run["id"])}
        assert set(results) == recorded
        outcomes = {n: r["outcome"] for n, r in results.items()}
        assert outcomes["test_top.py::test_params[1-2]"] == "failed"
        assert outcomes["test_top.py::test_skipped"] == "skipped"
        assert outcomes["test_top.py::test_xfail"] == "xfailed"
        assert outcomes["tests/unit/test_deep.py::test_error"] == "error"
        assert outcomes["pkg/test_in_package.py::TestThing::test_it"] == "passed"
        assert set(store.reads.load_estimates().tests) == recorded
    # Into the history that recorded the same session: it would count twice.
    recorded_db = pytester.path / ".pytest-feedback" / "history.db"
    code = main(["import-junit", str(report), "--db", str(recorded_db)])
    assert code == 0
    assert capsys.readouterr().out.splitlines()[1:] == [
        f"{report}: not imported: the history recorded that session already (run 1: same "
        "start, same tests)",
        f"imported 0 new runs into {recorded_db}",
    ]


def test_mapping_through_collected_node_ids(
    pytester: pytest.Pytester, capsys: pytest.CaptureFixture[str]
) -> None:
    report, recorded = _run_with_junit(pytester, "xunit2")
    listing = pytester.path / "ids.txt"
    listing.write_text("\n".join(sorted(recorded)) + "\n\n14 tests collected in 0.01s\n")
    db = pytester.path / "imported.db"
    elsewhere = pytester.mkdir("elsewhere")  # no test files here: only the listing can map
    args = ["import-junit", str(report), "--db", str(db), "--rootdir", str(elsewhere)]
    assert main([*args, "--nodeids", str(listing)]) == 0
    with Store.open_existing(db) as store:
        assert {r["nodeid"] for r in store.reads.results(store.reads.runs()[0]["id"])} == recorded
    # Without the listing nothing maps, and the error says what to pass.
    capsys.readouterr()
    assert main(["import-junit", str(report), "--db", str(db), "--rootdir", str(elsewhere)]) == 1
    err = capsys.readouterr().err
    assert "14 tests in" in err
    assert err.splitlines()[-1].startswith(
        "pytest-feedback: error: no test in the reports could be mapped to a node id"
    )


def test_collect_runs_pytest_collect_only(pytester: pytest.Pytester) -> None:
    report, recorded = _run_with_junit(pytester, "xunit2")
    db = pytester.path / "imported.db"
    args = ["import-junit", str(report), "--db", str(db), "--rootdir", str(pytester.path)]
    assert main([*args, "--collect"]) == 0
    with Store.open_existing(db) as store:
        assert {r["nodeid"] for r in store.reads.results(store.reads.runs()[0]["id"])} == recorded
        assert store.reads.run_count() == 1  # collecting recorded nothing


def test_importing_a_file_twice_adds_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    report = tmp_path / "r.xml"
    report.write_text(
        '<testsuites><testsuite name="s" time="3.0" timestamp="2024-05-01T10:00:00Z">'
        '<testcase classname="t" name="test_a" time="1.5"/>'
        '<testcase classname="t" name="test_b" time="0.5"><failure message="x"/></testcase>'
        "</testsuite></testsuites>"
    )
    (tmp_path / "t.py").write_text("")
    db = tmp_path / "h.db"
    db.touch()  # a placeholder (as a CI cache step leaves one) takes the first import
    args = ["import-junit", str(report), "--db", str(db), "--rootdir", str(tmp_path)]
    assert main(args) == 0
    assert main(args) == 0
    assert capsys.readouterr().out.splitlines()[-1] == f"imported 0 new runs into {db}"
    with Store.open_existing(db) as store:
        (run,) = store.reads.runs()
        assert run["wall_s"] == 3.0
        assert run["started_at"] == 1714557600.0  # the suite's timestamp, as UTC
        estimates = store.reads.load_estimates()
        assert estimates.duration("t.py::test_a") == 1.5
        assert estimates.tests["t.py::test_b"].last_outcome == "failed"


def test_common_dialects(tmp_path: Path) -> None:
    for file in ("src/app/tests/test_api.py", "tests/test_cli.py", "test_x.py"):
        (tmp_path / file).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / file).write_text("")
    report = tmp_path / "dialects.xml"
    report.write_text(
        f"""<?xml version="1.0" encoding="utf-8"?>
        <testsuites>
          <testsuite name="outer">
            <testsuite name="inner">
              <testcase classname="src.app.tests.test_api.TestGet" name="test_ok" time="0.25"/>
              <testcase classname="ci.src.app.tests.test_api" name="test_prefixed" time="1"/>
            </testsuite>
            <testcase classname="tests/test_cli.py::TestMain" name="test_path" time="0.5">
              <error message="boom"/>
            </testcase>
            <testcase classname="whatever" name="test_x.py::test_nodeid" time="0.1">
              <skipped message="later"/>
            </testcase>
            <testcase classname="tests.test_cli" name="test_k" file="tests/test_cli.py" time="2"/>
            <testcase classname="Suite" name="test_j" file="tests/test_cli.py" time="inf"/>
            <testcase classname="tests.test_cli" name="test_abs"
                      file="{tmp_path}/tests/test_cli.py"/>
            <testcase classname="" name="tests.test_gone" time="0">
              <error message="collection failure"/>
            </testcase>
            <testcase classname="no.such.module" name="test_lost" time="1"/>
          </testsuite>
        </testsuites>"""
    )
    result = report_run(report, NodeIdMapper(tmp_path))
    assert result.run is not None
    assert {n: (t.outcome, t.call_s) for n, t in result.run.tests.items()} == {
        "src/app/tests/test_api.py::TestGet::test_ok": ("passed", 0.25),
        "src/app/tests/test_api.py::test_prefixed": ("passed", 1.0),
        "tests/test_cli.py::TestMain::test_path": ("error", 0.5),
        "test_x.py::test_nodeid": ("skipped", 0.1),
        "tests/test_cli.py::test_k": ("passed", 2.0),
        "tests/test_cli.py::test_j": ("passed", 0.0),
        "tests/test_cli.py::test_abs": ("passed", 0.0),
    }
    assert [(c.classname, c.name) for c in result.unmapped] == [("no.such.module", "test_lost")]
    assert result.run.wall_s == pytest.approx(3.85)  # no suite time: the sum of the tests


def test_junit_address_matches_pytest() -> None:
    assert junit_address("tests/unit/test_a.py::TestX::TestY::test_b[1-a.b/c]") == (
        "tests.unit.test_a.TestX.TestY",
        "test_b[1-a.b/c]",
    )
    assert junit_address("test_a.py::test_b") == ("test_a", "test_b")


@pytest.mark.parametrize(
    ("document", "message"),
    [
        (
            '<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
            '<!ENTITY lol2 "&lol;&lol;&lol;&lol;">]><testsuite>&lol2;</testsuite>',
            "declares a DOCTYPE or ENTITY",
        ),
        (
            '<!DOCTYPE t [<!ENTITY x SYSTEM "file:///etc/passwd">]><testsuite>&x;</testsuite>',
            "declares a DOCTYPE or ENTITY",
        ),
        ("<testsuite><testcase", "is not well-formed XML"),
        ("<html><body/></html>", "is not a JUnit XML report (its root element is <html>"),
    ],
    ids=["entity-expansion", "external-entity", "truncated", "not-junit"],
)
def test_hostile_or_broken_reports_are_refused_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], document: str, message: str
) -> None:
    report = tmp_path / "bad.xml"
    report.write_text(document)
    db = tmp_path / "h.db"
    assert main(["import-junit", str(report), "--db", str(db), "--rootdir", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1
    assert message in err
    assert not db.exists()


def test_a_test_the_budget_left_is_not_imported_as_a_skip() -> None:
    from xml.etree import ElementTree as ET

    from pytest_feedback.history.junit import read_cases
    from pytest_feedback.history.records import BUDGET_NOT_RUN

    name, value = BUDGET_NOT_RUN
    root = ET.fromstring(
        '<testsuite name="pytest">'
        '<testcase classname="test_a" name="test_ran" time="0.5"/>'
        '<testcase classname="test_a" name="test_left" time="0.0">'
        f'<properties><property name="{name}" value="{value}"/></properties>'
        '<skipped type="pytest.skip" message="feedback: budget 5m used up"/></testcase>'
        '<testcase classname="test_a" name="test_skipped" time="0.0">'
        '<skipped type="pytest.skip" message="no"/></testcase>'
        "</testsuite>"
    )
    assert {(c.name, c.outcome) for c in read_cases(root)} == {
        ("test_ran", "passed"),
        ("test_skipped", "skipped"),
    }
