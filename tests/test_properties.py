"""Invariants of plan(), checked on generated clusters and queues (hypothesis)."""

from __future__ import annotations

from collections import defaultdict

from hypothesis import HealthCheck, given, settings, strategies as st

from policies import BurstPolicy, Placement, Reason, plan
from policies.forecast.derived import Derived
from policies.model.jobs import JobRequest
from policies.model.snapshot import CloudJob, Node, RunningPod, Snapshot, Spend
from tests.builders import BASE_POLICY, HOUR, NOW, PRODUCT

TYPE = "ml.p4de.24xlarge"


@st.composite
def worlds(draw):
    n_nodes = draw(st.integers(1, 5))
    nodes = tuple(Node(f"n{i}", draw(st.sampled_from([1, 2, 4, 8])), PRODUCT,
                       draw(st.booleans()) or i == 0) for i in range(n_nodes))
    running = []
    for node in nodes:
        used = draw(st.integers(0, node.allocatable_gpus))
        if used:
            running.append(RunningPod("ml/r", node.name, used, NOW - HOUR,
                                      NOW + draw(st.floats(-2, 12)) * HOUR))
    namespaces = ["ml", "cv"]
    spend = tuple(Spend(ns, draw(st.floats(0, 300)), draw(st.floats(0, 600))) for ns in namespaces)
    cloud = tuple(CloudJob(f"ml/c{i}", "ml", TYPE, 1, draw(st.floats(0, 100)))
                  for i in range(draw(st.integers(0, 2))))
    jobs = []
    for i in range(draw(st.integers(1, 10))):
        deadline = draw(st.one_of(st.none(), st.floats(0.5, 30)))
        jobs.append(JobRequest(
            namespace=draw(st.sampled_from(namespaces)), name=f"j{i}",
            gpus_per_pod=draw(st.sampled_from([0, 1, 2, 4, 8, 16])), pods=draw(st.sampled_from([1, 1, 1, 2])),
            gpu_product=PRODUCT, submit_time=NOW - draw(st.floats(0, 5)) * HOUR, image="i",
            mode=draw(st.sampled_from([None, None, "local", "cloud", "auto"])),
            runtime_estimate_seconds=draw(st.floats(0.05, 20)) * HOUR,
            deadline=None if deadline is None else NOW + deadline * HOUR,
            checkpoint_s3_uri=draw(st.sampled_from([None, "s3://acme-ml/c/"])),
        ))
    spec = {**BASE_POLICY["spec"],
            "budgets": {"default": {"dailyUsd": draw(st.floats(0, 800)), "monthlyUsd": draw(st.floats(0, 2000))},
                        "whenExhausted": draw(st.sampled_from(["wait", "localOnly"]))},
            "sageMaker": {"quotas": {TYPE: draw(st.integers(0, 4))}},
            "tradeoff": {"waitUsdPerHour": draw(st.floats(0, 50))}}
    policy = BurstPolicy.model_validate({"spec": spec})
    snap = Snapshot(NOW, nodes, tuple(running), cloud, spend)
    return snap, [j if j.mode is None else _with_mode(j) for j in jobs], policy


def _with_mode(job):
    from dataclasses import replace

    from policies.model.constants import Mode
    return replace(job, mode=Mode(job.mode))


def committed(decision):
    return next(o.committed_usd for o in decision.evidence.options if o.placement == decision.placement)


SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@SETTINGS
@given(worlds(), st.sampled_from(["greedy", "cpsat"]))
def test_plan_invariants(world, optimizer):
    snap, jobs, policy = world
    result = plan(jobs, snap, policy, NOW, optimizer=optimizer, time_limit_seconds=0.2)
    decisions = result.by_job()
    assert len(decisions) == len(jobs)

    # Every decision has a reason and a message; Waits say when to look again.
    for d in result.decisions:
        assert isinstance(d.reason, Reason) and d.message
        assert (d.requeue_after_seconds is not None) == (d.placement == Placement.WAIT)

    # Never bursts a Job forced local.
    for j in jobs:
        if j.mode is not None and j.mode.value == "local":
            assert not decisions[j.key].placement.is_cloud

    # Never over budget: spend + in-flight commitments + this cycle's bursts stay within each limit.
    limit = policy.spec.budgets.default
    burst = defaultdict(float)
    for j in jobs:
        d = decisions[j.key]
        if d.placement.is_cloud:
            burst[j.namespace] += committed(d)
    for ns, dollars in burst.items():
        spent, inflight = snap.spend_of(ns), snap.committed_of(ns)
        assert spent.today_usd + inflight + dollars <= limit.daily_usd + 1e-6
        assert spent.month_usd + inflight + dollars <= limit.monthly_usd + 1e-6

    # Never over quota.
    instances = sum(d.launch.instance_count for d in result.decisions if d.launch and d.launch.instance_type == TYPE)
    assert snap.instances_in_use(TYPE) + instances <= policy.spec.sage_maker.quotas[TYPE] or instances == 0

    # Never two Jobs on the same free GPUs: what starts now fits in what is free now, node by node.
    free_now = {n.name: n.free[0] for n in Derived(snap, policy).timeline(NOW).nodes}
    taken = defaultdict(int)
    for j in jobs:
        d = decisions[j.key]
        if d.placement == Placement.LOCAL and d.reason != Reason.BUDGET_EXHAUSTED and j.total_gpus:
            for node in d.local_nodes:
                taken[node] += j.gpus_per_pod * (j.pods if len(d.local_nodes) == 1 else 1)
    for node, gpus in taken.items():
        assert gpus <= free_now[node], (node, gpus, free_now[node])


@SETTINGS
@given(worlds())
def test_same_inputs_give_the_same_decisions(world):
    snap, jobs, policy = world
    assert plan(jobs, snap, policy, NOW).decisions == plan(list(reversed(jobs)), snap, policy, NOW).decisions


@SETTINGS
@given(worlds(), st.floats(1 / 3, 3))
def test_decisions_stay_sane_when_estimates_are_off_by_3x(world, factor):
    from dataclasses import replace

    snap, jobs, policy = world
    skewed = [replace(j, runtime_estimate_seconds=j.runtime_estimate_seconds * factor) for j in jobs]
    for d in plan(skewed, snap, policy, NOW).decisions:
        ev = d.evidence
        assert ev.local_start_time >= NOW  # never forecast in the past
        if d.launch:
            assert d.launch.max_runtime_seconds >= 1
            if d.launch.spot and d.launch.sagemaker_max_wait_seconds is not None:
                assert d.launch.sagemaker_max_wait_seconds >= d.launch.max_runtime_seconds


@given(st.floats(min_value=0, max_value=4e9, allow_nan=False) | st.integers(0, 4_000_000_000).map(lambda s: s + 0.9999996))
def test_format_time_writes_what_strftime_writes(seconds):
    from datetime import datetime, timezone

    from policies.model.units import format_time

    assert format_time(seconds) == datetime.fromtimestamp(seconds, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
