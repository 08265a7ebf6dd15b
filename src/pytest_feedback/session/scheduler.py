"""A pytest-xdist scheduler that follows the shard plan and rebalances while the run goes.

Switched on with ``--feedback-dist`` (xdist's ``--dist`` choices are fixed, see docs/parallel.md).
With a history, the collection is planned onto the workers like CI shards: fixture families stay
on one worker, and each worker's queue starts with its longest and most fixture-heavy blocks.
Each worker starts as soon as its own collection arrives (the plan is made from the first one;
the others are checked against it as they come). The controller keeps the queues and sends small
chunks; a worker that runs dry takes blocks from the tail of the queue of the worker furthest
behind, and when no queue has work left, asks that worker to give back sent tests it has not
started (xdist's ``steal`` command), in both cases only when that ends the pair's work earlier
(`session.stealing`). Without any history, `make_scheduler` returns xdist's own ``load``.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Callable, Optional

import pytest
from xdist.report import report_collection_diff
from xdist.workermanage import parse_tx_spec_config

from pytest_feedback.planning.planners import Workload
from pytest_feedback.planning.shards import ShardPlan, plan_workload
from pytest_feedback.session.stealing import Costs, Side, WorkQueue, steal_queued, steal_sent

if TYPE_CHECKING:
    from xdist.remote import Producer
    from xdist.workermanage import WorkerController

    from pytest_feedback.history.estimates import Estimates

#: A worker that holds fewer tests than this gets more (it needs the next one to run one).
LOW_WATER = 3
#: A chunk sent at once holds at most this many tests.
CHUNK_TESTS = 64
#: Predicted seconds of work a worker holds beyond its current test, so that it never waits for
#: the controller: a share of what is left, between these bounds (small at the end, so that the
#: last tests go to whichever worker is free).
BUFFER_MIN_S = 0.05
BUFFER_MAX_S = 2.0
BUFFER_SHARE = 0.25
#: A worker's buffer is topped up once it holds less than this share of the target (so that
#: suites of millisecond tests do not cost a message to the worker per test).
REFILL_AT = 0.5
#: A worker's measured pace (seconds per predicted second) counts once its finished tests were
#: predicted, or took, this many seconds; it is kept within these bounds.
PACE_AFTER_S = 1.0
PACE_BOUNDS = (0.25, 4.0)


def make_scheduler(config: pytest.Config, log: Producer, estimates: Estimates) -> Any:
    """Our scheduler when the history knows something, else xdist's ``load``."""
    if not estimates.tests:
        from xdist.scheduler import LoadScheduling

        return LoadScheduling(config, log)
    return FeedbackScheduling(config, log, estimates)


def _node_key(node: WorkerController) -> tuple[int, str]:
    gid = str(node.gateway.id)
    return (len(gid), gid)  # gw2 before gw10


@dataclasses.dataclass
class StealRequest:
    """Sent tests asked back from ``victim`` for ``thief`` (None once the thief is gone)."""

    victim: WorkerController
    thief: Optional[WorkerController]
    indexes: list[int]


