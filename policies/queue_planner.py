"""QueuePlanner: plan() across cycles, for a queue that changes a little at a time.

A controller runs a cycle on every change, and the simulator on every event; most of the queue
is the same Jobs waiting for the same GPUs as last time. Under some policies their decisions
provably cannot change until something specific happens, and re-deciding them every cycle is
what makes a long queue slow (a cycle per event times a queue of thousands).

The planner keeps the queue, and each cycle decides only the Jobs whose decision may differ
from last time. Everything it returns comes from the same evaluate()/assume() as plan(), in the
same queue order, so the placements and reasons are those plan() would give for those Jobs; the
Jobs it leaves out would get the same Wait as before (their evidence is not refreshed).

When it may skip a waiting Job (the "stable" case): bursts happen at the max wait (burstTiming
atMaxWait), with nothing that moves with time or with other Jobs: no wait price, no finite budget
or quota, no hot-cluster signal, no optimizer, no deadline, a fixed runtime estimate.
  - outOfOrder queueing: a waiting Job holds no GPUs, so leaving it out changes nobody else's
    decision, and its own changes only when its max wait runs out (a timeout, kept in a heap) or
    local GPUs free up so that its shape (GPUs per pod, pods, GPU product) fits now. Whether
    enough GPUs are free at this instant is the same for every Job of a shape, is necessary for
    starting now, and once false in a cycle stays false for the rest of it (a cycle only takes
    GPUs), so a shape that fails it is skipped whole.
  - fifo queueing: the queue is decided from its head up to the first Job that must wait for a
    future slot; behind it only new and timed-out Jobs are decided (see _plan_fifo).
Every other policy (backfill queueing, early bursts, budgets, quotas) is decided as plan() does,
in full, except that a Job waiting for money is parked while it provably stays blocked, and woken
only by what could free it (see _plan_in_full): on a cluster where the budget binds, those are
most of the queue.
"""

from __future__ import annotations

import heapq
import math
from bisect import bisect_left, bisect_right, insort
from typing import Iterator

from .capacity import INF
from .catalog import Catalog
from .constants import Placement, Reason
from .decision import Evidence
from .decide import EPSILON, REQUEUE_MIN_SECONDS, Cycle, Evaluated, assume, evaluate
from .derived import Derived
from .jobs import JobRequest
from .parking import Parked, ParkingLot, Shape
from .plan import Plan, SolverReport, plan, queue_order
from .policy import BurstPolicy
from .snapshot import Snapshot
from .units import next_utc_midnight

_TIMEOUT_SLACK = 1e-6  # look a hair early; evaluate() has the exact word
_ROUNDING_STEP = 1e-3  # seconds: far above what an absolute time in 2026 can resolve (about 0.2 us)


def why_not_stable(policy: BurstPolicy) -> str | None:
    """None when the planner may skip waiting Jobs under this policy; else the first reason not."""
    spec = policy.spec
    if spec.local.queueing == "backfill":
        return "queueing is backfill (a waiting Job holds a forecast slot, which moves with those ahead of it)"
    if spec.local.burst_timing != "atMaxWait":
        return "burstTiming is early (a forecast that slips can trigger a burst at any cycle)"
    if spec.tradeoff.wait_usd_per_hour:
        return "waiting has a price (tradeoff.waitUsdPerHour), so the best option moves with the forecast"
    if spec.sage_maker.quotas:
        return "SageMaker quotas are set (they free up as bursts end)"
    budgets = [spec.budgets.default, *spec.budgets.namespaces.values()]
    if any(b.daily_usd is not None or b.monthly_usd is not None for b in budgets):
        return "a budget is set (it refills at midnight and drains as bursts run)"
    if spec.local.hot_utilization_percent < 100:
        return "the hot-cluster signal is on (utilization moves every cycle)"
    return None


def _volatile(job: JobRequest) -> bool:
    """A Job whose decision can change at any cycle, even under a stable policy."""
    return (job.deadline is not None or job.runtime_estimate_seconds is None
            or bool(job.wait_usd_per_hour))


