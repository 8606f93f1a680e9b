"""Spot under a deadline: the window, the SageMaker stopping condition, and the fallback rule."""

from __future__ import annotations

import pytest
from hypothesis import given, strategies as st

from policies import spot_fallback_due, spot_window

H = 3600.0


def window(deadline_h, runtime_h=2.0, **kw):
    args = dict(now=0.0, runtime_seconds=runtime_h * H, runtime_cap_seconds=2 * runtime_h * H, startup_seconds=420,
                restart_overhead_seconds=600, safety_margin_seconds=900, max_wait_factor=2.0,
                deadline=None if deadline_h is None else deadline_h * H)
    args.update(kw)
    return spot_window(**args)


def test_without_deadline_max_wait_is_a_multiple_of_the_runtime_cap():
    w = window(None)
    assert w.safe and (w.max_runtime_seconds, w.sagemaker_max_wait_seconds) == (4 * H, 8 * H + 420)


def test_fallback_leaves_room_for_a_full_on_demand_run():
    w = window(10)
    assert w.safe
    assert w.fallback_time == 10 * H - 900 - (420 + 600 + 2 * H)
    assert w.sagemaker_max_wait_seconds == int(w.fallback_time)
    assert w.max_runtime_seconds <= w.sagemaker_max_wait_seconds  # SageMaker requires MaxWait >= MaxRuntime


def test_too_tight_for_spot():
    w = window(2.5)
    assert not w.safe and "spot needs at least" in w.why


@given(deadline_h=st.floats(0.1, 200), runtime_h=st.floats(0.01, 100), margin=st.floats(0, 7200),
       startup=st.floats(0, 3600), overhead=st.floats(0, 3600))
def test_safe_windows_always_leave_an_on_demand_rescue(deadline_h, runtime_h, margin, startup, overhead):
    w = window(deadline_h, runtime_h, safety_margin_seconds=margin, startup_seconds=startup,
               restart_overhead_seconds=overhead)
    if w.safe:
        # Spot is over by the fallback time at the latest, and on-demand from there still makes it.
        assert w.sagemaker_max_wait_seconds <= w.fallback_time
        assert w.fallback_time + startup + overhead + runtime_h * H + margin <= deadline_h * H + 1e-6
        assert 1 <= w.max_runtime_seconds <= w.sagemaker_max_wait_seconds


@pytest.mark.parametrize("now_h, progress_h, on_spot, due", [
    (7.9, 0.0, True, False),    # before the fallback time, running on spot: keep going
    (8.0, 3.9, True, True),     # the safety net: at the fallback time, always fall back
    (4.0, 3.0, False, False),   # idle but ahead of the uniform pace: wait for spot to return
    (4.0, 0.5, False, True),    # idle and behind the uniform pace: fall back now (Uniform Progress)
    (4.0, 0.5, True, False),    # behind but running on spot: take the risk (exploitation)
])
def test_uniform_progress_fallback(now_h, progress_h, on_spot, due):
    assert spot_fallback_due(now=now_h * H, launch_time=0.0, deadline=12 * H, fallback_time=8 * H,
                             runtime_seconds=6 * H, progress_seconds=progress_h * H, running_on_spot=on_spot,
                             restart_overhead_seconds=600) is due


# --- the hindsight optimum on a known availability trace (issue #10, goal 2) -------------------


def test_hindsight_on_a_trace_that_never_changes_is_worked_out_by_hand():
    from sim.hindsight import spot_hindsight_cost
    from sim.spot_job import SpotJob

    job = SpotJob()  # 48 h of work by 52 h, 6-min changeover, 10-min ticks
    # The first tick on an instance loses the changeover (4 min of work), then 10 min a tick:
    # 1 + ceil((48 h - 4 min) / 10 min) = 289 ticks.
    assert spot_hindsight_cost([True], job) == pytest.approx(289 * job.spot_usd_per_hour / 6)
    assert spot_hindsight_cost([False], job) == pytest.approx(289 * job.od_usd_per_hour / 6)
    tight = SpotJob(deadline_seconds=48 * 3600)  # 288 ticks: the changeover makes it unreachable
    assert spot_hindsight_cost([True], tight) == float("inf")


def test_hindsight_is_never_beaten_by_an_online_rule():
    from sim.hindsight import spot_hindsight_cost
    from sim.spot_job import SpotJob, poisson_trace, run_job

    job = SpotJob()
    for seed in range(12):
        available = poisson_trace(0.3, seed)
        best = spot_hindsight_cost(available, job)
        runs = {rule: run_job(job, available, rule) for rule in ("greedy", "uniform-progress", "spillway-progress")}
        assert all(r.met_deadline for r in runs.values())
        assert all(best <= r.cost_usd + 1e-9 for r in runs.values()), (seed, best, runs)
        assert best >= 289 * job.spot_usd_per_hour / 6 - 1e-9  # no cheaper than spot all along


