"""What a cycle's decisions ask the world to do: the one reading of a Plan that the controller
and the simulator's engine share, so they act alike on every decision.

- Local, starting now: run the Job on the cluster (un-suspend it).
- Local, starting later (a Job handed to the local queue with a future slot): keep it queued and
  look again when its slot comes.
- SageMakerSpot / SageMakerOnDemand: launch the training job.
- Wait: tell the Job why it waits; look again after requeue_after_seconds, if it asks (a Job left
  unplanned behind local.planningDepth does not: Plan.review_at says when Jobs move up).
And always: cycle again by Plan.review_at, even if nothing happens.
"""

from __future__ import annotations

import math

from ..model import Decision, Placement, value
from .plan_result import Plan


@value
class CycleActions:
    start_local: tuple[Decision, ...]
    launch: tuple[Decision, ...]
    requeue: tuple[tuple[Decision, float], ...]  # (decision, when to look at the Job again)
    keep_queued: tuple[Decision, ...]  # placed but not startable now: back into the queue
    wait: tuple[Decision, ...]  # every Wait, to be told on its Job
    review_at: float | None  # the next cycle, at the latest

    @property
    def next_cycle_at(self) -> float | None:
        """The earliest time anything here asks to be looked at again."""
        times = [t for _, t in self.requeue]
        if self.review_at is not None:
            times.append(self.review_at)
        return min(times) if times else None


def cycle_actions(plan: Plan, now: float) -> CycleActions:
    start, launch, requeue, keep, wait = [], [], [], [], []
    for d in plan.decisions:
        if d.placement == Placement.LOCAL:
            if d.evidence.local_wait_seconds <= 0:
                start.append(d)
            else:
                keep.append(d)
                if math.isfinite(d.evidence.local_wait_seconds):
                    requeue.append((d, now + d.evidence.local_wait_seconds))
        elif d.placement.is_cloud:
            launch.append(d)
        else:
            wait.append(d)
            if d.requeue_after_seconds is not None:
                requeue.append((d, now + d.requeue_after_seconds))
    return CycleActions(tuple(start), tuple(launch), tuple(requeue), tuple(keep), tuple(wait), plan.review_at)
