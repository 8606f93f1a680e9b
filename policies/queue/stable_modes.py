"""The QueuePlanner's modes for a stable policy (see stability.why_not_stable).

Under a stable policy a waiting Job's decision changes only when its max wait runs out or local
GPUs free up so that it fits now; so a cycle decides the new and volatile Jobs, those whose max
wait has run out (a heap of timeouts), and, depending on queueing:
  - outOfOrder: a waiting Job holds no GPUs, so leaving it out changes nobody else's decision.
    Whether enough GPUs are free at this instant is the same for every Job of a shape (GPUs per
    pod, pods, GPU product), is necessary for starting now, and once false in a cycle stays false
    for the rest of it (a cycle only takes GPUs), so a shape that fails it is skipped whole.
  - fifo: the queue is decided from its head up to the first Job that must wait for a future
    slot; behind it only new and timed-out Jobs are decided (FifoWalk).
"""

from __future__ import annotations

import math
from bisect import insort
from typing import Iterable

from .alarm_heap import AlarmHeap
from ..forecast import CapacityTimeline, Derived, INF
from ..model import Decision, Evidence, JobRequest, Placement, Snapshot
from ..decide import Cycle, REQUEUE_MIN_SECONDS
from .parking import Shape
from .plan_result import Plan
from .queue_state import QueueState
from .queue_streams import Entry, cursor, find, remove
from .stability import volatile
from .queue_walk import QueueWalk, decide_in_turn

TIMEOUT_SLACK = 1e-6  # look a hair early; evaluate() has the exact word
ROUNDING_STEP = 1e-3  # seconds: far above what an absolute time in 2026 can resolve (about 0.2 us)


class StableMode:
    """What both stable modes keep: each waiting Job's max wait (when to decide it again) and its
    forecast start when it was last decided."""

    def __init__(self, queue: QueueState):
        self.queue = queue
        self.timeouts = AlarmHeap()  # (submit + max wait, job key)
        self.timeout_of: dict[str, float] = {}  # the live alarm of each key in timeouts
        self.slot_start: dict[str, float] = {}  # a waiting Job's forecast start, when it was last decided

    def admit(self, entry: Entry) -> None:
        """A Job joins the planned queue (it is decided at the next cycle: QueuePlanner.new)."""

    def forget(self, entry: Entry, found: bool) -> None:
        """A Job left the queue (`found`: its entry was taken out of the planner's lists already)."""
        self.timeout_of.pop(entry[1], None)
        self.slot_start.pop(entry[1], None)

    def plan(self, snapshot: Snapshot, now: float, derived: Derived) -> Plan:
        raise NotImplementedError

    def due(self, now: float) -> list[str]:
        """The queued Jobs whose max wait has run out by now."""
        due = self.timeouts.pop_due(now + TIMEOUT_SLACK, self._timeout_is_live)
        for key in due:
            del self.timeout_of[key]
        return due

    def _timeout_is_live(self, at: float, key: str) -> bool:
        return self.timeout_of.get(key) == at

    def decide(self, key: str, cycle: Cycle, decisions: list[Decision]) -> Placement:
        """Decide one Job in turn; it leaves the queue unless it waits."""
        queue = self.queue
        result = decide_in_turn(queue.jobs[key], cycle, decisions)
        queue.evaluated += 1
        if result.decision.placement == Placement.WAIT:
            self.note_waiting(key, result.decision.evidence)
        else:
            queue.remove(key)
        return result.decision.placement

    def note_waiting(self, key: str, evidence: Evidence) -> None:
        """A Job waits: decide it again when its max wait (as evaluate() worked it out) runs out,
        or when its shape may fit; a volatile Job, at every cycle."""
        queue = self.queue
        job, order = queue.jobs[key], queue.order[key]
        if volatile(job):
            insort(queue.new, (order, key))  # decided again next cycle
            return
        self.file_waiting(job, (order, key))
        self.slot_start[key] = evidence.local_start_time
        timeout = job.submit_time + evidence.local_max_wait_seconds
        if timeout < evidence.now - TIMEOUT_SLACK:
            return  # it waits on past its max wait (nothing to burst to): only fitting locally moves it
        if math.isfinite(timeout) and self.timeout_of.get(key) != timeout:
            self.timeout_of[key] = timeout
            self.timeouts.push(timeout, key)

    def file_waiting(self, job: JobRequest, entry: Entry) -> None:
        """Where the mode looks for a waiting Job again, besides its timeout."""

    def review_at(self, now: float) -> float | None:
        """When a skipped Job's max wait next runs out: the caller must run a cycle by then. Exact,
        not floored at REQUEUE_MIN_SECONDS as a Wait's requeue is, so a timeout is never seen late."""
        timeout = self.timeouts.next_time(self._timeout_is_live)
        # A timeout a hair away (evaluate() found the Job a rounding error short of it) is looked at
        # again just after, not at the next REQUEUE_MIN_SECONDS as a Wait's requeue would be.
        return None if timeout is None else max(timeout, now + ROUNDING_STEP)


