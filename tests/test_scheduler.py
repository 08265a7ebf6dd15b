"""The xdist scheduler on simulated workers (tests/xdist_sim.py), and its stealing rules."""

from __future__ import annotations

import pytest

from pytest_feedback.history.estimates import Estimates
from pytest_feedback.session.scheduler import BUFFER_MAX_S, FeedbackScheduling, make_scheduler
from pytest_feedback.session.stealing import Costs, Side, WorkQueue, steal_queued, steal_sent
from test_shards import make_estimates
from xdist_sim import Sim, SimWorker, simulate

SKEWED = {f"test_{m}.py::test_{i}": 0.01 for m in "abcd" for i in range(20)}
SKEWED.update({"test_slow.py::test_1": 5.0, "test_slow.py::test_2": 4.0})
FAMILY = [f"test_db.py::test_{i}" for i in range(10)]
EVEN = {f"test_x.py::test_{i:02}": 0.2 for i in range(40)}


def skewed_estimates() -> Estimates:
    durations = dict(SKEWED)
    durations.update(dict.fromkeys(FAMILY, 0.1))
    return make_estimates(
        durations, [("db", "module", 3.0)], {n: ["db"] for n in FAMILY}, startup_s=0.2
    )


def assert_each_ran_once(sim: Sim) -> None:
    assert sorted(sim.ran()) == sorted(sim.collection)


def test_long_work_first_and_families_on_one_worker(pytester: pytest.Pytester) -> None:
    collection = sorted([*SKEWED, *FAMILY])
    sim = simulate(pytester, skewed_estimates(), collection)
    assert_each_ran_once(sim)
    first = {sim.collection[w.sent[0]] for w in sim.workers}
    assert "test_slow.py::test_1" in first  # the two slow tests and the family lead the queues
    assert len({w for n in FAMILY for w in sim.worker_of(n)}) == 1
    assert sim.sched.plan is not None
    # Predictions were exact: the run ends when the plan said (its start-up aside).
    assert sim.makespan == pytest.approx(sim.sched.plan.makespan_s - 0.2, abs=1e-6)
    assert all(w.shutting_down for w in sim.workers)


def test_a_worker_that_falls_behind_gives_back_queued_and_sent_work(
    pytester: pytest.Pytester,
) -> None:
    # gw1 runs three times slower than the history says: 4 s of planned work take it 12 s.
    sim = simulate(pytester, make_estimates(EVEN), sorted(EVEN), slowness={1: 3.0})
    assert_each_ran_once(sim)
    # Balanced at the two paces, the 8 s of work end at 6 s; tests are 0.2 s (0.6 s on gw1).
    assert sim.makespan <= 6.0 + 0.6
    assert len(sim.workers[0].ran) >= 28
    assert sim.sched.moved_queued > 0
    assert sim.sched.pace(sim.workers[1]) == pytest.approx(3.0)  # type: ignore[arg-type]


def test_sent_tests_are_asked_back_when_no_queue_has_work(pytester: pytest.Pytester) -> None:
    # The last tests the plan gives gw1 take 2 s instead of 0.2: by then every queue is empty,
    # and gw0 asks for the tests gw1 was sent and has not started.
    slow = [f"test_x.py::test_{i}" for i in (35, 37, 39)]
    actual = make_estimates({n: 2.0 if n in slow else s for n, s in EVEN.items()})
    sim = simulate(pytester, make_estimates(EVEN), sorted(EVEN), actual=actual)
    assert_each_ran_once(sim)
    assert sim.sched.moved_sent > 0
    assert [a for a in sim.answers if a]  # some request was answered with tests
    assert len({w for n in slow for w in sim.worker_of(n)}) == 2
    assert sim.makespan < 4.0 + 2 * 2.0


def test_a_late_worker_starts_late_and_gets_less(pytester: pytest.Pytester) -> None:
    sim = simulate(pytester, make_estimates(EVEN), sorted(EVEN), ready_at=[0.0, 3.0])
    assert_each_ran_once(sim)
    # gw0 started at once, not when gw1 came up; the 8 s of work end near (8 + 3) / 2.
    assert sim.sched.bringup_s == {"gw0": 0.0, "gw1": 3.0}
    assert sim.makespan <= 5.5 + 0.2
    assert len(sim.workers[0].ran) > len(sim.workers[1].ran)


def test_a_crashed_worker_is_replaced_and_its_tests_rerun(pytester: pytest.Pytester) -> None:
    collection = sorted([*SKEWED, *FAMILY])
    sim = simulate(pytester, skewed_estimates(), collection, crash_at=(0, 1.0))
    assert_each_ran_once(sim)  # the crashed test counts once (xdist reports it failed)
    assert sim.workers[2].ran  # the replacement took work


def test_a_stop_after_failures_ends_the_run(pytester: pytest.Pytester) -> None:
    sim = simulate(pytester, make_estimates(EVEN), sorted(EVEN), stop_at=1.0)
    # No test is sent after shutdown (SimWorker asserts it) and every worker finished; as in
    # xdist, a worker told to stop runs the tests it holds: at most the buffer and one more.
    assert len(sim.ran()) < len(EVEN)
    assert sim.makespan <= 1.0 + BUFFER_MAX_S + 0.2


