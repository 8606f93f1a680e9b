"""plan(): decisions for the whole queue in one cycle.

Jobs are decided in queue order on one Cycle, and each decision is assumed before the next
Job is looked at, so two Jobs never claim the same GPUs, dollars or quota. With
optimizer="cpsat", a CP-SAT model first chooses which Jobs go out so that the rest fit
locally (see optimizer.py); its choice then tips the same per-Job rules, so every decision
still has its reason and no hard rule (mode, budget, quota, allowlist, deadline) is bypassed.

With local.planningDepth set, only that many Jobs from the head of the queue are decided; the
rest get "Wait, QueuedBeyondPlanningDepth" and hold nothing, as Slurm's main pass leaves the jobs
past default_queue_depth. Like Slurm's backfill, a single pod among them still starts if it fits
now in the GPUs the planned Jobs leave (decide.backfill_beyond_depth); it never bursts.

plan() is the queue walk (queue_walk.py) without kept state, FullWalk: every planned Job is woken
and decided at every cycle. The QueuePlanner's modes take the same walk, keeping across cycles
what lets them leave out the Jobs whose decision cannot have changed.
"""

from __future__ import annotations

from typing import Iterable, Literal

from ..forecast import Derived, LocalSlot
from ..model import BurstPolicy, Catalog, JobRequest, Placement, Snapshot
from ..decide import Cycle, REQUEUE_MIN_SECONDS, backfill_beyond_depth, beyond_planning_depth
from .plan_result import Plan, SolverReport, order_key, queue_order
from .queue_streams import Entry
from .queue_walk import QueueWalk, decide_in_turn

__all__ = ["Plan", "SolverReport", "plan", "queue_order"]

Preferences = dict[str, tuple[Placement, float]]  # job key -> (the optimizer's placement, not before)


def plan(
    pending: Iterable[JobRequest],
    snapshot: Snapshot,
    policy: BurstPolicy,
    now: float | None = None,
    *,
    optimizer: Literal["greedy", "cpsat"] = "greedy",
    time_limit_seconds: float = 2.0,
    window_jobs: int = 200,
    catalog: Catalog | None = None,
    derived: Derived | None = None,
) -> Plan:
    """derived: made for this snapshot and policy (an adapter's capacity timeline rides on it)."""
    now = snapshot.time if now is None else now
    walk = FullWalk(pending, snapshot, policy, now, derived or Derived(snapshot, policy), catalog)
    if optimizer == "cpsat":
        walk.optimize(time_limit_seconds, window_jobs)
    return walk.run()


class FullWalk(QueueWalk):
    """The queue walk with no kept state: every Job up to the planning depth is woken."""

    __slots__ = ("policy", "catalog", "planned", "beyond", "prefer", "cycle", "look_again")

    def __init__(self, pending: Iterable[JobRequest], snapshot: Snapshot, policy: BurstPolicy, now: float,
                 derived: Derived, catalog: Catalog | None):
        # The queue in order, split at the planning depth.
        queue = queue_order(pending)
        depth = policy.spec.local.planning_depth
        self.planned, self.beyond = (queue, []) if depth is None else (queue[:depth], queue[depth:])
        QueueWalk.__init__(self, snapshot, now, derived, {job.key: job for job in self.planned})
        self.policy, self.catalog = policy, catalog
        self.prefer: Preferences = {}  # what the optimizer prefers for each planned Job (greedy: nothing)
        self.cycle: Cycle | None = None
        self.look_again: float | None = None

    def optimize(self, time_limit_seconds: float, window_jobs: int) -> None:
        """Let CP-SAT weigh the planned Jobs at once: its placements tip the per-Job rules."""
        if not self.planned:
            return
        from .optimizer import optimize  # ortools is imported only when asked for

        self.prefer, self.solver = optimize(self.planned, self.snapshot, self.policy, self.now, catalog=self.catalog,
                                            time_limit_seconds=time_limit_seconds, window_jobs=window_jobs,
                                            derived=self.derived)

    def wake_set(self) -> list[Entry]:
        """1. Every planned Job (in queue order already), on a fresh Cycle."""
        self.cycle = Cycle.start(self.snapshot, self.policy, self.now, self.catalog, self.derived)
        return [(order_key(job), job.key) for job in self.planned]

    def visit(self, entry: Entry, job: JobRequest) -> None:
        """3. Decided and assumed, on the optimizer's preference if it has one."""
        assert self.cycle is not None
        placement, not_before = self.prefer.get(entry[1], (None, self.now))
        decide_in_turn(job, self.cycle, self.decisions, _held_back(job, self.cycle, placement, not_before), placement)

    def after_walk(self) -> None:
        """4. The Jobs beyond the depth: those that fit now start, the rest wait unplanned."""
        assert self.cycle is not None
        cycle, now = self.cycle, self.now
        if self.beyond and any(d.placement != Placement.WAIT for d in self.decisions):
            self.look_again = now + REQUEUE_MIN_SECONDS  # Jobs move up into the planned ones: plan them soon
        for job in self.beyond:
            started = backfill_beyond_depth(job, cycle)
            self.decisions.append(beyond_planning_depth(job, self.policy, self.derived, now)
                                  if started is None else started.decision)

    def review_at(self) -> float | None:
        return self.look_again


def _held_back(job: JobRequest, cycle: Cycle, placement: Placement | None, not_before: float) -> LocalSlot | None:
    """The slot of a Job the optimizer holds back so that Jobs behind it fit: its GPUs stay free
    until then. None: the Job's own search decides."""
    if placement != Placement.LOCAL or not_before <= cycle.now:
        return None
    runtime = cycle.derived.runtime(job)[0]
    return cycle.timeline.earliest_start(job.gpus_per_pod, job.pods, job.gpu_product, runtime, not_before)
