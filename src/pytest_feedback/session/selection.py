"""The session object behind ``--feedback-select`` and ``--feedback-audit``.

Registered by `plugin.py` only when one of them is given. It decides after pytest's own narrowing
(``-k``, ``-m``, explicit paths, ``--lf``) and deselects through ``pytest_deselected``; the audit
runs everything and reports at the end the failing tests selection would have left out.
Under pytest-xdist every worker decides on its own collection (the decision is deterministic) and
the controller prints the line a worker sends back.

When ``--feedback-select`` maps the tests it runs (the default; docs/selection.md, "The edit-run
loop"), `refresh` tells the map's writer what the decision proved: which tests the changes can
affect, and which content of each changed file it compared.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Optional

import pytest

from pytest_feedback.depmap.access import unwatched
from pytest_feedback.depmap.store import Refresh
from pytest_feedback.durations import format_duration
from pytest_feedback.history.estimates import Estimates
from pytest_feedback.selection.collection import skippable_files
from pytest_feedback.selection.selector import Selection, Selector, failing_left_out, load_selector
from pytest_feedback.session.collection_line import CollectionLine
from pytest_feedback.session.options import read_parallel_options


class SelectionRun(CollectionLine):
    line_key = "feedback_select_line"

    def __init__(self, config: pytest.Config, db_path: Path, base: Optional[str], audit: bool):
        super().__init__(config)
        self.db_path = db_path
        self.base = base
        self.audit = audit
        self.selector: Optional[Selector] = None
        self.selection: Optional[Selection] = None
        self.failed: set[str] = set()
        self.ran: list[str] = []
        #: path -> sha1 of each changed file the map knows, as the decision saw it
        self.seen: Optional[dict[str, str]] = None
        #: test file -> its tests, of the files left uncollected (None: not decided yet)
        self.uncollected: Optional[dict[str, list[str]]] = None
        self.left_uncollected: list[str] = []

    def _selector(self) -> Selector:
        if self.selector is None:
            with unwatched():  # our reads are no test's dependency
                self.selector = load_selector(self.db_path, self.config.rootpath, self.base)
                self.seen = _seen(self.selector, self.config.rootpath)
        return self.selector

    def pytest_sessionstart(self) -> None:
        """Under xdist the controller decides nothing, but writes the map: it decides here,
        before a test can change a file, what `refresh` reports."""
        distributing = getattr(self.config.option, "dist", "no") != "no"
        if distributing and not self.is_worker and not self.audit:
            self._selector()

    def refresh(self) -> Optional[Refresh]:
        """What the map's writer may rely on (`Refresh`); None when nothing was decided."""
        selector = self.selector
        if self.audit or selector is None or selector.map is None or self.seen is None:
            return None
        try:
            decided = selector.decide(sorted(selector.map.mapped_tests()))
        except Exception:  # the writer's plain rule is the safe answer
            return None
        return Refresh(self.seen, frozenset(decided.selected))

    def pytest_ignore_collect(self, collection_path: Path) -> Optional[bool]:
        """Leave out test files that hold no selected test and whose collection inputs did not
        change (`collection.skippable_files`); their tests still count in the line."""
        if collection_path.suffix != ".py":
            return None
        if self.uncollected is None:
            self.uncollected = self._uncollected()
        try:
            rel = collection_path.relative_to(self.config.rootpath).as_posix()
        except ValueError:
            return None
        nodeids = self.uncollected.pop(rel, None)
        if nodeids is None:
            return None
        self.left_uncollected.extend(nodeids)
        return True

    def _other_filters(self) -> bool:
        """Whether a budget or a shard narrows this run too (they choose among every test)."""
        config = self.config
        budget = config.getoption("feedback_budget") or str(config.getini("feedback_budget"))
        try:
            parallel = read_parallel_options(config)
        except Exception:
            return True
        return bool(budget.strip()) or bool(parallel and parallel.shard)

    def _uncollected(self) -> dict[str, list[str]]:
        """The files to leave uncollected: only when selection alone narrows this run (no -k,
        -m, --lf, budget or shard, whose choices need every test collected)."""
        option = self.config.option
        narrowed = [getattr(option, name, None) for name in ("keyword", "markexpr", "lf")]
        if self.audit or any(narrowed) or self._other_filters():
            return {}
        try:
            selector = self._selector()
            with unwatched():
                return skippable_files(selector)
        except Exception:  # collect everything: our trouble must not change the run
            return {}

    @pytest.hookimpl(trylast=True)
    def pytest_collection_modifyitems(self, items: list[pytest.Item]) -> None:
        try:
            nodeids = [item.nodeid for item in items] + self.left_uncollected
            selection = self._selector().decide(nodeids)
        except Exception as exc:  # our trouble must never break or empty the user's run
            self.selector = Selector(
                None, Estimates({}), None,
                fallback=f"selection failed ({type(exc).__name__}: {exc})",
            )  # fmt: skip
            selection = self.selector.decide([item.nodeid for item in items])
        self.selection = selection
        if self.audit:
            self.line = (
                f"feedback: audit: running all {selection.total:,} tests; selection would run "
                f"{len(selection.selected):,}"
                + (f" ({selection.fallback})" if selection.fallback else "")
            )
        else:
            self.line = selection.summary_line()
            if selection.deselected:
                keep = set(selection.selected)
                dropped = [item for item in items if item.nodeid not in keep]
                items[:] = [item for item in items if item.nodeid in keep]
                self.config.hook.pytest_deselected(items=dropped)
                self.emptied = not items
        self.publish()

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if report.when == "setup":
            self.ran.append(report.nodeid)
        if report.failed:
            self.failed.add(report.nodeid)

    def pytest_terminal_summary(self, terminalreporter: pytest.TerminalReporter) -> None:
        if self.is_worker:
            return
        self.write_worker_line(terminalreporter)
        if not self.audit:
            return
        selector = self._selector()
        selection = self.selection
        if selection is None or selection.total != len(self.ran):
            selection = selector.decide(self.ran)  # the controller under xdist
        for line in audit_lines(selection, self.failed, selector):
            terminalreporter.write_line(line)


def _seen(selector: Selector, rootdir: Path) -> dict[str, str]:
    """The sha1 of each changed file the map knows, now (what the decision compares)."""
    if selector.changes is None or selector.map is None:
        return {}
    known = selector.map.recorded_files()
    seen: dict[str, str] = {}
    for path in selector.changes.files:
        if path in known:
            try:
                seen[path] = hashlib.sha1((rootdir / path).read_bytes()).hexdigest()
            except OSError:
                continue  # deleted: nothing to refresh
    return seen


def audit_lines(selection: Selection, failed: set[str], selector: Selector) -> list[str]:
    """The audit's report: failing tests selection would have missed, and the time it saves."""
    if selection.fallback is not None:
        return [f"feedback: audit: selection would have run everything ({selection.fallback})"]
    missed = failing_left_out(selection, failed, selector)
    saved = format_duration(selection.deselected_s)
    lines = [
        f"feedback: audit: selection would have run {len(selection.selected):,} of "
        f"{selection.total:,} tests and saved est. {saved}; "
        f"{len(failed):,} failed, {len(missed):,} of them left out"
    ]
    lines.extend(f"  left out: {nodeid} ({why})" for nodeid, why in missed)
    return lines
