"""Which work an idle xdist worker takes from the worker furthest behind (no xdist here).

The controller keeps each worker's planned work as a queue of blocks (a fixture family each, or
a file's loose tests) and sends it in small chunks; a worker's *sent* tests are the ones it has
been given and not finished (the first is running, the second is its next item; only the rest
can be asked back, see docs/parallel.md). Queued blocks move only when that ends the two
workers' work earlier: the thief pays the set-up of every fixture instance it does not hold yet,
so a family is split only when the time saved beats the set-up it repeats. Sent tests are asked
back when that ends the pair's work no later: the thief is about to be shut down for good, and
the worker it takes from may be slower than predicted.
"""

from __future__ import annotations

import dataclasses
from collections import deque
from collections.abc import Iterable, Iterator, Sequence
from typing import Optional

#: A queued block moves only if that ends the pair's work at least this much earlier.
MIN_GAIN_S = 0.01
#: Float noise allowed when comparing predicted ends.
EPSILON = 1e-9
#: Tests a worker has been sent that it cannot give back: the running one and its next item.
UNSTEALABLE = 2


@dataclasses.dataclass(frozen=True)
class Costs:
    """Per collection index, predicted own seconds and the fixture instances it needs."""

    own: Sequence[float]
    needs: Sequence[tuple[int, ...]]
    resource_cost: Sequence[float]

    def seconds(self, indexes: Iterable[int]) -> float:
        return sum(self.own[i] for i in indexes)

    def added_s(self, held: set[int], indexes: Sequence[int]) -> float:
        """Seconds a worker holding the instances ``held`` spends on ``indexes``."""
        new = {r for i in indexes for r in self.needs[i] if r not in held}
        return self.seconds(indexes) + sum(self.resource_cost[r] for r in new)


@dataclasses.dataclass(frozen=True)
class Side:
    """The worker that takes: seconds it still works, instances it holds, its pace."""

    left_s: float
    held: set[int]
    #: Measured seconds per predicted second so far in this run (1.0 until known).
    pace: float = 1.0


class WorkQueue:
    """Blocks of collection indexes not sent yet, with their predicted seconds and the fixture
    instances they need kept current."""

    def __init__(self, costs: Costs, blocks: Iterable[list[int]] = ()) -> None:
        self.costs = costs
        self.blocks: deque[list[int]] = deque()
        self.seconds = 0.0
        self._needs: dict[int, int] = {}  # instance -> queued tests needing it
        for block in blocks:
            self.append(block)

    def __bool__(self) -> bool:
        return bool(self.blocks)

    def __iter__(self) -> Iterator[int]:
        return (i for block in self.blocks for i in block)

    def left_s(self, held: set[int]) -> float:
        """Seconds a worker holding the instances ``held`` spends on this queue."""
        cost = self.costs.resource_cost
        return self.seconds + sum(cost[r] for r in self._needs if r not in held)

    def saving_s(self, indexes: Sequence[int], held: Optional[set[int]] = None) -> float:
        """Seconds this queue's worker (holding ``held``) saves if ``indexes``, all queued
        here, leave: their own time and the instances nothing else queued needs."""
        count: dict[int, int] = {}
        for i in indexes:
            for r in self.costs.needs[i]:
                count[r] = count.get(r, 0) + 1
        cost = self.costs.resource_cost
        return self.costs.seconds(indexes) + sum(
            cost[r]
            for r, c in count.items()
            if self._needs.get(r) == c and (held is None or r not in held)
        )

    def append(self, block: list[int]) -> None:
        if block:
            self.blocks.append(block)
            self._added(block)

    def appendleft(self, block: list[int]) -> None:
        if block:
            self.blocks.appendleft(block)
            self._added(block)

    def pop(self) -> list[int]:
        """The last block."""
        block = self.blocks.pop()
        self._taken(block)
        return block

    def clear(self) -> list[int]:
        """Everything queued, in order; the queue is left empty."""
        out = [i for block in self.blocks for i in block]
        self.blocks.clear()
        self.seconds = 0.0
        self._needs.clear()
        return out

    def take_chunk(self, target_s: float, max_tests: int) -> list[int]:
        """The head of the first block: at least two tests (if it has them), at most
        ``max_tests``, stopping once ``target_s`` predicted seconds are reached."""
        if not self.blocks:
            return []
        block = self.blocks[0]
        size, seconds = 0, 0.0
        own = self.costs.own
        while size < len(block) and size < max_tests and (seconds < target_s or size < 2):
            seconds += own[block[size]]
            size += 1
        chunk = block[:size]
        del block[:size]
        if not block:
            self.blocks.popleft()
        self._taken(chunk)
        return chunk

    def split_last(self) -> list[int]:
        """The second half of the last block, taken off it ([] when it has one test)."""
        block = self.blocks[-1]
        half = len(block) // 2
        if half == 0:
            return []
        tail = block[half:]
        del block[half:]
        self._taken(tail)
        return tail

    def _added(self, indexes: Sequence[int]) -> None:
        self.seconds += self.costs.seconds(indexes)
        for i in indexes:
            for r in self.costs.needs[i]:
                self._needs[r] = self._needs.get(r, 0) + 1

    def _taken(self, indexes: Sequence[int]) -> None:
        if not self.blocks:
            self.seconds = 0.0
            self._needs.clear()
            return
        self.seconds = max(0.0, self.seconds - self.costs.seconds(indexes))
        for i in indexes:
            for r in self.costs.needs[i]:
                count = self._needs[r] - 1
                if count:
                    self._needs[r] = count
                else:
                    del self._needs[r]


