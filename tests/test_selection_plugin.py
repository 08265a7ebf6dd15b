"""End to end: `pytest --feedback-select` / `--feedback-audit` deselect and report.

The map here is the in-memory fake (the coverage map is tested on its own); git, the history and
pytest's own narrowing are real.
"""

from __future__ import annotations

import pytest

from fake_map import FakeDeps, FakeMap
from gitrepo import git
from pytest_feedback.selection import selector as select

PKG = "def add(a, b):\n    return a + b\n\n\ndef sub(a, b):\n    return a - b\n"
TESTS = {
    "test_add.py": "from pkg import add\n\ndef test_add():\n    assert add(1, 2) == 3\n",
    "test_sub.py": (
        "import pytest\nfrom pkg import sub\n\ndef test_sub():\n    assert sub(3, 2) == 1\n\n"
        "@pytest.mark.slow\ndef test_sub_big():\n    assert sub(30, 20) == 10\n"
    ),
}


@pytest.fixture
def fake() -> FakeMap:
    return FakeMap(
        deps={
            "test_add.py::test_add": FakeDeps(files={"pkg.py": {1, 2}, "test_add.py": {1, 3, 4}}),
            "test_sub.py::test_sub": FakeDeps(files={"pkg.py": {5, 6}, "test_sub.py": {4, 5}}),
            "test_sub.py::test_sub_big": FakeDeps(files={"pkg.py": {5, 6}}),
        },
        sources={"pkg.py": PKG, **TESTS},
        import_lines={"pkg.py": {1, 5}},
    )


@pytest.fixture
def project(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, fake: FakeMap
) -> pytest.Pytester:
    pytester.makeini("[pytest]\nmarkers = slow\n")
    pytester.makepyfile(pkg=PKG, **TESTS)
    git(pytester.path, "init", "-q")
    git(pytester.path, "add", "-A")
    git(pytester.path, "commit", "-q", "-m", "start")
    pytester.runpytest("--feedback", "-p", "no:cacheprovider").assert_outcomes(passed=3)
    monkeypatch.setattr(select, "load_map", lambda store: fake)
    monkeypatch.setattr(select, "fingerprint", lambda root: {})
    return pytester


def edit_sub(pytester: pytest.Pytester) -> None:
    (pytester.path / "pkg.py").write_text(PKG.replace("a - b", "b - a"), encoding="utf-8")


def test_select_deselects_unaffected_tests(project: pytest.Pytester) -> None:
    edit_sub(project)
    result = project.runpytest("--feedback-select", "-p", "no:cacheprovider")
    result.stdout.fnmatch_lines(
        ["feedback: 2 of 3 tests affected by 1 changed file (est. * s); 1 deselected"]
    )
    result.assert_outcomes(failed=2)  # test_add.py was not even collected


def test_k_and_m_narrow_first(project: pytest.Pytester) -> None:
    edit_sub(project)
    result = project.runpytest("--feedback-select", "-p", "no:cacheprovider", "-m", "not slow")
    result.stdout.fnmatch_lines(["feedback: 1 of 2 tests affected by 1 changed file *"])
    result.assert_outcomes(failed=1, deselected=2)


def test_nothing_changed_runs_nothing_and_says_so(project: pytest.Pytester) -> None:
    result = project.runpytest("--feedback-select", "-p", "no:cacheprovider")
    result.stdout.fnmatch_lines(
        ["feedback: 0 of 3 tests affected by 0 changed files (est. 0.0 s); 3 deselected"]
    )


def test_last_failures_stay_selected_and_lf_works(project: pytest.Pytester) -> None:
    edit_sub(project)
    project.runpytest("--feedback", "-p", "cacheprovider")  # two fail, recorded
    (project.path / "pkg.py").write_text(PKG + "\n# a comment\n", encoding="utf-8")
    result = project.runpytest("--feedback-select", "--lf")
    result.stdout.fnmatch_lines(["feedback: 2 of 2 tests affected by 0 changed files *"])
    result.assert_outcomes(passed=2)


def test_unknown_base_runs_everything_with_one_line(project: pytest.Pytester) -> None:
    result = project.runpytest(
        "--feedback-select", "--feedback-base", "origin/main", "-p", "no:cacheprovider"
    )
    result.stdout.fnmatch_lines(
        [
            "feedback: running all 3 tests: the base ref 'origin/main' is unknown here, and this "
            "repository has no remote to fetch it from; *"
        ]
    )
    result.assert_outcomes(passed=3)


def test_no_history_runs_everything(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_x="def test_x():\n    pass\n")
    result = pytester.runpytest(
        "--feedback-select", "--feedback-no-record", "-p", "no:cacheprovider"
    )
    result.stdout.fnmatch_lines(["feedback: running all 1 tests: no history at *"])
    result.assert_outcomes(passed=1)


def test_audit_reports_failures_selection_would_miss(
    project: pytest.Pytester, fake: FakeMap
) -> None:
    # The map is wrong on purpose: it does not know test_add_sub executes `sub`.
    text = TESTS["test_add.py"] + "\ndef test_add_sub():\n    from pkg import sub\n"
    text += "    assert sub(2, 1) == 1\n"
    (project.path / "test_add.py").write_text(text, encoding="utf-8")
    fake.sources["test_add.py"] = text
    fake.deps["test_add.py::test_add_sub"] = FakeDeps(files={"test_add.py": {6, 7, 8}})
    git(project.path, "commit", "-qam", "more")
    project.runpytest("--feedback", "-p", "no:cacheprovider")
    edit_sub(project)
    result = project.runpytest("--feedback-audit", "-p", "no:cacheprovider")
    result.stdout.fnmatch_lines(
        [
            "feedback: audit: running all 4 tests; selection would run 2",
            "feedback: audit: selection would have run 2 of 4 tests and saved est. *; "
            "3 failed, 1 of them left out",
            "  left out: test_add.py::test_add_sub"
            " (reaches none of the 1 changed file (it depends on 1 file))",
        ]
    )


def test_bad_option_combinations(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest("--feedback-base", "main")
    result.stderr.fnmatch_lines(
        ["*--feedback-base needs --feedback-select, --feedback-audit or --feedback-budget*"]
    )
    assert result.ret == pytest.ExitCode.USAGE_ERROR


def test_an_internal_error_runs_everything_and_says_why(
    project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*args: object) -> None:
        raise RuntimeError("boom")

    monkeypatch.setattr(select.Selector, "_reach", broken)
    edit_sub(project)
    result = project.runpytest("--feedback-select", "-p", "no:cacheprovider")
    result.stdout.fnmatch_lines(
        ["feedback: running all 3 tests: selection failed (RuntimeError: boom)"]
    )
    result.assert_outcomes(passed=1, failed=2)


def test_unaffected_test_files_are_not_even_collected(project: pytest.Pytester) -> None:
    edit_sub(project)
    result = project.runpytest("--feedback-select", "-p", "no:cacheprovider", "--collect-only")
    result.stdout.fnmatch_lines(
        ["collected 2 items*", "feedback: 2 of 3 tests affected by 1 changed file *"]
    )
    assert "test_add.py" not in result.stdout.str()
    # -k (and the audit) need every test collected
    result = project.runpytest("--feedback-select", "-p", "no:cacheprovider", "-k", "add or sub")
    result.assert_outcomes(failed=2, deselected=1)
    audit = project.runpytest("--feedback-audit", "-p", "no:cacheprovider", "--collect-only")
    audit.stdout.fnmatch_lines(["collected 3 items*"])
