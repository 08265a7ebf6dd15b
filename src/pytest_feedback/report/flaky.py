"""The report's "flaky / quarantined" section: which tests are flaky and on what evidence, which
only look unstable, what the last run's reruns and repeats showed, and what the quarantine
absorbed or no longer protects (docs/flaky.md)."""

from __future__ import annotations

import dataclasses
from collections.abc import Collection
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Optional

from pytest_feedback import quarantine
from pytest_feedback.errors import ConfigError
from pytest_feedback.history.records import FAILING
from pytest_feedback.history.summaries import Evidence, flaky_evidence, is_unstable

if TYPE_CHECKING:
    from pytest_feedback.history.store import Store


@dataclasses.dataclass(frozen=True)
class FlakyTest:
    nodeid: str
    evidence: Evidence
    fail_rate: float
    #: The last run gave the evidence that made it flaky (it was not before).
    new: bool = False


@dataclasses.dataclass(frozen=True)
class Attempts:
    """A test that ran more than once in the last run."""

    nodeid: str
    kind: str  # rerun repeat
    outcomes: tuple[str, ...]

    @property
    def flaky(self) -> bool:
        failed = [o in FAILING for o in self.outcomes if o in FAILING or o == "passed"]
        return any(failed) and not all(failed)

    def describe(self) -> str:
        return ", ".join(self.outcomes)


@dataclasses.dataclass(frozen=True)
class Absorbed:
    nodeid: str
    reason: str
    expires: Optional[str]


@dataclasses.dataclass(frozen=True)
class FlakySection:
    """What the report says of flakiness and the quarantine."""

    #: Every flaky test, those the last run made flaky first.
    flaky: list[FlakyTest]
    #: Tests whose outcome keeps flipping with no evidence of flakiness (not flaky).
    unstable: list[str]
    #: The last run's reruns and repeats.
    attempts: list[Attempts]
    #: Quarantined tests that failed in the last run: their failure did not fail it.
    absorbed: list[Absorbed]
    #: Quarantine entries past their date: they no longer protect.
    expired: list[quarantine.Entry]
    #: Why the quarantine file could not be read (None: read, or there is none).
    quarantine_problem: Optional[str] = None

    @property
    def empty(self) -> bool:
        return not (
            self.flaky
            or self.unstable
            or self.attempts
            or self.absorbed
            or self.expired
            or self.quarantine_problem
        )


def flaky_tests(
    store: Store,
    last_run_id: Optional[int] = None,
    failing: Optional[dict[str, tuple[float, list[list[Any]]]]] = None,
) -> list[FlakyTest]:
    """The history's flaky tests with their evidence, those ``last_run_id`` made flaky first,
    then by failure rate (``failing``: `HistoryReads.samples_of_failing_tests`, when read)."""
    found = []
    if failing is None:
        failing = store.reads.samples_of_failing_tests()
    for nodeid, (rate, rows) in failing.items():
        judged = [r for r in rows if r[1] != "skipped"]
        evidence = flaky_evidence(judged)
        if evidence is None:
            continue
        new = bool(judged) and int(judged[-1][0]) == last_run_id
        new = new and flaky_evidence(judged[:-1]) is None
        found.append(FlakyTest(nodeid, evidence, rate, new))
    return sorted(found, key=lambda f: (not f.new, -f.fail_rate, f.nodeid))


def flaky_section(
    store: Store, run: Optional[dict[str, Any]], gone: Collection[str] = ()
) -> FlakySection:
    """The section for the report of ``run`` (a runs row; None: no run), leaving out the
    tests ``gone`` from the working tree."""
    run_id = None if run is None else int(run["id"])
    failing = store.reads.samples_of_failing_tests()
    if gone:
        failing = {n: v for n, v in failing.items() if n not in gone}
    unstable = sorted(n for n, (_, rows) in failing.items() if is_unstable(rows))
    attempts = []
    failed_now: set[str] = set()
    if run_id is not None:
        for nodeid, rows in store.reads.attempts(run_id).items():
            attempts.append(Attempts(nodeid, rows[-1][1], tuple(r[2] for r in rows)))
    absorbed: list[Absorbed] = []
    expired: list[quarantine.Entry] = []
    problem = None
    if run is not None:
        try:
            entries = quarantine.load(_file(Path(str(run["rootdir"]))))
        except ConfigError as exc:
            entries, problem = {}, str(exc)
        active, old = quarantine.split(entries, quarantine.today())
        if active and run_id is not None:
            failed_now = store.reads.tests_with_outcome(run_id, FAILING)
        absorbed = [
            Absorbed(n, e.reason, e.expires) for n, e in sorted(active.items()) if n in failed_now
        ]
        expired = [old[n] for n in sorted(old)]
    found = flaky_tests(store, run_id, failing)
    return FlakySection(found, unstable, attempts, absorbed, expired, problem)


def _file(rootdir: Path) -> Path:
    return quarantine.configured_in(rootdir) or quarantine.find_file(rootdir)


#: The section's heading.
TITLE = "Flaky / quarantined"


def section_items(
    section: FlakySection,
    code: Callable[[str], str] = str,
    plain: Callable[[str], str] = str,
    top: int = 10,
) -> list[str]:
    """The section as items (one line each) for a renderer: ``code`` renders a node id, a
    commit or a file name, ``plain`` our words."""
    items = []
    new = [f for f in section.flaky if f.new]
    attempts = {a.nodeid: a for a in section.attempts if a.flaky}
    for f in new[:top]:
        a = attempts.pop(f.nodeid, None)
        what = "new test is flaky:" if a is not None and a.kind == "repeat" else "new flaky test:"
        shown = f" (attempts: {a.describe()})" if a is not None else ""
        items.append(f"{plain(what)} {code(f.nodeid)} {plain(f.evidence.describe() + shown)}")
    for a in list(attempts.values())[:top]:
        what = "new test is flaky:" if a.kind == "repeat" else "passed on a rerun:"
        items.append(f"{plain(what)} {code(a.nodeid)} {plain('attempts: ' + a.describe())}")
    for b in section.absorbed[:top]:
        until = f", until {b.expires}" if b.expires else ""
        why = plain(f"({b.reason}{until})")
        items.append(f"{plain('quarantined failure absorbed:')} {code(b.nodeid)} {why}")
    for e in section.expired[:top]:
        items.append(
            f"{plain(f'quarantine expired on {e.expires} (no longer protects):')} {code(e.nodeid)}"
        )
    older = [f for f in section.flaky if not f.new]
    for f in older[:top]:
        items.append(
            f"{plain(f'flaky ({f.fail_rate:.0%} failed):')} {code(f.nodeid)} "
            f"{plain(f.evidence.describe())}"
        )
    for nodeid in section.unstable[:top]:
        items.append(
            f"{plain('unstable, not flaky (its outcome flipped with its code):')} {code(nodeid)}"
        )
    if section.quarantine_problem:
        items.append(plain(f"the quarantine file: {section.quarantine_problem}"))
    return items


def evidence_lines(store: Store, nodeid: str) -> list[str]:
    """What `why` says of a test's flakiness: the evidence, or that it is only unstable."""
    samples = store.reads.recent_samples([nodeid]).get(nodeid, [])
    judged = [s.to_row() for s in samples if s.outcome != "skipped"]
    evidence = flaky_evidence(judged)
    if evidence is not None:
        return [f"flaky: {evidence.describe()}"]
    if is_unstable(judged):
        return ["unstable, not flaky: its outcome flipped, each time with a change to its code"]
    return []
