"""Joint choice of which queued Jobs burst, with OR-Tools CP-SAT.

The question: which Jobs go out so that the rest fit locally, minimizing dollars plus the
value of waiting, within budgets, quotas, max waits and deadlines. The model is a relaxation
of the real cluster (GPUs pooled per GPU product and in total, not per node; a grid of
`slot` seconds), so it only chooses the set; plan() then places every Job with the exact
per-node timeline and the same per-Job rules.

Rolling horizon: only the first `window_jobs` Jobs of the queue enter the model (infra notes:
CP-SAT needs seconds for a first solution at 1,000 binding Jobs on 2 cores); the greedy plan is
the hint, and it is also the answer when the solver finds nothing in time.

Determinism: one search worker, a fixed seed, and a deterministic-time limit, so the same
inputs give the same answer on any machine; a wall-time guard of 3x the limit falls back to
greedy (then, and only then, the answer could depend on the machine's speed).
"""

from __future__ import annotations

import math

from ortools.sat.python import cp_model

from .capacity import INF
from .catalog import Catalog
from .constants import Mode, Placement
from .decide import Cycle, assume, evaluate, local_max_wait
from .derived import Derived
from .estimates import expected_end
from .jobs import JobRequest
from .plan import SolverReport
from .policy import BurstPolicy
from .snapshot import Snapshot

MAX_HORIZON_SLOTS = 600
MIN_SLOT_SECONDS = 60
LATE_PENALTY_CENTS = 10_000_000  # $100k: a broken max wait or deadline outweighs any burst


