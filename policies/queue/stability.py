"""When a QueuePlanner may leave a waiting Job out of a cycle: facts about a policy and a Job."""

from __future__ import annotations

from ..model import BurstPolicy, JobRequest


def why_not_stable(policy: BurstPolicy) -> str | None:
    """None when the planner may skip waiting Jobs under this policy (see queue_planner); else the
    first reason not."""
    spec = policy.spec
    if spec.local.queueing == "backfill":
        return "queueing is backfill (a waiting Job holds a forecast slot, which moves with those ahead of it)"
    if spec.local.burst_timing != "atMaxWait":
        return "burstTiming is early (a forecast that slips can trigger a burst at any cycle)"
    if spec.tradeoff.wait_usd_per_hour:
        return "waiting has a price (tradeoff.waitUsdPerHour), so the best option moves with the forecast"
    if spec.sage_maker.quotas:
        return "SageMaker quotas are set (they free up as bursts end)"
    if has_budget(policy):
        return "a budget is set (it refills at midnight and drains as bursts run)"
    if spec.local.hot_utilization_percent < 100:
        return "the hot-cluster signal is on (utilization moves every cycle)"
    return None


def has_budget(policy: BurstPolicy) -> bool:
    """Whether any namespace has a daily or monthly limit."""
    budgets = [policy.spec.budgets.default, *policy.spec.budgets.namespaces.values()]
    return any(b.daily_usd is not None or b.monthly_usd is not None for b in budgets)


def volatile(job: JobRequest) -> bool:
    """A Job whose decision can change at any cycle, even under a stable policy."""
    return (job.deadline is not None or job.runtime_estimate_seconds is None
            or bool(job.wait_usd_per_hour))
