"""Writing a finished run, and its coverage map, into the history file for the plugin.

Both never raise: whatever goes wrong becomes the one terminal line that says so, so that our
trouble never changes the user's run.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Optional

from pytest_feedback.errors import FeedbackError
from pytest_feedback.history.records import FAILING, RECORDED_PREFIX

if TYPE_CHECKING:
    from pytest_feedback.depmap.payload import MapPayload
    from pytest_feedback.depmap.store import Refresh
    from pytest_feedback.history.records import RunRecord
    from pytest_feedback.history.store import Store
    from pytest_feedback.settings import Settings


def write_history(settings: Settings, run: RunRecord) -> str:
    """Write the run; never raise. Returns the terminal line that says what happened."""
    from pytest_feedback.history.store import Store

    path = settings.db_path
    # Coverage slowed this run's tests down: estimates prefer other runs' durations.
    run.mapped = settings.cov
    try:
        with Store(path) as store:
            run.reach = reach_candidates(store, run)
            run_id = store.record_run(run, keep_runs=settings.keep_runs)
    except FeedbackError as exc:
        return f"feedback: warning: this run was not recorded: {exc}"
    except Exception as exc:  # never break the user's run because of our trouble
        return f"feedback: warning: this run was not recorded ({type(exc).__name__}: {exc})"
    return (
        f"{RECORDED_PREFIX}{run_id} ({_count(len(run.tests), 'test')}, "
        f"{_count(len(run.fixtures), 'fixture execution')}) into {shown_path(path)}"
    )


def reach_candidates(store: Store, run: RunRecord) -> dict[str, str]:
    """The fingerprints of what the run's tests that may show flakiness reach (those that
    failed now or recently: `Sample.mark`); {} without a coverage map, or when they cannot be
    taken (the run is recorded without them)."""
    from pytest_feedback.depmap.reach import has_map, reach_fingerprints

    try:
        if not has_map(store):
            return {}
        failed_before = store.reads.samples_of_failing_tests()
        nodeids = [n for n, t in run.tests.items() if t.outcome in FAILING or n in failed_before]
        return reach_fingerprints(store, Path(run.rootdir), nodeids)
    except Exception:  # evidence we could not take: the run is recorded all the same
        return {}


def write_map(
    settings: Settings,
    rootpath: Path,
    run_uuid: Optional[str],
    payload: MapPayload,
    refresh: Optional[Refresh] = None,
) -> list[str]:
    """Write the run's map; never raise. Returns the terminal lines that say what happened.

    ``refresh``: what ``--feedback-select`` proved about the tests it left out (`Refresh`)."""
    from pytest_feedback.depmap.store import write_map as store_map
    from pytest_feedback.history.store import Store

    lines = list(payload.notes)
    try:
        with Store(settings.db_path) as store:
            summary = store_map(store, payload, rootpath, run_uuid or "", time.time(), refresh)
    except FeedbackError as exc:
        return [*lines, f"feedback: warning: the coverage map was not recorded: {exc}"]
    except Exception as exc:  # never break the user's run because of our trouble
        return [*lines, f"feedback: warning: the coverage map was not recorded ({exc!r})"]
    outdated = f", {summary.outdated} older rows outdated" if summary.outdated else ""
    lines.append(
        f"feedback: mapped {_count(summary.tests, 'test')} to {_count(summary.files, 'file')}"
        f"{outdated} into {shown_path(settings.db_path)}"
    )
    return lines


def _count(n: int, noun: str) -> str:
    return f"{n:,} {noun}{'' if n == 1 else 's'}"


def shown_path(path: Path) -> str:
    """``path`` relative to the current directory when it is below it."""
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)
