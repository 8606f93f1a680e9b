"""ParkingLot: which Jobs waiting for money a slot given back can start sooner (issue #11)."""

import random

from policies.forecast.capacity import CapacityTimeline, INF
from policies.queue.parking import Parked, ParkingLot
from policies.model.snapshot import Node


def crowded_timeline(rng: random.Random) -> tuple[CapacityTimeline, list]:
    """Six 8-GPU nodes with running pods, and held slots of waiting Jobs (slot, GPUs per pod, run time)."""
    nodes = tuple(Node(f"n{i}", 8) for i in range(6))
    running = [(f"n{rng.randrange(6)}", rng.choice((1, 2, 4)), rng.uniform(1, 400)) for _ in range(14)]
    timeline = CapacityTimeline.from_nodes(0.0, nodes, running)
    held = []
    for _ in range(12):
        gpus, runtime = rng.choice((1, 2, 4, 8)), rng.uniform(20, 300)
        slot = timeline.earliest_start(gpus, 1, None, runtime)
        timeline.reserve(slot, gpus, runtime)
        held.append((slot, gpus, runtime))
    return timeline, held


def test_a_slot_given_back_names_every_parked_job_it_can_start_sooner():
    """sped_up() narrows the parked Jobs down by the free windows around the GPUs given back; it
    must name every one whose earliest start actually moves, and for a single pod the new start
    is the earlier of the old one and its earliest fit on the freed node (what the QueuePlanner
    then takes without a full search)."""
    named_total = moved_total = 0
    for seed in range(40):
        named, moved = give_back_one_slot(random.Random(seed))
        assert moved <= named, seed
        named_total, moved_total = named_total + len(named), moved_total + len(moved)
    assert moved_total > 0  # the case this is about happens
    assert named_total < 0.8 * 40 * 60, named_total  # and it does narrow them down


def give_back_one_slot(rng: random.Random) -> tuple[set, set]:
    """60 parked Jobs at their exact earliest starts; one held slot given back. (The Jobs named, those
    whose start moved.)"""
    timeline, held = crowded_timeline(rng)
    lot, starts = ParkingLot(), {}
    for k in range(60):
        gpus, runtime = rng.choice((1, 2, 4, 8)), rng.choice((10, 60, 200, 1000, 5000))
        start = timeline.earliest_start(gpus, 1, None, runtime).start
        key = f"ns/j{k:02d}"
        lot.park(key, Parked(((float(k),), key), "ns", (gpus, 1, None), 10.0, start, "ml.g6.xlarge", runtime), 0.0)
        starts[key] = start
    slot, gpus, runtime = held[rng.randrange(len(held))]
    timeline.unreserve(slot, gpus, runtime)
    regions = [(i, slot.start, slot.start + runtime) for i, _ in slot.nodes]
    freed = {i for i, _, _ in regions}

    named = {key for _, key in lot.sped_up(((-INF,), ""), lambda g, p: timeline.windows_within(g, p, regions))}

    moved = set()
    for key, parked in lot.jobs.items():
        g, runtime = parked.shape[0], parked.runtime
        now_start = timeline.earliest_start(g, 1, None, runtime).start
        assert now_start <= starts[key]  # GPUs given back never delay anyone
        assert now_start == min(starts[key], timeline.earliest_fit_on(g, runtime, None, freed))
        if now_start < starts[key]:
            moved.add(key)
    return named, moved


def test_only_jobs_queued_behind_the_change_are_named():
    timeline = CapacityTimeline.from_nodes(0.0, (Node("a", 8),), [("a", 8, 100)])
    lot = ParkingLot()
    for k in range(4):
        key = f"ns/j{k}"
        lot.park(key, Parked(((float(k),), key), "ns", (8, 1, None), 1.0, 100.0, "ml.g6.xlarge", 50.0), 0.0)
    timeline.release("a", 8, 100)  # the pod ended at once: 8 GPUs free from 0
    named = lot.sped_up(((1.0,), "ns/j1"), lambda g, p: timeline.windows_within(g, p, [(0, 0.0, 100.0)]))
    assert [key for _, key in named] == ["ns/j2", "ns/j3"]


def test_a_moved_start_is_found_by_every_index():
    lot = ParkingLot()
    lot.park("ns/a", Parked(((1.0,), "ns/a"), "ns", (8, 1, None), 1.0, 500.0, "ml.g6.xlarge", 50.0), 0.0)
    lot.move_start("ns/a", 200.0, 0.0)
    assert lot.jobs["ns/a"].earliest_start == 200.0
    assert lot.next_look(0.0) == 200.0  # its start comes then
    # a window from 150 now names it, one from 250 does not
    assert lot.sped_up(((-INF,), ""), lambda g, p: [(150.0, 60.0)])
    assert not lot.sped_up(((-INF,), ""), lambda g, p: [(250.0, 60.0)])
    assert lot.unpark("ns/a") is not None and len(lot) == 0
    assert not lot.sped_up(((-INF,), ""), lambda g, p: [(0.0, INF)])
