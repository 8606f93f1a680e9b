"""plan(): the whole queue in one cycle, greedy and with the CP-SAT optimizer."""

from __future__ import annotations

from collections import Counter

import pytest

from policies import Placement, Reason, plan, queue_order
from tests.builders import HOUR, NOW, cluster, job, policy


def test_two_jobs_never_claim_the_same_free_gpus():
    snap = cluster().nodes(1).build()
    a, b = job("a").gpus(8).submitted_ago(2).build(), job("b").gpus(8).submitted_ago(1).build()
    result = plan([b, a], snap, policy(local={"maxWaitSeconds": 10 * HOUR}), NOW)
    by = result.by_job()
    assert by["ml/a"].placement == Placement.LOCAL
    assert by["ml/b"].placement == Placement.WAIT
    assert by["ml/b"].evidence.local_start_time == NOW + HOUR  # behind a's reservation


def test_queue_is_fifo_with_a_deterministic_tiebreak():
    jobs = [job(n).submitted_ago(h).build() for n, h in (("c", 1), ("b", 2), ("a", 1))]
    assert [j.name for j in queue_order(jobs)] == ["b", "a", "c"]


def test_budget_is_shared_across_the_cycle():
    snap = cluster().nodes(1).busy("n0", 8, 10).build()
    jobs = [job(f"j{i}").gpus(8).submitted_ago(1).build() for i in range(5)]
    p = policy(budgets={"default": {"dailyUsd": 150}})
    result = plan(jobs, snap, p, NOW)
    cloud = [d for d in result.decisions if d.placement.is_cloud]
    committed = sum(next(o.committed_usd for o in d.evidence.options if o.placement == d.placement) for d in cloud)
    assert len(cloud) == 2 and committed <= 150
    assert Counter(d.reason for d in result.decisions)[Reason.BUDGET_EXHAUSTED] == 3


def test_quota_is_shared_across_the_cycle():
    snap = cluster().nodes(1).busy("n0", 8, 10).build()
    jobs = [job(f"j{i}").gpus(8).submitted_ago(1).build() for i in range(3)]
    result = plan(jobs, snap, policy(sageMaker={"quotas": {"ml.p4de.24xlarge": 1}}), NOW)
    assert [d.placement.is_cloud for d in result.decisions] == [True, False, False]
    assert result.decisions[1].reason == Reason.QUOTA_EXHAUSTED


def test_jobs_ahead_that_burst_free_their_local_slot():
    snap = cluster().nodes(1).busy("n0", 8, 1).build()
    first = job("first").gpus(8).runs(6).submitted_ago(3).build()  # waited too long: bursts
    second = job("second").gpus(8).submitted_ago(0).build()
    by = plan([first, second], snap, policy(), NOW).by_job()
    assert by["ml/first"].placement.is_cloud
    assert by["ml/second"].evidence.local_start_time == NOW + HOUR


@pytest.mark.parametrize("optimizer", ["greedy", "cpsat"])
def test_plan_is_deterministic(optimizer):
    snap = cluster().nodes(2).busy("n0", 4, 2).busy("n1", 8, 3).build()
    jobs = [job(f"j{i}").gpus([1, 2, 4, 8][i % 4]).runs(1 + i % 3).submitted_ago(i / 10).build() for i in range(30)]
    a = plan(jobs, snap, policy(), NOW, optimizer=optimizer, time_limit_seconds=0.5)
    b = plan(jobs, snap, policy(), NOW, optimizer=optimizer, time_limit_seconds=0.5)
    assert a.decisions == b.decisions