class QueuePlanner:
    """The queue and what is known about it between cycles. Not thread-safe; one per controller."""

    def __init__(self, policy: BurstPolicy, catalog: Catalog | None = None, optimizer: str = "greedy",
                 *, skip_waiting: bool = True):
        """skip_waiting=False decides every Job every cycle, exactly as plan() (for comparisons)."""
        self.policy, self.catalog, self.optimizer = policy, catalog, optimizer
        self.stable = skip_waiting and why_not_stable(policy) is None and optimizer == "greedy"
        self.fifo = self.stable and policy.spec.local.queueing == "fifo"
        self.skip_waiting = skip_waiting
        # Not stable (_plan_in_full): the queue is the active Jobs plus the parked ones (waiting for
        # money, see _plan_in_full), each sorted by (order key, job key).
        self._active: list[tuple] = []
        self._parked = ParkingLot()
        self._held: dict[str, tuple] = {}  # job key -> (start, nodes) of the slot a waiting Job holds
        self._removed_holder: tuple | None = None  # the first slot holder removed since the last cycle
        self._base_seen: tuple | None = None  # (timeline id, its gains, nodes) at the last cycle
        self.jobs: dict[str, JobRequest] = {}
        self._order: dict[str, tuple] = {}
        self._new: list[tuple] = []  # (order key, job key): not decided since they came in
        self._waiting: dict[Shape, list[tuple]] = {}  # sorted (order key, job key) per shape
        self._timeouts: list[tuple[float, str]] = []  # (submit + max wait, job key), lazily cleaned
        self._timeout_of: dict[str, float] = {}  # the live entry of each key in _timeouts
        self._slot_start: dict[str, float] = {}  # a waiting Job's forecast start, when it was last decided
        self._queue: list[tuple] = []  # every (order key, job key), sorted: fifo walks it from the head
        self.evaluated = 0  # Jobs decided, summed over cycles (for benchmarks)

    # --- the queue ---------------------------------------------------------------------------------

    def add(self, job: JobRequest) -> None:
        """A Job entered the queue (or came back after a launch failed)."""
        self.remove(job.key)
        self.jobs[job.key] = job
        order = (job.submit_time, job.namespace, job.name)
        self._order[job.key] = order
        insort(self._new, (order, job.key))
        if self.fifo:
            insort(self._queue, (order, job.key))
        if not self.stable:
            insort(self._active, (order, job.key))

    def remove(self, key: str) -> None:
        """A Job left the queue: placed, deleted, or taken over by hand."""
        if self.jobs.pop(key, None) is None:
            return
        self._timeout_of.pop(key, None)
        self._slot_start.pop(key, None)
        order = self._order.pop(key)
        if self.fifo:
            del self._queue[_find(self._queue, (order, key))]
        if self._held.pop(key, None) is not None:  # its slot is given back: those behind may move up
            self._removed_holder = min(self._removed_holder or (order, key), (order, key))
        parked = self._parked.unpark(key) is not None
        for entries in ([] if parked else self._active, self._new, *self._waiting.values()):
            i = _find(entries, (order, key))
            if i is not None:
                del entries[i]
                break

    def spend_matters(self) -> bool:
        """Whether money spent or cloud instances freed can change a decision next cycle. Under a
        stable policy there is no budget and no quota, so only if a Job is decided at every cycle
        anyway (a new one, or a volatile one waiting)."""
        return not self.stable or bool(self._new)

    def __len__(self) -> int:
        return len(self.jobs)

    # --- one cycle ---------------------------------------------------------------------------------

    def plan(self, snapshot: Snapshot, now: float | None = None, derived: Derived | None = None) -> Plan:
        """Decisions for the Jobs that need one this cycle. Jobs placed locally or in the cloud
        leave the queue; call add() again if acting on a decision fails. `derived` (made for this
        snapshot and the planner's policy) carries an adapter's own capacity timeline."""
        now = snapshot.time if now is None else now
        derived = derived or Derived(snapshot, self.policy)
        if not self.stable or snapshot.utilization_samples or snapshot.gpu_utilization_percent is not None:
            return self._plan_in_full(snapshot, now, derived)
        if self.fifo:
            return self._plan_fifo(snapshot, now, derived)
        # The cycle (a copy of the timeline to assume decisions on) is made only when a Job is
        # decided; until then the checks read the snapshot's timeline, which is the same.
        base = derived.timeline(now)
        cycle: Cycle | None = None
        fits: dict[Shape, bool] = {}
        most_free: dict[str | None, int] = {}

        def fits_now(shape: Shape) -> bool:
            # A necessary condition, so skipping on False is exact; True means "decide them".
            if shape not in fits:
                timeline = base if cycle is None else cycle.timeline
                gpus, pods, product = shape
                if product not in most_free:
                    most_free[product] = timeline.max_free_now(product)
                fits[shape] = most_free[product] >= gpus and (
                    pods == 1 or timeline.may_fit_now(gpus, pods, product))
            return fits[shape]

        explicit = sorted([*self._new, *((self._order[k], k) for k in self._due(now))])
        self._new = []
        streams: list[Iterator] = [iter(explicit)]
        shapes: list[Shape | None] = [None]
        for shape, entries in self._waiting.items():
            if entries and fits_now(shape):
                streams.append(_cursor(entries))
                shapes.append(shape)
        decisions = []
        seen: set[str] = set()
        heap = []
        for s, stream in enumerate(streams):
            _push_next(heap, stream, s)
        while heap:
            order, key, s = heapq.heappop(heap)
            shape = shapes[s]
            if shape is not None and not fits_now(shape):
                continue  # no Job of this shape fits any more this cycle: drop the whole stream
            _push_next(heap, streams[s], s)
            if key in seen or key not in self.jobs:
                continue
            seen.add(key)
            if cycle is None:
                cycle = Cycle.start(snapshot, self.policy, now, self.catalog, derived)
            if self._decide(key, cycle, decisions) == Placement.LOCAL:
                fits = {k: v for k, v in fits.items() if not v}  # GPUs were taken: ask again
                most_free.clear()
        return Plan(tuple(decisions), SolverReport("greedy", "greedy"), review_at=self._review_at(now))

    def _plan_fifo(self, snapshot: Snapshot, now: float, derived: Derived) -> Plan:
        """A stable policy with fifo queueing. plan() decides the queue from its head; the first Job
        that must wait for a future slot (the blocker) sets the cycle's not_before past now, so no
        Job behind it can start this cycle whatever its own slot. Behind the blocker a Job's decision
        is then Wait until its max wait runs out (patient timing, no price, budget or quota), so
        only Jobs that are new or due are decided there. Their placement and reason are plan()'s;
        their forecast leaves out the slots of the Jobs skipped between them and the blocker (so
        their evidence may show local GPUs sooner than plan() would). A volatile Job reads its own
        slot, so the walk goes on, deciding every Job, up to the last volatile one."""
        cycle = Cycle.start(snapshot, self.policy, now, self.catalog, derived)
        behind = sorted({*self._new, *((self._order[k], k) for k in self._due(now))})
        self._new = []
        decisions = []
        # A volatile Job (a deadline, say) reads its own slot, which the Jobs ahead of it move: walk
        # the whole queue up to the last of them, as plan() does.
        walk_to = max((e for e in behind if _volatile(self.jobs[e[1]])), default=None)
        fresh = {key for _, key in behind}
        walked, look_again = None, None
        for entry in _cursor(self._queue):
            if cycle.not_before > now and (walk_to is None or entry > walk_to):
                break
            walked, key = entry, entry[1]
            if walk_to is None and key not in fresh and self._still_blocks(self.jobs[key], cycle, now):
                # plan() would find it waiting again for a future slot, which sets not_before past now;
                # where exactly that slot is, only the (skipped) evidence of the Jobs behind would show.
                cycle.not_before = max(cycle.not_before, self._slot_start[key])
                look_again = self._slot_start[key]  # as its Wait would have asked (requeue at its slot)
                continue
            self._decide(key, cycle, decisions)
        for entry in behind:
            if walked is not None and entry > walked and entry[1] in self.jobs:
                self._decide(entry[1], cycle, decisions)
        review_at = self._review_at(now)
        if look_again is not None:
            look_again = max(look_again, now + REQUEUE_MIN_SECONDS)
            review_at = look_again if review_at is None else min(review_at, look_again)
        return Plan(tuple(decisions), SolverReport("greedy", "greedy"), review_at=review_at)

    def _still_blocks(self, job: JobRequest, cycle: Cycle, now: float) -> bool:
        """A waiting Job at the head of a fifo queue (not new, volatile or due) that cannot start now:
        free GPUs at this instant are necessary for that. Its last forecast must be in the future."""
        if self._slot_start.get(job.key, -INF) <= now or _volatile(job):
            return False
        timeline = cycle.timeline
        return not (timeline.max_free_now(job.gpu_product) >= job.gpus_per_pod
                    and (job.pods == 1 or timeline.may_fit_now(job.gpus_per_pod, job.pods, job.gpu_product)))

    def _evaluate(self, job: JobRequest, cycle: Cycle, decisions: list) -> Evaluated:
        """evaluate() and assume() one Job, as plan() does at its turn."""
        result = evaluate(job, cycle)
        assume(result, job, cycle)
        self.evaluated += 1
        decisions.append(result.decision)
        return result

    def _decide(self, key: str, cycle: Cycle, decisions: list) -> Placement:
        """_evaluate() one Job of a stable policy; it leaves the queue unless it waits."""
        result = self._evaluate(self.jobs[key], cycle, decisions)
        if result.decision.placement == Placement.WAIT:
            self._note_waiting(key, result.decision.evidence)
        else:
            self.remove(key)
        return result.decision.placement

    def _due(self, now: float) -> set[str]:
        """The queued Jobs whose max wait has run out by now."""
        due = set()
        while self._timeouts and self._timeouts[0][0] <= now + _TIMEOUT_SLACK:
            timeout, key = heapq.heappop(self._timeouts)
            if self._timeout_of.get(key) == timeout:
                del self._timeout_of[key]
                due.add(key)
        return due

    def _plan_in_full(self, snapshot: Snapshot, now: float, derived: Derived) -> Plan:
        """plan() over the queue, leaving out the Jobs that provably stay blocked by the budget.

        A Job the budget blocked holds no GPUs, dollars or quota (assume() records nothing for
        it), so leaving it out changes no other decision. It is parked, and its decision is again
        "Wait, BudgetExhausted" while, at its turn in the cycle:
          - the trigger that made it want to burst still holds. At its max wait (atMaxWait), or
            never fitting, that holds for good. A forecast past its max wait (early timing) holds
            while no GPUs come free earlier than forecast and nothing ahead of it in the queue
            takes, moves or gives back a slot: then its slot can only be later than it was;
          - it cannot start now: the earliest it could start is still ahead (with nothing changed
            ahead of it, that earliest start stays where it was or moves later), or its shape has
            too few GPUs free at this instant;
          - its namespace has less left than the least a burst would commit
            (Evidence.budget_needed_usd, fixed for a Job without a deadline);
          - the instance type it would burst on still has quota for its pods (else evaluate() would
            try the next type; the types before it offered nothing, whatever the money).
        Each condition is checked for all parked Jobs at once where it can be: the budget per
        namespace and the free GPUs per shape at the start of the cycle (a cycle only takes GPUs
        and dollars), and a change ahead wakes every parked Job behind it. So a cycle costs what
        changed, not the length of a queue that waits for money. The caller must run a cycle at
        the next budget reset (review_at) and whenever money or GPUs come back."""
        if not (self.skip_waiting and self.optimizer == "greedy"):
            result = plan(list(self.jobs.values()), snapshot, self.policy, now, optimizer=self.optimizer,
                          catalog=self.catalog, derived=derived)
            self.evaluated += len(result.decisions)
            for d in result.decisions:
                if d.placement != Placement.WAIT:
                    self.remove(d.job)
            return result
        cycle = Cycle.start(snapshot, self.policy, now, self.catalog, derived)
        change_at = self._changed_since_last_cycle(snapshot, derived)
        quotas = self.policy.spec.sage_maker.quotas
        no_room: set[Shape] = set()  # shapes with too few GPUs free at this instant
        patient = self.policy.spec.local.burst_timing == "atMaxWait"

        lefts: dict[str, float] = {}  # budget left per namespace, until the next burst this cycle

        def still_blocked(park: Parked) -> bool:
            left = lefts.get(park.namespace)
            if left is None:
                left = lefts[park.namespace] = cycle.budget_left(park.namespace)[0]
            if left + EPSILON >= park.need:
                return False
            if now >= park.earliest_start and room(park.shape):
                return False  # it may start now
            # The type it would burst on must still have quota, or evaluate() tries another type.
            return park.instance_type not in quotas or cycle.quota_left(park.instance_type) >= park.shape[1]

        def room(shape: Shape) -> bool:
            if shape not in no_room:
                if cycle.timeline.may_fit_now(*shape):
                    return True
                no_room.add(shape)  # a cycle only takes GPUs: it stays so for the rest of the cycle
            return False

        # Parked Jobs that one of the group conditions may let go this cycle; the rest are woken only
        # by a change ahead of them.
        candidates = self._parked.candidates(now, lambda ns: cycle.budget_left(ns)[0], cycle.quota_left, room)
        streams: list[Iterator] = [iter(list(self._active)), iter(candidates)]
        heap: list = []
        for i, stream in enumerate(streams):
            _push_next(heap, stream, i)
        if change_at is not None:
            streams.append(_cursor_after(self._parked.entries, change_at))
            _push_next(heap, streams[-1], len(streams) - 1)
        decisions = []
        seen: set[str] = set()
        while heap:
            order, key, s = heapq.heappop(heap)
            _push_next(heap, streams[s], s)
            if key in seen or key not in self.jobs:
                continue
            seen.add(key)
            entry = (order, key)
            park = self._parked.jobs.get(key)
            if park is not None and (change_at is None or entry < change_at) and still_blocked(park):
                continue
            job = self.jobs[key]
            result = self._evaluate(job, cycle, decisions)
            d = result.decision
            if self._moves_others(key, result, quotas) and change_at is None:
                change_at = entry  # every parked Job behind it may see another slot or less quota
                streams.append(_cursor_after(self._parked.entries, entry))
                _push_next(heap, streams[-1], len(streams) - 1)
            if d.placement.is_cloud:
                lefts.clear()
            if d.placement != Placement.WAIT:
                self.remove(key)
            elif (start := self._parked_start(job, result, cycle, patient)) is not None:
                self._park(job, d, start)
            else:
                self._unpark(key)
        review_at = None
        if self._parked:
            # Budgets reset at UTC midnights (and month starts, which are midnights); a parked Job may
            # start locally from its earliest start, which plan() would have asked to look again at.
            review_at = next_utc_midnight(now)
            start = self._parked.next_start(now)
            if start is not None:
                review_at = min(review_at, start)
        return Plan(tuple(decisions), SolverReport("greedy", "greedy"), review_at=review_at)

    def _changed_since_last_cycle(self, snapshot: Snapshot, derived: Derived) -> tuple | None:
        """The first queue position whose view of local capacity may have grown since the last
        cycle: GPUs freed earlier than forecast (all of them), or a slot-holding Job removed."""
        change_at, self._removed_holder = self._removed_holder, None
        timeline = derived.capacity
        seen = (id(timeline), timeline.gains, snapshot.nodes) if timeline is not None else None
        if seen is None or seen != self._base_seen:
            change_at = _FIRST  # a capacity timeline rebuilt from the pods: nothing to compare with
        self._base_seen = seen
        return change_at

    def _moves_others(self, key: str, result, quotas) -> bool:
        """Whether this decision changes what the Jobs queued behind it see, against last cycle: a
        slot taken, moved or given back (other than by starting in it), or quota taken."""
        d = result.decision
        held = None
        if (d.placement == Placement.WAIT and result.holds_slot and result.slot.feasible
                and self.policy.spec.local.queueing != "outOfOrder" and self.jobs[key].total_gpus):
            held = (result.slot.start, result.slot.nodes)
        before = self._held.pop(key, None)
        if held is not None:
            self._held[key] = held
        if d.placement == Placement.LOCAL:
            return before is not None and before != (result.slot.start, result.slot.nodes)
        if d.placement.is_cloud and d.launch is not None and d.launch.instance_type in quotas:
            return True
        return held != before

    def _parked_start(self, job: JobRequest, result, cycle: Cycle, patient: bool) -> float | None:
        """For a Wait for money whose trigger does not depend on what changes by itself (see
        _plan_in_full): the earliest it could start locally, as things stand. None: not parkable."""
        d = result.decision
        ev = d.evidence
        if d.reason != Reason.BUDGET_EXHAUSTED or ev.budget_needed_usd is None or _volatile(job):
            return None
        start = ev.local_start_time
        if start != INF and job.pods > 1:
            # A gang's slot comes from a quick search that may miss a start, which a later cycle
            # could then find: hold it to the exact earliest instead (as evaluate() saw the timeline).
            start = cycle.timeline.earliest_possible(job.gpus_per_pod, job.pods, job.gpu_product, result.runtime,
                                                     max(ev.now, cycle.not_before))
        if start == INF or (ev.waited_seconds >= ev.local_max_wait_seconds if patient
                            else start - job.submit_time > ev.local_max_wait_seconds):
            return start  # never fits; at its max wait; or even its earliest start is past it
        return None

    def _park(self, job: JobRequest, d, start: float) -> None:
        entry = (self._order[job.key], job.key)
        if job.key not in self._parked:
            del self._active[_find(self._active, entry)]
        self._parked.park(job.key, Parked(entry, job.namespace, (job.gpus_per_pod, job.pods, job.gpu_product),
                                          d.evidence.budget_needed_usd, start, d.evidence.budget_needed_type), d.evidence.now)

    def _unpark(self, key: str) -> None:
        parked = self._parked.unpark(key)
        if parked is not None:
            insort(self._active, parked.entry)

    def _note_waiting(self, key: str, evidence: Evidence) -> None:
        """A Job waits: decide it again when its max wait (as evaluate() worked it out) runs out,
        or when its shape may fit; a volatile Job, at every cycle."""
        if not self.stable:
            return  # every Job is decided every cycle anyway
        job, order = self.jobs[key], self._order[key]
        if _volatile(job):
            insort(self._new, (order, key))  # decided again next cycle
            return
        if not self.fifo:  # fifo walks the queue from its head instead
            shape = (job.gpus_per_pod, job.pods, job.gpu_product)
            entries = self._waiting.setdefault(shape, [])
            if _find(entries, (order, key)) is None:
                insort(entries, (order, key))
        self._slot_start[key] = evidence.local_start_time
        timeout = job.submit_time + evidence.local_max_wait_seconds
        if timeout < evidence.now - _TIMEOUT_SLACK:
            return  # it waits on past its max wait (nothing to burst to): only fitting locally moves it
        if math.isfinite(timeout) and self._timeout_of.get(key) != timeout:
            self._timeout_of[key] = timeout
            heapq.heappush(self._timeouts, (timeout, key))

    def _review_at(self, now: float) -> float | None:
        """When a skipped Job's max wait next runs out: the caller must run a cycle by then. Exact,
        not floored at REQUEUE_MIN_SECONDS as a Wait's requeue is, so a timeout is never seen late."""
        while self._timeouts and self._timeout_of.get(self._timeouts[0][1]) != self._timeouts[0][0]:
            heapq.heappop(self._timeouts)
        if not self._timeouts:
            return None
        # A timeout a hair away (evaluate() found the Job a rounding error short of it) is looked at
        # again just after, not at the next REQUEUE_MIN_SECONDS as a Wait's requeue would be.
        return max(self._timeouts[0][0], now + _ROUNDING_STEP)

    def queue(self) -> list[JobRequest]:
        return queue_order(self.jobs.values())


_FIRST: tuple = ((-INF,), "")  # a queue position before every Job


def _cursor_after(entries: list, after: tuple) -> Iterator[tuple]:
    """The entries after `after`, read as _cursor() reads them."""
    last = after
    while True:
        i = bisect_right(entries, last)
        if i >= len(entries):
            return
        last = entries[i]
        yield last


def _cursor(entries: list) -> Iterator[tuple]:
    """The entries in order, read while the cycle changes the list: each step looks up the
    entry after the last one given, so Jobs removed or noted waiting meanwhile shift nothing."""
    last = None
    while True:
        i = 0 if last is None else bisect_right(entries, last)
        if i >= len(entries):
            return
        last = entries[i]
        yield last


def _push_next(heap: list, stream: Iterator, s: int) -> None:
    item = next(stream, None)
    if item is not None:
        heapq.heappush(heap, (item[0], item[1], s))


def _find(entries: list, item: tuple) -> int | None:
    i = bisect_left(entries, item)
    return i if i < len(entries) and entries[i] == item else None
