"""ParkingLot: the Jobs a QueuePlanner left waiting for money, indexed by what could wake them.

A parked Job stays blocked while its namespace has less left than it needs, the instance type it
would burst on has quota for it, and it cannot start locally (see QueuePlanner._plan_in_full). A
cycle asks which parked Jobs one of those may no longer hold for: the answer comes from per-group
indexes (namespace by need, type by pods, shape by whether the earliest start has come), so it
costs the number of groups and of Jobs woken, not the number parked.
"""

from __future__ import annotations

import heapq
from bisect import bisect_right, insort
from typing import Callable

from .decide import EPSILON, REQUEUE_MIN_SECONDS, price_turns_at
from .values import value

Shape = tuple[int, int, "str | None"]  # GPUs per pod, pods, GPU product


@value
class Parked:
    entry: tuple  # (order key, job key): its place in the queue
    namespace: str
    shape: Shape
    need: float  # the least a burst would commit (Evidence.budget_needed_usd)
    earliest_start: float  # the earliest it could start locally when it was parked
    instance_type: str  # the type the burst would use (Evidence.budget_needed_type)
    lead: float | None = None  # Evaluated.price_lead: the wait price sends it out until turns_at

    @property
    def turns_at(self) -> float:
        return float("inf") if self.lead is None else price_turns_at(self.earliest_start, self.lead)


class ParkingLot:
    def __init__(self) -> None:
        self.jobs: dict[str, Parked] = {}
        self.entries: list[tuple] = []  # sorted queue entries of every parked Job
        self._by_need: dict[str, list[tuple[float, tuple]]] = {}  # namespace -> sorted (need, entry)
        self._by_type: dict[tuple[str, int], set[tuple]] = {}  # (instance type, pods) -> entries
        self._started: dict[Shape, set[tuple]] = {}  # shape -> entries whose earliest start has come
        self._starts: list[tuple[float, str]] = []  # (earliest start, key) still ahead, lazily cleaned
        # (when a cycle must look at it, key) for the Jobs the wait price sends out: see park()
        self._looks: list[tuple[float, str]] = []
        self._look_of: dict[str, float] = {}  # the live entry of each key in _looks

    def __len__(self) -> int:
        return len(self.jobs)

    def __contains__(self, key: str) -> bool:
        return key in self.jobs

    def park(self, key: str, parked: Parked, now: float) -> None:
        self.unpark(key)
        self.jobs[key] = parked
        insort(self.entries, parked.entry)
        insort(self._by_need.setdefault(parked.namespace, []), (parked.need, parked.entry))
        self._by_type.setdefault((parked.instance_type, parked.shape[1]), set()).add(parked.entry)
        if parked.earliest_start <= now:
            self._started.setdefault(parked.shape, set()).add(parked.entry)
        elif parked.earliest_start != float("inf"):
            heapq.heappush(self._starts, (parked.earliest_start, key))
        turns_at = parked.turns_at
        if turns_at != float("inf"):
            # Its Wait asked to be looked at again at turns_at, or (a requeue is never sooner than
            # REQUEUE_MIN_SECONDS) just after; plan() decides it at every cycle from then on.
            look = self._look_of[key] = max(turns_at, now + REQUEUE_MIN_SECONDS)
            heapq.heappush(self._looks, (look, key))

    def unpark(self, key: str) -> Parked | None:
        parked = self.jobs.pop(key, None)
        if parked is None:
            return None
        del self.entries[bisect_right(self.entries, parked.entry) - 1]
        needs = self._by_need[parked.namespace]
        del needs[bisect_right(needs, (parked.need, parked.entry)) - 1]
        self._by_type[(parked.instance_type, parked.shape[1])].discard(parked.entry)
        self._started.get(parked.shape, set()).discard(parked.entry)
        self._look_of.pop(key, None)
        return parked

    def candidates(self, now: float, budget_left: Callable[[str], float], quota_left: Callable[[str], float],
                   room: Callable[[Shape], bool]) -> list[tuple]:
        """Sorted entries of the parked Jobs that money, quota or free GPUs may let go this cycle.
        budget_left, quota_left and room are read at the start of the cycle: a cycle only takes
        dollars, quota and GPUs, so what they rule out stays ruled out for the whole cycle."""
        self._settle(now)
        woken: set[tuple] = set()
        # A Job the wait price sends out, from REQUEUE_MIN_SECONDS before its look on: plan() would
        # decide it at every such cycle, and each decision moves its requeue (QueuePlanner's
        # still_blocked() lets it through by the same test on turns_at).
        looks = self._looks
        while looks and looks[0][0] < now + REQUEUE_MIN_SECONDS:
            look, key = heapq.heappop(looks)
            if self._look_of.get(key) == look:
                woken.add(self.jobs[key].entry)
        for namespace, needs in self._by_need.items():
            left = budget_left(namespace) + EPSILON
            woken.update(entry for need, entry in needs[:bisect_right(needs, (left, ((float("inf"),), "")))])
        for (instance_type, pods), entries in self._by_type.items():
            if entries and quota_left(instance_type) < pods:
                woken |= entries
        for shape, entries in self._started.items():
            if entries and room(shape):
                woken |= entries
        return sorted(woken)

    def next_look(self, now: float) -> float | None:
        """When a cycle must next look at a parked Job: its earliest start has come, or its wait
        price stops sending it out (its Wait's requeue)."""
        self._settle(now)
        looks = self._looks
        while looks and self._look_of.get(looks[0][1]) != looks[0][0]:
            heapq.heappop(looks)
        times = [t for t in (self._starts[0][0] if self._starts else None, looks[0][0] if looks else None)
                 if t is not None]
        return min(times) if times else None

    def _settle(self, now: float) -> None:
        """Move the Jobs whose earliest start has come into _started (time only moves on)."""
        starts = self._starts
        while starts:
            start, key = starts[0]
            parked = self.jobs.get(key)
            if parked is not None and parked.earliest_start != start:
                parked = None  # parked again since, with another start
            if parked is not None and start > now:
                return
            heapq.heappop(starts)
            if parked is not None:
                self._started.setdefault(parked.shape, set()).add(parked.entry)
