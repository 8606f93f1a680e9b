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

This is the queue walk without kept state: every Job is decided at every cycle. The QueuePlanner
(queue_planner.py) walks the same queue with the same steps (walk_steps.decide_in_turn, then the
Jobs beyond the depth), keeping across cycles what lets it leave out the Jobs whose decision
cannot have changed.
"""

from __future__ import annotations

from typing import Iterable, Literal

from ..forecast import Derived, LocalSlot
from ..model import BurstPolicy, Catalog, Decision, JobRequest, Placement, Snapshot
from ..decide import Cycle, REQUEUE_MIN_SECONDS, backfill_beyond_depth, beyond_planning_depth
from .plan_result import Plan, SolverReport, queue_order
from .walk_steps import decide_in_turn

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
    derived = derived or Derived(snapshot, policy)
    # 1. The queue in order, split at the planning depth.
    queue = queue_order(pending)
    depth = policy.spec.local.planning_depth
    queue, beyond = (queue, []) if depth is None else (queue[:depth], queue[depth:])
    # 2. What the optimizer prefers for each planned Job (nothing, greedy).
    prefer: Preferences = {}
    report = SolverReport("greedy", "greedy")
    if optimizer == "cpsat" and queue:
        from .optimizer import optimize  # ortools is imported only when asked for

        prefer, report = optimize(queue, snapshot, policy, now, catalog=catalog,
                                  time_limit_seconds=time_limit_seconds, window_jobs=window_jobs, derived=derived)
    # 3. Each planned Job in turn: decided, and assumed.
    cycle = Cycle.start(snapshot, policy, now, catalog, derived)
    decisions: list[Decision] = []
    for job in queue:
        placement, not_before = prefer.get(job.key, (None, now))
        decide_in_turn(job, cycle, decisions, _held_back(job, cycle, placement, not_before), placement)
    # 4. The Jobs beyond the depth: those that fit now start, the rest wait unplanned.
    review_at = None
    if beyond and any(d.placement != Placement.WAIT for d in decisions):
        review_at = now + REQUEUE_MIN_SECONDS  # Jobs move up into the planned ones: plan them soon
    for job in beyond:
        started = backfill_beyond_depth(job, cycle)
        decisions.append(beyond_planning_depth(job, policy, derived, now) if started is None else started.decision)
    return Plan(tuple(decisions), report, review_at)


def _held_back(job: JobRequest, cycle: Cycle, placement: Placement | None, not_before: float) -> LocalSlot | None:
    """The slot of a Job the optimizer holds back so that Jobs behind it fit: its GPUs stay free
    until then. None: the Job's own search decides."""
    if placement != Placement.LOCAL or not_before <= cycle.now:
        return None
    runtime = cycle.derived.runtime(job)[0]
    return cycle.timeline.earliest_start(job.gpus_per_pod, job.pods, job.gpu_product, runtime, not_before)
