"""ParkingLot: the Jobs a QueuePlanner left waiting for money, indexed by what could wake them.

A parked Job stays blocked while its namespace has less left than it needs, the instance type it
would burst on has quota for it, and it cannot start locally (see held_slot_walk.py). A
cycle asks which parked Jobs one of those may no longer hold for: the answer comes from per-group
indexes (namespace by need, type by pods, shape by whether the earliest start has come), so it
costs the number of groups and of Jobs woken, not the number parked.
"""

from __future__ import annotations

import heapq
from bisect import bisect_right, insort
from dataclasses import replace
from typing import Callable, Iterator

from ..decide import EPSILON, REQUEUE_MIN_SECONDS, price_turns_at
from .queue_streams import Entry
from ..model import value

Shape = tuple[int, int, "str | None"]  # GPUs per pod, pods, GPU product


@value
class Parked:
    entry: Entry  # (order key, job key): its place in the queue
    namespace: str
    shape: Shape
    need: float  # the least a burst would commit (Evidence.budget_needed_usd)
    earliest_start: float  # the earliest it could start locally when it was parked
    instance_type: str  # the type the burst would use (Evidence.budget_needed_type)
    runtime: float  # its estimated run time on local GPUs (fixed: a parked Job is not volatile)
    lead: float | None = None  # Evaluated.price_lead: the wait price sends it out until turns_at

    @property
    def turns_at(self) -> float:
        return float("inf") if self.lead is None else price_turns_at(self.earliest_start, self.lead)


class ParkingLot:
    def __init__(self) -> None:
        self.jobs: dict[str, Parked] = {}
        self.entries: list[Entry] = []  # sorted queue entries of every parked Job
        self._by_need: dict[str, list[tuple[float, Entry]]] = {}  # namespace -> sorted (need, entry)
        self._by_type: dict[tuple[str, int], set[Entry]] = {}  # (instance type, pods) -> entries
        # (GPUs per pod, GPU product) -> sorted (runtime, entry) and (earliest start, entry): which
        # Jobs a free window could start sooner
        self._by_pod: dict[tuple[int, str | None], list[tuple[float, Entry]]] = {}
        self._by_pod_start: dict[tuple[int, str | None], list[tuple[float, Entry]]] = {}
        self._started: dict[Shape, set[Entry]] = {}  # shape -> entries whose earliest start has come
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
        insort(self._by_pod.setdefault(_pod(parked), []), (parked.runtime, parked.entry))
        self._index_start(key, parked, now)

    def move_start(self, key: str, earliest_start: float, now: float) -> None:
        """A parked Job stays parked, with another earliest start."""
        parked = self.jobs[key]
        self._unindex_start(parked)
        parked = self.jobs[key] = replace(parked, earliest_start=earliest_start)
        self._index_start(key, parked, now)

    def _unindex_start(self, parked: Parked) -> None:
        self._started.get(parked.shape, set()).discard(parked.entry)
        starts = self._by_pod_start[_pod(parked)]
        del starts[bisect_right(starts, (parked.earliest_start, parked.entry)) - 1]

    def _index_start(self, key: str, parked: Parked, now: float) -> None:
        """Index what its earliest start decides: when it may start, and when to look at it."""
        insort(self._by_pod_start.setdefault(_pod(parked), []), (parked.earliest_start, parked.entry))
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
        pods = self._by_pod[_pod(parked)]
        del pods[bisect_right(pods, (parked.runtime, parked.entry)) - 1]
        self._unindex_start(parked)
        self._look_of.pop(key, None)
        return parked

    def candidates(self, now: float, quota_left: Callable[[str], float], room: Callable[[Shape], bool]) -> list[Entry]:
        """Sorted entries of the parked Jobs that quota, free GPUs or the wait price may let go this
        cycle (money: affordable()). quota_left and room are read at the start of the cycle: a
        cycle only takes quota and GPUs, so what they rule out stays ruled out for the whole cycle."""
        self._settle(now)
        woken: set[Entry] = set()
        # A Job the wait price sends out, from REQUEUE_MIN_SECONDS before its look on: plan() would
        # decide it at every such cycle, and each decision moves its requeue (QueuePlanner's
        # HeldSlotWalk.still_blocked() lets it through by the same test on turns_at).
        looks = self._looks
        while looks and looks[0][0] < now + REQUEUE_MIN_SECONDS:
            look, key = heapq.heappop(looks)
            if self._look_of.get(key) == look:
                woken.add(self.jobs[key].entry)
        for (instance_type, pods), entries in self._by_type.items():
            if entries and quota_left(instance_type) < pods:
                woken |= entries
        for shape, entries in self._started.items():
            if entries and room(shape):
                woken |= entries
        return sorted(woken)

    def affordable(self, budget_left: Callable[[str], float]) -> list[Iterator[Entry]]:
        """Per namespace, the parked Jobs whose need what is left of its budget covers, in queue
        order. Each stream reads budget_left as it goes: a cycle only spends, so a Job it passes
        over stays unaffordable, and once what is left covers none of the rest, the stream ends
        (one burst usually takes what the others would have needed)."""
        streams = []
        for namespace, needs in self._by_need.items():
            k = bisect_right(needs, (budget_left(namespace) + EPSILON, _LAST))
            if k:
                streams.append(_affordable(sorted((entry, need) for need, entry in needs[:k]), namespace, budget_left))
        return streams

    def sped_up(self, after: Entry, windows: Callable[[int, str | None], list[tuple[float, float]]]) -> list[Entry]:
        """Sorted entries of the parked Jobs queued after `after` whose earliest start some new free
        window may bring forward: windows(GPUs per pod, product) lists (start, length) of the free
        intervals that GPUs given back touch. A Job needs one that starts before its earliest start
        (a lower bound of its true start) and is at least its run time long; its pods need nothing
        else of them, so this only narrows down whom to ask (CapacityTimeline.earliest_fit_on)."""
        picked: set[Entry] = set()
        jobs = self.jobs
        for pod, by_runtime in self._by_pod.items():
            if not by_runtime:
                continue
            by_start = self._by_pod_start[pod]
            for start, length in windows(*pod):
                # Read the shorter of the two lists that one condition cuts, checking the other.
                short_enough = bisect_right(by_runtime, (length, _LAST))
                late_from = bisect_right(by_start, (start, _LAST))
                if short_enough <= len(by_start) - late_from:
                    picked.update(e for _, e in by_runtime[:short_enough]
                                  if e > after and jobs[e[1]].earliest_start > start)
                else:
                    picked.update(e for _, e in by_start[late_from:] if e > after and jobs[e[1]].runtime <= length)
        return sorted(picked)

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


_LAST: Entry = ((float("inf"),), "")  # a queue entry after every Job


def _pod(parked: Parked) -> tuple[int, str | None]:
    return parked.shape[0], parked.shape[2]


def _affordable(items: list[tuple[Entry, float]], namespace: str, budget_left: Callable[[str], float]
                ) -> Iterator[Entry]:
    least = [0.0] * len(items)  # least[i]: the smallest need from item i on
    low = float("inf")
    for i in range(len(items) - 1, -1, -1):
        low = least[i] = min(low, items[i][1])
    for i, (entry, need) in enumerate(items):
        left = budget_left(namespace) + EPSILON
        if left < least[i]:
            return
        if need <= left:
            yield entry
