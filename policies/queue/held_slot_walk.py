"""HeldSlotWalk: one cycle of the held-slot mode (HeldSlotMode), as numbered steps.

It is plan() over the queue, deciding only the Jobs whose decision may differ from last cycle.
A waiting Job sees the kept timeline up to its place in the queue: its "view". Its slot depends
only on its view (see CapacityTimeline._single), so while nothing ahead of it changes, it keeps
its slot and its Wait, and is not decided again ("asleep") until one of these wakes it:
  - its slot comes (it may start) or, under atMaxWait timing, its max wait runs out: a heap of
    times, and review_at tells the caller when;
  - a change ahead of it in the queue: a slot taken, moved or given back, a local start that
    held no slot (queued ahead, it moves the view of everything behind), quota taken, or the
    timeline not being what the planner left (GPUs freed early, nodes changed, a pod started
    that it did not decide): then everything behind is decided again, as plan() would;
  - quota left changes for any type, or the cluster turns hot.
Money cannot wake it: a budget that pays for all of its burst's options or for none leaves the
burst rules weighing all of them (evaluate() weighs them as if paid when it can pay for none),
and any other budget weighs a subset, whose best is no better. What else could move its decision
only moves it towards waiting: the wait priced at waitUsdPerHour shrinks as its slot nears, and
under early timing its wait plus what it waited stays its slot minus its submission. A Job with
a deadline, a run time from history, a cloud side that the budget cut to some of its options, or
another reason to wait than local GPUs is decided every cycle, on its slot when its view is
unchanged. A search for a slot reads the timeline with the slots of the Jobs queued behind it
taken out: the walk releases them first, and decides those Jobs again in order.

A Job waiting for money holds no GPUs, dollars or quota (assume() records nothing for it), so
leaving it out changes no other decision. It is parked, and its decision is again "Wait,
BudgetExhausted" while, at its turn in the cycle:
  - the trigger that made it want to burst still holds. At its max wait (atMaxWait), or never
    fitting, that holds for good. A forecast past its max wait (early timing) holds while nothing
    ahead of it changes: then its slot stays where it was;
  - it cannot start now: the earliest it could start is still ahead, or its shape has too few
    GPUs free at this instant;
  - its namespace has less left than the least a burst would commit (Evidence.budget_needed_usd,
    fixed for a Job without a deadline);
  - the instance type it would burst on still has quota for its pods (else evaluate() would try
    the next type; the types before it offered nothing, whatever the money).
Each condition is checked for all parked Jobs at once where it can be: the budget per namespace
(read as the cycle spends) and the free GPUs per shape at the start of the cycle (a cycle only
takes GPUs and dollars). GPUs given back ahead wake only the parked Jobs behind them that a free
window there could start sooner (ParkingLot.sped_up); a single pod's new start is then its
earliest fit on those nodes, found without a full search. So a cycle costs what changed, not the
length of the queue. The caller must run a cycle at review_at.

The steps: 1. the wake set; 2. the merged streams; 3. per Job in queue order: (a) still parked,
(b) still asleep, (c) reuse its slot or search, (d) a parked Job's search, (e) evaluate and
assume, (f) what changed for the Jobs behind, (g) leave the queue, sleep or park; 4. re-hold the
slots taken out for nothing, and backfill from behind the planning depth.
"""

from __future__ import annotations

from typing import Any, Iterable, Protocol

from ..forecast import Derived, LocalSlot
from ..model import JobRequest, Placement, Snapshot
from ..decide import EPSILON, Evaluated, REQUEUE_MIN_SECONDS, price_turns_at, reserves
from .alarm_heap import AlarmHeap
from .held_slots import HeldSlots, Occupation, Region, View, occupations, regions, same_slot
from .parking import Parked, ParkingLot, Shape
from .queue_state import QueueState
from .queue_streams import BEFORE_EVERY_JOB, Entry, cursor_after
from .queue_walk import QueueWalk, decide_in_turn


