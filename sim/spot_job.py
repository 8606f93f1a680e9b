"""One deadline Job on spot vs. on-demand, tick by tick, as in the "Can't Be Late" simulator.

Semantics of the paper's early simulator (shared/benchmarks/published-cases.md, CBL-1): every
`tick` seconds the rule sees what the Job ran on and whether spot is available, and asks for
spot, on-demand or nothing; a change to a new instance costs the changeover `overhead` of wall
time with no progress; a preemption leaves the Job on nothing; every tick on an instance is billed
whole. The rules themselves live in policies/spot/.

Rules: "greedy" (spot when there, idle otherwise, on-demand to the end at the safety net; idle
once done), "strawman" (the same rule run as the early simulator's loop runs it: that loop asks
the strategy once more after the work is done, and the strawman, which has no "idle once done"
rule, gets that tick billed; this is how its stored table was made), "uniform-progress", and
"spillway" / "spillway-progress" (what the controller does with a managed spot burst under
spot.fallback launchWindow / progress: policies.spot.spot_window at launch, spot_fallback_due at
every tick, and on-demand to the end once it has fallen back), "planned" (policies.spot.spot_plan:
the expected-cost plan under a model of availability fitted to the `history` before the Job), and
"planned-blind" (the same for a controller that, like SageMaker's, sees nothing of spot while it
runs on on-demand: going back launches managed spot, which runs if spot is there, else waits).
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from collections.abc import Sequence

from policies.spot import (SpotBelief, availability_model, blind_choice, greedy_choice, observe, plan_spot,
                           plan_spot_blind, run_age, spot_fallback_due, spot_window, uniform_progress_choice)

from .cloud import TraceAvailability, spot_traces

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


def real_trace(trace_id: str, offset_seconds: float, ticks: int = 4320, tick_seconds: float = 600.0) -> list[bool]:
    """A bundled real AWS availability trace seen tick by tick from an offset (wrapped around), as
    "Can't Be Late" replays them: available at a tick if the trace says so at the tick's start."""
    starts, values, span = spot_traces()[trace_id]
    trace = TraceAvailability(starts, values, span, offset_seconds)
    return [trace.available(i * tick_seconds) for i in range(ticks)]


def single_node_availability_traces() -> list[str]:
    """The bundled real availability traces of one spot node (sim/data/spot_traces.csv)."""
    import csv
    from importlib import resources

    text = resources.files("sim").joinpath("data/spot_traces.csv").read_text()
    return [row["trace_id"] for row in csv.DictReader(text.splitlines())
            if row["kind"] == "availability" and row["nodes_requested"] == "1"]


def plan_for(job: SpotJob, history: Sequence[bool], blind: bool = False):
    """The "planned" (or "planned-blind") rule's plan for `job`, from the availability seen before it."""
    make = plan_spot_blind if blind else plan_spot
    return make(availability_model(history, job.tick_seconds), work_seconds=job.work_seconds,
                     deadline_seconds=job.deadline_seconds, changeover_seconds=job.overhead_seconds,
                     spot_usd_per_hour=job.spot_usd_per_hour, on_demand_usd_per_hour=job.od_usd_per_hour)


def run_job(job: SpotJob, available: list[bool], rule: str = "greedy", history: Sequence[bool] = (),
            plan=None) -> SpotRun:
    """`history`: the availability of the ticks just before the Job starts (the "planned" rule
    learns from it; `plan` passes a plan already made from it)."""
    gap = job.tick_seconds
    run = _Progress(job.work_seconds)
    mode = "progress" if rule == "spillway-progress" else "launchWindow"
    window = spot_window(now=0.0, runtime_seconds=job.work_seconds, runtime_cap_seconds=job.deadline_seconds,
                         startup_seconds=0.0, restart_overhead_seconds=job.overhead_seconds,
                         # the controller looks once a tick, so it keeps a tick of margin
                         safety_margin_seconds=gap, max_wait_factor=1.0, deadline=job.deadline_seconds,
                         fallback_mode=mode)
    if rule in ("planned", "planned-blind") and plan is None:
        plan = plan_for(job, history, blind=rule == "planned-blind")
    age, last = run_age(history), (history[-1] if history else None)
    belief = SpotBelief(history[-1], age, -1) if history else SpotBelief()  # planned-blind's
    while run.remaining > 1e-9:
        spot_up = available[run.t % len(available)]
        age, last = (age + 1 if spot_up == last else 1), spot_up
        if run.current == "spot" and not spot_up:
            run.current = "none"  # preempted
        if rule == "planned":
            choice = plan.choice(elapsed_ticks=run.t, progress_seconds=job.work_seconds - run.remaining,
                                 current=run.current, spot_available=spot_up, age_ticks=age)
        elif rule == "planned-blind":
            choice, belief = _blind_step(plan, belief, job, run, spot_up)
        else:
            choice = _rule_choice(rule, job, window, mode, run, spot_up)
        if choice == "spot" and not spot_up:
            raise RuntimeError("the rule asked for spot while it is unavailable")
        run.take(choice, job)
    finished = run.t * gap
    if rule == "strawman":  # the early simulator's loop bills one more request after the work is done
        extra = _strawman_tail(job, available, run)
        if extra is not None:
            run.cost += extra
    return SpotRun(run.cost, run.od_ticks / run.billed_ticks if run.billed_ticks else 0.0, finished,
                   finished <= math.ceil(job.deadline_seconds / gap) * gap)


