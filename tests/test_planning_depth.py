"""local.planningDepth: only the first N Jobs of the queue are planned (issue #11, the budget-on
default); the QueuePlanner keeps exactly that bound across cycles."""

import random

import pytest

from policies.queue.backfill_index import BackfillIndex
from policies.model.constants import Placement, Reason
from policies.decide.one_job import REQUEUE_MIN_SECONDS
from policies.queue.planning import plan
from policies.queue.planning_window import PlanningWindow
from policies.model.errors import InputError
from policies.model.policy_loading import load_policy
from policies.queue.queue_planner import QueuePlanner
from sim.presets import baseline
from sim.report import summarize

from .builders import cluster, job, policy
from .planner_runs import budget_bound_policy, mixed_trace, outcomes, shipped_default

BEYOND = Reason.QUEUED_BEYOND_PLANNING_DEPTH


def queue_of(count: int, mode: str = "local"):
    """8-GPU Jobs submitted a minute apart, the oldest first; local mode: they wait for local GPUs."""
    return [job(f"j{i}").gpus(8).product(None).runs(2).submitted_ago((count - i) / 60).mode(mode).build()
            for i in range(count)]


def test_plan_decides_the_first_jobs_and_leaves_the_rest_unplanned():
    snap = cluster().nodes(1).busy("n0", 8, 3).build()  # busy for 3 h: every Job waits or bursts
    jobs = queue_of(5, "auto")
    deep = policy(local={"planningDepth": 2})
    result = plan(jobs, snap, deep)
    by_job = result.by_job()
    # The first two get the decisions they get with nobody behind them.
    alone = plan(jobs[:2], snap, policy()).by_job()
    for j in jobs[:2]:
        assert by_job[j.key].reason == alone[j.key].reason != BEYOND
        assert by_job[j.key].evidence.local_start_time == alone[j.key].evidence.local_start_time
    for j in jobs[2:]:
        d = by_job[j.key]
        assert (d.placement, d.reason, d.requeue_after_seconds) == (Placement.WAIT, BEYOND, None)
        assert d.evidence.local_start_time == float("inf")
        assert "planningDepth" in d.message and "first 2 Jobs" in d.message
    # Nothing burst or started among the first two? Then nobody moves up: no early look.
    if all(by_job[j.key].placement == Placement.WAIT for j in jobs[:2]):
        assert result.review_at is None


def test_plan_looks_again_soon_when_planned_jobs_leave_and_others_wait_behind():
    snap = cluster().nodes(1).build()  # one free node: the first Job starts
    jobs = queue_of(3)
    result = plan(jobs, snap, policy(local={"planningDepth": 1}))
    assert result.by_job()[jobs[0].key].placement == Placement.LOCAL
    assert result.review_at == snap.time + REQUEUE_MIN_SECONDS
    assert plan(jobs, snap, policy(local={"planningDepth": 3})).review_at is None


def test_a_single_pod_behind_the_depth_starts_if_it_fits_now_around_the_planned_slots():
    # n0 is busy for 3 h; n1 has 4 GPUs free until its own pod ends at 3 h. The two planned 8-GPU
    # Jobs wait for local GPUs and hold n0 and n1 from 3 h on (backfill queueing).
    snap = cluster().nodes(2).busy("n0", 8, 3).busy("n1", 4, 3).build()
    planned = queue_of(2)
    behind = [job("short").gpus(2).product(None).runs(1).submitted_ago(0.01).build(),  # fits before 3 h
              job("long").gpus(2).product(None).runs(4).submitted_ago(0.009).build(),  # would cross n1's slot
              job("gang").gpus(1, pods=2).product(None).runs(1).submitted_ago(0.008).build(),
              job("cloud").gpus(1).product(None).runs(1).submitted_ago(0.007).mode("cloud").build(),
              job("short2").gpus(2).product(None).runs(2).submitted_ago(0.006).build()]  # fits in what is left
    pol = policy(local={"planningDepth": 2, "queueing": "backfill"}, tradeoff={"waitUsdPerHour": 0})
    by_job = plan(planned + behind, snap, pol).by_job()
    assert [by_job[j.key].reason for j in planned] == [Reason.WAITING_FOR_LOCAL_CAPACITY] * 2
    started = {k for k, d in by_job.items() if d.placement == Placement.LOCAL}
    assert started == {behind[0].key, behind[4].key}
    assert by_job[behind[0].key].reason == Reason.LOCAL_CAPACITY_AVAILABLE
    assert by_job[behind[0].key].local_nodes == ("n1",)
    # The rest wait unplanned: the long one would delay a planned Job, a gang is not looked at,
    # and a Job behind never bursts, even one whose mode is cloud.
    assert {k for k, d in by_job.items() if d.reason == BEYOND} == {j.key for j in behind[1:4]}
    # The planner starts the same Jobs.
    planner = QueuePlanner(pol)
    for j in planned + behind:
        planner.add(j)
    assert {k: (d.placement, d.reason) for k, d in planner.plan(snap).by_job().items()} == {
        k: (d.placement, d.reason) for k, d in by_job.items()}
    assert len(planner) == 5


