"""HeldSlots: the capacity timeline a QueuePlanner keeps across cycles, with every held slot in it.

Under backfill or fifo queueing a waiting Job holds its forecast slot: assume() reserves it, and
the Jobs behind see those GPUs as taken. Kept from cycle to cycle, the timeline saves deciding
every waiting Job again: a Job's slot depends only on the timeline before its start (its "view",
see CapacityTimeline), so while nothing ahead of it changes it keeps its slot. This module keeps
that timeline, which Jobs' slots are in it (the holders, in queue order), and each waiting Job's
view, and says whether the adapter's own timeline still shows what the planner left.
"""

from __future__ import annotations

from bisect import bisect_right, insort
from typing import Any

from .alarm_heap import AlarmHeap
from ..forecast import CapacityTimeline, Derived, INF, LocalSlot, occupation_digest
from ..decide import Evaluated
from ..model import JobRequest, Snapshot
from .queue_streams import Entry, find

Region = tuple[int, float, float]  # (node index, from, to): where a slot's GPUs are
Occupation = tuple[str, int, float]  # (node name, GPUs, until): a local start, as the adapter shows it


class View:
    """A waiting Job's last decision, as far as the next cycle needs it."""
    __slots__ = ("slot", "runtime", "gpus", "holds")

    def __init__(self, slot: LocalSlot, runtime: float, gpus: int, holds: bool):
        self.slot, self.runtime, self.gpus = slot, runtime, gpus  # gpus: per pod
        self.holds = holds  # its slot is in the kept timeline


def regions(view: View) -> list[Region]:
    """Where a held slot's GPUs are."""
    end = view.slot.start + view.runtime
    return [(i, view.slot.start, end) for i, _ in view.slot.nodes]


def same_slot(a: LocalSlot, b: LocalSlot) -> bool:
    """The same GPUs over the same time (a gang's pods may be listed in another order)."""
    return a.start == b.start and (a.nodes == b.nodes or sorted(a.nodes) == sorted(b.nodes))


def occupations(timeline: CapacityTimeline, job: JobRequest, result: Evaluated) -> list[Occupation]:
    """(node, GPUs, until) of a local start, as the adapter's timeline will show it."""
    return [(timeline.nodes[i].name, job.gpus_per_pod * count, result.slot.start + result.runtime)
            for i, count in result.slot.nodes]


class HeldSlots:
    def __init__(self) -> None:
        self.timeline: CapacityTimeline | None = None
        self.views: dict[str, View] = {}  # job key -> its last Wait
        self.holders: list[Entry] = []  # sorted entries of the Jobs whose slots the timeline holds
        self.slot_starts = AlarmHeap()  # (slot start, key) of the holders
        # What the adapter's timeline must show next cycle for this one to still hold (see mark())
        self._mark: tuple[Any, ...] | None = None
        self._nodes_seen: object = None

    def for_cycle(self, snapshot: Snapshot, derived: Derived, now: float) -> tuple[CapacityTimeline, bool]:
        """The timeline kept from the last cycle, if the adapter's own timeline (derived.capacity)
        shows exactly the pods the planner decided to start since, and nothing freed early; else a
        fresh copy of this cycle's timeline, no slot held, and every Job is decided again (True)."""
        base = derived.capacity
        if (self.timeline is not None and base is not None
                and self._mark == (id(base), base.gains, base.occupied, base.occupied_digest)
                and self._nodes_seen is snapshot.nodes):
            self.timeline.advance(now)
            return self.timeline, False
        for view in self.views.values():
            view.holds = False
        self.holders = []
        self.slot_starts.clear()
        self._nodes_seen = snapshot.nodes
        self.timeline = derived.timeline(now).copy()
        return self.timeline, True

    def mark(self, derived: Derived, started: list[Occupation], kept: bool) -> None:
        """Note what the adapter's timeline must show at the next cycle for this one's to still hold:
        the local starts of this cycle on top of what it showed (kept False: it cannot)."""
        base = derived.capacity
        if base is None or not kept:
            self._mark = None
            return
        digest = base.occupied_digest
        for node, gpus, until in started:
            digest = occupation_digest(digest, node, gpus, until)
        self._mark = (id(base), base.gains, base.occupied + len(started), digest)

    def last_held_start(self) -> float:
        """The latest start of a slot the kept timeline holds (-inf: none)."""
        return max((self.views[k].slot.start for _, k in self.holders), default=-INF)

    def remember(self, entry: Entry, view: View) -> None:
        """A Job's Wait, as the next cycle needs it; if it holds its slot, assume() has put it in
        the timeline already."""
        self.views[entry[1]] = view
        if view.holds:
            insort(self.holders, entry)
            self.slot_starts.push(view.slot.start, entry[1])

    def release(self, view: View, entry: Entry) -> None:
        """Take a held slot out of the kept timeline."""
        if self.timeline is not None:
            self.timeline.unreserve(view.slot, view.gpus, view.runtime)
        view.holds = False
        i = find(self.holders, entry)
        if i is not None:
            del self.holders[i]

    def hold_again(self, view: View, entry: Entry) -> None:
        """Put back a slot that release_behind() took out (its view has not changed)."""
        assert self.timeline is not None
        self.timeline.reserve(view.slot, view.gpus, view.runtime)
        view.holds = True
        insort(self.holders, entry)

    def release_behind(self, entry: Entry, nodes: set[int] | None = None) -> list[Entry]:
        """Take the slots of every Job queued behind entry (that uses one of these nodes; None: any)
        out of the kept timeline; their entries."""
        assert self.timeline is not None
        i = bisect_right(self.holders, entry)
        released = self.holders[i:]
        if nodes is not None:
            released = [e for e in released if any(n in nodes for n, _ in self.views[e[1]].slot.nodes)]
        for e in released:
            view = self.views[e[1]]
            self.timeline.unreserve(view.slot, view.gpus, view.runtime)
            view.holds = False
        if nodes is None:
            del self.holders[i:]
        else:
            kept = set(released)
            self.holders[i:] = [e for e in self.holders[i:] if e not in kept]
        return released

    def release_arrived(self, now: float, order: dict[str, Any]) -> set[str]:
        """Release the held slots that start now or have started; their keys."""
        def live(start: float, key: str) -> bool:
            view = self.views.get(key)
            return view is not None and view.holds and view.slot.start == start

        arrived = set()
        for key in self.slot_starts.pop_due(now, live):
            self.release(self.views[key], (order[key], key))
            arrived.add(key)
        return arrived

    def forget(self, entry: Entry) -> list[Region] | None:
        """A Job left the queue: forget its view, and give back its slot if it held one (where its
        GPUs were; None if it held none)."""
        view = self.views.pop(entry[1], None)
        if view is None or not view.holds:
            return None
        self.release(view, entry)
        return regions(view)