def test_optimizer_bursts_the_small_job_so_the_deadline_job_fits_locally():
    # One free node. A cheap 1-GPU Job is first in line and would start now, fragmenting the node;
    # the 8-GPU Job behind it has a deadline it can only meet locally if the node stays whole.
    snap = cluster().nodes(1).build()
    small = job("small").gpus(1).runs(8).submitted_ago(2).build()
    big = job("big").gpus(8).runs(3).submitted_ago(1).deadline_in(3.5).build()
    rule = {"quotas": {"ml.p4de.24xlarge": 0},  # the big Job cannot burst
            "instanceTypes": [{"gpusPerPod": 1, "instanceTypes": ["ml.g5.xlarge"]}]}
    p = policy(sageMaker=rule, local={"maxWaitSeconds": 24 * HOUR})
    greedy = plan([small, big], snap, p, NOW).by_job()
    assert greedy["ml/small"].placement == Placement.LOCAL
    assert greedy["ml/big"].placement == Placement.WAIT
    result = plan([small, big], snap, p, NOW, optimizer="cpsat")
    by = result.by_job()
    assert result.solver.status in ("OPTIMAL", "FEASIBLE")
    assert by["ml/big"].placement == Placement.LOCAL
    # Cheapest for the queue: hold the small Job until the big one is done (3 h of waiting is worth
    # $6, a burst costs $11.7), without letting it take the GPUs now.
    assert by["ml/small"].placement == Placement.WAIT and by["ml/small"].reason == Reason.OPTIMIZER_KEEP_LOCAL
    assert by["ml/small"].evidence.local_start_time >= NOW + 3 * HOUR
    # When waiting is dear, the optimizer sends the small Job out instead.
    dear = policy(sageMaker=rule, local={"maxWaitSeconds": 24 * HOUR}, tradeoff={"waitUsdPerHour": 20})
    by = plan([small, big], snap, dear, NOW, optimizer="cpsat").by_job()
    assert by["ml/small"].placement.is_cloud and by["ml/small"].reason == Reason.OPTIMIZER_BURST
    assert by["ml/big"].placement == Placement.LOCAL


def test_optimizer_never_breaks_hard_rules():
    snap = cluster().nodes(1).build()
    forced = job("pinned").gpus(1).mode("local").runs(8).submitted_ago(2).build()
    big = job("big").gpus(8).runs(3).submitted_ago(1).deadline_in(3.5).build()
    result = plan([forced, big], snap, policy(), NOW, optimizer="cpsat")
    assert not result.by_job()["ml/pinned"].placement.is_cloud  # held back, perhaps, but never sent out


def test_optimizer_keeps_the_compute_weighted_max_wait():
    # Compute-Wait's rule: no fixed max wait, 0.076 x GPUs x runtime instead (8 GPUs x 10 h: 6.1 h).
    # Local GPUs free up in 1 h, so the Job waits; the optimizer once read the max wait as 0 and
    # sent it out at once.
    snap = cluster().nodes(1).busy("n0", 8, 1).build()
    big = job("big").gpus(8).runs(10).submitted_ago(0).build()
    p = policy(local={"maxWaitSeconds": 0, "maxWaitPerGpuSecond": 0.076}, tradeoff={"waitUsdPerHour": 0})
    for optimizer in ("greedy", "cpsat"):
        decision = plan([big], snap, p, NOW, optimizer=optimizer).by_job()["ml/big"]
        assert decision.placement == Placement.WAIT, optimizer
        assert decision.evidence.local_max_wait_seconds == pytest.approx(0.076 * 8 * 10 * HOUR)


def test_empty_queue():
    result = plan([], cluster().nodes(1).build(), policy(), NOW, optimizer="cpsat")
    assert result.decisions == ()


@pytest.mark.parametrize("queueing, second_starts_now", [("backfill", False), ("outOfOrder", True),
                                                        ("fifo", False)])
def test_queueing_disciplines(queueing, second_starts_now):
    # 2 nodes; 4 GPUs free on n0 now, all 8 of n1 busy for 1 h. The head wants 8 GPUs for 2 h;
    # the next Job wants 4 GPUs for 3 h: it fits now on n0, but would it push the head back?
    snap = cluster().nodes(2).busy("n0", 4, 0.5).busy("n1", 8, 1).build()
    head = job("head").gpus(8).runs(2).submitted_ago(2).build()
    small = job("small").gpus(4).runs(3).submitted_ago(1).build()
    p = policy(local={"queueing": queueing, "maxWaitSeconds": 24 * HOUR})
    by = plan([head, small], snap, p, NOW).by_job()
    assert by["ml/head"].placement == Placement.WAIT
    assert (by["ml/small"].placement == Placement.LOCAL) is second_starts_now


def test_fifo_never_lets_a_job_overtake_the_head():
    snap = cluster().nodes(2).busy("n0", 4, 5).busy("n1", 8, 1).build()
    head = job("head").gpus(8).runs(2).submitted_ago(2).build()
    small = job("small").gpus(2).runs(0.1).submitted_ago(1).build()  # would fit in the gap on n0
    p = policy(local={"queueing": "fifo", "maxWaitSeconds": 24 * HOUR})
    by = plan([head, small], snap, p, NOW).by_job()
    assert by["ml/small"].placement == Placement.WAIT
    assert by["ml/small"].evidence.local_start_time >= by["ml/head"].evidence.local_start_time
    backfill = plan([head, small], snap, policy(local={"maxWaitSeconds": 24 * HOUR}), NOW).by_job()
    assert backfill["ml/small"].placement == Placement.LOCAL


