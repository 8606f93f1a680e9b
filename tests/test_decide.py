"""decide(): table-driven cases, one per cause, each with its expected placement and reason."""

from __future__ import annotations

import math

import pytest

from policies import Placement, Reason, decide
from tests.builders import HOUR, NOW, cluster, job, policy

L, SPOT, OD, WAIT = Placement.LOCAL, Placement.SAGEMAKER_SPOT, Placement.SAGEMAKER_ON_DEMAND, Placement.WAIT


def idle():
    return cluster().nodes(2)


def busy(hours=10.0):
    return cluster().nodes(2).busy("n0", 8, hours).busy("n1", 8, hours)


CASES = {
    "fits now": (idle, job().gpus(8), {}, L, Reason.LOCAL_CAPACITY_AVAILABLE),
    "no gpus": (busy, job().gpus(0), {}, L, Reason.NOT_A_GPU_JOB),
    "forced local waits": (busy, job().gpus(8).mode("local"), {}, WAIT, Reason.WAITING_FOR_LOCAL_CAPACITY),
    "forced local never fits": (idle, job().gpus(16).mode("local"), {}, WAIT, Reason.NEVER_FITS_LOCALLY),
    "forced local fits": (idle, job().gpus(8).mode("local"), {}, L, Reason.FORCED_LOCAL),
    "forced cloud even when it fits": (idle, job().gpus(8).mode("cloud"), {}, OD, Reason.FORCED_CLOUD),
    "max wait exceeded, no checkpoint": (busy, job().gpus(8), {}, OD, Reason.MAX_WAIT_EXCEEDED),
    "max wait exceeded, checkpointed": (busy, job().gpus(8).checkpointed(), {}, SPOT, Reason.MAX_WAIT_EXCEEDED),
    "short wait is worth it": (lambda: busy(0.25), job().gpus(8), {}, WAIT, Reason.WAITING_FOR_LOCAL_CAPACITY),
    "hot cluster": (lambda: busy(0.25).utilization(97), job().gpus(8), {}, OD, Reason.CLUSTER_HOT),
    "waiting costs more than bursting": (lambda: busy(0.4), job().gpus(8), {"tradeoff": {"waitUsdPerHour": 500}},
                                         OD, Reason.BURST_CHEAPER_THAN_WAITING),
    "never fits, bursts": (idle, job().gpus(16, pods=1).mode("auto"), {}, Placement.SAGEMAKER_ON_DEMAND,
                           Reason.NO_INSTANCE_TYPE),
    "gang never fits locally, bursts": (idle, job().gpus(8, pods=3), {}, OD, Reason.NEVER_FITS_LOCALLY),
    "deadline tight: spot unsafe": (busy, job().gpus(8).checkpointed().runs(2).deadline_in(2.5), {}, OD,
                                    Reason.DEADLINE_REQUIRES_ON_DEMAND),
    "deadline loose: spot safe": (busy, job().gpus(8).checkpointed().runs(2).deadline_in(9), {}, SPOT,
                                  Reason.SPOT_SAFE_WITHIN_DEADLINE),
    "deadline unreachable, cloud ends first": (busy, job().gpus(8).runs(5).deadline_in(3), {}, OD,
                                               Reason.DEADLINE_UNREACHABLE),
    "deadline unreachable, local ends first": (lambda: busy(0.05), job().gpus(8).runs(5).deadline_in(3), {}, WAIT,
                                               Reason.DEADLINE_UNREACHABLE),
    "budget exhausted waits": (lambda: busy().spent("ml", today=9_990), job().gpus(8), {}, WAIT,
                               Reason.BUDGET_EXHAUSTED),
    # Bursting would be cheaper than waiting, but the budget cannot pay: the Job waits for money,
    # and says so (it used to be told WaitingForLocalCapacity, and no report counted it as blocked).
    "cheaper than waiting, but no budget": (lambda: busy(0.4).spent("ml", today=9_990), job().gpus(8),
                                            {"tradeoff": {"waitUsdPerHour": 500},
                                             "local": {"maxWaitSeconds": 10_000_000}}, WAIT,
                                            Reason.BUDGET_EXHAUSTED),
    "budget exhausted hands to local queue": (lambda: busy().spent("ml", today=9_990), job().gpus(8),
                                              {"budgets": {"whenExhausted": "localOnly"}}, L, Reason.BUDGET_EXHAUSTED),
    "untranslatable": (busy, job().gpus(8).untranslatable(), {}, WAIT, Reason.NOT_TRANSLATABLE),
    "namespace not allowlisted": (busy, job("t", "other").gpus(8), {"allowlists": {"ml": {"roleArns": [
        "arn:aws:iam::1:role/r"], "s3Prefixes": ["s3://b/"]}}}, WAIT, Reason.BURST_NOT_ALLOWED),
    "quota full": (lambda: busy().in_cloud("ml.p4de.24xlarge", 2), job().gpus(8),
                   {"sageMaker": {"quotas": {"ml.p4de.24xlarge": 2}}}, WAIT, Reason.QUOTA_EXHAUSTED),
    "spot only but no checkpoint": (busy, job().gpus(8).capacity("spot"), {}, WAIT, Reason.BURST_NOT_ALLOWED),
    "per-job max wait override": (lambda: busy(0.25), job().gpus(8).max_wait(60), {}, OD, Reason.MAX_WAIT_EXCEEDED),
}
# A 16-GPU pod fits no node and no SageMaker type has 16 NVIDIA GPUs: it cannot run anywhere.
CASES["never fits, bursts"] = (idle, job().gpus(16), {}, WAIT, Reason.NO_INSTANCE_TYPE)


