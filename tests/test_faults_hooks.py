"""Our own trouble inside a run (docs/reliability.md): bad options, our hook errors, no git.

Bad options stop pytest at start-up (usage error, exit 4) with one line naming the option and
the accepted form. Everything else is the plugin's trouble and must leave the user's run as it
would have been without us, plus one warning line.
"""

from __future__ import annotations

import textwrap

import pytest

import pytest_feedback.git
import pytest_feedback.session.probe
import pytest_feedback.session.recorder
from pytest_feedback.history.store import Store

WARNING = "feedback: warning: "

SUITE = {
    "conftest.py": """
        import pytest

        @pytest.fixture(scope="module")
        def shared():
            yield 1

        @pytest.fixture
        def broken():
            raise ValueError("the user's own fixture error")
    """,
    "test_suite.py": """
        def test_ok(shared): pass
        def test_broken_fixture(broken): pass
        def test_fails(): assert 1 == 2, "the user's own failure"
    """,
}


#: Modules whose functions the injections replace. pytester runs in this process, so every
#: replacement is undone after the run, or it would break the tests that come after.
PATCHED_MODULES = (
    pytest_feedback.session.probe,
    pytest_feedback.session.recorder,
    pytest_feedback.git,
)


def run_suite(pytester: pytest.Pytester, *args: str, inject: str = "") -> pytest.RunResult:
    files = {name: textwrap.dedent(text) for name, text in SUITE.items()}
    files["conftest.py"] = inject + files["conftest.py"]
    pytester.makepyfile(**files)
    saved = [(module, dict(vars(module))) for module in PATCHED_MODULES]
    try:
        result = pytester.runpytest("--feedback", "-p", "no:cacheprovider", "-W", "error", *args)
    finally:
        for module, attributes in saved:
            for name, value in attributes.items():
                if getattr(module, name, None) is not value:
                    setattr(module, name, value)
    # The user's results, exactly as without the plugin:
    result.assert_outcomes(passed=1, failed=1, errors=1)
    assert result.ret == 1
    result.stdout.fnmatch_lines(
        [
            "E * ValueError: the user's own fixture error",
            "E * AssertionError: the user's own failure",
        ]
    )
    output = result.stdout.str() + result.stderr.str()
    assert "INTERNALERROR" not in output
    assert "pytest_feedback" not in output  # none of our frames in the user's tracebacks
    return result


def warning_lines(result: pytest.RunResult) -> list[str]:
    return [line for line in result.outlines + result.errlines if WARNING in line]


# Each injection replaces one of our internals, in every process that loads the conftest (xdist
# workers too), with a function that raises.
INJECTIONS = {
    "fixture-probe": (
        "import pytest_feedback.session.probe as r\nr.fixture_key = boom\n",
        ["serial"],
    ),
    "report-reading": (
        "import pytest_feedback.session.recorder as r\nr._outcome = boom\n",
        ["serial"],
    ),
    "worker-probe": (
        "import os\nimport pytest_feedback.session.probe as r\n"
        "if os.environ.get('PYTEST_XDIST_WORKER'):\n    r.fixture_key = boom\n",
        ["xdist"],
    ),
    "run-record": (
        "import pytest_feedback.session.recorder as r\nr.WorkerRecord = boom\n",
        ["serial"],
    ),
}
CASES = [(name, mode) for name, (_, modes) in INJECTIONS.items() for mode in modes]


@pytest.mark.parametrize(("where", "mode"), CASES, ids=[f"{n}-{m}" for n, m in CASES])
def test_an_error_in_our_hooks_is_one_warning_line(
    pytester: pytest.Pytester, where: str, mode: str
) -> None:
    inject = "def boom(*args, **kwargs):\n    raise RuntimeError('injected')\n"
    inject += INJECTIONS[where][0]
    args = ["-n", "1"] if mode == "xdist" else []  # one worker carries the injection
    result = run_suite(pytester, *args, inject=inject)
    (line,) = warning_lines(result)
    assert "this run was not recorded: pytest-feedback failed in" in line
    assert "RuntimeError: injected" in line
    assert not (pytester.path / ".pytest-feedback" / "history.db").exists()


def test_an_error_in_the_git_thread_still_records(pytester: pytest.Pytester) -> None:
    inject = (
        "import pytest_feedback.git as g\n"
        "def boom(*args, **kwargs):\n    raise RuntimeError('git exploded')\n"
        "g.git_state = boom\n"
    )
    result = run_suite(pytester, inject=inject)
    assert warning_lines(result) == []
    result.stdout.fnmatch_lines(
        ["feedback: recorded run 1 * (without git state: RuntimeError: git exploded)"]
    )


