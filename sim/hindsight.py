"""The hindsight-optimal schedule of a window of Jobs: the yardstick for "gap to optimal".

An oracle, not a policy: it knows every arrival and run time in advance. CP-SAT chooses, per Job,
to burst or to start locally at some time after its arrival, minimizing cloud GPU-hours subject to
a budget of total waiting (Starburst's MILP formulation, ATC'24 §5). Local GPUs are pooled (the
nodes' packing is relaxed), so the result is a lower bound on what any online policy can reach.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

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
    intervals, demands, cost_terms, wait_terms, burst = [], [], [], [], []
    per_node = [([], []) for _ in node_gpus or []]
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
