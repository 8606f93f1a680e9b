"""The local forecast: node packing, gangs, queue-ahead reservations, overrunning estimates."""

from __future__ import annotations

import math

import pytest

from policies.forecast.capacity import CapacityTimeline, LocalSlot, NodeTimeline
from policies.forecast.derived import Derived
from policies.model.snapshot import Node
from tests.builders import HOUR, NOW, cluster, policy

INF = math.inf


def timeline(*nodes: tuple[str, int], busy=()) -> CapacityTimeline:
    return CapacityTimeline.from_nodes(0.0, tuple(Node(n, g) for n, g in nodes), list(busy))


def test_free_gpus_on_different_nodes_do_not_add_up_for_one_pod():
    tl = timeline(("a", 8), ("b", 8), busy=[("a", 4, 100), ("b", 4, 200)])
    slot = tl.earliest_start(8, 1, None, 50)
    assert slot.start == 100 and tl.nodes[slot.nodes[0][0]].name == "a"


def test_best_fit_prefers_the_fuller_node():
    tl = timeline(("a", 8), ("b", 8), busy=[("a", 6, 100)])
    slot = tl.earliest_start(2, 1, None, 50)
    assert slot.start == 0 and tl.nodes[slot.nodes[0][0]].name == "a"


def test_a_reservation_is_never_claimed_twice():
    tl = timeline(("a", 8))
    first = tl.earliest_start(8, 1, None, 100)
    tl.reserve(first, 8, 100)
    second = tl.earliest_start(8, 1, None, 100)
    assert (first.start, second.start) == (0, 100)


def test_backfill_uses_a_gap_only_if_the_job_fits_in_it():
    tl = timeline(("a", 8), busy=[("a", 8, 100)])
    big = tl.earliest_start(8, 1, None, 100)  # 100..200
    tl.reserve(big, 8, 100)
    tl.nodes[0].add(300, 400, -8)  # another reservation 300..400
    assert tl.earliest_start(8, 1, None, 100).start == 200  # fits 200..300 exactly
    assert tl.earliest_start(8, 1, None, 101).start == 400


def test_gang_spreads_pods_over_nodes_at_the_same_time():
    tl = timeline(("a", 8), ("b", 8), ("c", 8), busy=[("a", 8, 50), ("b", 4, 80)])
    slot = tl.earliest_start(8, 2, None, 10)
    assert slot.start == 50
    assert sorted(tl.nodes[i].name for i, _ in slot.nodes) == ["a", "c"]


def test_gang_that_exceeds_the_cluster_never_fits():
    tl = timeline(("a", 8), ("b", 8))
    assert tl.earliest_start(8, 3, None, 10).start == INF
    assert tl.earliest_start(16, 1, None, 10).start == INF


def test_gpu_product_selector_restricts_nodes():
    tl = CapacityTimeline.from_nodes(0.0, (Node("t4", 8, "Tesla-T4"), Node("a100", 8, "A100")), [])
    slot = tl.earliest_start(4, 1, "A100", 10)
    assert tl.nodes[slot.nodes[0][0]].name == "a100"
    assert tl.earliest_start(1, 1, "H100", 10).start == INF


def test_unschedulable_node_offers_nothing():
    tl = CapacityTimeline.from_nodes(0.0, (Node("a", 8, None, schedulable=False),), [])
    assert tl.earliest_start(1, 1, None, 10).start == INF


def test_node_timeline_merges_equal_steps():
    n = NodeTimeline("a", None, 8, [0.0], [8])
    n.add(10, 20, -4)
    n.add(20, 30, -4)
    assert (n.times, n.free) == ([0.0, 10, 30], [8, 4, 8])
    n.add(10, 30, 4)
    assert (n.times, n.free) == ([0.0], [8])


@pytest.mark.parametrize("expected_end_hours, started_ago, want_release", [
    (2.0, 1.0, 2.0),        # on schedule: releases at its expected end
    (-1.0, 4.0, 2.0),       # overran by 1 h after 4 h: assume half its elapsed time again
    (-0.01, 0.001, 60 / HOUR),  # barely started and overran: at least a minute, never "now"
])
def test_running_jobs_release_at_a_sane_time_even_when_estimates_are_wrong(expected_end_hours, started_ago,
                                                                           want_release):
    snap = cluster().nodes(1).busy("n0", 8, expected_end_hours, started_ago).build()
    tl = Derived(snap, policy()).timeline(NOW)
    assert tl.nodes[0].times[1] == pytest.approx(NOW + want_release * HOUR)


def test_running_job_without_end_uses_history_of_its_family():
    snap = (cluster().nodes(1).busy("n0", 8, None, started_hours_ago=1.0, job="ml/sweep-3")
            .history("ml", "sweep", 3, 5, 4).build())
    tl = Derived(snap, policy()).timeline(NOW)
    assert tl.nodes[0].times[1] == pytest.approx(NOW + 3 * HOUR)  # median 4 h, started 1 h ago


from hypothesis import given, settings, strategies as st  # noqa: E402


@st.composite
def busy_timelines(draw):
    nodes = tuple(Node(f"n{i}", draw(st.sampled_from([2, 4, 8]))) for i in range(draw(st.integers(1, 6))))
    tl = CapacityTimeline.from_nodes(0.0, nodes, [])
    for _ in range(draw(st.integers(0, 12))):
        g = draw(st.sampled_from([1, 2, 4, 8]))
        d = draw(st.integers(1, 50))
        slot = tl.earliest_start(g, draw(st.sampled_from([1, 1, 2])), None, d, draw(st.integers(0, 80)))
        tl.reserve(slot, g, d)
    return tl


