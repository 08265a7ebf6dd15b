"""The last run's timeline: one lane per process (xdist worker, or CI shard after a merge), its
tests and fixture set-ups/tear-downs as bars on one time axis.

`build_timeline` reads it from the history (`results.start_s`, `fixture_runs.setup_start_s`,
history schema 3); the HTML page, the trace file and the terminal timeline draw it. Times are
seconds from the run's start; after a merge each shard's lane is placed at its own start (its
`run_parts.started_at`) relative to the first shard's.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any, NamedTuple, Optional

if TYPE_CHECKING:
    from pytest_feedback.history.store import Store

#: The lane of a run without xdist (results.worker is NULL).
MAIN = "main"


class Bar(NamedTuple):
    """One test: set-up, call and tear-down back to back from ``start_s``."""

    lane: int
    start_s: float
    setup_s: float
    call_s: float
    teardown_s: float
    nodeid: str
    outcome: str

    @property
    def end_s(self) -> float:
        return self.start_s + self.setup_s + self.call_s + self.teardown_s


class FixtureBar(NamedTuple):
    """One fixture set-up or tear-down (``phase``) on a lane."""

    lane: int
    start_s: float
    duration_s: float
    name: str
    scope: str
    phase: str  # setup teardown


@dataclasses.dataclass(frozen=True)
class Lane:
    """One process that ran tests: its name, its span on the axis and how busy it was."""

    name: str
    #: When the process's run started and ended on the axis (a shard's start after a merge).
    start_s: float
    end_s: float
    tests: int
    #: Seconds in its tests' phases.
    busy_s: float

    @property
    def idle_s(self) -> float:
        return max(0.0, self.end_s - self.start_s - self.busy_s)


@dataclasses.dataclass(frozen=True)
class Timeline:
    """The bars of one run, lane by lane."""

    run_id: int
    #: The axis: from 0 to the end of the last lane.
    span_s: float
    lanes: list[Lane]
    #: Per lane in `lanes` order, earliest first.
    tests: list[Bar]
    fixtures: list[FixtureBar]
    #: Tests of the run whose start is unknown (recorded before schema 3, or pytest's clock
    #: was frozen): not drawn.
    untimed: int = 0

    def lane_tests(self, lane: int) -> list[Bar]:
        return [bar for bar in self.tests if bar.lane == lane]


def build_timeline(
    store: Store, run_id: int, wall_s: float, tests: int, *, fixtures: bool = True
) -> Optional[Timeline]:
    """The timeline of run ``run_id`` (``wall_s`` long, ``tests`` results), its fixture
    executions only with ``fixtures``; None when none of its tests has a recorded start."""
    reads = store.reads
    timed = reads.timed_results(run_id)
    if not timed:
        return None
    return assemble(
        run_id,
        wall_s,
        timed,
        reads.timed_fixtures(run_id) if fixtures else (),
        reads.run_parts(run_id),
        untimed=max(0, tests - len(timed)),
    )


def assemble(
    run_id: int,
    wall_s: float,
    tests: Sequence[Sequence[Any]],
    fixtures: Iterable[Sequence[Any]],
    parts: Sequence[tuple[str, float, float]] = (),
    *,
    untimed: int = 0,
) -> Timeline:
    """A timeline from the rows of `HistoryReads.timed_results`, `timed_fixtures` and
    `run_parts` (see there for their columns)."""
    offsets, spans = _shard_axes(parts)
    workers = {row[2] for row in tests}
    names = sorted({_lane_name(w) for w in workers}, key=_natural)
    index = {name: i for i, name in enumerate(names)}
    # Per worker label: its lane and where its shard starts on the axis (looked up once).
    where = {w: (index[_lane_name(w)], offsets.get(_shard_of(w), 0.0)) for w in workers}

    bars: list[Bar] = []
    for nodeid, outcome, worker, start, setup, call, teardown in tests:
        lane, offset = where[worker]
        bars.append(Bar(lane, start + offset, setup, call, teardown, nodeid, outcome))
    bars.sort(key=lambda b: (b.lane, b.start_s))
    fixture_bars: list[FixtureBar] = []
    for name, scope, worker, setup_at, setup, teardown_at, teardown in fixtures:
        if worker not in where:
            continue  # a process that ran no timed test
        lane, offset = where[worker]
        fixture_bars.append(FixtureBar(lane, setup_at + offset, setup, name, scope, "setup"))
        if teardown_at is not None and teardown is not None:
            fixture_bars.append(
                FixtureBar(lane, teardown_at + offset, teardown, name, scope, "teardown")
            )
    fixture_bars.sort(key=lambda b: (b.lane, b.start_s))

    counts = [0] * len(names)
    busy = [0.0] * len(names)
    last_end = [0.0] * len(names)
    for bar in bars:
        counts[bar.lane] += 1
        busy[bar.lane] += bar.setup_s + bar.call_s + bar.teardown_s
        last_end[bar.lane] = max(last_end[bar.lane], bar.end_s)
    lanes: list[Lane] = []
    for i, name in enumerate(names):
        shard = _shard_of(name)
        start = offsets.get(shard, 0.0)
        end = max(start + spans.get(shard, wall_s), last_end[i])
        lanes.append(Lane(name, start, end, counts[i], busy[i]))
    span = max([wall_s, *(lane.end_s for lane in lanes)])
    return Timeline(run_id, span, lanes, bars, fixture_bars, untimed)


def _lane_name(worker: Optional[str]) -> str:
    return worker or MAIN


def _shard_of(worker: Optional[str]) -> Optional[int]:
    """The shard index of a merged run's worker label (``s2``, ``s2/gw1``); None otherwise."""
    match = re.match(r"s(\d+)(?:/|$)", worker or "")
    return int(match.group(1)) if match else None


def _shard_axes(
    parts: Sequence[tuple[str, float, float]],
) -> tuple[dict[Optional[int], float], dict[Optional[int], float]]:
    """Per shard index: its start relative to the first shard's, and its wall time."""
    if not parts:
        return {}, {}
    first = min(at for _, at, _ in parts)
    offsets: dict[Optional[int], float] = {}
    spans: dict[Optional[int], float] = {}
    for shard, at, wall in parts:
        k = int(shard.split("/", 1)[0])
        offsets[k] = at - first
        spans[k] = wall
    return offsets, spans


def _natural(name: str) -> list[Any]:
    """gw2 before gw10; "main" and shards in their numeric order."""
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", name)]