class ShapeRoom:
    """Whether a shape may start now: enough GPUs free at this instant. Necessary, so skipping on
    False is exact; True means "decide them". Asked once per shape until GPUs are taken."""

    __slots__ = ("base", "cycle", "_fits", "_most_free")

    def __init__(self, base: CapacityTimeline):
        self.base = base  # the snapshot's timeline, read until a Job is decided
        self.cycle: Cycle | None = None  # made when the first Job is decided
        self._fits: dict[Shape, bool] = {}
        self._most_free: dict[str | None, int] = {}

    def fits_now(self, shape: Shape) -> bool:
        fits = self._fits.get(shape)
        if fits is None:
            timeline = self.base if self.cycle is None else self.cycle.timeline
            gpus, pods, product = shape
            if product not in self._most_free:
                self._most_free[product] = timeline.max_free_now(product)
            fits = self._fits[shape] = self._most_free[product] >= gpus and (
                pods == 1 or timeline.may_fit_now(gpus, pods, product))
        return fits

    def gpus_taken(self) -> None:
        """A Job started: the shapes that fitted must be asked again (those that did not still do not)."""
        self._fits = {k: v for k, v in self._fits.items() if not v}
        self._most_free.clear()


class OutOfOrderMode(StableMode):
    def __init__(self, queue: QueueState):
        super().__init__(queue)
        self.waiting: dict[Shape, list[Entry]] = {}  # sorted entries per shape

    def forget(self, entry: Entry, found: bool) -> None:
        super().forget(entry, found)
        if found:
            return
        for entries in self.waiting.values():  # a Job waits under one shape only
            if remove(entries, entry):
                break

    def file_waiting(self, job: JobRequest, entry: Entry) -> None:
        entries = self.waiting.setdefault((job.gpus_per_pod, job.pods, job.gpu_product), [])
        if find(entries, entry) is None:
            insort(entries, entry)

    def plan(self, snapshot: Snapshot, now: float, derived: Derived) -> Plan:
        return OutOfOrderWalk(self, snapshot, now, derived).run()


class OutOfOrderWalk(QueueWalk):
    """One cycle of OutOfOrderMode: the woken Jobs, and the waiting ones of each shape that fits now."""

    __slots__ = ("mode", "room", "shapes")

    def __init__(self, mode: OutOfOrderMode, snapshot: Snapshot, now: float, derived: Derived):
        QueueWalk.__init__(self, snapshot, now, derived, mode.queue.jobs)
        self.mode = mode
        # The cycle (a copy of the timeline to assume decisions on) is made only when a Job is
        # decided; until then the checks read the snapshot's timeline, which is the same.
        self.room = ShapeRoom(derived.timeline(now))
        self.shapes: list[Shape | None] = [None]  # the shape of each stream (None: the woken Jobs)

    def wake_set(self) -> list[Entry]:
        """1. The new Jobs and those whose max wait ran out."""
        queue = self.mode.queue
        woken = [*queue.new, *((queue.order[k], k) for k in self.mode.due(self.now))]
        queue.new = []
        return woken

    def merge_streams(self, woken: Iterable[Entry]) -> None:
        """2. The woken Jobs, and the waiting Jobs of every shape that fits now (many cycles have
        none: a Job ended and nothing fits)."""
        QueueWalk.merge_streams(self, woken)
        for shape, entries in self.mode.waiting.items():
            if entries and self.room.fits_now(shape):
                self.streams.add(cursor(entries))
                self.shapes.append(shape)

    gated = True

    def reads_on(self, s: int, entry: Entry) -> bool:
        """No Job of stream s's shape fits any more this cycle: drop the whole stream."""
        shape = self.shapes[s]
        return shape is None or self.room.fits_now(shape)

    def visit(self, entry: Entry, job: JobRequest) -> None:
        """3. Decided and assumed; a local start takes GPUs, so the shapes that fitted are asked again."""
        room = self.room
        if room.cycle is None:
            room.cycle = self.mode.queue.start_cycle(self.snapshot, self.now, self.derived)
        if self.mode.decide(entry[1], room.cycle, self.decisions) == Placement.LOCAL:
            room.gpus_taken()

    def after_walk(self) -> None:
        """4. Backfill from behind the planning depth."""
        queue = self.mode.queue
        if queue.window is not None and queue.window.behind:
            cycle = self.room.cycle or queue.start_cycle(self.snapshot, self.now, self.derived)
            queue.backfill_behind(cycle, self.decisions)

    def review_at(self) -> float | None:
        return self.mode.review_at(self.now)


