"""The hindsight-optimal schedule of a window of Jobs: the yardstick for "gap to optimal".

An oracle, not a policy: it knows every arrival and run time in advance. CP-SAT chooses, per Job,
to burst or to start locally at some time after its arrival, minimizing cloud GPU-hours subject to
a budget of total waiting (Starburst's MILP formulation, ATC'24 §5). Local GPUs are pooled (the
nodes' packing is relaxed), so the result is a lower bound on what any online policy can reach.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from ortools.sat.python import cp_model

from .traces import TraceJob


@dataclass(frozen=True)
class HindsightResult:
    status: str
    cloud_gpu_hours: float
    bound_gpu_hours: float  # the solver's proven lower bound
    total_wait_hours: float
    jobs: int
    wall_seconds: float


def hindsight_optimal(jobs: list[TraceJob], total_gpus: int, max_total_wait_hours: float, *,
                      node_gpus: list[int] | None = None, slot_seconds: float = 60.0,
                      time_limit_seconds: float = 30.0, workers: int = 2,
                      hint: dict[int, tuple[bool, float]] | None = None) -> HindsightResult:
    """node_gpus: place each local Job on one node (exact packing); None pools the GPUs (a relaxation).
    hint: {job id: (burst, start seconds)} from an online run, so the search starts from it."""
    model = cp_model.CpModel()
    t0 = min(j.arrival_s for j in jobs)
    horizon = math.ceil((max(j.arrival_s for j in jobs) - t0 + sum(j.duration_s for j in jobs)) / slot_seconds)
    intervals: list[Any] = []
    demands: list[int] = []
    cost_terms: list[Any] = []  # CP-SAT expressions and constants
    wait_terms: list[Any] = []
    burst: list[Any] = []
    per_node: list[tuple[list[Any], list[int]]] = [([], []) for _ in node_gpus or []]
    for j in jobs:
        if j.total_gpus > total_gpus:
            burst.append(None)
            cost_terms.append(round(j.total_gpus * j.duration_s / 36))  # GPU-hours x 100, forced out
            continue
        arrive = math.floor((j.arrival_s - t0) / slot_seconds)
        size = max(1, math.ceil(j.duration_s / slot_seconds))
        x = model.new_bool_var(f"x{j.id}")
        start = model.new_int_var(arrive, horizon, f"s{j.id}")
        if node_gpus is None:
            intervals.append(model.new_optional_fixed_size_interval_var(start, size, ~x, f"i{j.id}"))
            demands.append(j.total_gpus)
        else:
            on = [model.new_bool_var(f"n{j.id}_{k}") if j.total_gpus <= g else None for k, g in enumerate(node_gpus)]
            model.add_exactly_one([v for v in on if v is not None] + [x])
            for k, v in enumerate(on):
                if v is not None:
                    per_node[k][0].append(model.new_optional_fixed_size_interval_var(start, size, v, f"i{j.id}_{k}"))
                    per_node[k][1].append(j.total_gpus)
        model.add(start == arrive).only_enforce_if(x)  # a burst leaves at once (no cloud delay)
        cost_terms.append(round(j.total_gpus * j.duration_s / 36) * x)
        if hint and j.id in hint:
            went_out, began = hint[j.id]
            model.add_hint(x, int(went_out))
            model.add_hint(start, arrive if went_out else min(horizon, max(arrive, math.floor((began - t0) / slot_seconds))))
        wait_terms.append(start - arrive)
        burst.append(x)
    if node_gpus is None:
        model.add_cumulative(intervals, demands, total_gpus)
    else:
        for (ivs, dem), cap in zip(per_node, node_gpus):
            model.add_cumulative(ivs, dem, cap)
    model.add(sum(wait_terms) <= int(max_total_wait_hours * 3600 / slot_seconds))
    model.minimize(sum(cost_terms))
    solver = cp_model.CpSolver()
    solver.parameters.max_time_in_seconds = time_limit_seconds
    solver.parameters.num_search_workers = workers
    solver.parameters.random_seed = 0
    if hint:
        solver.parameters.repair_hint = True  # rounding to slots can make the online schedule a little infeasible
    status = solver.solve(model)
    name = solver.status_name(status)
    if status not in (cp_model.OPTIMAL, cp_model.FEASIBLE):
        return HindsightResult(name, math.nan, solver.best_objective_bound / 100, math.nan, len(jobs), solver.wall_time)
    waited = sum(solver.value(w) for w in wait_terms) * slot_seconds / 3600
    return HindsightResult(name, solver.objective_value / 100, solver.best_objective_bound / 100, waited,
                           len(jobs), solver.wall_time)


def spot_hindsight_cost(available: list[bool], job) -> float:
    """The least a deadline Job (sim.spot_job.SpotJob) can cost on a spot availability trace known in
    advance, in the tick model of "Can't Be Late"'s simulator (sim.spot_job.run_job): each tick it
    runs on spot (if available), on-demand or nothing; a tick on a new instance loses the
    changeover; every tick on an instance is billed whole; a preemption leaves it on nothing.
    The yardstick for an online rule: greedy and Uniform Progress are judged by the share of the
    gap between greedy and this optimum that they close.

    Exact dynamic programming over (tick, instance, work done). Work is counted in units of the
    greatest common divisor of a tick and a tick less the changeover, so no rounding enters. It
    needs the changeover to be shorter than a tick (CBL: 6 min against 10); inf if the deadline
    cannot be met at all."""
    tick = int(round(job.tick_seconds))
    overhead = int(round(job.overhead_seconds))
    if not 0 <= overhead < tick:
        raise ValueError("the changeover must be shorter than a tick")
    unit = math.gcd(tick, tick - overhead)
    stay, switch = tick // unit, (tick - overhead) // unit  # units of work in a tick
    total = math.ceil(job.work_seconds / unit - 1e-9)
    ticks = math.ceil(job.deadline_seconds / tick - 1e-9)
    spot_cost, od_cost = job.spot_usd_per_hour * tick / 3600, job.od_usd_per_hour * tick / 3600
    none, spot, od = 0, 1, 2
    cost = np.full((3, total + 1), np.inf)
    cost[none, 0] = 0.0
    best = np.inf
    for t in range(ticks):
        up = available[t % len(available)]
        if not up:  # preempted: whatever ran on spot now runs on nothing
            cost[none] = np.minimum(cost[none], cost[spot])
            cost[spot] = np.inf
        nxt = np.full_like(cost, np.inf)
        nxt[none] = cost.min(axis=0)  # run nothing this tick (work done stays)
        for target, price, ok in ((spot, spot_cost, up), (od, od_cost, True)):
            if not ok:
                continue
            for current in (none, spot, od):
                gain = stay if current == target else switch
                _advance(nxt[target], cost[current] + price, gain)
        best = min(best, nxt[:, total].min())
        nxt[:, total] = np.inf  # done: stops here, bills nothing more
        cost = nxt
    return float(best)


def _advance(into: np.ndarray, came: np.ndarray, gain: int) -> None:
    """into[w + gain] = min(into[w + gain], came[w]), with every w + gain past the end counted at the end."""
    end = len(into) - 1
    if gain <= end:
        np.minimum(into[gain:], came[: end + 1 - gain], out=into[gain:])
    into[end] = min(into[end], came[max(end + 1 - gain, 0):].min())
