"""A simulated xdist run for scheduler tests: mock workers on a simulated clock.

Workers behave as pytest-xdist's do (``xdist/remote.py``): a worker runs a test only once it has
the next one (or was told to shut down), so of the tests it was sent only those after the running
one and the next one can be asked back with ``steal``, which it answers all-or-nothing. A test
takes its own seconds plus the set-up of each fixture instance the worker has not set up yet
(the cost model's view), times the worker's slowness. The controller's part follows
``xdist/dsession.py``: ``add_node`` and ``add_node_collection`` when a worker is up,
``schedule()`` once all have collected, shutdown of all workers once ``tests_finished``.
"""

from __future__ import annotations

import heapq
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Optional

import pytest

from pytest_feedback.history.estimates import Estimates
from pytest_feedback.planning.planners import Workload
from pytest_feedback.session.scheduler import FeedbackScheduling


class MockGateway:
    def __init__(self, gid: str) -> None:
        self.id = gid
        self.spec = None


class SimWorker:
    def __init__(self, gid: str, slowness: float = 1.0) -> None:
        self.gateway = MockGateway(gid)
        self.slowness = slowness
        self.sent: list[int] = []  # every index ever sent, in order
        self.torun: list[int] = []  # sent, not started
        self.ran: list[int] = []
        self.running: Optional[int] = None
        self.took = 0.0  # seconds the running test takes
        self.steal_asks: list[list[int]] = []
        self.setup: set[int] = set()  # fixture instances set up here
        self.finished = False
        self._shutdown = False

    def send_runtest_some(self, indices: Sequence[int]) -> None:
        assert not self._shutdown, f"{self.gateway.id}: tests sent after shutdown"
        self.sent.extend(indices)
        self.torun.extend(indices)

    def send_steal(self, indices: Sequence[int]) -> None:
        self.steal_asks.append(list(indices))

    def shutdown(self) -> None:
        self._shutdown = True

    @property
    def shutting_down(self) -> bool:
        return self._shutdown

    def stealable(self) -> list[int]:
        """What xdist's worker still has in its queue: not the running test nor the next."""
        return self.torun[1:]


@dataclass
class Sim:
    sched: FeedbackScheduling
    workers: list[SimWorker]
    work: Workload
    collection: list[str]
    now: float = 0.0
    makespan: float = 0.0
    answers: list[int] = field(default_factory=list)  # tests given back per answered steal

    def ran(self) -> list[str]:
        return [self.collection[i] for w in self.workers for i in w.ran]

    def worker_of(self, nodeid: str) -> set[str]:
        index = self.collection.index(nodeid)
        return {w.gateway.id for w in self.workers if index in w.ran}


def simulate(
    pytester: pytest.Pytester,
    estimates: Estimates,
    collection: Sequence[str],
    workers: int = 2,
    *,
    ready_at: Sequence[float] = (),
    slowness: Mapping[int, float] | None = None,
    actual: Estimates | None = None,
    crash_at: tuple[int, float] | None = None,
    stop_at: float | None = None,
    collections: Mapping[int, Sequence[str]] | None = None,
) -> Sim:
    """Run ``collection`` on simulated workers; returns when every worker has finished.

    ``ready_at``: per worker, when its collection arrives (default: all at 0). ``slowness``:
    per worker, a factor on its tests' durations. ``actual``: the real durations (default: the
    estimates). ``crash_at``: (worker, time) it dies; a replacement comes up 1 s later.
    ``stop_at``: when the controller shuts all workers down (``-x``/``--maxfail``).
    ``collections``: per worker, a different collection.
    """
    config = pytester.parseconfig(f"--tx={workers}*popen")
    clock = [0.0]
    sched = FeedbackScheduling(config, None, estimates, clock=lambda: clock[0])
    real = Workload.build(actual or estimates, collection)
    position = {n: i for i, n in enumerate(real.nodeids)}
    nodes = [SimWorker(f"gw{i}", (slowness or {}).get(i, 1.0)) for i in range(workers)]
    sim = Sim(sched, nodes, real, list(collection))
    events: list[tuple[float, int, str, int]] = []  # (time, order, kind, worker)
    order = [0]

    def at(time: float, kind: str, worker: int) -> None:
        order[0] += 1
        heapq.heappush(events, (time, order[0], kind, worker))

    for i in range(workers):
        at(ready_at[i] if i < len(ready_at) else 0.0, "ready", i)
    if crash_at is not None:
        at(crash_at[1], "crash", crash_at[0])
    if stop_at is not None:
        at(stop_at, "stop", -1)
    collected = 0
    stopping = False

    def duration(node: SimWorker, index: int) -> float:
        t = position[collection[index]]
        new = [r for r in real.needs[t] if r not in node.setup]
        node.setup.update(new)
        return (real.own[t] + sum(real.resource_cost[r] for r in new)) * node.slowness

    def settle() -> None:
        """Answer steal requests, start tests, finish shut-down workers, until nothing moves."""
        nonlocal stopping
        moved = True
        while moved:
            moved = False
            for i, node in enumerate(nodes):
                if node.finished:
                    continue
                while node.steal_asks:
                    asked = node.steal_asks.pop(0)
                    have = node.stealable()
                    given = asked if set(asked) <= set(have) else []
                    node.torun = [x for x in node.torun if x not in set(given)]
                    sim.answers.append(len(given))
                    sched.remove_pending_tests_from_node(node, given)  # type: ignore[arg-type]
                    moved = True
                if (
                    node.running is None
                    and node.torun
                    and (len(node.torun) >= 2 or node.shutting_down)
                ):
                    node.running = node.torun.pop(0)
                    node.took = duration(node, node.running)
                    at(clock[0] + node.took, "done", i)
                    moved = True
                if node.running is None and not node.torun and node.shutting_down:
                    node.finished = True
                    if node in sched.node2pending:
                        assert sched.remove_node(node) is None  # type: ignore[arg-type]
                    moved = True
            if (
                not stopping
                and sched.collection_is_completed
                and sched.tests_finished
                and any(not n.finished for n in nodes)
            ):
                stopping = True
                for node in nodes:
                    if not node.finished and node in sched.node2pending:
                        node.shutdown()
                moved = True

    while events:
        clock[0], _, kind, i = heapq.heappop(events)
        node = nodes[i] if i >= 0 else None
        if kind == "ready":
            assert node is not None
            sched.add_node(node)  # type: ignore[arg-type]
            mine = (collections or {}).get(i, collection)
            sched.add_node_collection(node, list(mine))  # type: ignore[arg-type]
            collected += 1
            if sched.collection_is_completed:
                sched.schedule()
        elif kind == "done":
            assert node is not None
            if node.finished:
                continue
            assert node.running is not None
            index = node.running
            node.running = None
            node.ran.append(index)
            sim.makespan = max(sim.makespan, clock[0])
            sched.mark_test_complete(node, index, node.took)  # type: ignore[arg-type]
        elif kind == "crash":
            assert node is not None
            node.finished = True
            node.running = None
            crashed = sched.remove_node(node)  # type: ignore[arg-type]
            if crashed is not None:
                sim.makespan = max(sim.makespan, clock[0])  # reported as failed: it "ran"
                node.ran.append(collection.index(crashed))
            clone = SimWorker(f"gw{len(nodes)}")
            nodes.append(clone)
            at(clock[0] + 1.0, "ready", len(nodes) - 1)
        elif kind == "stop":
            stopping = True
            for other in nodes:
                if other in sched.node2pending:
                    other.shutdown()
        settle()
    assert all(n.finished for n in nodes), "a worker never finished"
    return sim
