"""One deadline Job on spot vs. on-demand, tick by tick, as in the "Can't Be Late" simulator.

Semantics of the paper's early simulator (shared/benchmarks/published-cases.md, CBL-1): every
`tick` seconds the rule sees what the Job ran on and whether spot is available, and asks for
spot, on-demand or nothing; a change to a new instance costs the changeover `overhead` of wall
time with no progress; a preemption leaves the Job on nothing; every tick on an instance is billed
whole. The rules themselves live in policies/spot.py.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from policies.spot import greedy_choice, uniform_progress_choice

HOUR = 3600.0


@dataclass(frozen=True)
class SpotJob:
    work_seconds: float = 48 * HOUR
    deadline_seconds: float = 52 * HOUR
    overhead_seconds: float = 0.1 * HOUR
    tick_seconds: float = 600.0
    od_usd_per_hour: float = 3.06
    spot_usd_per_hour: float = 0.9731


@dataclass(frozen=True)
class SpotRun:
    cost_usd: float
    od_fraction: float  # share of billed ticks on on-demand
    finished_seconds: float
    met_deadline: bool


def poisson_trace(hourly_rate: float, seed: int, ticks: int = 4320, tick_seconds: float = 600.0) -> list[bool]:
    """CBL-1's synthetic traces: each tick unavailable with p = 1 - (1 - h)^(tick/1h), drawn with
    Python's random after seed(i). Returns availability (True = spot available)."""
    p = 1 - (1 - hourly_rate) ** (tick_seconds / HOUR)
    rng = random.Random(seed)
    return [not (rng.random() < p) for _ in range(ticks)]


def run_job(job: SpotJob, available: list[bool], rule: str = "greedy") -> SpotRun:
    gap = job.tick_seconds
    remaining, current, overhead_left = job.work_seconds, "none", 0.0
    cost, od_ticks, billed_ticks, t = 0.0, 0, 0, 0
    changeover_done = True
    while remaining > 1e-9:
        spot_up = available[t % len(available)]
        if current == "spot" and not spot_up:
            current = "none"  # preempted
        remaining_time = job.deadline_seconds - t * gap
        if rule == "greedy":
            choice = greedy_choice(current=current, spot_available=spot_up, remaining_work=remaining,
                                   remaining_time=remaining_time, overhead=job.overhead_seconds, tick=gap)
        elif rule == "uniform-progress":
            choice = uniform_progress_choice(current=current, spot_available=spot_up, remaining_work=remaining,
                                             remaining_time=remaining_time, total_work=job.work_seconds,
                                             total_time=job.deadline_seconds, overhead=job.overhead_seconds,
                                             tick=gap, changeover_done=changeover_done)
        elif rule == "on-demand":
            choice = "od"
        elif rule == "spot-only":
            choice = "spot" if spot_up else "none"
        else:
            raise ValueError(f"unknown rule {rule!r}")
        if choice == "spot" and not spot_up:
            raise RuntimeError("the rule asked for spot while it is unavailable")
        if choice != current and choice != "none":
            overhead_left = job.overhead_seconds
        current = choice
        if current != "none":
            progress = max(gap - overhead_left, 0.0)
            overhead_left = max(overhead_left - gap, 0.0)
            changeover_done = overhead_left <= 0
            remaining -= progress
            cost += (job.od_usd_per_hour if current == "od" else job.spot_usd_per_hour) * gap / HOUR
            billed_ticks += 1
            od_ticks += current == "od"
        t += 1
    finished = t * gap
    return SpotRun(cost, od_ticks / billed_ticks if billed_ticks else 0.0, finished,
                   finished <= math.ceil(job.deadline_seconds / gap) * gap)


def sweep(hourly_rate: float, rule: str, seeds: range = range(1000), job: SpotJob = SpotJob()) -> list[SpotRun]:
    deadline_job = job if rule not in ("on-demand", "spot-only") else SpotJob(
        job.work_seconds, 1000 * HOUR, job.overhead_seconds, job.tick_seconds, job.od_usd_per_hour,
        job.spot_usd_per_hour)
    return [run_job(deadline_job, poisson_trace(hourly_rate, i), rule) for i in seeds]