@pytest.mark.parametrize("name", CASES)
def test_decision(name):
    make_cluster, make_job, overrides, placement, reason = CASES[name]
    d = decide(make_job.build(), make_cluster().build(), policy(**overrides), NOW)
    assert (d.placement, d.reason) == (placement, reason), d.message
    assert d.message
    if placement == WAIT:
        assert 1 <= d.requeue_after_seconds <= 300
    else:
        assert d.requeue_after_seconds is None
    assert (d.launch is not None) == placement.is_cloud


def test_local_decision_names_its_nodes_and_has_zero_wait():
    d = decide(job().gpus(8).build(), cluster().nodes(1).build(), policy(), NOW)
    assert d.local_nodes == ("n0",) and d.evidence.local_wait_seconds == 0


@pytest.mark.parametrize("mode", ["progress", "launchWindow"])
def test_spot_launch_respects_the_deadline_safety_net(mode):
    assert policy().spec.spot.fallback == "progress"  # the default
    p = policy(spot={"fallback": mode})
    j = job().gpus(8).checkpointed().runs(2).deadline_in(9).build()
    d = decide(j, busy().build(), p, NOW)
    spot = p.spec.spot
    l = d.launch
    assert l.spot and l.sagemaker_max_wait_seconds >= l.max_runtime_seconds
    od_relaunch = p.spec.sage_maker.startup_seconds + spot.restart_overhead_seconds + 2 * HOUR
    assert l.fallback_time + od_relaunch + spot.safety_margin_seconds == pytest.approx(j.deadline)
    if mode == "launchWindow":
        assert NOW + l.sagemaker_max_wait_seconds <= l.fallback_time  # SageMaker stops spot by itself in time
    else:  # the controller falls back as progress allows; SageMaker stops spot at the margin at the latest
        assert l.fallback_time < NOW + l.sagemaker_max_wait_seconds <= j.deadline - spot.safety_margin_seconds
    assert d.evidence.deadline_slack_seconds > 0


def test_instance_type_maps_from_gpu_product_and_count():
    d = decide(job().gpus(4).product("NVIDIA-A10G").mode("cloud").build(), idle().build(), policy(), NOW)
    assert d.launch.instance_type == "ml.g5.12xlarge"  # the cheapest 4 x A10G type
    d = decide(job().gpus(1).product("Tesla-T4").mode("cloud").build(), idle().build(), policy(), NOW)
    assert d.launch.instance_type == "ml.g4dn.xlarge"


