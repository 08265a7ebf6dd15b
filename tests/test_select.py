"""The selection rules, decided against an in-memory map."""

from __future__ import annotations

import time

from fake_map import FakeDeps, FakeMap
from pytest_feedback.durations import format_estimate
from pytest_feedback.history.estimates import Estimates, TestEstimate
from pytest_feedback.selection.changes import ChangeSet, FileChange
from pytest_feedback.selection.inputs import environment_changes
from pytest_feedback.selection.selector import Selector

ENV = {"python": "CPython 3.12.3", "packages": "attrs==24.1\npytest==8.3", "input:tox.ini": "ab"}


def estimate(nodeid: str, seconds: float = 1.0, last: str = "passed", flaky: bool = False):
    return TestEstimate(nodeid, seconds, 0, seconds, 0, 3, 0.0, flaky, 1.0, last)


def make_map(spawns: bool = False) -> FakeMap:
    return FakeMap(
        deps={
            "tests/test_a.py::test_small": FakeDeps(
                files={"pkg/mod.py": {1, 3, 6, 8}, "tests/test_a.py": {1, 2}},
                import_time={"pkg/mod.py"},
            ),
            "tests/test_a.py::test_double": FakeDeps(
                files={"pkg/mod.py": {1, 3, 11, 13}, "tests/test_a.py": {4, 5}},
                import_time={"pkg/mod.py"},
            ),
            "tests/test_b.py::test_reads": FakeDeps(
                files={"tests/test_b.py": {1}}, reads={"data/x.json"}
            ),
            "tests/sub/test_c.py::test_spawn": FakeDeps(
                files={"tests/sub/test_c.py": {1}}, spawns=spawns
            ),
        },
        import_lines={"pkg/mod.py": {1, 3, 6, 11}},
        env=dict(ENV),
    )


ALL = [
    "tests/test_a.py::test_small",
    "tests/test_a.py::test_double",
    "tests/test_b.py::test_reads",
    "tests/sub/test_c.py::test_spawn",
]


def select(*changes: FileChange, est: Estimates | None = None, env=ENV, nodeids=ALL, spawns=False):
    files = {c.path: c for c in changes}
    selector = Selector(make_map(spawns), est or Estimates({}), ChangeSet(files), current_env=env)
    return selector.decide(nodeids)


def test_a_changed_line_selects_only_the_tests_that_executed_it() -> None:
    sel = select(FileChange("pkg/mod.py", "modified", lines=frozenset({13})))
    assert sel.selected == {
        "tests/test_a.py::test_double": ["executed changed lines of pkg/mod.py"]
    }
    assert sel.fallback is None
    assert sel.changed == ["pkg/mod.py"]


def test_import_time_code_reaches_every_user_of_the_module() -> None:
    sel = select(FileChange("pkg/mod.py", "modified", lines=frozenset({3})))
    assert set(sel.selected) == {"tests/test_a.py::test_small", "tests/test_a.py::test_double"}


def test_a_data_file_read_selects_its_readers() -> None:
    sel = select(FileChange("data/x.json", "modified"))
    assert sel.selected == {"tests/test_b.py::test_reads": ["reads data/x.json, which changed"]}


def test_comment_only_changes_select_nothing_and_say_so() -> None:
    sel = select(FileChange("pkg/mod.py", "modified", lines=frozenset(), trivial=True))
    assert sel.selected == {}
    assert sel.summary_line() == (
        "feedback: 0 of 4 tests affected by 0 changed files (est. 0.0 s); 4 deselected"
    )


def test_a_python_change_selects_tests_that_spawn_processes() -> None:
    assert not select(FileChange("tests/test_b.py", "modified"), spawns=True).selected.get(
        "tests/sub/test_c.py::test_spawn"
    )
    sel = select(FileChange("pkg/other.py", "modified"), spawns=True)
    assert sel.selected == {
        "tests/sub/test_c.py::test_spawn": ["runs child processes, and project code changed"]
    }


def test_own_file_and_conftest_above() -> None:
    sel = select(FileChange("tests/test_b.py", "modified", lines=frozenset({40})))
    assert list(sel.selected) == ["tests/test_b.py::test_reads"]
    assert sel.selected["tests/test_b.py::test_reads"] == ["its file tests/test_b.py changed"]
    sel = select(FileChange("tests/sub/conftest.py", "modified", lines=frozenset({2})))
    assert sel.selected == {
        "tests/sub/test_c.py::test_spawn": [
            "tests/sub/conftest.py above it changed",
        ]
    }