def test_hindsight_switches_to_spot_when_a_long_window_opens():
    from sim.hindsight import spot_hindsight_cost
    from sim.spot_job import SpotJob

    # 289 ticks of running fit the 312 ticks before the deadline if they start by tick 23 (3 h 50 min).
    job = SpotJob()
    trace = [False] * 18 + [True] * 400  # spot from 3 h on: wait for it, then spot to the end
    assert spot_hindsight_cost(trace, job) == pytest.approx(289 * job.spot_usd_per_hour / 6)
    late = [False] * 30 + [True] * 400  # from 5 h on: too late for spot alone, some on-demand is needed
    cost = spot_hindsight_cost(late, job)
    assert 289 * job.spot_usd_per_hour / 6 < cost < 289 * job.od_usd_per_hour / 6


# --- the planned rule: expected cost under availability learned from history (goal 2) ----------


def runs_of(history, ages=8):
    from policies.spot.spot_plan import availability_model

    return availability_model(history, 600.0, ages=ages)


def test_availability_model_learns_that_long_outages_last():
    # Outages of 1 tick or of 40 ticks, spot back for 20 ticks between them: an outage that has
    # lasted 3 ticks is one of the long ones, so it is far less likely to end than a fresh one.
    history = ([False] + [True] * 20 + [False] * 40 + [True] * 20) * 30
    model = runs_of(history)
    assert model.down_hazard[0] > 0.4  # half the outages end after one tick
    assert model.down_hazard[2] < 0.1 < model.down_hazard[0] / 4
    assert all(0 < h < 1 for h in model.up_hazard + model.down_hazard)


def test_availability_model_of_a_memoryless_history_is_flat_and_of_no_history_is_a_coin():
    from sim.spot_job import poisson_trace

    model = runs_of(poisson_trace(0.3, 7, ticks=20_000))
    p_down = 1 - (1 - 0.3) ** (1 / 6)  # the chance a 10-min tick is unavailable
    assert model.up_hazard[:4] == pytest.approx([p_down] * 4, abs=0.01)
    assert model.down_hazard[0] == pytest.approx(1 - p_down, abs=0.05)
    empty = runs_of([])
    assert empty.up_hazard == empty.down_hazard == (0.5,) * 8


def planned(available, history, **job_fields):
    from sim.spot_job import SpotJob, run_job

    return run_job(SpotJob(**job_fields), available, "planned", history=history)


@pytest.mark.parametrize("rule", ["planned", "planned-blind"])
def test_planned_rule_leaves_a_long_outage_for_on_demand_and_comes_back_to_spot(rule):
    from sim.spot_job import SpotJob, run_job

    history = ([False] + [True] * 20 + [False] * 40 + [True] * 20) * 30
    trace = [True] * 30 + [False] * 60 + [True] * 400  # a 10-h outage 5 h in
    greedy, plan = run_job(SpotJob(), trace, "greedy"), run_job(SpotJob(), trace, rule, history=history)
    assert greedy.met_deadline and plan.met_deadline
    # greedy idles 4 h of slack away and runs the rest on on-demand; the plan bridges the outage
    # (blind: without seeing spot come back, it goes back when the model says spot is likely there)
    assert greedy.od_fraction > 0.8
    assert 0 < plan.od_fraction < 0.3
    assert plan.cost_usd < 0.6 * greedy.cost_usd


def test_planned_rule_waits_out_the_short_outages_of_a_memoryless_trace_like_greedy():
    from sim.spot_job import poisson_trace, run_job, SpotJob

    greedy = plan = 0.0
    for seed in range(20):
        trace = poisson_trace(0.1, seed)
        greedy += run_job(SpotJob(), trace, "greedy").cost_usd
        run = planned(trace, trace[-1008:])
        assert run.met_deadline
        plan += run.cost_usd
    assert plan <= 1.01 * greedy


@pytest.mark.parametrize("rate", [0.2, 0.6])
@pytest.mark.parametrize("rule", ["planned", "planned-blind"])
def test_planned_rule_never_misses_and_never_beats_the_hindsight_optimum(rate, rule):
    from sim.hindsight import spot_hindsight_cost
    from sim.spot_job import SpotJob, poisson_trace, run_job

    for seed in range(4):
        trace = poisson_trace(rate, seed)
        # a history from another rate: a wrong model may cost more, never a deadline
        run = run_job(SpotJob(), trace, rule, history=poisson_trace(0.9 - rate, seed + 100)[:1008])
        assert run.met_deadline
        assert spot_hindsight_cost(trace, SpotJob()) <= run.cost_usd + 1e-9