def test_policy_rule_overrides_the_mapping_and_respects_allowed_types():
    rule = {"instanceTypes": [{"gpuProduct": "NVIDIA-A100*", "instanceTypes": ["ml.p5.48xlarge", "ml.p4de.24xlarge"]}]}
    d = decide(job().gpus(8).mode("cloud").build(), idle().build(), policy(sageMaker=rule), NOW)
    assert d.launch.instance_type == "ml.p5.48xlarge"
    rule["allowedInstanceTypes"] = ["ml.p4de.*"]
    d = decide(job().gpus(8).mode("cloud").build(), idle().build(), policy(sageMaker=rule), NOW)
    assert d.launch.instance_type == "ml.p4de.24xlarge"


def test_multi_node_job_bursts_as_one_training_job_with_instance_count():
    d = decide(job().gpus(8, pods=3).build(), idle().build(), policy(), NOW)
    assert d.launch.instance_count == 3 and d.reason == Reason.NEVER_FITS_LOCALLY


def test_price_override_changes_the_cost():
    j = job().gpus(8).mode("cloud").build()
    base = decide(j, idle().build(), policy(), NOW).evidence.options[1].expected_usd
    cheap = decide(j, idle().build(), policy(sageMaker={"prices": {"ml.p4de.24xlarge": {"onDemandUsdPerHour": 1.0}}}),
                   NOW).evidence.options[1].expected_usd
    assert cheap < base and cheap == pytest.approx(1.0 * (420 + HOUR) / HOUR)


def test_budget_charge_is_the_worst_case_and_fits_the_budget():
    p = policy(budgets={"default": {"dailyUsd": 50}})
    d = decide(job().gpus(8).build(), busy().build(), p, NOW)
    assert d.placement == WAIT and d.reason == Reason.BUDGET_EXHAUSTED
    assert "$50.00 left" in d.message
    assert d.requeue_after_seconds <= 300


def test_queue_ahead_in_the_snapshot_delays_the_forecast():
    ahead = job("first").gpus(8).runs(2).submitted_ago(1).build()
    snap = cluster().nodes(1).pending(ahead).build()
    d = decide(job("second").gpus(8).build(), snap, policy(), NOW)
    assert d.evidence.local_wait_seconds == pytest.approx(2 * HOUR)


def test_runtime_estimate_from_history_when_the_job_is_silent():
    snap = idle().history("ml", "train", 2, 4, 3).build()
    d = decide(job().gpus(1).unestimated().build(), snap, policy(), NOW)
    assert d.evidence.runtime_estimate_seconds == 3 * HOUR
    assert "median of 3" in d.evidence.runtime_source


def test_policy_namespace_estimate_beats_history():
    snap = idle().history("ml", "train", 2).build()
    p = policy(runtimeEstimates={"byNamespace": {"ml": 7200}})
    d = decide(job().gpus(1).unestimated().build(), snap, p, NOW)
    assert d.evidence.runtime_source == "policy namespace ml"


def test_same_inputs_same_decision():
    a = decide(job().gpus(8).checkpointed().deadline_in(9).build(), busy().build(), policy(), NOW)
    b = decide(job().gpus(8).checkpointed().deadline_in(9).build(), busy().build(), policy(), NOW)
    assert a == b


def test_decision_serializes_without_infinities():
    d = decide(job().gpus(16).mode("local").build(), idle().build(), policy(), NOW)
    data = d.to_dict()
    assert data["evidence"]["local_start_time"] is None
    assert not any(isinstance(v, float) and math.isinf(v) for v in data["evidence"].values())


def test_hot_signal_uses_the_policy_window_over_utilization_samples():
    from dataclasses import replace

    snap = busy(0.25).build()
    p = policy(local={"hotWindowSeconds": 600, "hotUtilizationPercent": 90})
    old_spike = replace(snap, utilization_samples=((NOW - 3600, 99.0), (NOW - 300, 40.0), (NOW, 50.0)))
    assert decide(job().gpus(8).build(), old_spike, p, NOW).reason == Reason.WAITING_FOR_LOCAL_CAPACITY
    hot_now = replace(snap, utilization_samples=((NOW - 3600, 10.0), (NOW - 300, 95.0), (NOW, 92.0)))
    assert decide(job().gpus(8).build(), hot_now, p, NOW).reason == Reason.CLUSTER_HOT


