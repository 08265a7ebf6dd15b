"""The data of one recorded run, as the recorder builds it and the store writes it."""

from __future__ import annotations

import dataclasses
from typing import NamedTuple, Optional

#: Outcomes that count as failures ("error": a failure outside the test's call phase).
FAILING = frozenset({"failed", "error"})
#: Scopes whose fixtures a test may trigger without owning their cost (docs/contract.md,
#: "Cost model").
WIDER_SCOPES = frozenset({"class", "module", "package", "session"})
#: The user property `--feedback-budget` gives a chosen test it skips because the test would no
#: longer end within the budget: not a result to record. (Shows in JUnit XML too.)
BUDGET_NOT_RUN = ("feedback_budget", "not run: the budget was used up")
#: How the line that says a run was written to the history begins (`session.writer.write_history`).
RECORDED_PREFIX = "feedback: recorded run "


def left_by_budget(user_properties: object) -> bool:
    """Whether a report's ``user_properties`` carry `BUDGET_NOT_RUN` (xdist sends them as lists)."""
    return isinstance(user_properties, (list, tuple)) and any(
        isinstance(p, (list, tuple)) and tuple(p) == BUDGET_NOT_RUN for p in user_properties
    )


@dataclasses.dataclass
class TestRecord:
    """One test in one run. Seconds are pytest's own phase durations."""

    nodeid: str
    outcome: str = "passed"
    setup_s: float = 0.0
    call_s: float = 0.0
    teardown_s: float = 0.0
    #: Seconds of wider-scope fixture set-up and tear-down that ran inside this test's phases.
    fixture_overhead_s: float = 0.0
    worker: Optional[str] = None
    #: When its set-up started (Unix time; None when unknown, e.g. while freezegun froze
    #: pytest's clock) and the CPU seconds its thread spent in its three phases.
    started_at: Optional[float] = None
    cpu_s: Optional[float] = None

    __test__ = False  # not a pytest test class

    @property
    def file(self) -> str:
        return test_file(self.nodeid)

    @property
    def own_s(self) -> float:
        """The test's own cost: its phases minus wider-scope fixtures it happened to trigger."""
        return max(0.0, self.setup_s + self.call_s + self.teardown_s - self.fixture_overhead_s)


class FixtureKey(NamedTuple):
    """Identifies a fixture definition across runs and machines.

    A named tuple: it is hashed for every fixture execution recorded, and tuples hash fast.
    """

    name: str
    scope: str
    location: str


@dataclasses.dataclass
class FixtureExecution:
    """One execution (set-up, and tear-down if it happened) of one fixture."""

    key: FixtureKey
    setup_s: float
    setup_test: Optional[str]
    worker: Optional[str] = None
    teardown_s: Optional[float] = None
    teardown_test: Optional[str] = None
    #: When the set-up and the tear-down started (Unix time; None when unknown), and the CPU
    #: seconds of the thread during the set-up.
    setup_at: Optional[float] = None
    teardown_at: Optional[float] = None
    setup_cpu_s: Optional[float] = None


@dataclasses.dataclass
class WorkerRecord:
    """One process that ran tests: the controller-less main process or an xdist worker."""

    worker: str
    collect_s: float
    tests: int = 0


@dataclasses.dataclass
class ImportRecord:
    """What one process's collection spent importing one test module, conftest or other module
    (seconds include the modules it imported; see `collect_imports` in history/schema.py)."""

    worker: str
    kind: str  # test conftest module
    name: str  # rootdir-relative path (test, conftest) or dotted name (module)
    via: Optional[str]  # module: the test module or conftest whose import pulled it in
    seconds: float


@dataclasses.dataclass
class AttemptRecord:
    """One attempt of a test that ran more than once in a run (table ``attempts``)."""

    nodeid: str
    attempt: int  # 1 is the first
    kind: str  # `RERUN` or `REPEAT`
    outcome: str
    duration_s: float
    started_at: Optional[float] = None  # Unix time, as `TestRecord.started_at`
    worker: Optional[str] = None


#: `AttemptRecord.kind`: run again because it failed (--feedback-rerun, pytest-rerunfailures),
#: or on purpose to catch a new flaky test (--feedback-new-runs).
RERUN = "rerun"
REPEAT = "repeat"


def both_outcomes(attempts: list[AttemptRecord]) -> set[str]:
    """The node ids whose attempts in one run both failed and passed."""
    seen: dict[str, set[bool]] = {}
    for a in attempts:
        if a.outcome in FAILING or a.outcome == "passed":
            seen.setdefault(a.nodeid, set()).add(a.outcome in FAILING)
    return {nodeid for nodeid, kinds in seen.items() if len(kinds) == 2}


