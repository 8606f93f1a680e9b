"""QueuePlanner: plan() across cycles, for a queue that changes a little at a time.

A controller runs a cycle on every change, and the simulator on every event; most of the queue
is the same Jobs waiting for the same GPUs as last time. Under some policies their decisions
provably cannot change until something specific happens, and re-deciding them every cycle is
what makes a long queue slow (a cycle per event times a queue of thousands).

The planner keeps the queue, and each cycle decides only the Jobs whose decision may differ
from last time. A cycle is the queue walk that plan() takes (queue_walk.py: wake set, merged
streams, each Job in queue order ending in evaluate and assume, then the Jobs behind the planning
depth), with what the planner keeps across cycles; so the placements and reasons are those plan()
would give for those Jobs, and the Jobs it leaves out would get the same Wait as before (their
evidence is not refreshed). How it finds the Jobs to decide is its mode, a strategy chosen from
the policy, each with its own walk:
  - a stable policy (stability.why_not_stable) with outOfOrder or fifo queueing: OutOfOrderMode
    or FifoMode (stable_modes.py). A waiting Job is decided again when its max wait runs out or
    its shape may fit now;
  - every other policy: HeldSlotMode (held_slot_mode.py), which keeps the capacity timeline with
    every held slot across cycles (HeldSlotWalk, held_slot_walk.py). A stable planner walks it
    too in a cycle whose snapshot carries utilization;
  - skip_waiting=False or the CP-SAT optimizer: ReplanMode, plan()'s own walk over every Job.
A differential test keeps every mode equal to plan().
"""

from __future__ import annotations

from bisect import insort
from typing import Protocol

from .backfill_index import BackfillIndex
from ..model import BurstPolicy, Catalog, Decision, JobRequest, Snapshot
from ..decide import (Cycle, Evaluated, REQUEUE_MIN_SECONDS, backfill_beyond_depth, beyond_planning_depth,
                      may_backfill_beyond_depth)
from ..forecast import Derived, estimate_runtime
from .held_slot_mode import HeldSlotMode
from .plan_result import Plan, order_key, queue_order
from .planning_window import PlanningWindow
from .queue_streams import Entry, OrderKey, remove as remove_entry
from .replan_mode import ReplanMode
from .stability import has_budget, volatile, why_not_stable
from .stable_modes import FifoMode, OutOfOrderMode, StableMode

__all__ = ["QueuePlanner", "why_not_stable"]


class PlanningMode(Protocol):
    """How a cycle finds the Jobs to decide, and decides them."""

    def plan(self, snapshot: Snapshot, now: float, derived: Derived) -> Plan: ...


