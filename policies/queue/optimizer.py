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
from typing import Any, NamedTuple

from ortools.sat.python import cp_model

from ..forecast import Derived, INF, expected_end
from ..model import BurstPolicy, Catalog, Decision, JobRequest, Mode, OptionCost, Placement, RunningPod, Snapshot
from ..decide import Cycle, assume, evaluate, local_max_wait
from .plan_result import SolverReport

MAX_HORIZON_SLOTS = 600
MIN_SLOT_SECONDS = 60
LATE_PENALTY_CENTS = 10_000_000  # $100k: a broken max wait or deadline outweighs any burst


def optimize(queue: list[JobRequest], snapshot: Snapshot, policy: BurstPolicy, now: float, *,
             catalog: Catalog | None, time_limit_seconds: float, window_jobs: int, derived: Derived | None = None
             ) -> tuple[dict[str, tuple[Placement, float]], SolverReport]:
    window = queue[:window_jobs]
    derived = derived or Derived(snapshot, policy)
    # 1. The greedy pass gives each Job's options (evaluated alone) and the hint.
    alone, facts = _greedy_pass(window, snapshot, policy, now, catalog, derived)
    # 2. The time grid: slots long enough that the horizon holds every Job's run after the running work.
    runtimes = [derived.runtime(j)[0] for j in window]
    releases = [(p, expected_end(p, snapshot.time, policy, derived.history())) for p in snapshot.running]
    span = sum(r for r in runtimes) + max([e - now for _, e in releases] + [0.0])
    slot = max(MIN_SLOT_SECONDS, math.ceil(span / MAX_HORIZON_SLOTS))
    # 3. The model: GPUs per pool, each Job local or out, the limits of money and quota.
    model = _QueueModel(policy, now, slot, math.ceil(span / slot) + 1)
    model.add_pools(snapshot, releases)
    for fact, runtime in zip(facts, runtimes):
        model.add_job(fact, runtime)
    model.add_limits(alone)
    # 4. Solve, and read back each Job's preference.
    return model.solve(time_limit_seconds)


class _Fact(NamedTuple):
    job: JobRequest
    solo: Decision  # evaluated alone: its options
    best: OptionCost | None  # its cheapest cloud option
    hinted: Decision  # the greedy pass's decision: the hint


def _greedy_pass(window: list[JobRequest], snapshot: Snapshot, policy: BurstPolicy, now: float,
                 catalog: Catalog | None, derived: Derived) -> tuple[Cycle, list[_Fact]]:
    alone = Cycle.start(snapshot, policy, now, catalog, derived)
    greedy = Cycle.start(snapshot, policy, now, catalog, derived)
    facts = []
    for job in window:
        solo = evaluate(job, alone).decision
        hinted = evaluate(job, greedy)
        assume(hinted, job, greedy)
        cloud = [o for o in solo.evidence.options if o.placement.is_cloud]
        best = min(cloud, key=lambda o: o.score) if cloud else None
        facts.append(_Fact(job, solo, best, hinted.decision))
    return alone, facts


Pool = tuple[list[Any], list[int], int]  # intervals, their GPUs, the pool's GPUs