def test_the_planner_keeps_the_first_jobs_planned_as_jobs_come_and_go():
    snap = cluster().nodes(1).busy("n0", 8, 3).build()
    pol = policy(local={"planningDepth": 2})
    planner = QueuePlanner(pol)
    jobs = queue_of(4)
    for j in jobs[1:]:
        planner.add(j)
    first = planner.plan(snap).by_job()
    assert first[jobs[3].key].reason == BEYOND and first[jobs[1].key].reason != BEYOND
    # An older Job comes back (a launch failed, say): the last planned Job moves behind it and is
    # told so once; the Job already behind is not told again.
    planner.add(jobs[0])
    second = planner.plan(snap).by_job()
    assert second[jobs[2].key].reason == BEYOND
    assert jobs[0].key in second and jobs[3].key not in second
    assert len(planner) == 4
    # A planned Job leaves: the next one moves up and is planned at the next cycle.
    planner.remove(jobs[0].key)
    third = planner.plan(snap).by_job()
    assert third[jobs[2].key].reason != BEYOND
    assert jobs[3].key not in third
    # The planner's decisions equal plan()'s over the same queue, Job by Job.
    full = plan(jobs[1:], snap, pol).by_job()
    assert {k: (d.placement, d.reason) for k, d in third.items()} == {
        k: (full[k].placement, full[k].reason) for k in third}


def test_the_planner_asks_for_a_cycle_when_a_job_can_move_up():
    pol = policy(local={"planningDepth": 1})
    planner = QueuePlanner(pol)
    jobs = queue_of(2)
    for j in jobs:
        planner.add(j)
    snap = cluster().nodes(1).build()
    result = planner.plan(snap)
    assert result.by_job()[jobs[0].key].placement == Placement.LOCAL
    assert result.review_at == snap.time + REQUEUE_MIN_SECONDS  # jobs[1] moves up
    busy = cluster().nodes(1).busy("n0", 8, 2).build()
    assert planner.plan(busy).by_job()[jobs[1].key].reason != BEYOND


@pytest.mark.parametrize("name, pol, nodes", [
    # The shipped default's own rules under a small budget: most Jobs wait for money (parked).
    ("budget-bound default", budget_bound_policy(15, local={"maxWaitSeconds": 10_000_000, "planningDepth": 5},
                                                 tradeoff={"waitUsdPerHour": 15, "per": "job"}), 2),
    ("budget-bound, early", budget_bound_policy(40, local={"planningDepth": 8}), 2),
    ("default", shipped_default(local={"planningDepth": 6}), 6),
    ("default, fifo", shipped_default(local={"planningDepth": 6, "queueing": "fifo"}), 6),
])
def test_the_planner_under_a_planning_depth_equals_a_full_replan(name, pol, nodes):
    trace = mixed_trace(400)
    fast_sim, fast = outcomes(trace, pol, True, 0.0, nodes)
    full_sim, full = outcomes(trace, pol, False, 0.0, nodes)
    assert fast == full
    assert fast_sim.planner.evaluated < full_sim.planner.evaluated / 2
    # The report counts the Jobs the bound held back, as both runs saw them.
    held_back = summarize(name, fast_sim, fast_sim.records).unplanned_jobs
    assert held_back == summarize(name, full_sim, full_sim.records).unplanned_jobs > 0
    # The bound binds: without it, the same trace runs otherwise.
    data = pol.model_dump(by_alias=True, mode="json")
    data["spec"]["local"]["planningDepth"] = None
    unbounded = type(pol).model_validate(data)
    assert outcomes(trace, unbounded, True, 0.0, nodes)[1] != fast


