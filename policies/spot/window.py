"""Managed spot under a deadline: when is spot safe, and when must it give way to on-demand?

SageMaker managed spot never falls back to on-demand by itself; Spillway does. Spot is chosen
only if, after the worst case on spot (no progress at all until the fallback time), an on-demand
relaunch from the last checkpoint still ends before the deadline:

    fallback_time = deadline - margin - (on-demand start-up + restart overhead + full runtime)

With `spot.fallback: launchWindow` the launch's MaxWaitTimeInSeconds ends spot at the fallback
time at the latest, so SageMaker stops spot then even if the controller is down (the on-demand
relaunch is the controller's in every mode).
While spot runs, the Uniform Progress rule of "Can't Be Late" (Wu et al., NSDI'24) falls back
earlier when the job is idle (waiting for capacity, interrupted) and behind the progress a
uniform pace would have made.

With `spot.fallback: progress` (the default) every checkpointed second of progress moves the
fallback time one second later (the on-demand relaunch has that much less to do): the safety net
of the paper's greedy rule. MaxWaitTimeInSeconds then runs to the deadline, and the controller
does the fallback.

With `spot.fallback: planned` that safety net stays, and within it the controller follows a plan
of least expected cost (policies/spot/spot_plan.py): leave spot early in a long outage, go back to
managed spot when it is likely there again.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

MIN_SPOT_WINDOW_FACTOR = 1.0  # spot must get at least one restart overhead of useful time
MIN_SPOT_WINDOW_SECONDS = 60.0  # and never less than a minute before the fallback
# Fallback modes whose safety net moves with checkpointed progress (planned keeps it under its plan)
MOVING_FALLBACK = ("progress", "planned")


@dataclass(frozen=True, slots=True)
class SpotWindow:
    safe: bool
    fallback_time: float  # when spot gives way to on-demand (INF without a deadline)
    sagemaker_max_wait_seconds: int  # StoppingCondition.MaxWaitTimeInSeconds
    max_runtime_seconds: int  # StoppingCondition.MaxRuntimeInSeconds
    why: str = ""


def spot_window(
    *,
    now: float,
    runtime_seconds: float,
    runtime_cap_seconds: float,
    startup_seconds: float,
    restart_overhead_seconds: float,
    safety_margin_seconds: float,
    max_wait_factor: float,
    deadline: float | None,
    fallback_mode: str = "launchWindow",
) -> SpotWindow:
    cap = max(int(math.ceil(runtime_cap_seconds)), 1)
    if deadline is None:
        # MaxWaitTimeInSeconds covers waiting for capacity and start-up as well as training.
        max_wait = int(math.ceil(startup_seconds + cap * max_wait_factor))
        return SpotWindow(True, now + max_wait, max_wait, cap)
    fallback = deadline - safety_margin_seconds - (startup_seconds + restart_overhead_seconds + runtime_seconds)
    window = fallback - now
    needed = max(startup_seconds + MIN_SPOT_WINDOW_FACTOR * restart_overhead_seconds, MIN_SPOT_WINDOW_SECONDS)
    if window < needed:
        return SpotWindow(
            False, fallback, 0, cap,
            f"only {max(window, 0) / 60:.0f} min before the on-demand fallback must start; spot needs "
            f"at least {needed / 60:.0f} min to be worth launching",
        )
    if fallback_mode in MOVING_FALLBACK:
        # Spot may run up to the deadline; the controller falls back as progress allows.
        max_wait = int(deadline - safety_margin_seconds - now)
        return SpotWindow(True, fallback, max_wait, min(cap, max_wait))
    max_wait = int(window)
    return SpotWindow(True, fallback, max_wait, min(cap, max_wait))


def spot_fallback_time(fallback_time: float, progress_seconds: float, fallback_mode: str = "launchWindow") -> float:
    """When spot must give way to on-demand: the launch-time fallback, or (spot.fallback: progress)
    that time moved later by the checkpointed progress the on-demand relaunch no longer needs."""
    return fallback_time + progress_seconds if fallback_mode in MOVING_FALLBACK else fallback_time


def spot_fallback_due(
    *,
    now: float,
    launch_time: float,
    deadline: float | None,
    fallback_time: float,
    runtime_seconds: float,
    progress_seconds: float,
    running_on_spot: bool,
    restart_overhead_seconds: float,
    fallback_mode: str = "launchWindow",
) -> bool:
    """Should a running spot job be stopped and relaunched on on-demand now?

    launchWindow: at the fallback time, always (the safety net). Uniform Progress: when the job is
    not running on spot (waiting for capacity or interrupted) and its progress is behind the
    uniform pace C * (t - t0) / (D - t0), fall back at once rather than hoping spot returns.

    progress: at the fallback time plus the checkpointed progress, and only then. (Uniform
    Progress without a way back to spot sends a Job with little slack to on-demand at its first
    interruption; measured on CBL-1 that costs about 3x greedy.)
    """
    if now >= spot_fallback_time(fallback_time, progress_seconds, fallback_mode):
        return True
    if fallback_mode in MOVING_FALLBACK:
        return False
    if deadline is None or running_on_spot:
        return False
    span = deadline - launch_time
    if span <= 0:
        return True
    expected = runtime_seconds * min((now - launch_time + 2 * restart_overhead_seconds) / span, 1.0)
    return progress_seconds < expected


# --- Per-tick spot/on-demand/idle rules for one deadline Job ("Can't Be Late", NSDI'24) -----------
# The simulator replays them on availability traces; the controller applies the same rules to a
# running burst. `current` is what the Job runs on now: "spot", "od" or "none".


def greedy_choice(*, current: str, spot_available: bool, remaining_work: float, remaining_time: float,
                  overhead: float, tick: float) -> str:
    """Greedy with the safety net of the paper's early simulator: spot whenever it is there, idle
    otherwise, and on-demand to the end once ceil((C + d) / tick) * tick >= R."""
    if current == "od":
        return "od"
    if current == "spot" and spot_available:
        return "spot"  # exploitation: stay on spot until preempted
    if math.ceil((remaining_work + overhead) / tick) * tick >= remaining_time:
        return "od"
    return "spot" if spot_available else "none"


def uniform_progress_choice(*, current: str, spot_available: bool, remaining_work: float, remaining_time: float,
                            total_work: float, total_time: float, overhead: float, tick: float,
                            changeover_done: bool) -> str:
    """Uniform Progress: keep progress at or above C(0) * t / R(0), take spot whenever it is there,
    hold on-demand until progress is ahead of the pace 2d from now, and keep the safety net."""
    elapsed = total_time - remaining_time
    progress = total_work - remaining_work

    def expected(t: float) -> float:
        return total_work * min(t / total_time, 1.0) if total_time > 0 else total_work

    def ticks(x: float) -> float:
        return math.ceil(x / tick) * tick

    if ticks(remaining_work + overhead) >= remaining_time:
        return "spot" if current == "spot" and changeover_done and spot_available else "od"
    if current in ("none", "od") and ticks(remaining_work + 2 * overhead) >= remaining_time:
        return "od"
    if current == "od":
        if not spot_available or expected(elapsed + 2 * overhead) - progress >= 0:
            return "od"
        return "spot"
    if spot_available:
        return "spot"
    return "od" if progress < expected(elapsed) else "none"
