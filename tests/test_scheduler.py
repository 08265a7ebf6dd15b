"""The xdist scheduler with mock workers, the way pytest-xdist tests its own schedulers."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from pytest_feedback.history.estimates import Estimates
from pytest_feedback.session.scheduler import FeedbackScheduling, make_scheduler
from test_shards import make_estimates


class MockGateway:
    def __init__(self, gid: str) -> None:
        self.id = gid
        self.spec = None


class MockNode:
    def __init__(self, gid: str) -> None:
        self.gateway = MockGateway(gid)
        self.sent: list[int] = []
        self._shutdown = False

    def send_runtest_some(self, indices: Sequence[int]) -> None:
        self.sent.extend(indices)

    def shutdown(self) -> None:
        self._shutdown = True

    @property
    def shutting_down(self) -> bool:
        return self._shutdown


def start(
    pytester: pytest.Pytester, estimates: Estimates, collection: list[str], workers: int = 2
) -> tuple[FeedbackScheduling, list[MockNode]]:
    config = pytester.parseconfig(f"--tx={workers}*popen")
    sched = FeedbackScheduling(config, None, estimates)
    nodes = [MockNode(f"gw{i}") for i in range(workers)]
    for node in nodes:
        sched.add_node(node)  # type: ignore[arg-type]
    for node in nodes:
        sched.add_node_collection(node, collection)  # type: ignore[arg-type]
    assert sched.collection_is_completed
    sched.schedule()
    return sched, nodes


def drain(sched: FeedbackScheduling, nodes: list[MockNode], order: Sequence[int]) -> None:
    """Complete tests on the given workers in turn (by index into ``nodes``) until done."""
    ran: dict[int, int] = {}
    for step in range(10_000):
        if sched.tests_finished:
            break
        node = nodes[order[step % len(order)]]
        pending = sched.node2pending[node]  # type: ignore[index]
        if pending and (len(pending) >= 2 or node.shutting_down):
            index = pending[0]
            ran[index] = ran.get(index, 0) + 1
            sched.mark_test_complete(node, index)  # type: ignore[arg-type]
    assert sched.tests_finished


SKEWED = {f"test_{m}.py::test_{i}": 0.01 for m in "abcd" for i in range(20)}
SKEWED.update({"test_slow.py::test_1": 5.0, "test_slow.py::test_2": 4.0})
FAMILY = [f"test_db.py::test_{i}" for i in range(10)]


def skewed_estimates() -> Estimates:
    durations = dict(SKEWED)
    durations.update(dict.fromkeys(FAMILY, 0.1))
    return make_estimates(
        durations, [("db", "module", 3.0)], {n: ["db"] for n in FAMILY}, startup_s=0.2
    )


def test_long_work_first_and_families_on_one_worker(pytester: pytest.Pytester) -> None:
    collection = sorted([*SKEWED, *FAMILY])
    sched, nodes = start(pytester, skewed_estimates(), collection)
    first = {collection[node.sent[0]] for node in nodes}
    # The two slow tests and the fixture family lead the queues.
    assert "test_slow.py::test_1" in first
    drain(sched, nodes, [0, 1])
    sent = {i for node in nodes for i in node.sent}
    assert sent == set(range(len(collection)))
    assert sum(len(n.sent) for n in nodes) == len(collection)  # nothing sent twice
    family_workers = [n for n in nodes if any(collection[i] in FAMILY for i in n.sent)]
    assert len(family_workers) == 1
    assert all(n.shutting_down for n in nodes)


def test_idle_worker_takes_work_from_a_busy_one(pytester: pytest.Pytester) -> None:
    durations = {f"test_x.py::test_{i:02}": 0.2 for i in range(40)}
    collection = sorted(durations)
    sched, nodes = start(pytester, make_estimates(durations), collection)
    # Worker 0 is stuck on its first test while worker 1 finishes everything it can get.
    drain(sched, nodes, [1] * 50 + [0, 1])
    assert len(nodes[1].sent) > 30
    assert {i for node in nodes for i in node.sent} == set(range(40))


def test_a_crashed_workers_tests_go_to_the_others(pytester: pytest.Pytester) -> None:
    collection = sorted([*SKEWED, *FAMILY])
    sched, nodes = start(pytester, skewed_estimates(), collection)
    victim = nodes[0]
    crashed = sched.remove_node(victim)  # type: ignore[arg-type]
    assert crashed == collection[victim.sent[0]]
    drain(sched, nodes[1:], [0])
    assert set(nodes[1].sent) | {victim.sent[0]} == set(range(len(collection)))


def test_without_history_it_is_load(pytester: pytest.Pytester) -> None:
    from xdist.scheduler import LoadScheduling

    config = pytester.parseconfig("--tx=2*popen")
    assert isinstance(make_scheduler(config, None, Estimates({})), LoadScheduling)  # type: ignore[arg-type]
    with_history = make_scheduler(config, None, skewed_estimates())  # type: ignore[arg-type]
    assert isinstance(with_history, FeedbackScheduling)
