"""What a simulation cost and how long Jobs waited: the figures, the per-Job rows, the plots."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass

import numpy as np

from policies.model import SageMakerKind

from .engine import JobRecord, Simulation
from .report_kinds import KindSummary, kind_rows, kind_summaries

HOUR = 3600.0


@dataclass(frozen=True)
class Summary:
    policy: str
    jobs: int
    makespan_hours: float
    cloud_usd: float
    spot_usd: float
    on_demand_usd: float
    wasted_usd: float
    cloud_gpu_hours: float
    local_gpu_hours: float
    local_utilization: float
    wait_mean_hours: float
    wait_p50_hours: float
    wait_p95_hours: float
    wait_p99_hours: float
    start_mean_hours: float  # time to start: the wait, plus SageMaker's start-up for a burst
    start_p95_hours: float
    jct_mean_hours: float
    jct_p95_hours: float
    slowdown_mean: float
    deadline_jobs: int
    deadline_misses: int
    bursts: int
    spot_bursts: int
    on_demand_bursts: int
    preemptions: int
    fallbacks: int
    budget_blocked_jobs: int
    budget_blocked_hours_mean: float  # from a blocked Job's first BudgetExhausted to its start
    quota_blocked_jobs: int
    not_allowed_jobs: int  # Jobs the policy did not allow to burst (allowlists, allowed instance types)
    unplanned_jobs: int  # Jobs that waited unplanned behind the first local.planningDepth Jobs
    decision_points: int
    events: int
    kinds: tuple[KindSummary, ...] = ()  # per kind of Job, when the trace has more than training

    def as_dict(self) -> dict:
        out = {k: (round(v, 6) if isinstance(v, float) else v) for k, v in self.__dict__.items() if k != "kinds"}
        if self.kinds:
            out["kinds"] = [k.as_dict() for k in self.kinds]
        return out


def summarize(policy_name: str, sim: Simulation, records: list[JobRecord]) -> Summary:
    done = [r for r in records if r.finish is not None]
    if not done:
        raise ValueError("no job finished")
    arrivals = np.array([r.trace.arrival_s for r in done])
    starts = np.array([r.start for r in done])
    finishes = np.array([r.finish for r in done])
    durations = np.array([r.trace.run_seconds for r in done])
    waits = (starts - arrivals) / HOUR
    startup = np.array([sim.startup_for(r.request) if r.placement.startswith("SageMaker") else 0.0 for r in done])
    to_start = waits + startup / HOUR
    jct = (finishes - arrivals) / HOUR
    cloud = [r for r in done if r.placement.startswith("SageMaker")]
    local = [r for r in done if r.placement == "Local"]
    makespan = float(finishes.max() - arrivals.min()) if len(done) else 0.0
    with_deadline = [r for r in done if r.trace.deadline_s is not None]
    return Summary(
        policy=policy_name,
        jobs=len(done),
        makespan_hours=makespan / HOUR,
        cloud_usd=sum(r.cloud_usd for r in done),
        spot_usd=sum(r.spot_usd for r in done),
        on_demand_usd=sum(r.on_demand_usd for r in done),
        wasted_usd=sum(r.wasted_usd for r in done),
        cloud_gpu_hours=sum(r.trace.gpu_seconds for r in cloud) / HOUR,
        local_gpu_hours=sum(r.trace.gpu_seconds for r in local) / HOUR,
        local_utilization=_utilization(sim, float(arrivals.max() - arrivals.min()), makespan),
        wait_mean_hours=float(waits.mean()),
        wait_p50_hours=float(np.percentile(waits, 50)),
        wait_p95_hours=float(np.percentile(waits, 95)),
        wait_p99_hours=float(np.percentile(waits, 99)),
        start_mean_hours=float(to_start.mean()),
        start_p95_hours=float(np.percentile(to_start, 95)),
        jct_mean_hours=float(jct.mean()),
        jct_p95_hours=float(np.percentile(jct, 95)),
        slowdown_mean=float(np.mean((finishes - arrivals) / np.maximum(durations, 1.0))),
        deadline_jobs=len(with_deadline),
        deadline_misses=sum(_missed_deadline(r) for r in with_deadline),
        bursts=len(cloud),
        spot_bursts=sum(r.placement.startswith("SageMakerSpot") for r in cloud),
        on_demand_bursts=sum(r.placement == "SageMakerOnDemand" for r in cloud),
        preemptions=sum(r.preemptions for r in done),
        fallbacks=sum(r.fell_back for r in done),
        budget_blocked_jobs=sum(r.budget_blocked for r in done),
        budget_blocked_hours_mean=float(np.mean([_hours_blocked(r) for r in done
                                                 if r.budget_blocked_at is not None] or [0.0])),
        quota_blocked_jobs=sum(r.quota_blocked for r in done),
        not_allowed_jobs=sum(bool(r.not_allowed) for r in done),
        unplanned_jobs=sum(r.unplanned for r in done),
        decision_points=sim.decision_points,
        events=sim.events,
        kinds=kind_summaries(done),
    )


def _utilization(sim: Simulation, arrival_span: float, makespan: float) -> float:
    """Busy share of the local GPUs while Jobs were arriving (the tail of long Jobs would dilute it)."""
    if not sim.total_gpus:
        return 0.0
    if arrival_span > 0:
        return sim.busy_at_last_arrival / (sim.total_gpus * arrival_span)
    return sim.busy_gpu_seconds / (sim.total_gpus * makespan) if makespan else 0.0


ROWS = [
    ("cloud $", "cloud_usd", "${:,.2f}"), ("  spot / on-demand $", ("spot_usd", "on_demand_usd"), "${:,.2f} / ${:,.2f}"),
    ("  wasted on preempted work $", "wasted_usd", "${:,.2f}"), ("cloud GPU-hours", "cloud_gpu_hours", "{:,.1f}"),
    ("local GPU utilization (arrivals)", "local_utilization", "{:.1%}"), ("wait mean / p50 (h)", ("wait_mean_hours", "wait_p50_hours"),
                                                              "{:.3f} / {:.3f}"),
    ("wait p95 / p99 (h)", ("wait_p95_hours", "wait_p99_hours"), "{:.3f} / {:.3f}"),
    ("time to start mean / p95 (h)", ("start_mean_hours", "start_p95_hours"), "{:.3f} / {:.3f}"),
    ("JCT mean / p95 (h)", ("jct_mean_hours", "jct_p95_hours"), "{:.3f} / {:.3f}"),
    ("slowdown mean", "slowdown_mean", "{:.2f}"), ("deadline misses", ("deadline_misses", "deadline_jobs"), "{} of {}"),
    ("bursts (spot / on-demand)", ("bursts", "spot_bursts", "on_demand_bursts"), "{} ({} / {})"),
    ("preemptions / fallbacks", ("preemptions", "fallbacks"), "{} / {}"),
    ("Jobs blocked by budget / quota", ("budget_blocked_jobs", "quota_blocked_jobs"), "{} / {}"),
    ("  blocked by budget, mean (h)", "budget_blocked_hours_mean", "{:.3f}"),
    ("Jobs not allowed to burst", "not_allowed_jobs", "{}"),
    ("Jobs left unplanned (planningDepth)", "unplanned_jobs", "{}"),
    ("jobs / makespan (h)", ("jobs", "makespan_hours"), "{} / {:,.1f}"),
]


def _cell(summary: Summary, key, fmt: str) -> str:
    keys = key if isinstance(key, tuple) else (key,)
    return fmt.format(*(getattr(summary, k) for k in keys))


def render(summaries: list[Summary]) -> str:
    """The table: a column per policy, a row per figure, then (when the trace has more than
    training Jobs) the rows per kind of Job."""
    by_kind = [(f"  {label}", cells) for label, cells in kind_rows([s.kinds for s in summaries])]
    rows = [(label, [_cell(s, key, fmt) for s in summaries]) for label, key, fmt in ROWS]
    rows += [("by kind of Job", [""] * len(summaries))] * bool(by_kind) + by_kind
    width = max(len(label) for label, _ in rows)
    col_w = [max(len(s.policy), *(len(cells[i]) for _, cells in rows)) for i, s in enumerate(summaries)]
    lines = ["".ljust(width) + "  " + "  ".join(s.policy.rjust(w) for s, w in zip(summaries, col_w))]
    lines.append("-" * len(lines[0]))
    lines += [(label.ljust(width) + "  " + "  ".join(c.rjust(w) for c, w in zip(cells, col_w))).rstrip()
              for label, cells in rows]
    return "\n".join(lines)


def _missed_deadline(r: JobRecord) -> bool:
    """A finished Job with a deadline, done after it."""
    assert r.finish is not None and r.trace.deadline_s is not None
    return r.finish > r.trace.deadline_s + 1e-6


def _hours_blocked(r: JobRecord) -> float:
    """How long a Job that waited for money waited: from its first BudgetExhausted to its start."""
    assert r.start is not None and r.budget_blocked_at is not None
    return (r.start - r.budget_blocked_at) / HOUR


def not_allowed_note(policy_name: str, records: list[JobRecord]) -> str | None:
    """One line on the Jobs the policy kept from bursting, with the reason of the first: a Job that
    ran locally hides it from its own reason (LocalCapacityAvailable)."""
    blocked = [r for r in records if r.not_allowed]
    if not blocked:
        return None
    reasons = sorted({r.not_allowed for r in blocked})
    more = f" ({len(reasons) - 1} other reason(s))" if len(reasons) > 1 else ""
    return (f"{policy_name}: {len(blocked)} Jobs were not allowed to burst, e.g. {blocked[0].request.key}: "
            f"{blocked[0].not_allowed}{more}. --jobs-csv lists each one (column not_allowed).")


def types_note(allowed: dict[str, list[str]]) -> str | None:
    """A line when the compared policies may burst to different SageMaker types (policy name ->
    sageMaker.allowedInstanceTypes): their dollars then differ for their types too, not only for their
    rules, and the simulator models no GPU's speed, so a cheaper, slower type (a T4) looks cheaper
    for the same work. The baselines allow any type (ml.*); the default starts at L4 (ml.g6)."""
    groups: dict[tuple[str, ...], list[str]] = {}
    for name, types in allowed.items():
        groups.setdefault(tuple(types), []).append(name)
    if len(groups) < 2:
        return None
    said = "; ".join(f"{', '.join(names)}: {', '.join(types)}" for types, names in groups.items())
    return (f"Not the same instance types ({said}): the dollars differ for the types too, not only for the "
            "rules, and the simulator counts an hour on a slower GPU as the same work. To compare rules "
            "alone, add --same-types (every policy then bursts to the first one's types).")


JOB_COLUMNS = ["id", "name", "namespace", "arrival_h", "gpus", "pods", "duration_h", "placement", "reason",
               "instance_type", "start_h", "finish_h", "wait_h", "jct_h", "cloud_usd", "spot_usd", "on_demand_usd",
               "wasted_usd", "preemptions", "fell_back", "deadline_h", "deadline_met", "not_allowed"]


def jobs_csv(records: list[JobRecord]) -> str:
    """A row per Job. A trace with transform or tuning Jobs adds the columns kind and trials (a
    tuning row's duration_h is one trial's); a training-only trace keeps the columns it always had."""
    kinds = any(r.trace.kind != SageMakerKind.TRAINING for r in records)
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\n")
    w.writerow(JOB_COLUMNS + ["kind", "trials"] * kinds)
    for r in records:
        t = r.trace
        h = lambda x: "" if x is None else f"{x / HOUR:.6f}"  # noqa: E731
        met = "" if t.deadline_s is None or r.finish is None else str(r.finish <= t.deadline_s + 1e-6).lower()
        w.writerow([t.id, r.request.name, t.namespace, h(t.arrival_s), t.gpus_per_pod, t.pods, h(t.duration_s),
                    r.placement, r.reason, r.instance_type, h(r.start), h(r.finish),
                    h(None if r.start is None else r.start - t.arrival_s),
                    h(None if r.finish is None else r.finish - t.arrival_s), f"{r.cloud_usd:.4f}",
                    f"{r.spot_usd:.4f}", f"{r.on_demand_usd:.4f}", f"{r.wasted_usd:.4f}", r.preemptions,
                    str(r.fell_back).lower(), h(t.deadline_s), met, r.not_allowed] + [t.kind.value, t.trials] * kinds)
    return out.getvalue()


def pareto_front(points: list[tuple[float, float]]) -> list[int]:
    """Indices of points not dominated in (cost, wait), both to be minimized, sorted by cost."""
    order = sorted(range(len(points)), key=lambda i: (points[i][0], points[i][1]))
    front, best = [], float("inf")
    for i in order:
        if points[i][1] < best - 1e-12:
            front.append(i)
            best = points[i][1]
    return front