@pytest.mark.parametrize("opted_in, namespace, gpus, managed", [
    (True, "elsewhere", 1, True),    # the annotation opts in anywhere
    (False, "ml", 1, True),          # a listed namespace opts its GPU Jobs in
    (False, "ml", 0, False),         # ...but not its CPU Jobs
    (False, "elsewhere", 4, False),
])
def test_which_jobs_are_managed(opted_in, namespace, gpus, managed):
    from dataclasses import replace

    from policies import is_managed

    j = replace(job("t", namespace).gpus(gpus).build(), opted_in=opted_in)
    assert is_managed(j, policy(managedJobs={"namespaces": ["ml"]})) is managed


def test_a_message_is_written_once_when_first_read_and_compares_as_text():
    from dataclasses import replace

    calls = []

    def write():
        calls.append(1)
        return "4 GPUs free now on n0"

    base = decide(job().build(), cluster().nodes(1).build(), policy(), NOW)
    lazy, eager = replace(base, text=write), replace(base, text="4 GPUs free now on n0")
    assert calls == []
    assert lazy == eager and hash(lazy) == hash(eager)
    assert lazy.message == "4 GPUs free now on n0" and lazy.to_dict()["message"] == lazy.message
    assert calls == [1]
    assert list(lazy.to_dict())[:4] == ["job", "placement", "reason", "message"]
    assert "text" not in lazy.to_dict()
    import copy
    import pickle

    assert pickle.loads(pickle.dumps(replace(base, text=lambda: "written"))).message == "written"
    assert copy.deepcopy(lazy) == lazy


def test_burst_rules_run_in_order_and_the_first_that_holds_decides():
    from policies.decide.one_job import BURST_RULES, Cycle, burst_trigger, local_side

    assert [r for r, _ in BURST_RULES] == [
        Reason.NEVER_FITS_LOCALLY, Reason.DEADLINE_REQUIRES_BURST, Reason.MAX_WAIT_EXCEEDED,
        Reason.OPTIMIZER_BURST, "keep-local", Reason.CLUSTER_HOT, Reason.BURST_CHEAPER_THAN_WAITING]
    snap, pol = busy(0.25).utilization(97).build(), policy()
    late = job().gpus(8).runs(5).deadline_in(3).build()
    local = local_side(late, Cycle.start(snap, pol, NOW), None)
    assert local.hot and local.end > late.deadline
    assert burst_trigger(late, pol, local, None, None) == Reason.DEADLINE_REQUIRES_BURST  # before "hot"
    assert burst_trigger(late, pol, local, None, L) == Reason.DEADLINE_REQUIRES_BURST  # a hard rule: no override
    patient = job().gpus(8).build()
    local = local_side(patient, Cycle.start(snap, pol, NOW), None)
    assert burst_trigger(patient, pol, local, None, None) == Reason.CLUSTER_HOT
    assert burst_trigger(patient, pol, local, None, L) is None  # the optimizer keeps it local: the list ends


def test_a_cycle_refuses_what_was_derived_from_another_snapshot_or_policy():
    from policies.decide.one_job import Cycle
    from policies.forecast.derived import Derived

    snap, pol = busy().build(), policy()
    derived = Derived(snap, pol)
    assert Cycle.start(snap, pol, NOW, derived=derived).derived is derived
    with pytest.raises(ValueError, match="another snapshot or policy"):
        Cycle.start(busy().build(), pol, NOW, derived=derived)
    with pytest.raises(ValueError, match="another snapshot or policy"):
        Cycle.start(snap, policy(), NOW, derived=derived)