class FeedbackScheduling:
    """Implements xdist's ``Scheduling`` protocol (see ``xdist/scheduler/protocol.py``)."""

    def __init__(
        self,
        config: pytest.Config,
        log: Optional[Producer],
        estimates: Estimates,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.numnodes = len(parse_tx_spec_config(config))
        self.config = config
        self.log = log.feedbacksched if log is not None else (lambda *args: None)
        self.estimates = estimates
        self.clock = clock
        self.node2collection: dict[WorkerController, list[str]] = {}
        self.node2pending: dict[WorkerController, list[int]] = {}
        #: Planned, not yet sent, per worker that is running (its collection matched ours).
        self.queues: dict[WorkerController, WorkQueue] = {}
        #: Planned for workers not up yet, each claimed by the next worker whose collection
        #: arrives; running workers may take from them meanwhile.
        self.slots: list[WorkQueue] = []
        #: Not yet sent and owned by nobody (a crashed worker's tests): served first.
        self.pending: list[int] = []
        self.collection: Optional[list[str]] = None
        self.plan: Optional[ShardPlan] = None
        self.costs = Costs((), (), ())
        #: The one request for sent tests in flight (xdist answers each with ``unscheduled``).
        self.steal_request: Optional[StealRequest] = None
        #: Per worker id, seconds after the first worker that its collection arrived.
        self.bringup_s: dict[str, float] = {}
        #: Tests moved between workers: from queues, and sent tests given back.
        self.moved_queued = 0
        self.moved_sent = 0
        self._held: dict[WorkerController, set[int]] = {}  # fixture instances a worker set up
        self._started: dict[WorkerController, float] = {}  # when its running test began
        self._used: dict[WorkerController, set[int]] = {}  # instances its finished tests used
        self._paces: dict[WorkerController, list[float]] = {}  # [predicted, measured] seconds
        self._first_ready: Optional[float] = None
        self._scheduled = False
        self._aborted = False

    # -- the protocol's properties -----------------------------------------------------------

    @property
    def nodes(self) -> list[WorkerController]:
        return list(self.node2pending)

    @property
    def collection_is_completed(self) -> bool:
        return len(self.node2collection) >= self.numnodes

    @property
    def tests_finished(self) -> bool:
        if not self.collection_is_completed or self._has_unsent():
            return False
        if self.steal_request is not None:
            return False
        return all(len(p) < 2 for p in self.node2pending.values())

    @property
    def has_pending(self) -> bool:
        # "Scheduling has begun and work is left": before xdist's schedule() call the workers
        # already started here are not what it asks about.
        return self._scheduled and (self._has_unsent() or any(self.node2pending.values()))

    def _has_unsent(self) -> bool:
        return bool(self.pending) or any(self.queues.values()) or any(self.slots)

    # -- workers come and go -----------------------------------------------------------------

    def add_node(self, node: WorkerController) -> None:
        assert node not in self.node2pending
        self.node2pending[node] = []
        self._held[node] = set()
        self._used[node] = set()
        self._paces[node] = [0.0, 0.0]

    def add_node_collection(self, node: WorkerController, collection: Sequence[str]) -> None:
        assert node in self.node2pending
        collection = list(collection)
        if self.collection is None:
            self.collection = collection
            if collection:
                self._plan(collection)
        elif collection != self.collection:
            self._collection_differs(node, collection)
            return
        self.node2collection[node] = collection
        self._start(node)

    def _start(self, node: WorkerController) -> None:
        """A worker whose collection matched: it takes a planned queue and starts at once."""
        now = self.clock()
        if self._first_ready is None:
            self._first_ready = now
        self.bringup_s[str(node.gateway.id)] = now - self._first_ready
        if self.slots:
            largest = max(range(len(self.slots)), key=lambda i: (self.slots[i].seconds, -i))
            self.queues[node] = self.slots.pop(largest)
        else:
            self.queues[node] = WorkQueue(self.costs)
        self._check(node)

    def _collection_differs(self, node: WorkerController, collection: list[str]) -> None:
        assert self.collection is not None
        other = next((n for n in self.node2collection if n is not node), node)
        msg = report_collection_diff(self.collection, collection, other.gateway.id, node.gateway.id)
        self.log(msg)
        if not self.collection_is_completed:
            # One of the workers the run started with: as with xdist's own modes, the run stops.
            self.node2collection[node] = collection
            self.config.hook.pytest_collectreport(
                report=pytest.CollectReport(
                    nodeid=node.gateway.id, outcome="failed", longrepr=msg, result=[]
                )
            )
            self.log("**Different tests collected, aborting run**")
            self._aborted = True
            self.pending.clear()
            self.slots.clear()
            for queue in self.queues.values():
                queue.clear()
        node.shutdown()  # its indexes do not name our tests
        self._check_all()

    def remove_node(self, node: WorkerController) -> Optional[str]:
        pending = self.node2pending.pop(node)
        queue = self.queues.pop(node, None)
        self._held.pop(node, None)
        self._started.pop(node, None)
        crashitem = None
        if pending:
            assert self.collection is not None
            crashitem = self.collection[pending.pop(0)]
        self.pending.extend(pending)
        if queue is not None:
            self.pending.extend(queue.clear())
        request = self.steal_request
        if request is not None and request.victim is node:
            self.steal_request = None  # a gone worker does not answer; its tests are back
        elif request is not None and request.thief is node:
            request.thief = None
        self._check_all()
        return crashitem

    # -- tests come back ---------------------------------------------------------------------

    def mark_test_complete(
        self, node: WorkerController, item_index: int, duration: float = 0
    ) -> None:
        self.node2pending[node].remove(item_index)
        self._started[node] = self.clock()
        if duration > 0:
            used = self._used[node]
            new = [r for r in self.costs.needs[item_index] if r not in used]
            used.update(new)
            pace = self._paces[node]
            pace[0] += self.costs.own[item_index] + sum(self.costs.resource_cost[r] for r in new)
            pace[1] += duration
        self._check(node)

    def pace(self, node: WorkerController) -> float:
        """``node``'s measured seconds per predicted second in this run (1.0 until known)."""
        predicted, measured = self._paces.get(node, (0.0, 0.0))
        if max(predicted, measured) < PACE_AFTER_S or predicted <= 0:
            return 1.0
        return min(PACE_BOUNDS[1], max(PACE_BOUNDS[0], measured / predicted))

    def mark_test_pending(self, item: str) -> None:
        assert self.collection is not None
        self.pending.insert(0, self.collection.index(item))
        self._check_all()

    def remove_pending_tests_from_node(
        self, node: WorkerController, indices: Sequence[int]
    ) -> None:
        """``node`` gave back the tests in ``indices`` (all it was asked for, or none)."""
        request = self.steal_request
        thief = None
        if request is not None and request.victim is node:
            thief = request.thief
            self.steal_request = None
        if indices:
            given = set(indices)
            sent = self.node2pending.get(node)
            if sent is not None:
                sent[:] = [i for i in sent if i not in given]
            if thief is not None and thief in self.queues and not thief.shutting_down:
                self.queues[thief].appendleft(list(indices))
            else:
                self.pending.extend(indices)
            self.moved_sent += len(indices)
        if thief is not None and thief in self.queues:
            self._check(thief)
        self._check_all()

    # -- planning ----------------------------------------------------------------------------

    def schedule(self) -> None:
        assert self.collection_is_completed
        self._scheduled = True
        for slot in self.slots:  # planned for a worker that never came
            self.pending.extend(slot.clear())
        self.slots.clear()
        self._check_all()

    def _plan(self, collection: list[str]) -> None:
        work = Workload.build(self.estimates, collection)
        where: dict[str, list[int]] = {}
        for index, nodeid in enumerate(collection):
            where.setdefault(nodeid, []).append(index)
        position = {nodeid: i for i, nodeid in enumerate(work.nodeids)}
        self.costs = Costs(
            own=[work.own[position[n]] for n in collection],
            needs=[work.needs[position[n]] for n in collection],
            resource_cost=work.resource_cost,
        )
        self.plan = plan_workload(work, max(1, self.numnodes))
        for shard in self.plan.shards:
            mine = {position[n] for n in shard.tests}
            blocks = (
                sorted(i for t in block for i in where[work.nodeids[t]])
                for block in _blocks(work, mine)
            )
            self.slots.append(WorkQueue(self.costs, blocks))

    # -- handing out work --------------------------------------------------------------------

    def _check_all(self) -> None:
        for node in sorted(self.queues, key=_node_key):
            self._check(node)

    def _check(self, node: WorkerController) -> None:
        if node.shutting_down or node not in self.queues:
            return
        pending = self.node2pending[node]
        target = self._buffer_s()
        sent = False
        if len(pending) >= LOW_WATER and self._held_s(pending) >= target * REFILL_AT:
            return
        while len(pending) < LOW_WATER or self._held_s(pending) < target:
            chunk = self._next_chunk(node, target - self._held_s(pending))
            if not chunk:
                break
            self._send(node, chunk)
            sent = True
        if sent or len(pending) >= 2 or self.steal_request is not None:
            return  # busy, or an answer is awaited: it may bring this worker work
        if not self._ask_back(node):
            node.shutdown()  # nothing left to give: run the last test now

    def _buffer_s(self) -> float:
        queued = sum(q.seconds for q in self.queues.values()) + sum(q.seconds for q in self.slots)
        queued += self.costs.seconds(self.pending)
        share = BUFFER_SHARE * queued / max(1, len(self.queues))
        return min(BUFFER_MAX_S, max(BUFFER_MIN_S, share))

    def _held_s(self, pending: list[int]) -> float:
        """Predicted seconds a worker holds beyond the test it is running."""
        return self.costs.seconds(pending[1:])

    def _next_chunk(self, node: WorkerController, target_s: float) -> list[int]:
        if self.pending:
            chunk = self.pending[:CHUNK_TESTS]
            del self.pending[: len(chunk)]
            return chunk
        queue = self.queues[node]
        if not queue:
            self._steal_queued(node)
        return queue.take_chunk(target_s, CHUNK_TESTS)

    def _send(self, node: WorkerController, chunk: list[int]) -> None:
        pending = self.node2pending[node]
        if len(pending) < 2 and len(pending) + len(chunk) >= 2:
            self._started[node] = self.clock()  # its first test starts now
        pending.extend(chunk)
        held = self._held[node]
        for index in chunk:
            held.update(self.costs.needs[index])
        node.send_runtest_some(chunk)

    def _left_s(self, node: WorkerController) -> float:
        """Seconds ``node`` still works at its pace: the rest of its running test, the tests it
        holds, its queue, and the set-ups of instances in them it has not got yet."""
        sent = self.node2pending[node]
        own = self.costs.own
        pace = self.pace(node)
        left = self.queues[node].left_s(self._held[node]) * pace
        if sent:
            left += self.costs.added_s(self._used[node], sent) * pace
            if len(sent) >= 2:  # running (a worker starts a test once it has the next one)
                elapsed = self.clock() - self._started.get(node, self.clock())
                left -= min(own[sent[0]] * pace, elapsed)
        return left

    def _side(self, node: WorkerController) -> Side:
        return Side(self._left_s(node), self._held[node], self.pace(node))

    def _steal_queued(self, thief: WorkerController) -> None:
        """Queued blocks of the worker furthest behind (or of a worker not up yet) to
        ``thief``'s queue, while that ends the pair's work earlier."""
        running = sorted(self.queues, key=_node_key)
        victims: list[tuple[float, int, float, WorkQueue, Optional[set[int]]]] = [
            (self._left_s(n), i, self.pace(n), self.queues[n], self._held[n])
            for i, n in enumerate(running)
            if n is not thief and self.queues[n]
        ]
        victims += [
            (q.left_s(set()), len(running) + i, 1.0, q, None) for i, q in enumerate(self.slots) if q
        ]
        if not victims:
            return
        victim_s, _, pace, queue, held = max(victims, key=lambda v: (v[0], -v[1]))
        side = self._side(thief)
        for block in steal_queued(self.costs, side, victim_s, pace, queue, held):
            self.queues[thief].append(block)
            self.moved_queued += len(block)

    def _ask_back(self, thief: WorkerController) -> bool:
        """Ask the worker furthest behind for sent tests it has not started, for ``thief``."""
        if self._aborted:
            return False
        victims = [
            (self._left_s(n), _node_key(n), n)
            for n, sent in self.node2pending.items()
            if n is not thief and n in self.queues and not n.shutting_down and len(sent) > 2
        ]
        if not victims:
            return False
        victim_s, _, victim = max(victims, key=lambda v: (v[0], v[1]))
        tail = steal_sent(
            self.costs, self._side(thief), victim_s, self.pace(victim), self.node2pending[victim]
        )
        if not tail:
            return False
        victim.send_steal(tail)
        self.steal_request = StealRequest(victim, thief, tail)
        return True


def _blocks(work: Workload, mine: set[int]) -> list[list[int]]:
    """A worker's tests as blocks, longest first: a family each, loose tests by file."""
    blocks: list[list[int]] = []
    loose: dict[str, list[int]] = {}
    for family in work.families:
        here = [t for t in family if t in mine]
        if not here:
            continue
        if len(family) == 1 and not any(
            not work.resource_names[r].endswith(":*") for r in work.needs[here[0]]
        ):
            loose.setdefault(work.nodeids[here[0]].split("::", 1)[0], []).append(here[0])
        else:
            blocks.append(here)
    blocks.extend(loose[f] for f in sorted(loose))
    blocks.sort(key=lambda b: (-(work.cost(b) - work.startup_s), b[0]))
    return blocks
