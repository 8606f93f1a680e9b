"""HeldSlotMode: the QueuePlanner's mode for every policy that is not stable.

Backfill queueing, early bursts, a wait price, budgets and quotas make a waiting Job's decision
depend on the Jobs ahead of it, on time and on money. This mode keeps, across cycles, the capacity
timeline with every held slot reserved (HeldSlots), so that a cycle decides only the Jobs whose
decision may differ from last time; see HeldSlotWalk for one cycle's steps and why each Job left
out would get the same Wait. What it keeps besides the timeline:
  - the active queue (every Job not parked) and the ParkingLot (the Jobs waiting for money);
  - the Jobs decided at every cycle, and the alarms (a sleeping Job's slot comes, or its max wait
    runs out) that wake the others;
  - what changed between cycles: the first slot holder that left, and where its GPUs were.
"""

from __future__ import annotations

import math
from bisect import insort
from typing import Any

from .alarm_heap import AlarmHeap
from ..forecast import Derived, INF
from ..model import JobRequest, Reason, Snapshot, next_utc_midnight
from ..decide import Evaluated, local_max_wait
from .held_slot_walk import HeldSlotWalk
from .held_slots import HeldSlots, Region, View
from .parking import Parked, ParkingLot
from .plan_result import Plan
from .queue_state import QueueState
from .queue_streams import Entry, remove
from .stability import volatile
from .stable_modes import ROUNDING_STEP, TIMEOUT_SLACK