def test_new_tests_and_last_failures_are_selected() -> None:
    est = Estimates(
        {
            "tests/test_a.py::test_small": estimate("tests/test_a.py::test_small", last="failed"),
            "tests/test_b.py::test_reads": estimate("tests/test_b.py::test_reads", flaky=True),
        }
    )
    sel = select(est=est, nodeids=[*ALL, "tests/test_a.py::test_new"])
    assert sel.selected == {
        "tests/test_a.py::test_small": ["failed in its last run"],
        "tests/test_b.py::test_reads": ["flaky: passed and failed without a code change"],
        "tests/test_a.py::test_new": ["new test, or no coverage recorded for it yet"],
    }


def test_project_wide_inputs_select_everything_with_one_reason() -> None:
    sel = select(FileChange("setup.py", "modified"))
    assert sel.fallback == "project-wide input changed: setup.py"
    assert len(sel.selected) == 4
    assert sel.summary_line() == (
        "feedback: running all 4 tests: project-wide input changed: setup.py"
    )
    # Declared dependencies change nothing until installed; then the packages differ. A changed
    # requirements file with the packages still those of the map asks for the install first.
    pending = select(FileChange("requirements-dev.txt", "modified")).fallback
    assert pending is not None
    assert pending.startswith("requirements-dev.txt changed, but the installed packages are not")
    assert select(FileChange("requirements-dev.in", "modified")).fallback is None


def test_environment_changes_are_named() -> None:
    now = {
        "python": "CPython 3.13.0",
        "packages": "attrs==24.2\nrich==13.0",
        "input:tox.ini": "cd",
    }
    assert environment_changes(ENV, now) == [
        "Python changed (CPython 3.12.3 -> CPython 3.13.0)",
        "installed packages changed (attrs 24.1 -> 24.2, -pytest, +rich 13.0)",
        "project-wide input changed: tox.ini",
    ]
    assert environment_changes(ENV, ENV) == []
    sel = select(env={**ENV, "python": "CPython 3.13.0"})
    assert sel.fallback == "Python changed (CPython 3.12.3 -> CPython 3.13.0)"


def test_no_map_selects_everything() -> None:
    sel = Selector(None, Estimates({}), None).decide(ALL)
    assert len(sel.selected) == 4
    assert sel.fallback is not None
    assert "pytest --feedback-cov" in sel.fallback


def test_explain_and_why_not() -> None:
    files = {"pkg/mod.py": FileChange("pkg/mod.py", "modified", lines=frozenset({13}))}
    selector = Selector(make_map(), Estimates({}), ChangeSet(files), current_env=ENV)
    assert selector.explain("tests/test_a.py::test_double") == [
        "selected because:",
        "  - executed changed lines of pkg/mod.py",
        "    changed lines it reaches in pkg/mod.py: 13",
    ]
    assert selector.explain("tests/test_a.py::test_small") == [
        "not selected: it executed none of the changed lines of pkg/mod.py"
    ]
    assert selector.why_not("tests/test_b.py::test_reads") == (
        "reaches none of the 1 changed file (it depends on 2 files)"
    )


def test_json_document() -> None:
    sel = select(FileChange("pkg/mod.py", "modified", lines=frozenset({13})))
    doc = sel.to_json()
    assert doc["version"] == 1
    assert doc["selected"] == [
        {
            "nodeid": "tests/test_a.py::test_double",
            "reasons": ["executed changed lines of pkg/mod.py"],
        }
    ]
    assert doc["deselected"] == 3
    assert doc["fallback"] is None


def test_format_estimate() -> None:
    assert format_estimate(0.42) == "0.4 s"
    assert format_estimate(12.3) == "12 s"
    assert format_estimate(281) == "4 min 41 s"


def test_ten_thousand_tests_decide_quickly() -> None:
    """No timing assertion (benchmarks/selection_speed.py times it): guards quadratic work."""
    big = FakeMap(
        deps={
            f"tests/test_{i % 100}.py::test_{i}": FakeDeps(files={"pkg/m.py": {i}})
            for i in range(10_000)
        }
    )
    nodeids = sorted(big.deps)
    files = {"pkg/m.py": FileChange("pkg/m.py", "modified", lines=frozenset(range(0, 10_000, 7)))}
    start = time.perf_counter()
    sel = Selector(big, Estimates({}), ChangeSet(files)).decide(nodeids)
    assert len(sel.selected) == len(range(0, 10_000, 7))
    assert time.perf_counter() - start < 30


def test_an_unresolved_base_is_still_named_in_the_json() -> None:
    from pytest_feedback.history.estimates import Estimates
    from pytest_feedback.selection.selector import Selector

    selector = Selector(
        None, Estimates({}), None, fallback="base ref nosuch: unknown", base="nosuch"
    )
    document = selector.decide(["a.py::x"]).to_json()
    assert document["base"] == "nosuch"
    assert document["fallback"] == "base ref nosuch: unknown"