def test_patient_burst_timing_waits_out_the_max_wait():
    snap = cluster().nodes(1).busy("n0", 8, 10).build()
    early = plan([job().gpus(8).build()], snap, policy(), NOW).decisions[0]
    assert early.reason == Reason.MAX_WAIT_EXCEEDED
    patient = policy(local={"burstTiming": "atMaxWait", "maxWaitSeconds": 900}, tradeoff={"waitUsdPerHour": 0})
    d = plan([job().gpus(8).submitted_ago(0.1).build()], snap, patient, NOW).decisions[0]
    assert d.placement == Placement.WAIT and d.requeue_after_seconds == 300  # look again within 5 min
    d = plan([job().gpus(8).submitted_ago(0.2).build()], snap, patient, NOW).decisions[0]
    assert d.requeue_after_seconds == pytest.approx(900 - 720)  # wake exactly at the max wait
    d = plan([job().gpus(8).submitted_ago(0.25).build()], snap, patient, NOW).decisions[0]
    assert d.reason == Reason.MAX_WAIT_EXCEEDED


def test_compute_weighted_max_wait_lets_big_jobs_wait_longer():
    snap = cluster().nodes(1).busy("n0", 8, 1).build()
    p = policy(local={"maxWaitSeconds": 0, "maxWaitPerGpuSecond": 0.1})
    big = plan([job().gpus(8).runs(2).build()], snap, p, NOW).decisions[0]  # may wait 0.1 x 16 GPU-h = 1.6 h
    assert big.placement == Placement.WAIT and big.evidence.local_max_wait_seconds == pytest.approx(1.6 * HOUR)
    small = plan([job().gpus(1).runs(2).build()], cluster().nodes(1).busy("n0", 8, 1).build(), p, NOW).decisions[0]
    assert small.reason == Reason.MAX_WAIT_EXCEEDED  # may wait 0.2 h < 1 h


@pytest.mark.parametrize("when_exhausted, busy_hours, behind_starts_in", [
    ("wait", 1, 1),  # waiting for the budget: it holds no slot, even one that comes before the reset
    ("wait", 20, 20),
    ("localOnly", 1, 2),  # handed to the local queue: it holds its slot
    ("localOnly", 20, 21),
])
def test_a_budget_blocked_job_holds_a_local_slot_only_under_local_only(when_exhausted, busy_hours, behind_starts_in):
    # One node, busy for a while; NOW is 09:46 UTC. `blocked` has waited past its max wait and would
    # burst, but the day's budget is spent. The forced-local Job behind it shows whether it holds its slot.
    snap = cluster().nodes(1).busy("n0", 8, busy_hours).spent("ml", today=500).build()
    blocked = job("blocked").gpus(8).runs(1).submitted_ago(3).build()
    behind = job("behind").gpus(8).runs(1).mode("local").submitted_ago(2).build()
    p = policy(budgets={"default": {"dailyUsd": 500}, "whenExhausted": when_exhausted})
    by = plan([blocked, behind], snap, p, NOW).by_job()
    assert by["ml/blocked"].reason == Reason.BUDGET_EXHAUSTED
    assert by["ml/blocked"].evidence.local_start_time == NOW + busy_hours * HOUR
    assert by["ml/behind"].evidence.local_start_time == NOW + behind_starts_in * HOUR


def test_a_cloud_mode_job_waiting_for_budget_holds_no_local_slot():
    snap = cluster().nodes(1).busy("n0", 8, 1).spent("ml", today=500).build()
    cloud_only = job("cloud-only").gpus(8).runs(1).mode("cloud").submitted_ago(3).build()
    behind = job("behind").gpus(8).runs(1).mode("local").submitted_ago(2).build()
    by = plan([cloud_only, behind], snap, policy(budgets={"default": {"dailyUsd": 500}}), NOW).by_job()
    assert by["ml/cloud-only"].reason == Reason.BUDGET_EXHAUSTED
    assert by["ml/behind"].evidence.local_start_time == NOW + HOUR