def steal_queued(
    costs: Costs,
    thief: Side,
    victim_s: float,
    victim_pace: float,
    victim: WorkQueue,
    victim_held: Optional[set[int]] = None,
) -> list[list[int]]:
    """Blocks taken off the tail of ``victim``'s queue for the thief, in queue order.

    ``victim_s``: seconds the victim still works (sent and queued), at its pace;
    ``victim_held``: the instances it has (None: a worker not up yet, none). Whole blocks
    move while that ends the pair earlier (the tail holds the shortest); if none does, the
    second half of the last block, when the thief's repeated set-up costs less than it saves.
    """
    stolen: list[list[int]] = []
    thief_s = thief.left_s
    held = set(thief.held)
    while victim:
        block = victim.blocks[-1]
        added = costs.added_s(held, block) * thief.pace
        own = victim.saving_s(block, victim_held) * victim_pace
        if max(thief_s + added, victim_s - own) > max(thief_s, victim_s) - MIN_GAIN_S:
            break
        thief_s += added
        victim_s -= own
        held.update(r for i in block for r in costs.needs[i])
        stolen.insert(0, victim.pop())
    if not stolen and victim:
        block = victim.blocks[-1]
        tail = block[len(block) // 2 :]
        if len(tail) < len(block):
            own = victim.saving_s(tail, victim_held) * victim_pace
            added = costs.added_s(held, tail) * thief.pace
            if max(thief_s + added, victim_s - own) <= max(thief_s, victim_s) - MIN_GAIN_S:
                stolen = [victim.split_last()]
    return stolen


def steal_sent(
    costs: Costs,
    thief: Side,
    victim_s: float,
    victim_pace: float,
    victim_sent: Sequence[int],
) -> list[int]:
    """The tail of ``victim``'s sent tests to ask back for the thief ([] when none pays).

    ``victim_s`` is all the victim still works (its sent tests, with what is left of the running
    one, and its queue) at its pace; of the sent tests only those after the first
    ``UNSTEALABLE`` can move. The tail chosen ends the pair's work earliest (the longest of
    equals).
    """
    best_cut, best_end = len(victim_sent), max(thief.left_s, victim_s) + EPSILON
    tail_own = 0.0
    new: set[int] = set()
    tail_setup = 0.0
    for cut in range(len(victim_sent) - 1, UNSTEALABLE - 1, -1):
        index = victim_sent[cut]
        tail_own += costs.own[index]
        for r in costs.needs[index]:
            if r not in thief.held and r not in new:
                new.add(r)
                tail_setup += costs.resource_cost[r]
        end = max(
            thief.left_s + (tail_own + tail_setup) * thief.pace,
            victim_s - tail_own * victim_pace,
        )
        if end <= best_end:
            best_cut, best_end = cut, end + EPSILON
    return list(victim_sent[best_cut:])