class HeldSlotMode:
    def __init__(self, queue: QueueState, *, track_active: bool):
        """track_active: keep the active queue (False under a stable policy, whose planner walks
        this mode only when the snapshot carries utilization; see QueuePlanner)."""
        self.queue = queue
        self.track_active = track_active
        self.active: list[Entry] = []  # sorted entries of the Jobs not parked
        self.parked = ParkingLot()
        self.held = HeldSlots()
        self.every_cycle: set[str] = set()  # waiting Jobs whose decision may move with time alone
        self.alarms = AlarmHeap()  # (time, key): a sleeping Job's slot or max wait comes
        self.removed_holder: Entry | None = None  # the first slot holder removed since the last cycle
        self.freed_regions: list[Region] = []  # where the slots given back since the last cycle were
        self.world_seen: tuple[Any, ...] | None = None  # (quota left per type, cluster hot) last cycle

    def admit(self, entry: Entry) -> None:
        if self.track_active:
            insort(self.active, entry)

    def forget(self, entry: Entry) -> bool:
        """A Job left the queue: forget what was kept for it; whether it was in the active queue.
        A slot it held is given back: the Jobs behind it may move up at the next cycle."""
        key = entry[1]
        self.every_cycle.discard(key)
        given_back = self.held.forget(entry)
        if given_back is not None:
            self.removed_holder = min(self.removed_holder or entry, entry)
            self.freed_regions += given_back
        if key in self.parked:
            self.parked.unpark(key)
            return False
        return bool(self.active) and remove(self.active, entry)

    def plan(self, snapshot: Snapshot, now: float, derived: Derived) -> Plan:
        return HeldSlotWalk(self, snapshot, now, derived).run()

    # --- what a Wait leaves for the next cycles ---------------------------------------------------

    def remember(self, job: JobRequest, entry: Entry, result: Evaluated, holds: bool, now: float,
                 patient: bool) -> None:
        """A Wait: note what it was decided on, and whether it may sleep until an alarm wakes it."""
        key, slot = job.key, result.slot
        self.held.remember(entry, View(slot, result.runtime, job.gpus_per_pod, holds))
        if not _may_sleep(job, result, holds, now, patient):
            self.every_cycle.add(key)
            return
        self.every_cycle.discard(key)
        self.alarms.push(slot.start, key)
        timeout = job.submit_time + result.decision.evidence.local_max_wait_seconds
        if patient and math.isfinite(timeout):
            self.alarms.push(timeout, key)

    def alarm_is_live(self, at: float, key: str) -> bool:
        view = self.held.views.get(key)
        if view is None or key in self.every_cycle or key in self.parked:
            return False
        job = self.queue.jobs[key]
        return at == view.slot.start or at == job.submit_time + local_max_wait(job, self.queue.policy, view.runtime)

    def due(self, now: float) -> set[str]:
        """The sleeping Jobs an alarm wakes by now."""
        return set(self.alarms.pop_due(now + TIMEOUT_SLACK, self.alarm_is_live))

    def review_at(self, now: float) -> float | None:
        """When the caller must run a cycle at the latest: an alarm, a budget reset (UTC midnight;
        month starts are midnights too), or a parked Job's earliest start or its wait price's turn."""
        review_at = None
        if self.parked:
            review_at = next_utc_midnight(now)
            start = self.parked.next_look(now)
            if start is not None:
                review_at = min(review_at, start)
        alarm = self.alarms.next_time(self.alarm_is_live)
        if alarm is not None:
            alarm = max(alarm, now + ROUNDING_STEP)
            review_at = alarm if review_at is None else min(review_at, alarm)
        return review_at

    # --- the Jobs waiting for money ---------------------------------------------------------------

    def parked_start(self, job: JobRequest, result: Evaluated, patient: bool) -> float | None:
        """For a Wait for money whose trigger does not depend on what changes by itself (see
        HeldSlotWalk): the earliest it could start locally, as things stand. None: not parkable.
        A Job the wait price sends out is parked too: the price of its wait shrinks as its slot
        nears, so its trigger holds until its turns_at (Parked; the ParkingLot wakes it then)."""
        d = result.decision
        ev = d.evidence
        if d.reason != Reason.BUDGET_EXHAUSTED or ev.budget_needed_usd is None or volatile(job):
            return None
        start = ev.local_start_time  # exact, gangs included (CapacityTimeline.earliest_start)
        if start == INF or (ev.waited_seconds >= ev.local_max_wait_seconds if patient
                            else start - job.submit_time > ev.local_max_wait_seconds):
            return start  # never fits; at its max wait; or even its earliest start is past it
        if result.price_lead is not None:
            return start  # the wait price sends it out until its turns_at
        return None

    def park(self, job: JobRequest, result: Evaluated, start: float) -> None:
        key = job.key
        entry = (self.queue.order[key], key)
        self.every_cycle.discard(key)
        if key not in self.parked:
            remove(self.active, entry)
        ev = result.decision.evidence
        assert ev.budget_needed_usd is not None
        shape = (job.gpus_per_pod, job.pods, job.gpu_product)
        self.parked.park(key, Parked(entry, job.namespace, shape, ev.budget_needed_usd, start,
                                         ev.budget_needed_type, result.runtime, result.price_lead), ev.now)

    def unpark(self, key: str) -> None:
        parked = self.parked.unpark(key)
        if parked is not None:
            insort(self.active, parked.entry)


def _may_sleep(job: JobRequest, result: Evaluated, holds: bool, now: float, patient: bool) -> bool:
    """Whether a Wait stays as it is until its slot comes or its max wait runs out, while nothing
    ahead of it changes. Money cannot wake it if the budget paid for all of its burst's options or
    for none: the burst rules weigh all of them then (evaluate() weighs them as if paid when it can
    pay for none), and any budget weighs them all or a subset, whose best is no better. A budget
    that pays for some only (usd_cap inf) could, rising or falling to none, weigh a better one."""
    d, slot = result.decision, result.slot
    ev = d.evidence
    unpaid = ev.blocked_reason == Reason.BUDGET_EXHAUSTED
    if not (holds and d.reason == Reason.WAITING_FOR_LOCAL_CAPACITY and job.deadline is None
            and job.runtime_estimate_seconds is not None and (result.usd_cap < INF or unpaid)):
        return False
    if not (slot.feasible and slot.start > now):
        return False
    # early timing: its wait plus what it waited is its slot minus its submission, well short
    return patient or slot.start - job.submit_time < ev.local_max_wait_seconds - ROUNDING_STEP