class HeldSlotState(Protocol):
    """What a walk reads and changes of the mode that makes it (HeldSlotMode, held_slot_mode.py):
    named here, so that the walk need not import the mode that imports it (no import cycle)."""

    queue: QueueState
    active: list[Entry]  # sorted entries of the Jobs not parked
    parked: ParkingLot
    held: HeldSlots
    every_cycle: set[str]  # waiting Jobs whose decision may move with time alone
    alarms: AlarmHeap  # (time, key): a sleeping Job's slot or max wait comes
    removed_holder: Entry | None  # the first slot holder removed since the last cycle
    freed_regions: list[Region]  # where the slots given back since the last cycle were
    world_seen: tuple[Any, ...] | None  # (quota left per type, cluster hot) last cycle

    def due(self, now: float) -> set[str]: ...
    def remember(self, job: JobRequest, entry: Entry, result: Evaluated, holds: bool, now: float,
                 patient: bool) -> None: ...
    def review_at(self, now: float) -> float | None: ...
    def parked_start(self, job: JobRequest, result: Evaluated, patient: bool) -> float | None: ...
    def park(self, job: JobRequest, result: Evaluated, start: float) -> None: ...
    def unpark(self, key: str) -> None: ...


class HeldSlotWalk(QueueWalk):
    __slots__ = ("mode", "queue", "held", "parked", "quotas", "queueing", "patient", "fifo", "cycle", "timeline",
                 "change_at", "freed_nodes", "given_back", "freed_at", "sped_up", "no_room", "lefts", "woken", "out",
                 "started", "kept")

    def __init__(self, mode: HeldSlotState, snapshot: Snapshot, now: float, derived: Derived):
        queue = mode.queue
        QueueWalk.__init__(self, snapshot, now, derived, queue.jobs)
        self.mode, self.queue, self.held, self.parked = mode, queue, mode.held, mode.parked
        spec = queue.policy.spec
        self.quotas = spec.sage_maker.quotas
        self.queueing = spec.local.queueing
        self.patient = spec.local.burst_timing == "atMaxWait"
        self.fifo = spec.local.queueing == "fifo"
        self.cycle = cycle = queue.start_cycle(snapshot, now, derived)
        self.timeline, rebuilt = self.held.for_cycle(snapshot, derived, now)
        if rebuilt:
            mode.alarms.clear()
        cycle.timeline, cycle.timeline_shared = self.timeline, False
        # The first place in the queue behind which every Job is decided again (None: nowhere yet)
        self.change_at: Entry | None = BEFORE_EVERY_JOB if rebuilt else mode.removed_holder
        # The nodes on which GPUs were given back ahead of the Job being decided (None: any node)
        self.freed_nodes: set[int] | None = None if rebuilt else {i for i, _, _ in mode.freed_regions}
        self.given_back: list[Region] | None = None if rebuilt else mode.freed_regions
        mode.removed_holder, mode.freed_regions = None, []
        self.freed_at: Entry | None = None  # the first place behind which every parked Job is looked at
        self.sped_up: set[str] = set()  # parked Jobs behind GPUs given back that a window there may fit
        self.no_room: set[Shape] = set()  # shapes with too few GPUs free at this instant
        self.lefts: dict[str, float] = {}  # budget left per namespace, until the next burst this cycle
        self.woken: set[Entry] = set()
        self.out: set[str] = set()  # keys whose held slots are out of the timeline for now
        self.started: list[Occupation] = []  # (node, GPUs, until) of each local start
        self.kept = True  # False: a local start handed back to the queue left its slot in the timeline

    # --- 1. the wake set --------------------------------------------------------------------------

    def wake_set(self) -> set[Entry]:
        """The Jobs to decide: new ones, those decided every cycle, those an alarm or quota wakes,
        and (step 2) every Job behind a change. Slots that have come are taken out before anything
        reads GPUs free now: a Job queued ahead of their holders may take those GPUs first. Their
        holders are decided again."""
        mode, queue, order = self.mode, self.queue, self.queue.order
        woken = set(queue.new) | {(order[k], k) for k in mode.every_cycle}
        queue.new = []
        woken |= {(order[k], k) for k in mode.due(self.now)}
        self.out = self.held.release_arrived(self.now, order)
        woken |= {(order[k], k) for k in self.out}
        world = self.world()
        if world != mode.world_seen:
            woken.update(mode.active)
        mode.world_seen = world
        self.woken = woken
        return woken

    def world(self) -> tuple[tuple[float, ...], bool]:
        """What wakes every active Job when it changes: quota left per type, and the cluster hot."""
        spec, cycle = self.queue.policy.spec, self.cycle
        utilization = self.snapshot.utilization_over(spec.local.hot_window_seconds, self.now)
        return (tuple(cycle.quota_left(t) for t in sorted(self.quotas)),
                utilization is not None and utilization >= spec.local.hot_utilization_percent)

    # --- 2. the merged streams --------------------------------------------------------------------

    def merge_streams(self, woken: Iterable[Entry]) -> None:
        """The woken Jobs, the parked ones that quota, GPUs or money may let go, and the Jobs behind
        a change since the last cycle, merged in queue order."""
        candidates = self.parked.candidates(self.now, self.cycle.quota_left, self.room)
        QueueWalk.merge_streams(self, woken)
        self.streams.add(iter(candidates))
        for stream in self.parked.affordable(self.budget_left):
            self.streams.add(stream)
        if self.change_at is not None:
            entry, self.change_at = self.change_at, None
            self.changed_after(entry, regions=self.given_back)

    # --- 3. each Job, in queue order --------------------------------------------------------------

    def visit(self, entry: Entry, job: JobRequest) -> None:
        key, out = entry[1], self.out  # the entry's key: JobRequest.key builds the string each time
        unchanged = self.change_at is None or entry < self.change_at
        park = self.parked.jobs.get(key)
        parked_as_before = park is not None and self.still_blocked(park)
        if park is not None and parked_as_before and self.stays_parked(entry, job, park):  # (a)
            return
        view = self.held.views.get(key)
        if key in out and unchanged and entry not in self.woken:  # (b)
            # Asleep, its slot taken out only for a search ahead of it that moved nothing.
            assert view is not None
            self.held.hold_again(view, entry)
            out.discard(key)
            return
        held = view if view is not None and (view.holds or key in out) else None
        out.discard(key)
        if view is not None and view.holds:
            self.held.release(view, entry)
        slot = self.reuse_or_search(entry, job, held, unchanged)  # (c)
        if park is not None and not self.fifo and self.short_of_money(park):  # (d)
            slot = self.parked_search(job, park, parked_as_before)
            if slot is None:
                return
        result = decide_in_turn(job, self.cycle, self.decisions, slot)  # (e)
        self.queue.evaluated += 1
        holds = reserves(result, job, self.queueing)
        self.note_changes(entry, job, result, held, holds)  # (f)
        self.settle(entry, job, result, holds)  # (g)

    def stays_parked(self, entry: Entry, job: JobRequest, park: Parked) -> bool:
        """(a) A Job parked as before, not woken by GPUs given back ahead of it, stays parked. A
        single pod woken by them can start sooner only on their nodes (elsewhere GPUs were only
        taken, and the start it was parked with is never later than its true start), so its start
        is its earliest fit there if that comes sooner. Only slots behind it on those nodes are
        taken out."""
        if (self.freed_at is None or entry < self.freed_at) and entry[1] not in self.sped_up:
            return True
        if job.pods != 1 or self.freed_nodes is None or self.fifo:
            return False
        self.take_out_behind(entry, self.freed_nodes)
        start = self.cycle.timeline.earliest_fit_on(job.gpus_per_pod, park.runtime, job.gpu_product, self.freed_nodes)
        if start >= park.earliest_start:
            return True
        if stays_parked(park, start, self.now):
            self.parked.move_start(entry[1], start, self.now)
            return True
        return False

    def reuse_or_search(self, entry: Entry, job: JobRequest, held: View | None, unchanged: bool) -> LocalSlot | None:
        """(c) Its view is as before, so a search would find its slot again: reuse it. A single pod
        that may start now is searched for: it takes the best-fitting node free now. A search must
        not see the slots of Jobs queued behind it: take them out, and put each back as the walk
        reaches it if this Job's decision moved nothing it sees."""
        now = self.now
        if (unchanged and held is not None and self.cycle.derived.runtime(job)[0] == held.runtime
                and (held.slot.start > now or (held.slot.start == now and job.pods > 1))):
            return held.slot
        self.take_out_behind(entry)
        if self.fifo:  # no Job starts before a slot held ahead of it (assume() for the skipped ones)
            self.cycle.not_before = max(self.cycle.not_before, self.held.last_held_start())
        return None

    def parked_search(self, job: JobRequest, park: Parked, parked_as_before: bool) -> LocalSlot | None:
        """(d) A parked Job still short of money: the search's timeline is its view (the slots behind
        it are out); if its start keeps it waiting for money, it stays parked, at that start (None).
        Woken only by GPUs given back ahead, a gang can start sooner only if one of its pods fits
        sooner on one of their nodes (the start it was parked with is never later than its true
        start: GPUs taken only delay it). A single pod was looked at that way in (a)."""
        timeline, now = self.cycle.timeline, self.now
        if (parked_as_before and job.pods > 1 and self.freed_nodes is not None
                and timeline.earliest_fit_on(job.gpus_per_pod, park.runtime, job.gpu_product,
                                             self.freed_nodes) >= park.earliest_start):
            return None
        slot = timeline.earliest_start(job.gpus_per_pod, job.pods, job.gpu_product,
                                       self.cycle.derived.runtime(job)[0], now)
        if stays_parked(park, slot.start, now):
            if slot.start != park.earliest_start:
                self.parked.move_start(job.key, slot.start, now)
            return None
        return slot

    def note_changes(self, entry: Entry, job: JobRequest, result: Evaluated, held: View | None, holds: bool) -> None:
        """(f) What the Jobs behind see changes if its GPUs do (a slot taken, moved or given back; a
        start that held no slot) or if it takes quota."""
        d = result.decision
        if d.placement == Placement.LOCAL and holds:
            if result.slot.start > self.now:  # a start handed back to the queue: the caller re-adds it
                self.kept = False
            self.started += occupations(self.timeline, job, result)
        moved = (held is not None or holds) and not (
            held is not None and holds and same_slot(held.slot, result.slot) and held.runtime == result.runtime)
        quota_taken = d.placement.is_cloud and d.launch is not None and d.launch.instance_type in self.quotas
        if moved or quota_taken:
            self.changed_after(entry, freed=held is not None or quota_taken,
                               regions=None if quota_taken else regions(held) if held is not None else [])
        if d.placement.is_cloud:
            self.lefts.clear()

    def settle(self, entry: Entry, job: JobRequest, result: Evaluated, holds: bool) -> None:
        """(g) A Job placed leaves the queue; a Wait is remembered, and parked if it waits for money
        on a trigger that holds by itself."""
        if result.decision.placement != Placement.WAIT:
            self.queue.remove(entry[1])
            return
        self.mode.remember(job, entry, result, holds, self.now, self.patient)
        start = self.mode.parked_start(job, result, self.patient)
        if start is not None:
            self.mode.park(job, result, start)
        else:
            self.mode.unpark(entry[1])

    # --- what the steps ask -----------------------------------------------------------------------

    def changed_after(self, entry: Entry, freed: bool = True, regions: list[Region] | None = None) -> None:
        """The view of every Job behind entry may have changed: release their slots, decide them
        all. A parked Job holds no slot and stays parked while it cannot start: GPUs taken ahead
        of it only push its start later. So parked Jobs are decided again only if GPUs were given
        back, in `regions` (node, from, to), and a window there may start them sooner; or, with
        no regions, if quota was taken (which may move a burst to another type) or anything may
        have changed: then every parked Job behind is looked at."""
        if self.change_at is None or entry < self.change_at:
            self.change_at = entry
            self.held.release_behind(entry)
            self.streams.add(cursor_after(self.mode.active, entry))
        if not freed:
            return
        if regions is None or self.freed_nodes is None:
            if self.freed_at is None or entry < self.freed_at:
                self.freed_at = entry
                self.streams.add(cursor_after(self.parked.entries, entry))
            return
        self.freed_nodes.update(i for i, _, _ in regions)
        timeline = self.cycle.timeline
        # Read after the slots behind entry are out: the freest the timeline gets for them.
        picked = self.parked.sped_up(entry, lambda gpus, product: timeline.windows_within(gpus, product, regions))
        self.sped_up.update(key for _, key in picked)
        self.streams.add(iter(picked))

    def take_out_behind(self, entry: Entry, nodes: set[int] | None = None) -> None:
        """Take the slots of the Jobs queued behind entry (on these nodes) out for a search; the
        walk puts each back as it reaches it if nothing it sees moved."""
        behind = self.held.release_behind(entry, nodes)
        if behind:
            self.out.update(k for _, k in behind)
            self.streams.add(iter(behind))

    def budget_left(self, namespace: str) -> float:
        return self.cycle.budget_left(namespace)[0]

    def short_of_money(self, park: Parked) -> bool:
        """Its burst is still blocked by the budget alone."""
        left = self.lefts.get(park.namespace)
        if left is None:
            left = self.lefts[park.namespace] = self.budget_left(park.namespace)
        if left + EPSILON >= park.need:
            return False
        # The type it would burst on must still have quota, or evaluate() tries another type.
        return park.instance_type not in self.quotas or self.cycle.quota_left(park.instance_type) >= park.shape[1]

    def still_blocked(self, park: Parked) -> bool:
        if park.turns_at < self.now + REQUEUE_MIN_SECONDS:
            return False  # the wait price may no longer send it out (see ParkingLot)
        if self.now >= park.earliest_start and self.room(park.shape):
            return False  # it may start now
        return self.short_of_money(park)

    def room(self, shape: Shape) -> bool:
        if shape not in self.no_room:
            if self.cycle.timeline.may_fit_now(*shape):
                return True
            self.no_room.add(shape)  # a cycle only takes GPUs: it stays so for the rest of the cycle
        return False

    # --- 4. re-hold, and backfill -----------------------------------------------------------------

    def after_walk(self) -> None:
        """Put back the slots taken out for nothing, backfill from behind the planning depth, and
        note what the kept timeline now holds."""
        queue, held = self.queue, self.held
        for key in self.out:  # every one was walked to; this only keeps the timeline whole if not
            if key in queue.jobs and not held.views[key].holds:
                held.hold_again(held.views[key], (queue.order[key], key))
        if queue.window is not None:
            if self.fifo:  # no Job starts before a slot held ahead of it, as assume() keeps it
                self.cycle.not_before = max(self.cycle.not_before, held.last_held_start())
            for job, result in queue.backfill_behind(self.cycle, self.decisions):
                self.started += occupations(self.timeline, job, result)
        held.mark(self.derived, self.started, self.kept)

    # --- 5. when to look again --------------------------------------------------------------------

    def review_at(self) -> float | None:
        return self.mode.review_at(self.now)


def stays_parked(park: Parked, start: float, now: float) -> bool:
    """Whether a parked Job whose budget still falls short, found able to start at `start`, would
    get the same Wait for money from evaluate(). Sent out by the wait price: while the price still
    holds at least REQUEUE_MIN_SECONDS on (its Wait's requeue moves, which the ParkingLot follows by
    its start). Sent out for good (never fitting, at its max wait): if it can start no earlier than
    it was parked with (the trigger is unchanged, and it cannot start now)."""
    if start <= now:
        return False
    if park.lead is not None:
        return start != float("inf") and price_turns_at(start, park.lead) >= now + REQUEUE_MIN_SECONDS
    return start >= park.earliest_start