def test_blind_plan_goes_back_to_spot_only_when_the_model_says_it_is_likely_there():
    from policies.spot.spot_plan import availability_model, plan_spot_blind

    # outages of 1 tick or 40, stretches of spot of 20: an outage that has lasted 3 ticks is a long one
    model = availability_model(([False] + [True] * 20 + [False] * 40 + [True] * 20) * 30, 600.0)
    plan = plan_spot_blind(model, work_seconds=24 * 3600, deadline_seconds=36 * 3600, changeover_seconds=360,
                           spot_usd_per_hour=1.0, on_demand_usd_per_hour=3.0)
    ask = dict(elapsed_ticks=10, progress_seconds=9 * 600, current="od", spot_available=None, age_ticks=0,
               last_seen=(False, 3))
    assert plan.choice(unseen_ticks=1, **ask) == "od"  # a long outage has barely begun
    assert plan.choice(unseen_ticks=36, **ask) == "spot"  # 6 h on: spot is most likely back
    assert plan.likeliest_age((False, 3), 36, True) >= 1


def test_planned_rule_meets_a_deadline_with_no_slack_for_a_changeover_back_to_spot():
    # 2 h of work by 2 h 20 min: the first changeover eats 6 min, which leaves one tick of slack;
    # with a history of spot flapping every tick, the plan must still finish in time.
    trace = [True, True, False] + [True] * 40
    run = planned(trace, [True, False] * 50, work_seconds=7200, deadline_seconds=8400)
    assert run.met_deadline and run.finished_seconds <= 8400


def test_plan_choice_outside_the_plan_and_bad_changeover():
    from policies.spot.spot_plan import plan_spot

    model = runs_of([True, False] * 20)
    plan = plan_spot(model, work_seconds=3600, deadline_seconds=7200, changeover_seconds=360,
                     spot_usd_per_hour=1, on_demand_usd_per_hour=3)
    ask = dict(current="none", spot_available=True, age_ticks=1)
    assert plan.choice(elapsed_ticks=12, progress_seconds=0, **ask) == "od"  # past the deadline
    assert plan.choice(elapsed_ticks=10, progress_seconds=0, **ask) == "od"  # too far behind for anything else
    assert plan.choice(elapsed_ticks=0, progress_seconds=0, **ask) == "spot"  # 2 h for 1 h of work: spot
    with pytest.raises(ValueError, match="changeover .* shorter than a tick"):
        plan_spot(model, work_seconds=3600, deadline_seconds=7200, changeover_seconds=600,
                  spot_usd_per_hour=1, on_demand_usd_per_hour=3)


def test_a_lost_state_says_so_only_when_asked_and_a_burst_plan_counts_whole_ticks():
    from policies.spot.spot_plan import SpotBelief, blind_choice, burst_plan, observe, spot_seen_in_status

    # 2 h of work, 2 h 45 min to the deadline: 5 whole 30-min ticks, and the first changeover
    # (1,020 s, rounded up to 1,200) leaves no tick to spare in the plan's coarse model.
    plan = burst_plan(tick_seconds=1800, work_seconds=7200, time_left_seconds=2.75 * 3600,
                      changeover_seconds=1020, spot_usd_per_hour=1.0, on_demand_usd_per_hour=3.0)
    assert len(plan.lowest) == 5 and plan.unit_seconds == 300
    belief = observe(plan, SpotBelief(), 1, False)  # tick 1: spot never came
    ask = dict(tick=1, progress_seconds=0.0, current="spot")
    assert blind_choice(plan, belief, **ask) == "od"
    assert blind_choice(plan, belief, say_lost=True, **ask) == "lost"
    assert blind_choice(plan, SpotBelief(), **ask) == "none"  # nothing seen yet: keep to spot
    assert burst_plan(tick_seconds=1800, work_seconds=7200, time_left_seconds=1799, changeover_seconds=1020,
                      spot_usd_per_hour=1.0, on_demand_usd_per_hour=3.0) is None
    assert spot_seen_in_status("Training", 10, 420) is True
    assert spot_seen_in_status("Interrupted", 10, 420) is False
    assert spot_seen_in_status("Starting", 10, 420) is None  # may just be starting
    assert spot_seen_in_status("Starting", 900, 420) is False  # waiting for capacity


def test_a_long_burst_plan_stays_under_its_memory_cap_or_leaves_it_to_the_safety_net():
    from policies.spot.spot_plan import PLAN_BYTES_MAX, burst_plan

    week = burst_plan(tick_seconds=1800, work_seconds=120 * 3600, time_left_seconds=168 * 3600,
                      changeover_seconds=1020, spot_usd_per_hour=9.0, on_demand_usd_per_hour=28.0)
    assert week.seen.nbytes + week.unseen.nbytes <= PLAN_BYTES_MAX
    assert week.unit_seconds > 300  # coarser than a sixth of a tick, to fit
    month = burst_plan(tick_seconds=1800, work_seconds=120 * 3600, time_left_seconds=720 * 3600,
                       changeover_seconds=1020, spot_usd_per_hour=9.0, on_demand_usd_per_hour=28.0)
    assert month is None
