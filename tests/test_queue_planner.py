"""QueuePlanner: skipping Jobs whose decision cannot have changed gives plan()'s decisions."""


import pytest

from policies.model.constants import Placement
from policies.decide.one_job import REQUEUE_MIN_SECONDS
from policies.queue.queue_planner import QueuePlanner, why_not_stable
from sim.presets import baseline

from .builders import cluster, job, policy
from .planner_runs import budget_bound_policy, mixed_trace, outcomes, shipped_default


@pytest.mark.parametrize("name, overrides", [
    ("compute-wait", {"maxWaitPerGpuSecond": 0.076}), ("compute-wait", {"maxWaitPerGpuSecond": 0.5}),
    ("no-wait", {}),
    ("constant-wait", {}), ("constant-wait", {"maxWaitSeconds": 7200}),  # fifo: the head walk and the blocker
    ("constant-wait", {"maxWaitSeconds": 0, "maxWaitPerGpuSecond": 0.076}),
])
def test_skipping_waiting_jobs_changes_no_decision(name, overrides):
    pol = baseline(name, **overrides)
    assert why_not_stable(pol) is None
    trace = mixed_trace()
    fast_sim, fast = outcomes(trace, pol, True)
    full_sim, full = outcomes(trace, pol, False)
    assert [o[:2] for o in fast] == [o[:2] for o in full]
    # plan() re-asks a Wait no sooner than REQUEUE_MIN_SECONDS, so a timeout can be seen up to that
    # much later when no other event falls in between; the planner sees it on time. A Job with a
    # deadline is decided again at every cycle by both, and cycles fall at other instants (plan()
    # re-asks every waiting Job within 5 minutes), so only its placement and reason must agree.
    timed = [(a[2], b[2]) for j, a, b in zip(trace, fast, full) if j.deadline_s is None]
    assert max(abs(a - b) for a, b in timed) < REQUEUE_MIN_SECONDS
    if name == "no-wait":  # nobody waits, so there is nothing to skip
        assert fast_sim.planner.evaluated == full_sim.planner.evaluated == len(trace)
    else:  # under fifo, each deadline Job (1 in 13) makes the walk go on past the blocker
        assert fast_sim.planner.evaluated < full_sim.planner.evaluated / (2 if "fifo" in pol.spec.local.queueing else 3)
    assert any(o[0] == "Local" for o in fast) and any(o[0].startswith("SageMaker") for o in fast)


def test_policies_that_move_with_time_are_planned_in_full():
    assert "queueing is backfill" in why_not_stable(baseline("forecast-wait"))
    assert "budget" in why_not_stable(policy(local={"queueing": "outOfOrder", "burstTiming": "atMaxWait",
                                                    "hotUtilizationPercent": 100},
                                             tradeoff={"waitUsdPerHour": 0}, sageMaker={"quotas": {}}))
    assert "hot-cluster" in why_not_stable(baseline("compute-wait", hotUtilizationPercent=90))
    assert "budget" in why_not_stable(policy(local={"queueing": "fifo", "burstTiming": "atMaxWait",
                                                    "hotUtilizationPercent": 100},
                                             tradeoff={"waitUsdPerHour": 0}, sageMaker={"quotas": {}}))
    assert "burstTiming is early" in why_not_stable(baseline("constant-wait", burstTiming="early"))
    assert QueuePlanner(baseline("constant-wait")).fifo


def test_a_wait_requeue_runs_a_cycle_only_where_time_alone_may_change_the_decision():
    """Under a stable policy, a waiting Job is decided again only when it is new, its max wait runs
    out (review_at) or GPUs are freed (a Job ending): its requeue needs no cycle of its own."""
    snap = cluster().nodes(1).busy("n0", 8, 2).build()
    plain = job("plain").gpus(8).product(None).runs(1).submitted_ago(0.01).build()
    urgent = job("urgent").gpus(8).product(None).runs(1).submitted_ago(0.01).deadline_in(30).build()
    stable = QueuePlanner(baseline("compute-wait"))
    in_full = QueuePlanner(baseline("compute-wait", queueing="backfill"))
    for planner in (stable, in_full):
        planner.add(plain)
        planner.add(urgent)
        waits = {d.job for d in planner.plan(snap).decisions if d.placement == Placement.WAIT}
        assert waits == {plain.key, urgent.key}
    assert stable.stable and not stable.decides_on_requeue(plain.key)
    assert stable.decides_on_requeue(urgent.key)  # a deadline's slack shrinks with time alone
    assert not in_full.stable and in_full.decides_on_requeue(plain.key)