@dataclasses.dataclass
class RunRecord:
    """Everything one pytest session records."""

    uuid: str
    started_at: float
    finished_at: float = 0.0
    wall_s: float = 0.0
    collect_s: Optional[float] = None
    #: The test loop's seconds (pytest_runtestloop), on the process that wrote the run.
    loop_s: Optional[float] = None
    #: A serial ``--feedback-budget`` run: the seconds the history's estimates gave the tests it
    #: started (uncalibrated, see `planning.pacer.Pacer.planned_s`); with ``loop_s`` it
    #: calibrates later budgets' predictions (`Estimates.pace`).
    planned_s: Optional[float] = None
    #: Seconds from the end of this record (``finished_at``) to the process's exit, stored later
    #: by a watcher process (`exitwatch`); recorded serial budget runs only.
    exit_s: Optional[float] = None
    #: A ``--feedback-budget`` run: its budget, the plan's prediction (from the process's start
    #: to its exit) and the seconds from the process's start to ``finished_at``; with
    #: ``exit_s``, what the run really took.
    budget_s: Optional[float] = None
    predicted_s: Optional[float] = None
    took_s: Optional[float] = None
    git_commit: Optional[str] = None
    git_branch: Optional[str] = None
    git_dirty: Optional[bool] = None
    python: str = ""
    platform: str = ""
    workers: int = 0
    exit_status: Optional[int] = None
    args: list[str] = dataclasses.field(default_factory=list)
    rootdir: str = ""
    shard: Optional[str] = None
    #: The CI pipeline that ran it (`ci.pipeline_id`); shard runs of one pipeline merge into one.
    pipeline: Optional[str] = None
    tests: dict[str, TestRecord] = dataclasses.field(default_factory=dict)
    fixtures: list[FixtureExecution] = dataclasses.field(default_factory=list)
    #: Fixtures each test requested (all scopes), for planners that keep fixture families together.
    uses: dict[str, list[FixtureKey]] = dataclasses.field(default_factory=dict)
    worker_records: list[WorkerRecord] = dataclasses.field(default_factory=list)
    #: Every attempt of the tests that ran more than once (``tests`` holds their final result).
    attempts: list[AttemptRecord] = dataclasses.field(default_factory=list)
    #: Per node id, the fingerprint of what the test reaches (the coverage map's files at their
    #: current content), taken for the tests whose flakiness it may show (`Sample.mark`).
    reach: dict[str, str] = dataclasses.field(default_factory=dict)
    #: The run measured coverage (``--feedback-cov``, or ``--feedback-select`` mapping the tests
    #: it runs again): its tests' samples say so, and estimates prefer the durations of runs
    #: that did not measure (`summaries.summary_values`). Not a column of `runs`.
    mapped: bool = False
    #: What collection spent importing, per process (few rows: see `session.imports`).
    imports: list[ImportRecord] = dataclasses.field(default_factory=list)

    def storable(self) -> RunRecord:
        """This run with every text valid Unicode (see `storable_text`); itself when it is."""
        if _is_storable("\n".join(self._texts())):  # one pass in C over all the text
            return self
        fix = storable_text

        def key(k: FixtureKey) -> FixtureKey:
            return FixtureKey(fix(k.name), fix(k.scope), fix(k.location))

        def opt(text: Optional[str]) -> Optional[str]:
            return None if text is None else fix(text)

        return dataclasses.replace(
            self,
            git_commit=opt(self.git_commit),
            git_branch=opt(self.git_branch),
            python=fix(self.python),
            platform=fix(self.platform),
            args=[fix(a) for a in self.args],
            rootdir=fix(self.rootdir),
            shard=opt(self.shard),
            tests={
                fix(n): dataclasses.replace(t, nodeid=fix(t.nodeid), worker=opt(t.worker))
                for n, t in self.tests.items()
            },
            fixtures=[
                dataclasses.replace(
                    e,
                    key=key(e.key),
                    setup_test=opt(e.setup_test),
                    teardown_test=opt(e.teardown_test),
                    worker=opt(e.worker),
                )
                for e in self.fixtures
            ],
            uses={fix(n): [key(k) for k in keys] for n, keys in self.uses.items()},
            worker_records=[
                dataclasses.replace(w, worker=fix(w.worker)) for w in self.worker_records
            ],
            attempts=[
                dataclasses.replace(a, nodeid=fix(a.nodeid), worker=opt(a.worker))
                for a in self.attempts
            ],
            reach={fix(n): v for n, v in self.reach.items()},
            imports=[
                dataclasses.replace(i, worker=fix(i.worker), name=fix(i.name), via=opt(i.via))
                for i in self.imports
            ],
        )

    def _texts(self) -> list[str]:
        keys = {e.key for e in self.fixtures}
        for used in self.uses.values():
            keys.update(used)
        texts = [*self.tests, *self.uses, *self.args, self.python, self.platform, self.rootdir]
        texts += [t.nodeid for t in self.tests.values()]
        texts += [e.setup_test for e in self.fixtures if e.setup_test]
        texts += [e.teardown_test for e in self.fixtures if e.teardown_test]
        texts += [f"{k.name}{k.scope}{k.location}" for k in keys]
        workers = {t.worker for t in self.tests.values()} | {e.worker for e in self.fixtures}
        workers.update(w.worker for w in self.worker_records)
        texts += [a.nodeid for a in self.attempts] + [*self.reach]
        workers.update(a.worker for a in self.attempts)
        texts += [f"{i.worker}{i.name}{i.via or ''}" for i in self.imports]
        optional = (self.git_commit, self.git_branch, self.shard, *workers)
        return texts + [t for t in optional if t]


def storable_text(text: str) -> str:
    """``text`` as valid Unicode: lone surrogates become ``\\udcXX`` escapes.

    Python keeps bytes of file names that are not valid UTF-8 as lone surrogates
    (``surrogateescape``); SQLite stores only valid UTF-8. Such node ids are recorded under
    the escaped form instead of making the whole run unrecordable.
    """
    if _is_storable(text):
        return text
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


def _is_storable(text: Optional[str]) -> bool:
    if text is None or text.isascii():
        return True
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def test_file(nodeid: str) -> str:
    """The file part of a node id (``tests/test_a.py::TestX::test_y`` -> ``tests/test_a.py``)."""
    return nodeid.split("::", 1)[0]


test_file.__test__ = False  # type: ignore[attr-defined]
