"""Pure units: durations, settings, estimates."""

from __future__ import annotations

from pathlib import Path

import pytest

from pytest_feedback.durations import format_duration, parse_duration
from pytest_feedback.errors import ConfigError
from pytest_feedback.history.summaries import Sample, is_slowed_down, summarise_test
from pytest_feedback.settings import find_project_db, resolve_db_path


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("300", 300), ("300s", 300), ("5m", 300), ("1h30m", 5400), ("2m30s", 150), ("1.5", 1.5)],
)
def test_parse_duration(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "-1", "0", "5x", "m5", "5m5m", "1h 2m", "nan", "inf"])
def test_parse_duration_rejects(text: str) -> None:
    with pytest.raises(ConfigError, match="--feedback-budget"):
        parse_duration(text, what="--feedback-budget")


def test_format_duration() -> None:
    assert format_duration(0.25) == "0.25s"
    assert format_duration(12.4) == "12s"
    assert format_duration(281) == "4m41s"
    assert format_duration(3720) == "1h02m"


def test_db_path_precedence(tmp_path: Path) -> None:
    kwargs = {"ini_dir": tmp_path / "ini", "invocation_dir": tmp_path / "cwd", "rootpath": tmp_path}
    env = {"PYTEST_FEEDBACK_DB": "e.db"}
    assert resolve_db_path(cli="c.db", ini="i.db", environ=env, **kwargs) == tmp_path / "cwd/c.db"
    assert resolve_db_path(cli=None, ini="i.db", environ=env, **kwargs) == tmp_path / "cwd/e.db"
    assert resolve_db_path(cli=None, ini="i.db", environ={}, **kwargs) == tmp_path / "ini/i.db"
    assert (
        resolve_db_path(cli=None, ini=None, environ={}, **kwargs)
        == tmp_path / ".pytest-feedback/history.db"
    )


def test_find_project_db(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text("")
    sub = tmp_path / "a" / "b"
    sub.mkdir(parents=True)
    assert find_project_db(sub, environ={}) == tmp_path / ".pytest-feedback/history.db"


def samples(*outcomes: str, seconds: float = 1.0, commit: str | None = None) -> list[Sample]:
    return [Sample(i, o, seconds, 0, seconds, 0, commit) for i, o in enumerate(outcomes)]


def test_flip_flopping_without_evidence_is_not_flaky() -> None:
    # Flips across changes of the code are a regression and a fix each (docs/flaky.md).
    assert not summarise_test(samples("passed", "failed", "passed", "failed")).flaky
    assert not summarise_test(samples("failed", "passed", "passed", "passed")).flaky


def test_both_outcomes_on_one_clean_commit_is_flaky() -> None:
    assert summarise_test(samples("passed", "failed", commit="abc")).flaky
    assert not summarise_test(samples("passed", "failed")).flaky


def test_slowdown_needs_a_real_change() -> None:
    steady = [Sample(i, "passed", s, 0, s, 0) for i, s in enumerate([1.0, 1.2, 0.8, 1.1, 0.9, 1.2])]
    assert not is_slowed_down(summarise_test(steady).slowdown)
    slowed = [*steady[:4], Sample(9, "passed", 3.0, 0, 3, 0), Sample(10, "passed", 3.1, 0, 3, 0)]
    assert summarise_test(slowed).slowdown > 2.5
    assert is_slowed_down(summarise_test(slowed).slowdown)


def test_summary_ignores_skips_for_the_estimate() -> None:
    mixed = samples("passed", "passed", seconds=2.0) + samples("skipped", seconds=0.0)
    assert summarise_test(mixed).estimate_s == 2.0


def test_misread_db_option(tmp_path: Path) -> None:
    from pytest_feedback.settings import misread_db_option

    project = tmp_path / "project"
    (project / "tests").mkdir(parents=True)
    ini = project / "pytest.ini"
    ini.touch()
    outside = tmp_path / "h.db"
    outside.touch()
    inside = project / "h.db"
    inside.touch()

    def check(value: str, cwd: Path, root: Path, inipath: Path | None, *tests: str) -> bool:
        args = ["--feedback", "--feedback-db", value, *tests]
        return misread_db_option(args, list(tests), cwd, root, inipath) is not None

    assert check(str(outside), project, tmp_path, None)  # the rootdir moved to the history
    assert check(str(outside), project / "tests", tmp_path, None, "t.py")
    assert not check(str(inside), project, project, ini)  # inside where pytest started
    assert not check("../h.db", project / "tests", project, ini)  # ini above the tests: same
    assert not check(str(tmp_path / "new.db"), project, project, ini)  # not existing: ignored
    assert misread_db_option([f"--feedback-db={outside}"], [], project, tmp_path, None) is None