def test_decide_with_one_derived_for_many_jobs_answers_as_decide_alone():
    from policies import Derived

    snap = busy(0.5).pending(job("a").gpus(8).build(), job("b").gpus(4).build(), job("c").gpus(8).build()).build()
    pol = policy()
    derived = Derived(snap, pol)
    for j in snap.pending:
        alone, shared = decide(j, snap, pol), decide(j, snap, pol, derived=derived)
        assert (alone.placement, alone.reason, alone.evidence.local_start_time) == (
            shared.placement, shared.reason, shared.evidence.local_start_time)


def test_a_wait_for_money_sent_by_the_wait_price_is_looked_at_when_the_price_stops_sending_it():
    # Waiting is priced at $50 an hour, so the burst beats waiting for GPUs that are far off; the
    # budget is spent, so the Job waits for money. As its slot nears, waiting is worth less than
    # the burst: from then on it waits for local GPUs, and its Wait asks to be looked at then.
    p = policy(tradeoff={"waitUsdPerHour": 50, "per": "job"}, local={"maxWaitSeconds": 10_000_000})
    j = job().gpus(8).build()
    burst_score = min(o.score for o in decide(j, busy(10).build(), p, NOW).evidence.options if o.placement != L)
    lead = HOUR * burst_score / 50  # the wait is worth the burst this long before the slot
    snap = busy((lead + 120) / HOUR).spent("ml", today=9_990).build()  # the price turns 120 s from now
    d = decide(j, snap, p, NOW)
    assert d.reason == Reason.BUDGET_EXHAUSTED
    assert d.requeue_after_seconds == pytest.approx(120, abs=0.01)  # not the 300-s default
    before = decide(j, snap, p, NOW + d.requeue_after_seconds - 0.5)
    after = decide(j, snap, p, NOW + d.requeue_after_seconds + 0.5)
    assert before.reason == Reason.BUDGET_EXHAUSTED
    assert after.placement == WAIT and after.reason == Reason.WAITING_FOR_LOCAL_CAPACITY


# --- Facts as fields, not words in a message ------------------------------------------------------

def _cloud_side(make_cluster, make_job, **overrides):
    from policies.model.constants import CapacityType, Mode
    from policies.decide.one_job import Cycle, cloud_side, local_side

    j, p = make_job.build(), policy(**overrides)
    cycle = Cycle.start(make_cluster().build(), p, NOW)
    return cloud_side(j, cycle, local_side(j, cycle, None), Mode.AUTO, CapacityType.ANY)


def test_budget_period_is_a_field_not_a_word_in_the_message():
    """The Wait for money looks again when the binding window resets: the next UTC midnight for a
    daily budget, the next month's start for a monthly one. A namespace named "monthly-..." with a
    daily budget used to be read as monthly, from the message's words."""
    from policies.decide.one_job import _reset_time
    from policies.model.units import next_utc_midnight, next_utc_month_start

    daily = _cloud_side(lambda: busy().spent("monthly-reports", today=9_990), job("t", "monthly-reports").gpus(8))
    assert daily.blocked.reason == Reason.BUDGET_EXHAUSTED and "monthly" in daily.blocked.message
    assert daily.blocked.budget_period == "daily"
    assert _reset_time(daily.blocked, NOW) == next_utc_midnight(NOW)
    monthly = _cloud_side(lambda: busy().spent("ml", today=0, month=99_990), job().gpus(8))
    assert monthly.blocked.reason == Reason.BUDGET_EXHAUSTED
    assert monthly.blocked.budget_period == "monthly"
    assert _reset_time(monthly.blocked, NOW) == next_utc_month_start(NOW)


def test_spot_unsafe_for_the_deadline_is_a_flag_on_the_cloud_side():
    tight = _cloud_side(busy, job().gpus(8).checkpointed().runs(2).deadline_in(2.5))
    loose = _cloud_side(busy, job().gpus(8).checkpointed().runs(2).deadline_in(9))
    assert tight.spot_unsafe_for_deadline and not loose.spot_unsafe_for_deadline
    assert any("unsafe for the deadline" in n for n in tight.notes)  # still said in words too