class FifoMode(StableMode):
    def __init__(self, queue: QueueState):
        super().__init__(queue)
        self.order: list[Entry] = []  # every queued entry, sorted: the walk starts from the head

    def admit(self, entry: Entry) -> None:
        insort(self.order, entry)

    def forget(self, entry: Entry, found: bool) -> None:
        super().forget(entry, found)
        i = find(self.order, entry)
        assert i is not None, entry
        del self.order[i]

    def plan(self, snapshot: Snapshot, now: float, derived: Derived) -> Plan:
        return FifoWalk(self, snapshot, now, derived).run()


class FifoWalk(QueueWalk):
    """One cycle of FifoMode. plan() decides the queue from its head; the first Job that must wait
    for a future slot (the blocker) sets the cycle's not_before past now, so no Job behind it can
    start this cycle whatever its own slot. Behind the blocker a Job's decision is then Wait until
    its max wait runs out (patient timing, no price, budget or quota), so only Jobs that are new or
    due are decided there. Their placement and reason are plan()'s; their forecast leaves out the
    slots of the Jobs skipped between them and the blocker (so their evidence may show local GPUs
    sooner than plan() would). A volatile Job reads its own slot, so the walk goes on, deciding
    every Job, up to the last volatile one."""

    __slots__ = ("mode", "cycle", "woken", "fresh", "walk_to", "look_again")

    def __init__(self, mode: FifoMode, snapshot: Snapshot, now: float, derived: Derived):
        QueueWalk.__init__(self, snapshot, now, derived, mode.queue.jobs)
        self.mode = mode
        self.cycle = mode.queue.start_cycle(snapshot, now, derived)
        self.woken: Iterable[Entry] = ()  # in queue order
        self.fresh: set[str] = set()  # the woken Jobs' keys
        self.walk_to: Entry | None = None  # the last volatile woken Job: the head is walked up to it
        self.look_again: float | None = None  # when the blocker's slot comes

    def wake_set(self) -> list[Entry]:
        """1. The new Jobs and those whose max wait ran out."""
        queue = self.mode.queue
        woken = sorted({*queue.new, *((queue.order[k], k) for k in self.mode.due(self.now))})
        queue.new = []
        self.fresh = {key for _, key in woken}
        # A volatile Job (a deadline, say) reads its own slot, which the Jobs ahead of it move: walk
        # the whole queue up to the last of them, as plan() does.
        self.walk_to = max((e for e in woken if volatile(queue.jobs[e[1]])), default=None)
        return woken

    def merge_streams(self, woken: Iterable[Entry]) -> None:
        """2. Two streams read one after the other, not merged: the queue from its head, while a Job
        may start now, then the woken Jobs behind where the head stopped (walk)."""
        self.woken = woken

    def walk(self) -> None:
        """3. The queue from its head to the blocker (or past the last volatile Job), each Job
        visited; then, behind it, the woken Jobs only."""
        jobs, cycle, now, walk_to = self.jobs, self.cycle, self.now, self.walk_to
        walked: Entry | None = None
        for entry in cursor(self.mode.order):
            if cycle.not_before > now and (walk_to is None or entry > walk_to):
                break
            walked = entry
            self.visit(entry, jobs[entry[1]])
        if walked is None:
            return
        for entry in self.woken:
            if entry > walked and entry[1] in jobs:
                self.visit(entry, jobs[entry[1]])

    def visit(self, entry: Entry, job: JobRequest) -> None:
        """3. Decided and assumed, unless it is a waiting Job at the head that still blocks: plan()
        would find it waiting again for a future slot, which sets not_before past now; where
        exactly that slot is, only the (skipped) evidence of the Jobs behind would show."""
        key, cycle = entry[1], self.cycle
        if self.walk_to is None and key not in self.fresh and self.still_blocks(job):
            start = self.mode.slot_start[key]
            cycle.not_before = max(cycle.not_before, start)
            self.look_again = start  # as its Wait would have asked (requeue at its slot)
            return
        self.mode.decide(key, cycle, self.decisions)

    def still_blocks(self, job: JobRequest) -> bool:
        """A waiting Job at the head of the queue (not new, volatile or due) that cannot start now:
        free GPUs at this instant are necessary for that. Its last forecast must be in the future."""
        if self.mode.slot_start.get(job.key, -INF) <= self.now or volatile(job):
            return False
        timeline = self.cycle.timeline
        return not (timeline.max_free_now(job.gpu_product) >= job.gpus_per_pod
                    and (job.pods == 1 or timeline.may_fit_now(job.gpus_per_pod, job.pods, job.gpu_product)))

    def after_walk(self) -> None:
        """4. Backfill from behind the planning depth."""
        queue = self.mode.queue
        if queue.window is not None:
            queue.backfill_behind(self.cycle, self.decisions)

    def review_at(self) -> float | None:
        review_at = self.mode.review_at(self.now)
        if self.look_again is None:
            return review_at
        look_again = max(self.look_again, self.now + REQUEUE_MIN_SECONDS)
        return look_again if review_at is None else min(review_at, look_again)