class _QueueModel:
    """The CP-SAT model of one window of the queue, on a grid of `slot` seconds: per Job, whether it
    bursts (x) and when it starts locally (s); cumulative GPUs per pool (all GPUs, and per product)."""

    def __init__(self, policy: BurstPolicy, now: float, slot: int, horizon: int):
        self.policy, self.now, self.slot, self.horizon = policy, now, slot, horizon
        self.model = cp_model.CpModel()
        self.pools: dict[str | None, Pool] = {}
        self.burst_vars: dict[str, Any] = {}
        self.starts: dict[str, Any] = {}
        self.objective: list[Any] = []
        self.by_namespace: dict[str, list[tuple[Any, int]]] = {}
        self.by_type: dict[str, list[tuple[Any, int]]] = {}
        self.hints: list[tuple[Any, int]] = []

    def add_pools(self, snapshot: Snapshot, releases: list[tuple[RunningPod, float]]) -> None:
        nodes = {n.name: n for n in snapshot.nodes if n.schedulable}
        pools = self.pools
        pools[None] = ([], [], sum(n.allocatable_gpus for n in nodes.values()))
        for n in nodes.values():
            if n.gpu_product:
                ivs, dem, cap = pools.get(n.gpu_product, ([], [], 0))
                pools[n.gpu_product] = (ivs, dem, cap + n.allocatable_gpus)
        for pod, end in releases:  # GPUs held by running work until it ends
            node = nodes.get(pod.node)
            if node is None or pod.gpus <= 0:
                continue
            size = max(1, math.ceil((end - self.now) / self.slot))
            iv = self.model.new_fixed_size_interval_var(0, size, f"run_{pod.job}_{pod.node}")
            self._use(iv, pod.gpus, {None, node.gpu_product})

    def _use(self, interval: Any, gpus: int, pool_keys: set[str | None]) -> None:
        for key in pool_keys:
            if key in self.pools:
                self.pools[key][0].append(interval)
                self.pools[key][1].append(gpus)

    def add_job(self, fact: _Fact, runtime: float) -> None:
        job, solo, best = fact.job, fact.solo, fact.best
        if job.total_gpus == 0:
            return
        model, key = self.model, job.key
        can_burst = best is not None and (job.mode or self.policy.spec.managed_jobs.default_mode) != Mode.LOCAL
        fits_somewhere = solo.evidence.local_start_time != INF and (
            job.gpu_product is None or job.gpu_product in self.pools)
        if not can_burst and not fits_somewhere:
            return
        x = self.burst_vars[key] = model.new_bool_var(f"burst_{key}")
        if not can_burst:
            model.add(x == 0)
        if not fits_somewhere or (job.mode == Mode.CLOUD):
            model.add(x == 1)
        dur = max(1, math.ceil(runtime / self.slot))
        s = self.starts[key] = model.new_int_var(0, self.horizon, f"start_{key}")
        model.add(s <= self.horizon * (1 - x))  # a burst Job does not wait locally
        iv = model.new_optional_fixed_size_interval_var(s, dur, ~x, f"local_{key}")
        self._use(iv, job.total_gpus, {None, job.gpu_product})
        if best is not None and can_burst:
            self._burst_terms(job, best, runtime, x, s)
        if job.deadline is not None:
            missed = model.new_bool_var(f"missed_{key}")
            due = max(0, math.floor((job.deadline - self.now) / self.slot))
            model.add(s + dur <= due + 2 * self.horizon * (x + missed))
            self.objective.append(LATE_PENALTY_CENTS * missed)
        local_cents = int(round(solo.evidence.options[0].expected_usd * 100))
        self.objective.append(local_cents * (1 - x))
        per_slot = int(round(solo.evidence.wait_usd_per_hour * self.slot / 36))  # cents per slot
        self.objective.append(per_slot * s)
        self._hint(fact.hinted, x, s)

    def _burst_terms(self, job: JobRequest, best: OptionCost, runtime: float, x: Any, s: Any) -> None:
        now = self.now
        waited = max(now - job.submit_time, 0.0) if job.submit_time else 0.0
        max_wait = local_max_wait(job, self.policy, runtime)
        # Soft: when budgets or quotas cannot send everything out, Jobs wait past these
        # limits (as the per-Job rules would), at a price far above any dollar figure.
        late = self.model.new_bool_var(f"late_{job.key}")
        self.model.add(s <= max(0, math.floor((max_wait - waited) / self.slot)) + self.horizon * (x + late))
        self.objective.append(LATE_PENALTY_CENTS * late)
        cents = int(round(best.committed_usd * 100))
        self.by_namespace.setdefault(job.namespace, []).append((x, cents))
        if best.instance_type:
            self.by_type.setdefault(best.instance_type, []).append((x, job.pods))
        self.objective.append(int(round(best.score * 100)) * x)

    def _hint(self, hinted: Decision, x: Any, s: Any) -> None:
        hinted_burst = hinted.placement.is_cloud
        self.hints.append((x, int(hinted_burst)))
        if not hinted_burst and hinted.evidence.local_start_time != INF:
            start = math.ceil((hinted.evidence.local_start_time - self.now) / self.slot)
            self.hints.append((s, min(self.horizon, max(0, start))))
        else:
            self.hints.append((s, 0))

    def add_limits(self, alone: Cycle) -> None:
        """Cumulative GPUs per pool; money per namespace and instances per type, as left now."""
        model = self.model
        for ivs, demands, cap in self.pools.values():
            if ivs:
                model.add_cumulative(ivs, demands, cap)
        for ns, terms in self.by_namespace.items():
            left = alone.budget_left(ns)[0]
            if left != INF:
                model.add(sum(c * x for x, c in terms) <= max(0, int(math.floor(left * 100))))
        for name, counts in self.by_type.items():
            quota = alone.quota_left(name)
            if quota != INF:
                model.add(sum(n * x for x, n in counts) <= max(0, int(quota)))
        model.minimize(sum(self.objective))
        for var, hint in self.hints:
            model.add_hint(var, hint)

    def solve(self, time_limit_seconds: float) -> tuple[dict[str, tuple[Placement, float]], SolverReport]:
        solver = cp_model.CpSolver()
        solver.parameters.num_search_workers = 1
        solver.parameters.random_seed = 0
        solver.parameters.max_deterministic_time = time_limit_seconds
        solver.parameters.max_time_in_seconds = 3 * time_limit_seconds
        status = solver.solve(self.model)
        name = solver.status_name(status)
        wall = solver.wall_time
        jobs = len(self.burst_vars)
        if status not in (cp_model.OPTIMAL, cp_model.FEASIBLE) or wall >= 3 * time_limit_seconds:
            return {}, SolverReport("cpsat", f"fallback: {name} after {wall:.2f}s, greedy used", jobs, wall)
        prefer = {}
        for key, x in self.burst_vars.items():
            if solver.value(x):
                prefer[key] = (Placement.SAGEMAKER_ON_DEMAND, self.now)
            else:
                prefer[key] = (Placement.LOCAL, self.now + solver.value(self.starts[key]) * self.slot)
        return prefer, SolverReport("cpsat", name, jobs, wall, solver.objective_value / 100)