def optimize(queue: list[JobRequest], snapshot: Snapshot, policy: BurstPolicy, now: float, *,
             catalog: Catalog | None, time_limit_seconds: float, window_jobs: int, derived: Derived | None = None
             ) -> tuple[dict[str, tuple[Placement, float]], SolverReport]:
    window = queue[:window_jobs]
    derived = derived or Derived(snapshot, policy)
    # The greedy pass gives each Job's options (evaluated alone) and the hint.
    alone = Cycle.start(snapshot, policy, now, catalog, derived)
    greedy = Cycle.start(snapshot, policy, now, catalog, derived)
    facts = []
    for job in window:
        solo = evaluate(job, alone).decision
        hinted = evaluate(job, greedy)
        assume(hinted, job, greedy)
        cloud = [o for o in solo.evidence.options if o.placement.is_cloud]
        best = min(cloud, key=lambda o: o.score) if cloud else None
        facts.append((job, solo, best, hinted.decision))

    runtimes = [derived.runtime(j)[0] for j in window]
    releases = [(p, expected_end(p, snapshot.time, policy, derived.history())) for p in snapshot.running]
    span = sum(r for r in runtimes) + max([e - now for _, e in releases] + [0.0])
    slot = max(MIN_SLOT_SECONDS, math.ceil(span / MAX_HORIZON_SLOTS))
    horizon = math.ceil(span / slot) + 1

    model = cp_model.CpModel()
    nodes = {n.name: n for n in snapshot.nodes if n.schedulable}
    pools: dict[str | None, tuple[list, list, int]] = {
        None: ([], [], sum(n.allocatable_gpus for n in nodes.values()))}
    for n in nodes.values():
        if n.gpu_product:
            ivs, dem, cap = pools.get(n.gpu_product, ([], [], 0))
            pools[n.gpu_product] = (ivs, dem, cap + n.allocatable_gpus)
    for pod, end in releases:  # GPUs held by running work until it ends
        node = nodes.get(pod.node)
        if node is None or pod.gpus <= 0:
            continue
        size = max(1, math.ceil((end - now) / slot))
        iv = model.new_fixed_size_interval_var(0, size, f"run_{pod.job}_{pod.node}")
        for key in {None, node.gpu_product}:
            if key in pools:
                pools[key][0].append(iv)
                pools[key][1].append(pod.gpus)

    burst_vars, starts, objective = {}, {}, []
    by_namespace: dict[str, list] = {}
    by_type: dict[str, list] = {}
    hints = []
    for (job, solo, best, hinted), runtime in zip(facts, runtimes):
        if job.total_gpus == 0:
            continue
        key = job.key
        can_burst = best is not None and (job.mode or policy.spec.managed_jobs.default_mode) != Mode.LOCAL
        fits_somewhere = solo.evidence.local_start_time != INF and (
            job.gpu_product is None or job.gpu_product in pools)
        if not can_burst and not fits_somewhere:
            continue
        x = model.new_bool_var(f"burst_{key}")
        burst_vars[key] = x
        if not can_burst:
            model.add(x == 0)
        if not fits_somewhere or (job.mode == Mode.CLOUD):
            model.add(x == 1)
        dur = max(1, math.ceil(runtime / slot))
        s = starts[key] = model.new_int_var(0, horizon, f"start_{key}")
        model.add(s <= horizon * (1 - x))  # a burst Job does not wait locally
        iv = model.new_optional_fixed_size_interval_var(s, dur, ~x, f"local_{key}")
        for pool_key in {None, job.gpu_product}:
            if pool_key in pools:
                pools[pool_key][0].append(iv)
                pools[pool_key][1].append(job.total_gpus)
        if can_burst:
            waited = max(now - job.submit_time, 0.0) if job.submit_time else 0.0
            max_wait = local_max_wait(job, policy, runtime)
            # Soft: when budgets or quotas cannot send everything out, Jobs wait past these
            # limits (as the per-Job rules would), at a price far above any dollar figure.
            late = model.new_bool_var(f"late_{key}")
            model.add(s <= max(0, math.floor((max_wait - waited) / slot)) + horizon * (x + late))
            objective.append(LATE_PENALTY_CENTS * late)
            cents = int(round(best.committed_usd * 100))
            by_namespace.setdefault(job.namespace, []).append((x, cents))
            if best.instance_type:
                by_type.setdefault(best.instance_type, []).append((x, job.pods))
            objective.append(int(round(best.score * 100)) * x)
        if job.deadline is not None:
            missed = model.new_bool_var(f"missed_{key}")
            model.add(s + dur <= max(0, math.floor((job.deadline - now) / slot)) + 2 * horizon * (x + missed))
            objective.append(LATE_PENALTY_CENTS * missed)
        local_cents = int(round(solo.evidence.options[0].expected_usd * 100))
        objective.append(local_cents * (1 - x))
        per_slot = int(round(solo.evidence.wait_usd_per_hour * slot / 36))  # cents per slot
        objective.append(per_slot * s)
        hinted_burst = hinted.placement.is_cloud
        hints.append((x, int(hinted_burst)))
        if not hinted_burst and hinted.evidence.local_start_time != INF:
            hints.append((s, min(horizon, max(0, math.ceil((hinted.evidence.local_start_time - now) / slot)))))
        else:
            hints.append((s, 0))

    for ivs, demands, cap in pools.values():
        if ivs:
            model.add_cumulative(ivs, demands, cap)
    for ns, terms in by_namespace.items():
        left = alone.budget_left(ns)[0]
        if left != INF:
            model.add(sum(c * x for x, c in terms) <= max(0, int(math.floor(left * 100))))
    for name, terms in by_type.items():
        left = alone.quota_left(name)
        if left != INF:
            model.add(sum(n * x for x, n in terms) <= max(0, int(left)))
    model.minimize(sum(objective))
    for var, value in hints:
        model.add_hint(var, value)

    solver = cp_model.CpSolver()
    solver.parameters.num_search_workers = 1
    solver.parameters.random_seed = 0
    solver.parameters.max_deterministic_time = time_limit_seconds
    solver.parameters.max_time_in_seconds = 3 * time_limit_seconds
    status = solver.solve(model)
    name = solver.status_name(status)
    wall = solver.wall_time
    if status not in (cp_model.OPTIMAL, cp_model.FEASIBLE) or wall >= 3 * time_limit_seconds:
        return {}, SolverReport("cpsat", f"fallback: {name} after {wall:.2f}s, greedy used", len(burst_vars), wall)
    prefer = {}
    for key, x in burst_vars.items():
        if solver.value(x):
            prefer[key] = (Placement.SAGEMAKER_ON_DEMAND, now)
        else:
            prefer[key] = (Placement.LOCAL, now + solver.value(starts[key]) * slot)
    return prefer, SolverReport("cpsat", name, len(burst_vars), wall, solver.objective_value / 100)
