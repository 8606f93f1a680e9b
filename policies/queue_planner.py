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
Every other policy (backfill queueing, early bursts, a wait price, budgets, quotas) keeps, across
cycles, the capacity timeline with every held slot reserved. A waiting Job's slot depends only on
the timeline before its start, which time passing and other Jobs' starts leave as it was (see
CapacityTimeline), so a Job waiting for local GPUs sleeps until its slot comes, something ahead
of it in the queue changes, or quota moves; a Job waiting for money is parked while it
provably stays blocked. See _plan_in_full. A differential test keeps both equal to plan().
"""

from __future__ import annotations

import heapq
import math
from bisect import bisect_left, bisect_right, insort
from typing import Iterator

from .backfill_index import BackfillIndex
from .capacity import INF, CapacityTimeline, LocalSlot, occupation_digest
from .catalog import Catalog
from .constants import Placement, Reason
from .decision import Evidence
from .decide import (EPSILON, REQUEUE_MIN_SECONDS, Cycle, Evaluated, assume, backfill_beyond_depth,
                     beyond_planning_depth, evaluate, local_max_wait, may_backfill_beyond_depth, price_turns_at,
                     reserves)
from .derived import Derived
from .estimates import estimate_runtime
from .jobs import JobRequest
from .parking import Parked, ParkingLot, Shape
from .planning_window import PlanningWindow
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
    if _has_budget(policy):
        return "a budget is set (it refills at midnight and drains as bursts run)"
    if spec.local.hot_utilization_percent < 100:
        return "the hot-cluster signal is on (utilization moves every cycle)"
    return None


def _has_budget(policy: BurstPolicy) -> bool:
    """Whether any namespace has a daily or monthly limit."""
    budgets = [policy.spec.budgets.default, *policy.spec.budgets.namespaces.values()]
    return any(b.daily_usd is not None or b.monthly_usd is not None for b in budgets)


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
        self._budgeted = _has_budget(policy)
        # Not stable (_plan_in_full): the queue is the active Jobs plus the parked ones (waiting for
        # money, see _plan_in_full), each sorted by (order key, job key).
        self._active: list[tuple] = []
        self._parked = ParkingLot()
        # Not stable, across cycles (see _plan_in_full): the timeline with every held slot reserved,
        # and what each waiting Job was last decided on.
        self._timeline: CapacityTimeline | None = None
        self._timeline_mark: tuple | None = None  # what the adapter's timeline must show next cycle
        self._views: dict[str, _View] = {}  # job key -> its last Wait
        self._holders: list[tuple] = []  # sorted entries of the Jobs whose slots _timeline holds
        self._slot_starts: list[tuple[float, str]] = []  # (slot start, key) of the holders, lazily cleaned
        self._every_cycle: set[str] = set()  # waiting Jobs whose decision may move with time alone
        self._alarms: list[tuple[float, str]] = []  # (time, key): a sleeping Job's slot or timeout comes
        self._removed_holder: tuple | None = None  # the first slot holder removed since the last cycle
        # where the slots given back since the last cycle were: (node index, from, to)
        self._freed_regions: list[tuple[int, float, float]] = []
        self._world_seen: tuple | None = None  # (quota left per type, cluster hot) at the last cycle
        self._nodes_seen: tuple | None = None
        self.jobs: dict[str, JobRequest] = {}
        self._order: dict[str, tuple] = {}
        self._new: list[tuple] = []  # (order key, job key): not decided since they came in
        self._waiting: dict[Shape, list[tuple]] = {}  # sorted (order key, job key) per shape
        self._timeouts: list[tuple[float, str]] = []  # (submit + max wait, job key), lazily cleaned
        self._timeout_of: dict[str, float] = {}  # the live entry of each key in _timeouts
        self._slot_start: dict[str, float] = {}  # a waiting Job's forecast start, when it was last decided
        self._queue: list[tuple] = []  # every (order key, job key), sorted: fifo walks it from the head
        # local.planningDepth (see plan()): the Jobs queued behind the planned ones are in no structure
        # above but _behind, which finds those that may start now. Planned in full every cycle
        # (skip_waiting=False, cpsat), plan() keeps the bound itself.
        depth = policy.spec.local.planning_depth
        self._window = PlanningWindow(depth) if depth is not None and skip_waiting and optimizer == "greedy" else None
        self._behind = BackfillIndex()  # the Jobs behind that may start now (see _backfill_behind)
        self.evaluated = 0  # Jobs decided, summed over cycles (for benchmarks)

    # --- the queue ---------------------------------------------------------------------------------

    def add(self, job: JobRequest) -> None:
        """A Job entered the queue (or came back after a launch failed)."""
        self.remove(job.key)
        self.jobs[job.key] = job
        order = (job.submit_time, job.namespace, job.name)
        self._order[job.key] = order
        entry = (order, job.key)
        planned, pushed = (True, None) if self._window is None else self._window.place(entry)
        if planned:
            self._admit(entry)
        else:
            self._file_behind(entry)
        if pushed is not None:  # the last planned Job, now behind this one: out of the plan, still queued
            self._drop(pushed)
            self._file_behind(pushed)

    def _file_behind(self, entry: tuple) -> None:
        """Index a Job queued behind the planned ones if backfill_beyond_depth() may start it: a single
        pod (or none) whose mode lets it run here, filed under its run time (0 if it moves with history)."""
        job = self.jobs[entry[1]]
        if not may_backfill_beyond_depth(job, self.policy):
            return
        moves = job.runtime_estimate_seconds is None and self.policy.spec.runtime_estimates.use_history
        runtime = 0.0 if moves else estimate_runtime(job, self.policy, {})[0]
        self._behind.add(entry, (job.gpus_per_pod if job.total_gpus else 0, job.gpu_product), runtime)

    def _admit(self, entry: tuple) -> None:
        """Queue a Job to be planned: decided at the next cycle."""
        insort(self._new, entry)
        if self.fifo:
            insort(self._queue, entry)
        if not self.stable:
            insort(self._active, entry)

    def remove(self, key: str) -> None:
        """A Job left the queue: placed, deleted, or taken over by hand."""
        if self.jobs.pop(key, None) is None:
            return
        entry = (self._order.pop(key), key)
        if self._window is None or self._window.leave(entry):
            self._drop(entry)
        else:
            self._behind.remove(key)

    def _drop(self, entry: tuple) -> None:
        """Forget what planning a Job kept: its slot, its alarms, its place in the queues."""
        order, key = entry
        self._timeout_of.pop(key, None)
        self._slot_start.pop(key, None)
        if self.fifo:
            del self._queue[_find(self._queue, (order, key))]
        self._every_cycle.discard(key)
        view = self._views.pop(key, None)
        if view is not None and view.holds:  # its slot is given back: those behind may move up
            self._release(view, (order, key))
            self._removed_holder = min(self._removed_holder or (order, key), (order, key))
            self._freed_regions += _regions(view)
        parked = self._parked.unpark(key) is not None
        for entries in ([] if parked else self._active, self._new, *self._waiting.values()):
            i = _find(entries, (order, key))
            if i is not None:
                del entries[i]
                break

    def spend_matters(self, instance_type: str | None = None) -> bool:
        """Whether money spent or cloud instances freed (of `instance_type`, when a burst of that type
        ended; None: any) can change a decision next cycle: only under a budget, or for a type with
        a quota. Under a stable policy there is neither, so only if a Job is decided at every cycle
        anyway (a new one, or a volatile one waiting)."""
        if self.stable or not (self._budgeted or instance_type is None
                               or instance_type in self.policy.spec.sage_maker.quotas):
            return bool(self._new)
        return True

    def decides_on_requeue(self, key: str) -> bool:
        """Whether a cycle at this waiting Job's requeue (Decision.requeue_after_seconds) could
        change its decision. Under a stable policy a waiting Job is decided again only when it is
        new or volatile, its max wait runs out (Plan.review_at says when), or it fits now, which
        takes GPUs freed by a Job that ended (a change that runs a cycle of its own)."""
        job = self.jobs.get(key)
        return not self.stable or job is None or _volatile(job)

    def __len__(self) -> int:
        return len(self.jobs)

    # --- one cycle ---------------------------------------------------------------------------------

    def plan(self, snapshot: Snapshot, now: float | None = None, derived: Derived | None = None) -> Plan:
        """Decisions for the Jobs that need one this cycle. Jobs placed locally or in the cloud
        leave the queue; call add() again if acting on a decision fails. `derived` (made for this
        snapshot and the planner's policy) carries an adapter's own capacity timeline.

        With local.planningDepth, the planner keeps only the first that many Jobs of the queue (as
        it stands at the cycle's start, as plan() takes them); a Job behind them gets its
        QueuedBeyondPlanningDepth once, when it falls behind, and is planned once it moves up. After
        the planned Jobs, those behind that fit now start, as in plan() (_backfill_behind)."""
        now = snapshot.time if now is None else now
        derived = derived or Derived(snapshot, self.policy)
        window = self._window
        if window is None:
            return self._plan_planned(snapshot, now, derived)
        for entry in window.move_up():
            self._behind.remove(entry[1])
            self._admit(entry)
        result = self._plan_planned(snapshot, now, derived)
        told = [beyond_planning_depth(self.jobs[key], self.policy, derived, now) for _, key in window.owed()]
        review_at = result.review_at
        if window.room_behind():  # as plan() asks, after Jobs left
            soon = now + REQUEUE_MIN_SECONDS
            review_at = soon if review_at is None else min(review_at, soon)
        return Plan(result.decisions + tuple(told), result.solver, review_at)

    def _plan_planned(self, snapshot: Snapshot, now: float, derived: Derived) -> Plan:
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
        if self._window is not None and self._window.behind:
            self._backfill_behind(cycle or Cycle.start(snapshot, self.policy, now, self.catalog, derived), decisions)
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
        if self._window is not None:
            self._backfill_behind(cycle, decisions)
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

    def _backfill_behind(self, cycle: Cycle, decisions: list) -> list[tuple[JobRequest, Evaluated]]:
        """After the planned Jobs: the Jobs queued behind them that start now (backfill_beyond_depth),
        in queue order; they leave the queue."""
        started: list[tuple[JobRequest, Evaluated]] = []
        index = self._behind
        if cycle.not_before > cycle.now or not index:
            return started
        while True:
            # The first Job, in queue order, that may fit now (BackfillIndex); each start takes GPUs,
            # so the runs free now are measured again after it.
            timeline, first = cycle.timeline, None
            for shape in index.shapes():
                longest = timeline.longest_run_now(*shape)
                if longest >= 0:
                    entry = index.first(shape, longest * (1 + 1e-9) + 1e-6)  # a hair over: rounding
                    if entry is not None and (first is None or entry < first):
                        first = entry
            if first is None:
                break
            job = self.jobs[first[1]]
            result = backfill_beyond_depth(job, cycle)
            if result is None:
                index.hide(job.key)
                continue
            self.evaluated += 1
            decisions.append(result.decision)
            started.append((job, result))
            self.remove(job.key)
        index.show_hidden()
        return started

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
        """plan() over the queue, deciding only the Jobs whose decision may differ from last cycle.

        The planner keeps, across cycles, the capacity timeline with every held slot reserved
        (backfill and fifo queueing). A waiting Job sees that timeline up to its place in the
        queue: its "view". Its slot depends only on its view (see CapacityTimeline._single), so
        while nothing ahead of it changes, it keeps its slot and its Wait, and is not decided
        again ("asleep") until one of these wakes it:
          - its slot comes (it may start) or, under atMaxWait timing, its max wait runs out: a
            heap of times, and review_at tells the caller when;
          - a change ahead of it in the queue: a slot taken, moved or given back, a local start that
            held no slot (queued ahead, it moves the view of everything behind), quota taken, or the
            timeline not being what the planner left (GPUs freed early, nodes changed, a pod started
            that it did not decide): then everything behind is decided again, as plan() would;
          - quota left changes for any type, or the cluster turns hot.
        Money cannot wake it: a budget that pays for all of its burst's options or for none leaves
        the burst rules weighing all of them (evaluate() weighs them as if paid when it can pay for
        none), and any other budget weighs a subset, whose best is no better. What else could move
        its decision only moves it towards waiting: the wait priced at waitUsdPerHour shrinks as its
        slot nears, and under early timing its wait plus what it waited stays its slot minus its
        submission. A Job with a deadline, a run time from history, a cloud side that the budget
        cut to some of its options, or another reason to wait than local GPUs is decided every
        cycle, on its slot when its view is unchanged. A search for a slot reads the timeline with the
        slots of the Jobs queued behind it taken out: the planner releases them first, and decides
        those Jobs again in order.

        A Job waiting for money holds no GPUs, dollars or quota (assume() records nothing for it),
        so leaving it out changes no other decision. It is parked, and its decision is again "Wait,
        BudgetExhausted" while, at its turn in the cycle:
          - the trigger that made it want to burst still holds. At its max wait (atMaxWait), or
            never fitting, that holds for good. A forecast past its max wait (early timing) holds
            while nothing ahead of it changes: then its slot stays where it was;
          - it cannot start now: the earliest it could start is still ahead, or its shape has too
            few GPUs free at this instant;
          - its namespace has less left than the least a burst would commit
            (Evidence.budget_needed_usd, fixed for a Job without a deadline);
          - the instance type it would burst on still has quota for its pods (else evaluate() would
            try the next type; the types before it offered nothing, whatever the money).
        Each condition is checked for all parked Jobs at once where it can be: the budget per
        namespace (read as the cycle spends) and the free GPUs per shape at the start of the cycle
        (a cycle only takes GPUs and dollars). GPUs given back ahead wake only the parked Jobs
        behind them that a free window there could start sooner (ParkingLot.sped_up); a single
        pod's new start is then its earliest fit on those nodes, found without a full search. So a
        cycle costs what changed, not the length of the queue. The caller must run a cycle at
        review_at."""
        spec = self.policy.spec
        if not (self.skip_waiting and self.optimizer == "greedy"):
            result = plan(list(self.jobs.values()), snapshot, self.policy, now, optimizer=self.optimizer,
                          catalog=self.catalog, derived=derived)
            self.evaluated += len(result.decisions)
            review_at = result.review_at
            for d in result.decisions:
                if d.placement != Placement.WAIT:
                    self.remove(d.job)
                elif spec.local.burst_timing == "atMaxWait":
                    # Look again when its max wait runs out, as the planner would: a Wait's requeue,
                    # floored at REQUEUE_MIN_SECONDS, may see it late, and a comparison then differs.
                    timeout = self.jobs[d.job].submit_time + d.evidence.local_max_wait_seconds
                    if now - _TIMEOUT_SLACK <= timeout < (review_at if review_at is not None else INF):
                        review_at = max(timeout, now + _ROUNDING_STEP)
            return Plan(result.decisions, result.solver, review_at)
        cycle = Cycle.start(snapshot, self.policy, now, self.catalog, derived)
        timeline, rebuilt = self._timeline_for(snapshot, derived, now)
        cycle.timeline, cycle.timeline_shared = timeline, False
        change_at = _FIRST if rebuilt else self._removed_holder
        # The nodes on which GPUs were given back ahead of the Job being decided (None: any node)
        freed_nodes: set[int] | None = None if rebuilt else {i for i, _, _ in self._freed_regions}
        given_back = None if rebuilt else self._freed_regions
        self._removed_holder, self._freed_regions = None, []
        quotas = spec.sage_maker.quotas
        no_room: set[Shape] = set()  # shapes with too few GPUs free at this instant
        patient = spec.local.burst_timing == "atMaxWait"
        fifo = spec.local.queueing == "fifo"

        lefts: dict[str, float] = {}  # budget left per namespace, until the next burst this cycle

        def short_of_money(park: Parked) -> bool:
            """Its burst is still blocked by the budget alone."""
            left = lefts.get(park.namespace)
            if left is None:
                left = lefts[park.namespace] = cycle.budget_left(park.namespace)[0]
            if left + EPSILON >= park.need:
                return False
            # The type it would burst on must still have quota, or evaluate() tries another type.
            return park.instance_type not in quotas or cycle.quota_left(park.instance_type) >= park.shape[1]

        def still_blocked(park: Parked) -> bool:
            if park.turns_at < now + REQUEUE_MIN_SECONDS:
                return False  # the wait price may no longer send it out (see ParkingLot)
            if now >= park.earliest_start and room(park.shape):
                return False  # it may start now
            return short_of_money(park)

        def room(shape: Shape) -> bool:
            if shape not in no_room:
                if cycle.timeline.may_fit_now(*shape):
                    return True
                no_room.add(shape)  # a cycle only takes GPUs: it stays so for the rest of the cycle
            return False

        # The Jobs to decide: new ones, those decided every cycle, those an alarm or quota wakes,
        # and (below) every Job behind a change.
        utilization = snapshot.utilization_over(spec.local.hot_window_seconds, now)
        world = (tuple(cycle.quota_left(t) for t in sorted(quotas)),
                 utilization is not None and utilization >= spec.local.hot_utilization_percent)
        woken = set(self._new) | {(self._order[k], k) for k in self._every_cycle}
        self._new = []
        woken |= {(self._order[k], k) for k in self._due_in_full(now)}
        # Slots that have come are taken out before anything reads GPUs free now: a Job queued
        # ahead of their holders may take those GPUs first. Their holders are decided again.
        out = self._release_arrived(now)  # keys whose held slots are out of the timeline for now
        woken |= {(self._order[k], k) for k in out}
        if world != self._world_seen:
            woken.update(self._active)
        self._world_seen = world
        candidates = self._parked.candidates(now, cycle.quota_left, room)
        streams: list[Iterator] = [iter(sorted(woken)), iter(candidates),
                                   *self._parked.affordable(lambda ns: cycle.budget_left(ns)[0])]
        heap: list = []
        for i, stream in enumerate(streams):
            _push_next(heap, stream, i)

        freed_at = None  # the first place in the queue behind which every parked Job is looked at
        sped_up: set[str] = set()  # parked Jobs behind GPUs given back that a window there may fit

        def changed_after(entry: tuple, freed: bool = True, regions: list | None = None) -> None:
            """The view of every Job behind entry may have changed: release their slots, decide them
            all. A parked Job holds no slot and stays parked while it cannot start: GPUs taken ahead
            of it only push its start later. So parked Jobs are decided again only if GPUs were given
            back, in `regions` (node, from, to), and a window there may start them sooner; or, with
            no regions, if quota was taken (which may move a burst to another type) or anything may
            have changed: then every parked Job behind is looked at."""
            nonlocal change_at, freed_at
            if change_at is None or entry < change_at:
                change_at = entry
                self._release_behind(entry)
                streams.append(_cursor_after(self._active, entry))
                _push_next(heap, streams[-1], len(streams) - 1)
            if not freed:
                return
            if regions is None or freed_nodes is None:
                if freed_at is None or entry < freed_at:
                    freed_at = entry
                    streams.append(_cursor_after(self._parked.entries, entry))
                    _push_next(heap, streams[-1], len(streams) - 1)
                return
            freed_nodes.update(i for i, _, _ in regions)
            # Read after the slots behind entry are out: the freest the timeline gets for them.
            picked = self._parked.sped_up(entry, lambda gpus, product: cycle.timeline.windows_within(gpus, product,
                                                                                                    regions))
            sped_up.update(key for _, key in picked)
            streams.append(iter(picked))
            _push_next(heap, streams[-1], len(streams) - 1)

        def take_out_behind(entry: tuple, nodes: set[int] | None = None) -> None:
            """Take the slots of the Jobs queued behind entry (on these nodes) out for a search; the
            walk puts each back as it reaches it if nothing it sees moved."""
            behind = self._release_behind(entry, nodes)
            if behind:
                out.update(k for _, k in behind)
                streams.append(iter(behind))
                _push_next(heap, streams[-1], len(streams) - 1)

        if change_at is not None:
            entry, change_at = change_at, None
            changed_after(entry, regions=given_back)
        decisions = []
        started: list[tuple[str, int, float]] = []  # (node, GPUs, until) of each local start
        kept = True  # False: a local start handed back to the queue left its slot in the timeline
        seen: set[str] = set()
        while heap:
            order, key, s = heapq.heappop(heap)
            _push_next(heap, streams[s], s)
            if key in seen or key not in self.jobs:
                continue
            seen.add(key)
            entry = (order, key)
            unchanged = change_at is None or entry < change_at
            park = self._parked.jobs.get(key)
            job = self.jobs[key]
            parked_as_before = park is not None and still_blocked(park)
            if parked_as_before and (freed_at is None or entry < freed_at) and key not in sped_up:
                continue
            if parked_as_before and job.pods == 1 and freed_nodes is not None and not fifo:
                # Waiting for money as before, woken by GPUs given back ahead: a single pod can start
                # sooner only on their nodes (elsewhere GPUs were only taken, and the start it was
                # parked with is never later than its true start), so its start is its earliest fit
                # there if that comes sooner. Only slots behind it on those nodes are taken out.
                take_out_behind(entry, freed_nodes)
                start = cycle.timeline.earliest_fit_on(job.gpus_per_pod, park.runtime, job.gpu_product, freed_nodes)
                if start >= park.earliest_start:
                    continue
                if _stays_parked(park, start, now):
                    self._parked.move_start(key, start, now)
                    continue
            view = self._views.get(key)
            if key in out and unchanged and entry not in woken:
                # Asleep, its slot taken out only for a search ahead of it that moved nothing.
                self._hold_again(view, entry)
                out.discard(key)
                continue
            held = view is not None and (view.holds or key in out)
            out.discard(key)
            if view is not None and view.holds:
                self._release(view, entry)
            slot = None
            if (unchanged and held and cycle.derived.runtime(job)[0] == view.runtime
                    and (view.slot.start > now or (view.slot.start == now and job.pods > 1))):
                # Its view is as before, so a search would find this slot again. A single pod that
                # may start now is searched for: it takes the best-fitting node free now.
                slot = view.slot
            else:
                # A search must not see the slots of Jobs queued behind it: take them out, and put
                # each back as the walk reaches it if this Job's decision moved nothing it sees.
                take_out_behind(entry)
                if fifo:  # no Job starts before a slot held ahead of it (assume() for the skipped ones)
                    cycle.not_before = max(cycle.not_before, self._last_held_start())
            if park is not None and not fifo and short_of_money(park):
                # The search's timeline is its view (the slots behind it are out): if its start
                # keeps it waiting for money, it stays parked, at that start. Woken only by GPUs
                # given back ahead, a gang can start sooner only if one of its pods fits sooner on
                # one of their nodes (the start it was parked with is never later than its true
                # start: GPUs taken only delay it). A single pod was looked at that way above.
                if (parked_as_before and job.pods > 1 and freed_nodes is not None
                        and cycle.timeline.earliest_fit_on(job.gpus_per_pod, park.runtime, job.gpu_product,
                                                           freed_nodes) >= park.earliest_start):
                    continue
                slot = cycle.timeline.earliest_start(job.gpus_per_pod, job.pods, job.gpu_product,
                                                     cycle.derived.runtime(job)[0], now)
                if _stays_parked(park, slot.start, now):
                    if slot.start != park.earliest_start:
                        self._parked.move_start(key, slot.start, now)
                    continue
            result = evaluate(job, cycle, slot)
            assume(result, job, cycle)
            self.evaluated += 1
            d = result.decision
            decisions.append(d)
            holds = reserves(result, job, spec.local.queueing)
            if d.placement == Placement.LOCAL and holds:
                if result.slot.start > now:  # a start handed back to the queue: the caller re-adds it
                    kept = False
                started += _occupations(timeline, job, result)
            # What the Jobs behind see changes if its GPUs do (a slot taken, moved or given back;
            # a start that held no slot) or if it takes quota.
            moved = (held or holds) and not (held and holds and _same_slot(view.slot, result.slot)
                                               and view.runtime == result.runtime)
            quota_taken = d.placement.is_cloud and d.launch is not None and d.launch.instance_type in quotas
            if moved or quota_taken:
                changed_after(entry, freed=held or quota_taken,
                              regions=None if quota_taken else _regions(view) if held else [])
            if d.placement.is_cloud:
                lefts.clear()
            if d.placement != Placement.WAIT:
                self.remove(key)
                continue
            self._remember(job, entry, result, holds, now, patient)
            if (start := self._parked_start(job, result, patient)) is not None:
                self._park(job, result, start)
            else:
                self._unpark(key)
        for key in out:  # every one was walked to; this only keeps the timeline whole if not
            if key in self.jobs and not self._views[key].holds:
                self._hold_again(self._views[key], (self._order[key], key))
        if self._window is not None:
            if fifo:  # no Job starts before a slot held ahead of it, as assume() keeps it
                cycle.not_before = max(cycle.not_before, self._last_held_start())
            for job, result in self._backfill_behind(cycle, decisions):
                started += _occupations(timeline, job, result)
        self._mark_timeline(derived, started, kept)
        return Plan(tuple(decisions), SolverReport("greedy", "greedy"), review_at=self._review_in_full(now))

    def _timeline_for(self, snapshot: Snapshot, derived: Derived, now: float) -> tuple[CapacityTimeline, bool]:
        """The timeline kept from the last cycle, if the adapter's own timeline (derived.capacity)
        shows exactly the pods the planner decided to start since, and nothing freed early; else a
        fresh copy of this cycle's timeline, and every Job is decided again (True)."""
        base = derived.capacity
        if (self._timeline is not None and base is not None
                and self._timeline_mark == (id(base), base.gains, base.occupied, base.occupied_digest)
                and self._nodes_seen is snapshot.nodes):
            self._timeline.advance(now)
            return self._timeline, False
        for view in self._views.values():
            view.holds = False
        self._holders = []
        self._slot_starts = []
        self._alarms = []
        self._nodes_seen = snapshot.nodes
        self._timeline = derived.timeline(now).copy()
        return self._timeline, True

    def _mark_timeline(self, derived: Derived, started: list, kept: bool) -> None:
        """What the adapter's timeline must show at the next cycle for this one's to still hold."""
        base = derived.capacity
        if base is None or not kept:
            self._timeline_mark = None
            return
        digest = base.occupied_digest
        for node, gpus, until in started:
            digest = occupation_digest(digest, node, gpus, until)
        self._timeline_mark = (id(base), base.gains, base.occupied + len(started), digest)

    def _last_held_start(self) -> float:
        """The latest start of a slot the kept timeline holds (-inf: none)."""
        return max((self._views[k].slot.start for _, k in self._holders), default=-INF)

    def _release(self, view: "_View", entry: tuple) -> None:
        """Take a held slot out of the kept timeline."""
        if self._timeline is not None:
            self._timeline.unreserve(view.slot, view.gpus, view.runtime)
        view.holds = False
        i = _find(self._holders, entry)
        if i is not None:
            del self._holders[i]

    def _release_behind(self, entry: tuple, nodes: set[int] | None = None) -> list[tuple]:
        """Take the slots of every Job queued behind entry (that uses one of these nodes; None: any)
        out of the kept timeline; their entries."""
        i = bisect_right(self._holders, entry)
        released = self._holders[i:]
        if nodes is not None:
            released = [e for e in released if any(n in nodes for n, _ in self._views[e[1]].slot.nodes)]
        for e in released:
            view = self._views[e[1]]
            self._timeline.unreserve(view.slot, view.gpus, view.runtime)
            view.holds = False
        if nodes is None:
            del self._holders[i:]
        else:
            kept = set(released)
            self._holders[i:] = [e for e in self._holders[i:] if e not in kept]
        return released

    def _release_arrived(self, now: float) -> set[str]:
        """Release the held slots that start now or have started; their keys."""
        arrived = set()
        starts = self._slot_starts
        while starts and starts[0][0] <= now:
            start, key = heapq.heappop(starts)
            view = self._views.get(key)
            if view is not None and view.holds and view.slot.start == start:
                self._release(view, (self._order[key], key))
                arrived.add(key)
        return arrived

    def _hold_again(self, view: "_View", entry: tuple) -> None:
        """Put back a slot that _release_behind() took out (its view has not changed)."""
        self._timeline.reserve(view.slot, view.gpus, view.runtime)
        view.holds = True
        insort(self._holders, entry)

    def _remember(self, job: JobRequest, entry: tuple, result: Evaluated, holds: bool, now: float,
                  patient: bool) -> None:
        """A Wait: note what it was decided on, and whether it may sleep until an alarm wakes it."""
        d, key = result.decision, job.key
        ev = d.evidence
        slot = result.slot
        view = _View(slot, result.runtime, job.gpus_per_pod, holds)
        self._views[key] = view
        if holds:
            insort(self._holders, entry)
            heapq.heappush(self._slot_starts, (slot.start, key))
        timeout = job.submit_time + ev.local_max_wait_seconds
        # Money cannot wake it if the budget paid for all of its burst's options or for none: the
        # burst rules weigh all of them then (evaluate() weighs them as if paid when it can pay for
        # none), and any budget weighs them all or a subset, whose best is no better. A budget that
        # pays for some only (usd_cap inf) could, rising or falling to none, weigh a better one.
        unpaid = ev.blocked_reason == Reason.BUDGET_EXHAUSTED
        asleep = (holds and d.reason == Reason.WAITING_FOR_LOCAL_CAPACITY and job.deadline is None
                  and job.runtime_estimate_seconds is not None and (result.usd_cap < INF or unpaid)
                  and slot.feasible and slot.start > now
                  # early timing: its wait plus what it waited is its slot minus its submission, well short
                  and (patient or slot.start - job.submit_time < ev.local_max_wait_seconds - _ROUNDING_STEP))
        if not asleep:
            self._every_cycle.add(key)
            return
        self._every_cycle.discard(key)
        heapq.heappush(self._alarms, (slot.start, key))
        if patient and math.isfinite(timeout):
            heapq.heappush(self._alarms, (timeout, key))

    def _alarm_is_live(self, t: float, key: str) -> bool:
        view = self._views.get(key)
        if view is None or key in self._every_cycle or key in self._parked:
            return False
        job = self.jobs[key]
        return t == view.slot.start or t == job.submit_time + local_max_wait(job, self.policy, view.runtime)

    def _due_in_full(self, now: float) -> set[str]:
        due = set()
        while self._alarms and self._alarms[0][0] <= now + _TIMEOUT_SLACK:
            t, key = heapq.heappop(self._alarms)
            if self._alarm_is_live(t, key):
                due.add(key)
        return due

    def _review_in_full(self, now: float) -> float | None:
        review_at = None
        if self._parked:
            # Budgets reset at UTC midnights (and month starts, which are midnights); a parked Job may
            # start locally from its earliest start, which plan() would have asked to look again at.
            review_at = next_utc_midnight(now)
            start = self._parked.next_look(now)
            if start is not None:
                review_at = min(review_at, start)
        while self._alarms and not self._alarm_is_live(*self._alarms[0]):
            heapq.heappop(self._alarms)
        if self._alarms:
            alarm = max(self._alarms[0][0], now + _ROUNDING_STEP)
            review_at = alarm if review_at is None else min(review_at, alarm)
        return review_at

    def _parked_start(self, job: JobRequest, result: Evaluated, patient: bool) -> float | None:
        """For a Wait for money whose trigger does not depend on what changes by itself (see
        _plan_in_full): the earliest it could start locally, as things stand. None: not parkable.
        A Job the wait price sends out is parked too: the price of its wait shrinks as its slot
        nears, so its trigger holds until its turns_at (Parked; the ParkingLot wakes it then)."""
        d = result.decision
        ev = d.evidence
        if d.reason != Reason.BUDGET_EXHAUSTED or ev.budget_needed_usd is None or _volatile(job):
            return None
        start = ev.local_start_time  # exact, gangs included (CapacityTimeline.earliest_start)
        if start == INF or (ev.waited_seconds >= ev.local_max_wait_seconds if patient
                            else start - job.submit_time > ev.local_max_wait_seconds):
            return start  # never fits; at its max wait; or even its earliest start is past it
        if result.price_lead is not None:
            return start  # the wait price sends it out until its turns_at
        return None

    def _park(self, job: JobRequest, result: Evaluated, start: float) -> None:
        entry = (self._order[job.key], job.key)
        self._every_cycle.discard(job.key)
        if job.key not in self._parked:
            del self._active[_find(self._active, entry)]
        ev = result.decision.evidence
        self._parked.park(job.key, Parked(entry, job.namespace, (job.gpus_per_pod, job.pods, job.gpu_product),
                                          ev.budget_needed_usd, start, ev.budget_needed_type, result.runtime,
                                          result.price_lead),
                          ev.now)

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


def _occupations(timeline: CapacityTimeline, job: JobRequest, result: Evaluated) -> list[tuple[str, int, float]]:
    """(node, GPUs, until) of a local start, as the adapter's timeline will show it."""
    return [(timeline.nodes[i].name, job.gpus_per_pod * count, result.slot.start + result.runtime)
            for i, count in result.slot.nodes]


class _View:
    """A waiting Job's last decision, as far as the next cycle needs it."""
    __slots__ = ("slot", "runtime", "gpus", "holds")

    def __init__(self, slot: LocalSlot, runtime: float, gpus: int, holds: bool):
        self.slot, self.runtime, self.gpus = slot, runtime, gpus  # gpus: per pod
        self.holds = holds  # its slot is in the kept timeline


def _stays_parked(park: Parked, start: float, now: float) -> bool:
    """Whether a parked Job whose budget still falls short, found able to start at `start`, would
    get the same Wait for money from evaluate(). Sent out by the wait price: while the price still
    holds at least REQUEUE_MIN_SECONDS on (its Wait's requeue moves, which the ParkingLot follows by
    its start). Sent out for good (never fitting, at its max wait): if it can start no earlier than
    it was parked with (the trigger is unchanged, and it cannot start now)."""
    if start <= now:
        return False
    if park.lead is not None:
        return start != INF and price_turns_at(start, park.lead) >= now + REQUEUE_MIN_SECONDS
    return start >= park.earliest_start


def _regions(view: _View) -> list[tuple[int, float, float]]:
    """Where a held slot's GPUs are: (node index, from, to)."""
    end = view.slot.start + view.runtime
    return [(i, view.slot.start, end) for i, _ in view.slot.nodes]


def _same_slot(a: LocalSlot, b: LocalSlot) -> bool:
    """The same GPUs over the same time (a gang's pods may be listed in another order)."""
    return a.start == b.start and (a.nodes == b.nodes or sorted(a.nodes) == sorted(b.nodes))


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
