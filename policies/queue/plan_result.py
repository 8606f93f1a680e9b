"""What a planning cycle returns, and the queue order every walk follows."""

from __future__ import annotations

from typing import Iterable

from ..model import Decision, JobRequest, value


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


def order_key(job: JobRequest) -> tuple[float, str, str]:
    """A Job's place in the queue: FIFO by submission time; ties by namespace and name, so the
    order is deterministic (queue_streams.OrderKey)."""
    return (job.submit_time, job.namespace, job.name)


def queue_order(pending: Iterable[JobRequest]) -> list[JobRequest]:
    """The Jobs in queue order (order_key)."""
    return sorted(pending, key=order_key)
