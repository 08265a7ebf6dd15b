"""A pytest-xdist scheduler that follows the shard plan and lets idle workers take work.

Switched on with ``--feedback-dist`` (xdist's ``--dist`` choices are fixed, see docs/parallel.md).
With a history, the collection is planned onto the workers like CI shards: fixture families stay
on one worker, and each worker's queue starts with its longest and most fixture-heavy blocks. The
controller keeps the queues and sends small chunks, so a worker that runs dry takes blocks from
the tail of the busiest queue (splitting a family only when that shortens the run). Without any
history, `make_scheduler` returns xdist's own ``load`` scheduler.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Optional

import pytest
from xdist.report import report_collection_diff
from xdist.workermanage import parse_tx_spec_config

from pytest_feedback.planning.planners import Workload
from pytest_feedback.planning.shards import ShardPlan, plan_workload

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


def make_scheduler(config: pytest.Config, log: Producer, estimates: Estimates) -> Any:
    """Our scheduler when the history knows something, else xdist's ``load``."""
    if not estimates.tests:
        from xdist.scheduler import LoadScheduling

        return LoadScheduling(config, log)
    return FeedbackScheduling(config, log, estimates)


def _node_key(node: WorkerController) -> tuple[int, str]:
    gid = str(node.gateway.id)
    return (len(gid), gid)  # gw2 before gw10