@settings(max_examples=200, deadline=None)
@given(busy_timelines(), st.sampled_from([1, 2, 4, 8]), st.integers(1, 3), st.integers(1, 60))
def test_every_slot_is_really_free_and_single_pods_start_as_early_as_possible(tl, gpus, pods, duration):
    slot = tl.earliest_start(gpus, pods, None, duration)
    for node in tl.nodes:  # reservations never overbook a node
        assert min(node.free) >= 0
    if not slot.feasible:
        assert pods > 1 or all(n.capacity < gpus for n in tl.nodes)
        return
    assert sum(count for _, count in slot.nodes) == pods
    for i, count in slot.nodes:
        assert tl.nodes[i].min_free(slot.start, slot.start + duration) >= gpus * count
    starts = sorted({0.0} | {t for n in tl.nodes for t in n.times})
    earliest = min(t for t in starts if sum(n.min_free(t, t + duration) // gpus for n in tl.nodes) >= pods)
    assert slot.start == earliest  # exact, for gangs too


@settings(max_examples=200, deadline=None)
@given(busy_timelines(), st.sampled_from([1, 2, 4, 8]), st.integers(1, 3), st.integers(1, 60), st.floats(0, 1))
def test_a_slot_stays_put_as_time_moves_up_to_its_start(tl, gpus, pods, duration, fraction):
    """What the QueuePlanner relies on to skip a waiting Job: with the timeline unchanged, asking
    again later (but not after the slot's start) gives the same start on the same nodes."""
    slot = tl.earliest_start(gpus, pods, None, duration)
    if not slot.feasible:
        return
    later = tl.earliest_start(gpus, pods, None, duration, slot.start * fraction)
    assert later == slot


def test_earliest_fit_on_looks_only_at_the_nodes_it_is_given():
    # a: 4 GPUs free until 100, then 8; b: 8 GPUs free from 300
    tl = timeline(("a", 8), ("b", 8), busy=[("a", 4, 100), ("b", 8, 300)])
    assert tl.earliest_fit_on(8, 50, None, {0}) == 100  # a holds 8 GPUs from 100
    assert tl.earliest_fit_on(8, 50, None, {1}) == 300  # b only from 300
    assert tl.earliest_fit_on(8, 50, None, {0, 1}) == 100
    assert tl.earliest_fit_on(4, 50, None, {0}) == tl.origin  # 4 GPUs on a right away
    assert tl.earliest_fit_on(8, 50, "NVIDIA-H100-80GB-HBM3", {0}) == INF  # another product
    assert tl.earliest_fit_on(16, 50, None, {0, 1}) == INF  # too big for either


def test_windows_within_gives_every_free_run_that_meets_a_region():
    # a: 4 GPUs free until 100, then 8; a reservation takes 6 of them on [200, 260)
    tl = timeline(("a", 8), ("b", 8), busy=[("a", 4, 100), ("b", 8, 300)])
    tl.reserve(LocalSlot(200, ((0, 1),)), 6, 60)
    t0 = tl.origin
    # 4 GPUs: free on a from now until 200, and again from 260 on (2 free in between)
    assert tl.windows_within(4, None, [(0, 150, 250)]) == [(t0, 200 - t0)]
    assert tl.windows_within(4, None, [(0, 150, 270)]) == [(t0, 200 - t0), (260, INF)]
    assert tl.windows_within(4, None, [(0, 210, 250)]) == []  # only 2 free there
    assert tl.windows_within(2, None, [(0, 210, 250)]) == [(t0, INF)]
    assert tl.windows_within(8, None, [(0, 120, 150)]) == [(100, 100)]
    assert tl.windows_within(8, None, [(1, 0, 100)]) == []  # b is full until 300
    assert tl.windows_within(8, "NVIDIA-H100-80GB-HBM3", [(0, 120, 150)]) == []


def test_a_timeline_kept_across_many_changes_still_advances_exactly():
    """A timeline that one caller keeps for a whole simulation: thousands of reservations given and
    taken back leave its bookkeeping bounded, and moving its origin still folds every step."""
    nodes = (Node("a", 8), Node("b", 8))
    kept = CapacityTimeline.from_nodes(NOW, nodes, [("a", 8, NOW + 2 * HOUR), ("b", 4, NOW + 5 * HOUR)])
    for k in range(5000):
        slot = kept.earliest_start(4, 1, None, HOUR, NOW + (k % 50) * 60)
        kept.reserve(slot, 4, HOUR)
        kept.unreserve(slot, 4, HOUR)
    assert len(kept._steps) <= 4 * len(nodes) + 64
    fresh = CapacityTimeline.from_nodes(NOW, nodes, [("a", 8, NOW + 2 * HOUR), ("b", 4, NOW + 5 * HOUR)])
    for timeline in (kept, fresh):
        timeline.advance(NOW + 3 * HOUR)
    assert kept.max_free_now(None) == fresh.max_free_now(None) == 8
    for gpus in (1, 4, 8):
        assert kept.earliest_start(gpus, 1, None, HOUR) == fresh.earliest_start(gpus, 1, None, HOUR)