@pytest.mark.parametrize("name", ["constant-wait", "compute-wait"])
def test_a_planning_depth_under_a_stable_policy_changes_no_decision(name):
    """Under a stable policy the planner sees timeouts on time and plan() up to a requeue late (as
    test_skipping_waiting_jobs_changes_no_decision says); placements and reasons agree."""
    pol = baseline(name, planningDepth=4)
    trace = mixed_trace()
    fast = outcomes(trace, pol, True)[1]
    full = outcomes(trace, pol, False)[1]
    assert [o[:2] for o in fast] == [o[:2] for o in full]
    assert max(abs(a[2] - b[2]) for j, a, b in zip(trace, fast, full) if j.deadline_s is None) < REQUEUE_MIN_SECONDS


def test_a_depth_no_queue_reaches_changes_nothing():
    trace = mixed_trace(400)
    assert outcomes(trace, shipped_default(local={"planningDepth": 100_000}), True, 0.0, 6)[1] == \
        outcomes(trace, shipped_default(), True, 0.0, 6)[1]


def test_a_planning_depth_below_one_is_refused_by_name():
    with pytest.raises(InputError) as err:
        load_policy("apiVersion: spillway.io/v1alpha1\nkind: BurstPolicy\nspec:\n  local:\n    planningDepth: 0\n")
    assert "planningDepth" in str(err.value)


def test_the_window_keeps_the_first_entries_planned_and_tells_each_job_behind_once():
    window = PlanningWindow(2)
    e = [((float(i),), f"ns/j{i}") for i in range(5)]
    assert window.place(e[1]) == (True, None) and window.place(e[3]) == (True, None)
    assert window.place(e[4]) == (False, None)  # behind the first two
    assert window.place(e[0]) == (True, e[3])  # among them: the last planned one falls behind
    assert window.owed() == [e[3], e[4]] and window.owed() == []
    assert window.place(e[2]) == (False, None)  # after the last planned one: behind, though first there
    assert window.planned == [e[0], e[1]] and window.behind == [e[2], e[3], e[4]]
    assert not window.room_behind()
    assert window.leave(e[0]) is True and window.leave(e[4]) is False
    assert window.room_behind()
    assert window.move_up() == [e[2]] and window.planned == [e[1], e[2]] and window.owed() == []
    assert window.move_up() == []


def test_the_backfill_index_finds_the_first_job_in_queue_order_whose_run_fits():
    """Against a plain walk, through Jobs that join (mostly behind the others), leave, and are hidden."""
    rng = random.Random(7)
    index, live, hidden = BackfillIndex(), {}, set()  # live: key -> (entry, shape, run time)
    shapes = [(1, None), (2, None), (8, "A100")]
    for step in range(3000):
        roll = rng.random()
        if roll < 0.5 or not live:
            order = step if rng.random() < 0.9 else rng.uniform(0, step)  # now and then among the others
            key = f"j{step}"
            entry = ((order,), key)
            shape, runtime = rng.choice(shapes), rng.choice([0.0, rng.uniform(1, 100), 100.0])
            index.add(entry, shape, runtime)
            live[key] = (entry, shape, runtime)
        elif roll < 0.8:
            key = rng.choice(sorted(live))
            index.remove(key)
            del live[key]
            hidden.discard(key)
        elif roll < 0.9:
            key = rng.choice(sorted(live))
            if key not in hidden:
                index.hide(key)
                hidden.add(key)
        else:
            index.show_hidden()
            hidden.clear()
        for shape in shapes:
            for limit in (0.0, 50.0, 100.0, float("inf")):
                want = min((e for e, s, r in live.values() if s == shape and r <= limit and e[1] not in hidden),
                           default=None)
                assert index.first(shape, limit) == want
    assert bool(index) == bool(live)