def test_git_not_installed(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    pytester.run("git", "init", "-q")  # a repository, but no git to read it with
    monkeypatch.setenv("PATH", str(pytester.mkdir("empty-bin")))
    result = run_suite(pytester)
    assert warning_lines(result) == []
    result.stdout.fnmatch_lines(["feedback: recorded run 1 (3 tests, *"])
    with Store.open_existing(pytester.path / ".pytest-feedback" / "history.db") as store:
        run = store.reads.runs()[0]
    assert (run["git_commit"], run["git_branch"], run["git_dirty"]) == (None, None, None)


def test_not_a_git_repository(pytester: pytest.Pytester) -> None:
    result = run_suite(pytester)
    assert warning_lines(result) == []
    with Store.open_existing(pytester.path / ".pytest-feedback" / "history.db") as store:
        assert store.reads.runs()[0]["git_commit"] is None


# -- bad options --------------------------------------------------------------------------------

KEEP_RUNS_ERROR = "feedback_keep_runs: * is not a whole number of runs >= 1 (default 50)"


@pytest.mark.parametrize("value", ["0", "-1", "abc", "1.5", "", "1e3"])
def test_bad_keep_runs_is_a_usage_error(pytester: pytest.Pytester, value: str) -> None:
    pytester.makepyfile(test_a="def test_a(): pass")
    result = pytester.runpytest("--feedback", "-o", f"feedback_keep_runs={value}")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"ERROR: {KEEP_RUNS_ERROR}"])


def test_bad_keep_runs_fails_even_without_recording(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\nfeedback_keep_runs = never\n")
    pytester.makepyfile(test_a="def test_a(): pass")
    assert pytester.runpytest().ret == pytest.ExitCode.USAGE_ERROR


def test_huge_keep_runs_means_keep_all(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_a="def test_a(): pass")
    result = pytester.runpytest("--feedback", "-o", f"feedback_keep_runs={10**30}")
    result.assert_outcomes(passed=1)
    assert warning_lines(result) == []


def test_empty_feedback_db_is_a_usage_error(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_a="def test_a(): pass")
    result = pytester.runpytest("--feedback", "--feedback-db", "")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        ["ERROR: --feedback-db: empty path; give the history file, e.g. --feedback-db=*"]
    )
    assert not (pytester.path / ".pytest-feedback").exists()


def test_empty_environment_variable_means_the_default(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PYTEST_FEEDBACK_DB", "")
    pytester.makepyfile(test_a="def test_a(): pass")
    pytester.runpytest("--feedback").assert_outcomes(passed=1)
    assert (pytester.path / ".pytest-feedback" / "history.db").is_file()


def test_a_symlink_loop_as_history_is_a_warning(pytester: pytest.Pytester) -> None:
    (pytester.path / "loop").symlink_to("loop")
    pytester.makepyfile(test_a="def test_a(): pass")
    result = pytester.runpytest("--feedback", "--feedback-db", "loop/history.db")
    result.assert_outcomes(passed=1)
    (line,) = warning_lines(result)
    assert "loop is a broken symlink or a symlink loop" in line


def test_a_history_path_that_pytest_took_for_a_test_path(
    pytester: pytest.Pytester, tmp_path_factory: pytest.TempPathFactory
) -> None:
    # pytest picks its rootdir before plugin options exist: in `--feedback-db PATH` an existing
    # PATH outside the project drags the rootdir away and the project's ini is lost.
    pytester.makeini("[pytest]\npython_files = check_*.py\n")
    pytester.makepyfile(check_a="def test_a(): pass")
    outside = tmp_path_factory.mktemp("elsewhere") / "history.db"
    Store(outside).close()
    result = pytester.runpytest("--feedback", "--feedback-db", str(outside))
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        [
            f"ERROR: --feedback-db {outside}: pytest took the existing file for a test path and "
            f"chose * as the rootdir; write --feedback-db={outside} instead"
        ]
    )
    result = pytester.runpytest("--feedback", f"--feedback-db={outside}")
    result.assert_outcomes(passed=1)
    with Store.open_existing(outside) as store:
        assert set(store.reads.load_estimates().tests) == {"check_a.py::test_a"}
    # Inside the project the same form is harmless and accepted.
    inside = pytester.path / "ci.db"
    Store(inside).close()
    pytester.runpytest("--feedback", "--feedback-db", str(inside)).assert_outcomes(passed=1)


def test_an_interrupted_run_records_what_ran(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_a="""
        def test_1(): pass
        def test_2(): raise KeyboardInterrupt
        def test_3(): pass
        """
    )
    reprec = pytester.inline_run("--feedback", no_reraise_ctrlc=True)
    assert reprec.ret == pytest.ExitCode.INTERRUPTED
    with Store.open_existing(pytester.path / ".pytest-feedback" / "history.db") as store:
        run = store.reads.runs()[0]
        assert run["exit_status"] == pytest.ExitCode.INTERRUPTED
        assert {r["nodeid"] for r in store.reads.results(run["id"])} == {"test_a.py::test_1"}


def test_a_crashed_xdist_worker(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_a="""
        import os, signal
        def test_1(): pass
        def test_2_crashes(): os.kill(os.getpid(), signal.SIGKILL)
        def test_3(): pass
        """
    )
    # One worker: xdist replaces it after the crash, and the run still counts one.
    result = pytester.runpytest("--feedback", "-n", "1", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=2, failed=1)
    assert warning_lines(result) == []
    with Store.open_existing(pytester.path / ".pytest-feedback" / "history.db") as store:
        run = store.reads.runs()[0]
        outcomes = {r["nodeid"]: r["outcome"] for r in store.reads.results(run["id"])}
    assert run["workers"] == 1  # the replacement of the crashed worker is not a second
    assert outcomes == {
        "test_a.py::test_1": "passed",
        "test_a.py::test_2_crashes": "error",
        "test_a.py::test_3": "passed",
    }
