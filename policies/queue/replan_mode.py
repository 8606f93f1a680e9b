"""ReplanMode: the QueuePlanner deciding every Job at every cycle, with plan() itself.

For comparisons (skip_waiting=False) and for the CP-SAT optimizer, which weighs the whole queue
at once. The planner still keeps the queue; only the cycle's timing is its own (review_at)."""

from __future__ import annotations

from typing import Literal

from ..forecast import Derived, INF
from ..model import Placement, Snapshot
from .planning import plan
from .plan_result import Plan
from .queue_state import QueueState
from .stable_modes import ROUNDING_STEP, TIMEOUT_SLACK


class ReplanMode:
    def __init__(self, queue: QueueState):
        self.queue = queue

    def plan(self, snapshot: Snapshot, now: float, derived: Derived) -> Plan:
        queue, spec = self.queue, self.queue.policy.spec
        optimizer: Literal["greedy", "cpsat"] = "cpsat" if queue.optimizer == "cpsat" else "greedy"
        result = plan(list(queue.jobs.values()), snapshot, queue.policy, now, optimizer=optimizer,
                      catalog=queue.catalog, derived=derived)
        queue.evaluated += len(result.decisions)
        review_at = result.review_at
        for d in result.decisions:
            if d.placement != Placement.WAIT:
                queue.remove(d.job)
            elif spec.local.burst_timing == "atMaxWait":
                # Look again when its max wait runs out, as the planner would: a Wait's requeue,
                # floored at REQUEUE_MIN_SECONDS, may see it late, and a comparison then differs.
                timeout = queue.jobs[d.job].submit_time + d.evidence.local_max_wait_seconds
                if now - TIMEOUT_SLACK <= timeout < (review_at if review_at is not None else INF):
                    review_at = max(timeout, now + ROUNDING_STEP)
        return Plan(result.decisions, result.solver, review_at)