@dataclass
class _Progress:
    """A run from tick to tick: the work left, what it runs on, the changeover left, the bill."""
    remaining: float
    current: str = "none"
    overhead_left: float = 0.0
    cost: float = 0.0
    od_ticks: int = 0
    billed_ticks: int = 0
    t: int = 0
    changeover_done: bool = True

    def take(self, choice: str, job: SpotJob) -> None:
        """One tick on `choice`: a changeover when the capacity changes, then progress and the bill."""
        gap = job.tick_seconds
        if choice != self.current and choice != "none":
            self.overhead_left = job.overhead_seconds
        self.current = choice
        if self.current != "none":
            progress = max(gap - self.overhead_left, 0.0)
            self.overhead_left = max(self.overhead_left - gap, 0.0)
            self.changeover_done = self.overhead_left <= 0
            self.remaining -= progress
            self.cost += (job.od_usd_per_hour if self.current == "od" else job.spot_usd_per_hour) * gap / HOUR
            self.billed_ticks += 1
            self.od_ticks += self.current == "od"
        self.t += 1


def _blind_step(plan, belief: SpotBelief, job: SpotJob, run: _Progress, spot_up: bool) -> tuple[str, SpotBelief]:
    """The "planned-blind" rule at one tick: what it sees of spot only while it asks for spot."""
    done = job.work_seconds - run.remaining
    if run.current == "od":
        choice = blind_choice(plan, belief, tick=run.t, progress_seconds=done, current="od")
        if choice == "spot":  # managed spot is launched: it runs if spot is there, else waits
            belief = observe(plan, belief, run.t, spot_up)
            choice = "spot" if spot_up else "none"
    else:
        belief = observe(plan, belief, run.t, spot_up)
        choice = blind_choice(plan, belief, tick=run.t, progress_seconds=done, current=run.current)
    return choice, belief


def _rule_choice(rule: str, job: SpotJob, window, mode: str, run: _Progress, spot_up: bool) -> str:
    """The rules that need no plan, at one tick."""
    gap = job.tick_seconds
    remaining_time = job.deadline_seconds - run.t * gap
    if rule in ("greedy", "strawman"):
        return greedy_choice(current=run.current, spot_available=spot_up, remaining_work=run.remaining,
                             remaining_time=remaining_time, overhead=job.overhead_seconds, tick=gap)
    if rule in ("spillway", "spillway-progress"):
        if run.current == "od" or not window.safe or spot_fallback_due(
                now=run.t * gap, launch_time=0.0, deadline=job.deadline_seconds, fallback_time=window.fallback_time,
                runtime_seconds=job.work_seconds, progress_seconds=job.work_seconds - run.remaining,
                running_on_spot=spot_up, restart_overhead_seconds=job.overhead_seconds, fallback_mode=mode):
            return "od"
        return "spot" if spot_up else "none"
    if rule == "uniform-progress":
        return uniform_progress_choice(current=run.current, spot_available=spot_up, remaining_work=run.remaining,
                                       remaining_time=remaining_time, total_work=job.work_seconds,
                                       total_time=job.deadline_seconds, overhead=job.overhead_seconds,
                                       tick=gap, changeover_done=run.changeover_done)
    if rule == "on-demand":
        return "od"
    if rule == "spot-only":
        return "spot" if spot_up else "none"
    raise ValueError(f"unknown rule {rule!r}")


def _strawman_tail(job: SpotJob, available: list[bool], run: _Progress) -> float | None:
    """What the early simulator's loop billed for one more request after the work was done."""
    gap = job.tick_seconds
    current = run.current
    spot_up = available[run.t % len(available)]
    if current == "spot" and not spot_up:
        current = "none"
    after = greedy_choice(current=current, spot_available=spot_up, remaining_work=0.0,
                          remaining_time=job.deadline_seconds - run.t * gap, overhead=job.overhead_seconds, tick=gap)
    if after == "none":
        return None
    return (job.od_usd_per_hour if after == "od" else job.spot_usd_per_hour) * gap / HOUR


HISTORY_TICKS = 1008  # what the "planned" rule learns from: a week of 10-min ticks before the Job


def sweep(hourly_rate: float, rule: str, seeds: range = range(1000), job: SpotJob = SpotJob()) -> list[SpotRun]:
    """CBL-1: one run per Poisson trace. A trace is 30 days long and the Job uses its first 52 h;
    the "planned" rule learns from the trace's last week, which (traces wrap around) is the week
    just before the Job and never overlaps it."""
    deadline_job = job if rule not in ("on-demand", "spot-only") else SpotJob(
        job.work_seconds, 1000 * HOUR, job.overhead_seconds, job.tick_seconds, job.od_usd_per_hour,
        job.spot_usd_per_hour)
    runs = []
    for i in seeds:
        trace = poisson_trace(hourly_rate, i, tick_seconds=job.tick_seconds)
        history = trace[-HISTORY_TICKS:] if rule.startswith("planned") else ()
        runs.append(run_job(deadline_job, trace, rule, history=history))
    return runs