class FeedbackScheduling:
    """Implements xdist's ``Scheduling`` protocol (see ``xdist/scheduler/protocol.py``)."""

    def __init__(
        self, config: pytest.Config, log: Optional[Producer], estimates: Estimates
    ) -> None:
        self.numnodes = len(parse_tx_spec_config(config))
        self.config = config
        self.log = log.feedbacksched if log is not None else (lambda *args: None)
        self.estimates = estimates
        self.node2collection: dict[WorkerController, list[str]] = {}
        self.node2pending: dict[WorkerController, list[int]] = {}
        #: Planned, not yet sent: per worker a queue of blocks (lists of collection indexes).
        self.queues: dict[WorkerController, deque[list[int]]] = {}
        #: Not yet sent and owned by nobody (a crashed worker's tests): served first.
        self.pending: list[int] = []
        self.collection: Optional[list[str]] = None
        self.plan: Optional[ShardPlan] = None
        self._cost: list[float] = []  # predicted own seconds per collection index
        self._needs: list[tuple[int, ...]] = []
        self._resource_cost: tuple[float, ...] = ()
        self._held: dict[WorkerController, set[int]] = {}  # fixture instances a worker set up

    # -- the protocol's properties -----------------------------------------------------------

    @property
    def nodes(self) -> list[WorkerController]:
        return list(self.node2pending)

    @property
    def collection_is_completed(self) -> bool:
        return len(self.node2collection) >= self.numnodes

    @property
    def tests_finished(self) -> bool:
        if not self.collection_is_completed or self.pending:
            return False
        if any(self.queues.values()):
            return False
        return all(len(p) < 2 for p in self.node2pending.values())

    @property
    def has_pending(self) -> bool:
        return bool(self.pending) or any(self.queues.values()) or any(self.node2pending.values())

    # -- workers come and go -----------------------------------------------------------------

    def add_node(self, node: WorkerController) -> None:
        assert node not in self.node2pending
        self.node2pending[node] = []
        self.queues[node] = deque()
        self._held[node] = set()

    def add_node_collection(self, node: WorkerController, collection: Sequence[str]) -> None:
        assert node in self.node2pending
        if self.collection_is_completed:
            assert self.collection is not None
            if list(collection) != self.collection:
                other = next(iter(self.node2collection))
                self.log(
                    report_collection_diff(
                        self.collection, list(collection), other.gateway.id, node.gateway.id
                    )
                )
                return
        self.node2collection[node] = list(collection)

    def remove_node(self, node: WorkerController) -> Optional[str]:
        pending = self.node2pending.pop(node)
        queue = self.queues.pop(node, deque())
        self._held.pop(node, None)
        crashitem = None
        if pending:
            assert self.collection is not None
            crashitem = self.collection[pending.pop(0)]
        self.pending.extend(pending)
        for block in queue:
            self.pending.extend(block)
        self._check_all()
        return crashitem

    # -- tests come back ---------------------------------------------------------------------

    def mark_test_complete(
        self, node: WorkerController, item_index: int, duration: float = 0
    ) -> None:
        self.node2pending[node].remove(item_index)
        self._check(node)

    def mark_test_pending(self, item: str) -> None:
        assert self.collection is not None
        self.pending.insert(0, self.collection.index(item))
        self._check_all()

    def remove_pending_tests_from_node(
        self, node: WorkerController, indices: Sequence[int]
    ) -> None:
        raise NotImplementedError()  # we never ask a worker to give tests back

    # -- planning ----------------------------------------------------------------------------

    def schedule(self) -> None:
        assert self.collection_is_completed
        if self.collection is not None:
            self._check_all()
            return
        if not self._same_collections():
            self.log("**Different tests collected, aborting run**")
            return
        self.collection = next(iter(self.node2collection.values()))
        if not self.collection:
            return
        self._plan(self.collection)
        self._check_all()

    def _plan(self, collection: list[str]) -> None:
        work = Workload.build(self.estimates, collection)
        where: dict[str, list[int]] = {}
        for index, nodeid in enumerate(collection):
            where.setdefault(nodeid, []).append(index)
        position = {nodeid: i for i, nodeid in enumerate(work.nodeids)}
        self._cost = [work.own[position[n]] for n in collection]
        self._needs = [work.needs[position[n]] for n in collection]
        self._resource_cost = work.resource_cost
        nodes = sorted(self.node2pending, key=_node_key)
        self.plan = plan_workload(work, len(nodes))
        for node, shard in zip(nodes, self.plan.shards):
            mine = {position[n] for n in shard.tests}
            blocks = _blocks(work, mine)
            queue = self.queues[node]
            for block in blocks:
                queue.append(sorted(i for t in block for i in where[work.nodeids[t]]))

    def _same_collections(self) -> bool:
        items = list(self.node2collection.items())
        first, col = items[0]
        same = True
        for node, collection in items[1:]:
            msg = report_collection_diff(col, collection, first.gateway.id, node.gateway.id)
            if msg:
                same = False
                self.log(msg)
                self.config.hook.pytest_collectreport(
                    report=pytest.CollectReport(
                        nodeid=node.gateway.id, outcome="failed", longrepr=msg, result=[]
                    )
                )
        return same

    # -- handing out work --------------------------------------------------------------------

    def _check_all(self) -> None:
        for node in sorted(self.node2pending, key=_node_key):
            self._check(node)

    def _check(self, node: WorkerController) -> None:
        if node.shutting_down or self.collection is None:
            return
        pending = self.node2pending[node]
        target = self._buffer_s()
        sent = False
        while len(pending) < LOW_WATER or self._held_s(pending) < target:
            chunk = self._next_chunk(node, target - self._held_s(pending))
            if not chunk:
                break
            self._send(node, chunk)
            sent = True
        if not sent and len(pending) < 2:
            node.shutdown()  # nothing left to give: run the last test now

    def _buffer_s(self) -> float:
        queued = sum(self._cost[i] for q in self.queues.values() for b in q for i in b)
        queued += sum(self._cost[i] for i in self.pending)
        share = BUFFER_SHARE * queued / max(1, len(self.node2pending))
        return min(BUFFER_MAX_S, max(BUFFER_MIN_S, share))

    def _held_s(self, pending: list[int]) -> float:
        """Predicted seconds a worker holds beyond the test it is running."""
        return sum(self._cost[i] for i in pending[1:])

    def _next_chunk(self, node: WorkerController, target_s: float) -> list[int]:
        if self.pending:
            chunk = self.pending[:CHUNK_TESTS]
            del self.pending[: len(chunk)]
            return chunk
        queue = self.queues[node]
        if not queue:
            self._steal_for(node)
        if not queue:
            return []
        block = queue[0]
        size, seconds = 0, 0.0
        while size < len(block) and size < CHUNK_TESTS and (seconds < target_s or size < 2):
            seconds += self._cost[block[size]]
            size += 1
        chunk = block[:size]
        del block[:size]
        if not block:
            queue.popleft()
        return chunk

    def _send(self, node: WorkerController, chunk: list[int]) -> None:
        self.node2pending[node].extend(chunk)
        held = self._held[node]
        for index in chunk:
            held.update(self._needs[index])
        node.send_runtest_some(chunk)

    def _queued_s(self, node: WorkerController) -> float:
        return sum(self._cost[i] for block in self.queues[node] for i in block)

    def _added_s(self, node: WorkerController, indexes: Sequence[int]) -> float:
        """Seconds ``node`` would spend on ``indexes``: own costs and fixtures it lacks."""
        held = self._held[node]
        new = {r for i in indexes for r in self._needs[i] if r not in held}
        return sum(self._cost[i] for i in indexes) + sum(self._resource_cost[r] for r in new)

    def _steal_for(self, thief: WorkerController) -> None:
        """Move work from the tail of the busiest queue to ``thief``'s while that ends earlier.

        Whole blocks first (the tail holds the shortest); then, if none moved, the second half
        of the last block, which splits a family only when the thief's repeated set-up is
        cheaper than the time it saves.
        """
        victims = [
            (self._queued_s(n), _node_key(n), n)
            for n in self.queues
            if n is not thief and self.queues[n]
        ]
        if not victims:
            return
        victim_s, _, victim = max(victims, key=lambda v: (v[0], v[1]))
        queue = self.queues[victim]
        stolen: list[list[int]] = []
        thief_s = 0.0
        while queue:
            block = queue[-1]
            own = sum(self._cost[i] for i in block)
            added = self._added_s(thief, block)
            if max(thief_s + added, victim_s - own) >= max(thief_s, victim_s):
                break
            thief_s += added
            victim_s -= own
            stolen.insert(0, queue.pop())
        if not stolen and queue:
            block = queue[-1]
            tail = block[len(block) // 2 :]
            own = sum(self._cost[i] for i in tail)
            thief_s = self._added_s(thief, tail)
            if len(tail) < len(block) and max(thief_s, victim_s - own) < victim_s:
                del block[len(block) // 2 :]
                stolen = [tail]
        self.queues[thief].extend(stolen)


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
