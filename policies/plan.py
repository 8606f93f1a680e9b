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
"""

from __future__ import annotations

from typing import Iterable, Literal

from .catalog import Catalog
from .constants import Placement
from .decide import REQUEUE_MIN_SECONDS, Cycle, assume, backfill_beyond_depth, beyond_planning_depth, evaluate
from .decision import Decision
from .derived import Derived
from .jobs import JobRequest
from .policy import BurstPolicy
from .snapshot import Snapshot
from .values import value


@value
class SolverReport:
    optimizer: str  # greedy | cpsat
    status: str  # greedy | OPTIMAL | FEASIBLE | fallback: <why>
    jobs_optimized: int = 0
    wall_seconds: float = 0.0  # reported by the solver, not read from a clock here
    objective: float | None = None


@value
class Plan:
    decisions: tuple[Decision, ...]
    solver: SolverReport
    review_at: float | None = None  # QueuePlanner: run a cycle by then, even if nothing happens

    def by_job(self) -> dict[str, Decision]:
        return {d.job: d for d in self.decisions}


def queue_order(pending: Iterable[JobRequest]) -> list[JobRequest]:
    """FIFO by submission time; ties by namespace and name, so the order is deterministic."""
    return sorted(pending, key=lambda j: (j.submit_time, j.namespace, j.name))


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
    queue = queue_order(pending)
    depth = policy.spec.local.planning_depth
    queue, beyond = (queue, []) if depth is None else (queue[:depth], queue[depth:])
    prefer: dict[str, tuple[Placement, float]] = {}
    report = SolverReport("greedy", "greedy")
    if optimizer == "cpsat" and queue:
        from .optimizer import optimize  # ortools is imported only when asked for

        prefer, report = optimize(queue, snapshot, policy, now, catalog=catalog,
                                  time_limit_seconds=time_limit_seconds, window_jobs=window_jobs, derived=derived)
    cycle = Cycle.start(snapshot, policy, now, catalog, derived)
    decisions = []
    for job in queue:
        placement, not_before = prefer.get(job.key, (None, now))
        slot = None
        if placement == Placement.LOCAL and not_before > now:
            # The optimizer holds this Job back so that Jobs behind it fit; keep its GPUs free until then.
            runtime = derived.runtime(job)[0]
            slot = cycle.timeline.earliest_start(job.gpus_per_pod, job.pods, job.gpu_product, runtime, not_before)
        result = evaluate(job, cycle, slot, prefer=placement)
        assume(result, job, cycle)
        decisions.append(result.decision)
    review_at = None
    if beyond and any(d.placement != Placement.WAIT for d in decisions):
        review_at = now + REQUEUE_MIN_SECONDS  # Jobs move up into the planned ones: plan them soon
    for job in beyond:
        started = backfill_beyond_depth(job, cycle)
        decisions.append(beyond_planning_depth(job, policy, derived, now) if started is None else started.decision)
    return Plan(tuple(decisions), report, review_at)