class QueuePlanner:
    """The queue and what is known about it between cycles. Not thread-safe; one per controller."""

    def __init__(self, policy: BurstPolicy, catalog: Catalog | None = None, optimizer: str = "greedy",
                 *, skip_waiting: bool = True):
        """skip_waiting=False decides every Job every cycle, exactly as plan() (for comparisons)."""
        self.policy, self.catalog, self.optimizer = policy, catalog, optimizer
        self.skip_waiting = skip_waiting
        self.stable = skip_waiting and why_not_stable(policy) is None and optimizer == "greedy"
        self.fifo = self.stable and policy.spec.local.queueing == "fifo"
        self._budgeted = has_budget(policy)
        self.jobs: dict[str, JobRequest] = {}
        self.order: dict[str, OrderKey] = {}
        self.new: list[Entry] = []  # not decided since they came in (and, stable, volatile ones waiting)
        self.evaluated = 0  # Jobs decided, summed over cycles (for benchmarks)
        # local.planningDepth (see plan()): the Jobs queued behind the planned ones are in no mode's
        # structures, only in `behind`, which finds those that may start now. Planned in full every
        # cycle (skip_waiting=False, cpsat), plan() keeps the bound itself.
        depth = policy.spec.local.planning_depth
        replans = not (skip_waiting and optimizer == "greedy")
        self.window = PlanningWindow(depth) if depth is not None and not replans else None
        self.behind = BackfillIndex()
        self._held = HeldSlotMode(self, track_active=not self.stable)
        self._stable: StableMode | None = None
        if self.stable:
            self._stable = FifoMode(self) if self.fifo else OutOfOrderMode(self)
        self._mode: PlanningMode = ReplanMode(self) if replans else self._stable or self._held

    # --- the queue ---------------------------------------------------------------------------------

    def add(self, job: JobRequest) -> None:
        """A Job entered the queue (or came back after a launch failed)."""
        self.remove(job.key)
        self.jobs[job.key] = job
        order = order_key(job)
        self.order[job.key] = order
        entry = (order, job.key)
        planned, pushed = (True, None) if self.window is None else self.window.place(entry)
        if planned:
            self._admit(entry)
        else:
            self._file_behind(entry)
        if pushed is not None:  # the last planned Job, now behind this one: out of the plan, still queued
            self._drop(pushed)
            self._file_behind(pushed)

    def remove(self, key: str) -> None:
        """A Job left the queue: placed, deleted, or taken over by hand."""
        if self.jobs.pop(key, None) is None:
            return
        entry = (self.order.pop(key), key)
        if self.window is None or self.window.leave(entry):
            self._drop(entry)
        else:
            self.behind.remove(key)

    def _admit(self, entry: Entry) -> None:
        """Queue a Job to be planned: decided at the next cycle."""
        insort(self.new, entry)
        if self._stable is not None:
            self._stable.admit(entry)
        self._held.admit(entry)

    def _drop(self, entry: Entry) -> None:
        """Forget what planning a Job kept: its slot, its alarms, its place in the queues. (An entry
        found in the active queue stays in `new` until the next cycle clears it, which
        spend_matters() reads.)"""
        found = self._held.forget(entry) or remove_entry(self.new, entry)
        if self._stable is not None:
            self._stable.forget(entry, found)

    def _file_behind(self, entry: Entry) -> None:
        """Index a Job queued behind the planned ones if backfill_beyond_depth() may start it: a single
        pod (or none) whose mode lets it run here, filed under its run time (0 if it moves with history)."""
        job = self.jobs[entry[1]]
        if not may_backfill_beyond_depth(job, self.policy):
            return
        moves = job.runtime_estimate_seconds is None and self.policy.spec.runtime_estimates.use_history
        runtime = 0.0 if moves else estimate_runtime(job, self.policy, {})[0]
        self.behind.add(entry, (job.gpus_per_pod if job.total_gpus else 0, job.gpu_product), runtime)

    def spend_matters(self, instance_type: str | None = None) -> bool:
        """Whether money spent or cloud instances freed (of `instance_type`, when a burst of that type
        ended; None: any) can change a decision next cycle: only under a budget, or for a type with
        a quota. Under a stable policy there is neither, so only if a Job is decided at every cycle
        anyway (a new one, or a volatile one waiting)."""
        if self.stable or not (self._budgeted or instance_type is None
                               or instance_type in self.policy.spec.sage_maker.quotas):
            return bool(self.new)
        return True

    def decides_on_requeue(self, key: str) -> bool:
        """Whether a cycle at this waiting Job's requeue (Decision.requeue_after_seconds) could
        change its decision. Under a stable policy a waiting Job is decided again only when it is
        new or volatile, its max wait runs out (Plan.review_at says when), or it fits now, which
        takes GPUs freed by a Job that ended (a change that runs a cycle of its own)."""
        job = self.jobs.get(key)
        return not self.stable or job is None or volatile(job)

    def __len__(self) -> int:
        return len(self.jobs)

    def queue(self) -> list[JobRequest]:
        return queue_order(self.jobs.values())

    # --- one cycle ---------------------------------------------------------------------------------

    def plan(self, snapshot: Snapshot, now: float | None = None, derived: Derived | None = None) -> Plan:
        """Decisions for the Jobs that need one this cycle. Jobs placed locally or in the cloud
        leave the queue; call add() again if acting on a decision fails. `derived` (made for this
        snapshot and the planner's policy) carries an adapter's own capacity timeline.

        With local.planningDepth, the planner keeps only the first that many Jobs of the queue (as
        it stands at the cycle's start, as plan() takes them); a Job behind them gets its
        QueuedBeyondPlanningDepth once, when it falls behind, and is planned once it moves up. After
        the planned Jobs, those behind that fit now start, as in plan() (backfill_behind)."""
        now = snapshot.time if now is None else now
        derived = derived or Derived(snapshot, self.policy)
        window = self.window
        if window is None:
            return self._mode_for(snapshot).plan(snapshot, now, derived)
        for entry in window.move_up():
            self.behind.remove(entry[1])
            self._admit(entry)
        result = self._mode_for(snapshot).plan(snapshot, now, derived)
        told = [beyond_planning_depth(self.jobs[key], self.policy, derived, now) for _, key in window.owed()]
        review_at = result.review_at
        if window.room_behind():  # as plan() asks, after Jobs left
            soon = now + REQUEUE_MIN_SECONDS
            review_at = soon if review_at is None else min(review_at, soon)
        return Plan(result.decisions + tuple(told), result.solver, review_at)

    def _mode_for(self, snapshot: Snapshot) -> PlanningMode:
        """The planner's mode; a stable one walks the held-slot mode in a cycle whose snapshot carries
        utilization (a signal that moves every cycle)."""
        if self._stable is None or not (snapshot.utilization_samples or snapshot.gpu_utilization_percent is not None):
            return self._mode
        return self._held

    def start_cycle(self, snapshot: Snapshot, now: float, derived: Derived) -> Cycle:
        return Cycle.start(snapshot, self.policy, now, self.catalog, derived)

    def backfill_behind(self, cycle: Cycle, decisions: list[Decision]) -> list[tuple[JobRequest, Evaluated]]:
        """After the planned Jobs: the Jobs queued behind them that start now (backfill_beyond_depth),
        in queue order; they leave the queue."""
        started: list[tuple[JobRequest, Evaluated]] = []
        index = self.behind
        if cycle.not_before > cycle.now or not index:
            return started
        while (first := self._first_that_may_fit(cycle, index)) is not None:
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

    @staticmethod
    def _first_that_may_fit(cycle: Cycle, index: BackfillIndex) -> Entry | None:
        """The first Job behind, in queue order, that may fit now (BackfillIndex); each start takes
        GPUs, so the runs free now are measured again after it."""
        timeline, first = cycle.timeline, None
        for shape in index.shapes():
            longest = timeline.longest_run_now(*shape)
            if longest >= 0:
                entry = index.first(shape, longest * (1 + 1e-9) + 1e-6)  # a hair over: rounding
                if entry is not None and (first is None or entry < first):
                    first = entry
        return first