def test_one_worker_runs_everything(pytester: pytest.Pytester) -> None:
    collection = sorted([*SKEWED, *FAMILY])
    sim = simulate(pytester, skewed_estimates(), collection, workers=1)
    assert_each_ran_once(sim)
    assert not sim.workers[0].steal_asks


def test_tests_the_history_does_not_know_and_tests_gone(pytester: pytest.Pytester) -> None:
    known = dict(list(EVEN.items())[:30])
    known["test_gone.py::test_old"] = 9.0  # deleted since: not collected
    collection = sorted([*EVEN, "test_new.py::test_a", "test_new.py::test_b"])
    sim = simulate(pytester, make_estimates(known), collection, actual=make_estimates(EVEN))
    assert_each_ran_once(sim)


def test_a_different_collection_stops_the_run(pytester: pytest.Pytester) -> None:
    collection = sorted(EVEN)
    sim = simulate(
        pytester,
        make_estimates(EVEN),
        collection,
        ready_at=[0.0, 0.5],
        collections={1: collection[:-1]},
    )
    assert not sim.workers[1].sent  # its indexes do not name our tests
    assert len(sim.ran()) < len(collection)  # gw0 stops once its sent tests are done


def test_an_empty_answer_and_a_victim_that_dies(pytester: pytest.Pytester) -> None:
    config = pytester.parseconfig("--tx=2*popen")
    sched = FeedbackScheduling(config, None, make_estimates(EVEN), clock=lambda: 0.0)
    a, b = SimWorker("gw0"), SimWorker("gw1")
    for node in (a, b):
        sched.add_node(node)  # type: ignore[arg-type]
        sched.add_node_collection(node, sorted(EVEN))  # type: ignore[arg-type]
    sched.schedule()
    # gw0 finishes everything it holds and its queue; gw1 has not started.
    while sched.node2pending[a]:  # type: ignore[index]
        sched.mark_test_complete(a, sched.node2pending[a][0])  # type: ignore[arg-type,index]
    assert b.steal_asks, "gw0 ran dry: it asks gw1 for sent tests"
    assert not a.shutting_down
    sched.remove_pending_tests_from_node(b, [])  # type: ignore[arg-type]
    assert sched.steal_request is not None  # asked again (nothing started on gw1 meanwhile)
    held = list(sched.node2pending[b])  # type: ignore[index]
    assert sched.remove_node(b) == sched.collection[held[0]]  # type: ignore[arg-type,index]
    assert sched.steal_request is None  # a dead worker does not answer
    assert set(held[1:]) <= set(a.sent)  # its other tests went to gw0
    while sched.node2pending[a]:  # type: ignore[index]
        sched.mark_test_complete(a, sched.node2pending[a][0])  # type: ignore[arg-type,index]
    assert sched.tests_finished
    assert a.shutting_down


def test_whole_blocks_move_and_a_family_splits_only_when_it_pays() -> None:
    # Tests 0-5 share instance 0 (set-up 2 s); 6-9 are loose. 1 s each.
    costs = Costs([1.0] * 10, [(0,)] * 6 + [()] * 4, [2.0])
    queue = WorkQueue(costs, [[0, 1, 2, 3, 4, 5], [6, 7], [8], [9]])
    assert queue.left_s(set()) == 12.0
    stolen = steal_queued(costs, Side(0.0, set()), 12.0, 1.0, queue)
    assert stolen == [[6, 7], [8], [9]]  # the loose tail, not the family
    assert queue.left_s(set()) == 8.0
    # Alone, the family is split only when the thief's set-up is worth it: 8 s -> 5 s.
    assert steal_queued(costs, Side(0.0, set()), 8.0, 1.0, queue) == [[3, 4, 5]]
    assert steal_queued(costs, Side(4.0, set()), 5.0, 1.0, queue) == []
    # A thief holding the instance already pays no set-up: the whole family moves.
    assert steal_queued(costs, Side(1.0, {0}), 5.0, 1.0, queue) == [[0, 1, 2]]


def test_sent_tail_asked_back_only_beyond_the_next_test_and_only_if_it_pays() -> None:
    costs = Costs([1.0] * 8, [()] * 8, [])
    sent = list(range(8))
    # Victim: 8 s left; thief idle: taking the last 4 ends both at 4 s.
    assert steal_sent(costs, Side(0.0, set()), 8.0, 1.0, sent) == [4, 5, 6, 7]
    # The running test and the next one never move.
    assert steal_sent(costs, Side(0.0, set()), 8.0, 1.0, sent[:2]) == []
    # A thief at half the victim's pace takes less (of equal ends, the longer tail).
    assert steal_sent(costs, Side(0.0, set(), pace=2.0), 8.0, 1.0, sent) == [5, 6, 7]
    # A move that changes nothing predicted is made: the thief would be shut down.
    assert steal_sent(costs, Side(1.0, set()), 2.0, 1.0, [0, 1, 2]) == [2]
    # Nothing pays when the thief is as busy.
    assert steal_sent(costs, Side(8.0, set()), 8.0, 1.0, sent) == []


def test_without_history_it_is_load(pytester: pytest.Pytester) -> None:
    from xdist.scheduler import LoadScheduling

    config = pytester.parseconfig("--tx=2*popen")
    assert isinstance(make_scheduler(config, None, Estimates({})), LoadScheduling)  # type: ignore[arg-type]
    with_history = make_scheduler(config, None, skewed_estimates())  # type: ignore[arg-type]
    assert isinstance(with_history, FeedbackScheduling)
