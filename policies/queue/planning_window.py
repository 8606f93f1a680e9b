"""PlanningWindow: which queued Jobs a QueuePlanner plans under local.planningDepth.

plan() decides the first `depth` Jobs of the queue as it stands when a cycle starts, and tells
the rest "Wait, QueuedBeyondPlanningDepth". The window keeps that split between cycles, by queue
entry ((order key, job key), sorted): a Job that comes in behind the first `depth` stays behind,
one that comes in among them pushes the last planned one behind, and Jobs move up only when a
cycle starts (move_up()), as plan() would see them. A Job behind is told once, when it falls
behind (owed()); until it moves up, its decision changes only if it starts now (the QueuePlanner's
BackfillIndex finds those).
"""

from __future__ import annotations

from bisect import bisect_left, insort

from .queue_streams import Entry


class PlanningWindow:
    def __init__(self, depth: int):
        self.depth = depth
        self.planned: list[Entry] = []  # sorted entries of the Jobs planned
        self.behind: list[Entry] = []  # sorted entries of the Jobs queued behind them
        self._owed: set[Entry] = set()  # entries behind not yet told so

    def place(self, entry: Entry) -> tuple[bool, Entry | None]:
        """A Job joins the queue: whether it is planned, and the planned entry it pushes behind."""
        if (self.behind and entry > self.behind[0]) or (len(self.planned) >= self.depth and entry > self.planned[-1]):
            self._put_behind(entry)
            return False, None
        insort(self.planned, entry)
        if len(self.planned) <= self.depth:
            return True, None
        pushed = self.planned.pop()
        self._put_behind(pushed)
        return True, pushed

    def leave(self, entry: Entry) -> bool:
        """A Job leaves the queue: whether it was planned."""
        for entries in (self.planned, self.behind):
            i = bisect_left(entries, entry)
            if i < len(entries) and entries[i] == entry:
                del entries[i]
                self._owed.discard(entry)
                return entries is self.planned
        raise KeyError(entry)

    def move_up(self) -> list[Entry]:
        """At the start of a cycle: the entries that the Jobs gone from ahead let into the planned."""
        take = min(self.depth - len(self.planned), len(self.behind))
        if take <= 0:
            return []
        moving, self.behind[:take] = self.behind[:take], []
        self.planned += moving  # every one is behind every planned entry: the list stays sorted
        self._owed.difference_update(moving)
        return moving

    def owed(self) -> list[Entry]:
        """The entries behind not told so yet, in queue order; they count as told from now."""
        told, self._owed = sorted(self._owed), set()
        return told

    def room_behind(self) -> bool:
        """Whether Jobs wait behind while the planned ones are fewer than the depth: they move up at
        the next cycle, which should come soon."""
        return bool(self.behind) and len(self.planned) < self.depth

    def _put_behind(self, entry: Entry) -> None:
        insort(self.behind, entry)
        self._owed.add(entry)