def test_add_remove_and_a_placed_job_leaves_the_queue():
    pol = baseline("compute-wait")
    planner = QueuePlanner(pol)
    snap = cluster().nodes(1).build()
    big = job("big").gpus(8).product(None).runs(1).submitted_ago(0.01).build()
    small = job("huge").gpus(8, pods=2).product(None).runs(1).submitted_ago(0.001).build()
    planner.add(big)
    planner.add(small)
    planner.add(small)  # added twice: still one Job
    assert len(planner) == 2
    result = planner.plan(snap)
    by_job = result.by_job()
    assert by_job[big.key].placement.value == "Local"
    assert by_job[small.key].placement.value == "SageMakerOnDemand"  # 2 x 8 GPUs never fit one 8-GPU node
    assert len(planner) == 0
    planner.add(big)
    planner.remove(big.key)
    planner.remove("nobody/here")
    assert len(planner) == 0 and planner.plan(snap).decisions == ()


@pytest.mark.parametrize("daily_usd, spec, blocked_at_least, saving", [
    (40, {}, 50, 0.8),
    (15, {"local": {"burstTiming": "atMaxWait", "maxWaitSeconds": 600}}, 50, 0.8),
    (40, {"local": {"queueing": "fifo"}, "tradeoff": {"waitUsdPerHour": 0}}, 50, 0.8),
    # Quota runs out on the types bursts use, so blocked Jobs move between types as bursts end.
    (60, {"sageMaker": {"quotas": {"ml.g6.48xlarge": 1, "ml.g6.12xlarge": 1, "ml.g6.xlarge": 2,
                                   "ml.g6.2xlarge": 1, "ml.g6.4xlarge": 1}}}, 50, 0.8),
    (25, {"local": {"maxWaitSeconds": 300}, "tradeoff": {"waitUsdPerHour": 20}}, 50, 0.8),
    # The shipped default's own rules ($15 per Job-hour of waiting, no fixed max wait): a blocked Job
    # never passes its max wait; the wait price alone sends it out, until its slot comes near
    # enough (Parked.turns_at). It is parked until then: 0.34 of the decisions, measured (the
    # Jobs with a deadline, decided at every cycle, are most of them).
    (15, {"local": {"maxWaitSeconds": 10_000_000}, "tradeoff": {"waitUsdPerHour": 15, "per": "job"}}, 20, 0.45),
])
def test_leaving_out_budget_blocked_jobs_changes_no_decision(daily_usd, spec, blocked_at_least, saving):
    pol = budget_bound_policy(daily_usd, **spec)
    trace = mixed_trace(400)
    fast_sim, fast = outcomes(trace, pol, True)
    full_sim, full = outcomes(trace, pol, False)
    assert fast == full
    blocked = sum(r.budget_blocked for r in fast_sim.records)
    assert blocked >= blocked_at_least, blocked  # the case this is about: Jobs wait for money
    if saving is not None:  # None: a policy under which nothing can be left out (see above)
        assert fast_sim.planner.evaluated < full_sim.planner.evaluated * saving


@pytest.mark.parametrize("spec, tick, saving", [
    # saving: at most this share of the decisions a full re-plan makes (measured 0.35, 0.50, 0.35,
    # 0.35, 0.30 and 0.45; a Job with a deadline is decided at every cycle, and the queues are short)
    ({}, 0.0, 0.45),
    ({}, 60.0, 0.6),  # slots that came between two ticks are searched for again
    ({"local": {"queueing": "fifo"}}, 0.0, 0.45),
    ({"local": {"burstTiming": "atMaxWait", "maxWaitSeconds": 5400}}, 0.0, 0.45),
    ({"tradeoff": {"waitUsdPerHour": 2.0, "per": "gpu"}}, 0.0, 0.4),
    ({"sageMaker": {"quotas": {"ml.g6.48xlarge": 1, "ml.g6.12xlarge": 1, "ml.g6.xlarge": 2}}}, 0.0, 0.55),
    # outOfOrder: a start anywhere in the queue may take a waiting Job's slot, so none sleeps
    ({"local": {"queueing": "outOfOrder"}}, 0.0, None),
])
def test_waiting_jobs_whose_view_did_not_change_are_not_decided_again(spec, tick, saving):
    """The shipped default's own rules: a Job waits while its forecast wait is worth less than its
    burst, holding its slot; the planner keeps those slots across cycles (issue #11)."""
    pol = shipped_default(**spec)
    trace = mixed_trace(400)
    # Six nodes: about as much work arrives as they can do, so queues come and go, and a slot
    # may be held on one node while others fit the Job as well.
    fast_sim, fast = outcomes(trace, pol, True, tick, 6)
    full_sim, full = outcomes(trace, pol, False, tick, 6)
    assert fast == full
    waited = sum(r.start - r.trace.arrival_s > 600 for r in fast_sim.records if r.placement == "Local")
    assert waited >= 20, waited  # the case this is about: Jobs wait for local GPUs
    assert any(o[0].startswith("SageMaker") for o in fast)
    if saving is not None:
        assert fast_sim.planner.evaluated < full_sim.planner.evaluated * saving, (waited,
            fast_sim.planner.evaluated, full_sim.planner.evaluated)
