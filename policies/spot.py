"""Managed spot under a deadline: when is spot safe, and when must it give way to on-demand?

SageMaker managed spot never falls back to on-demand by itself; Spillway does. Spot is chosen
only if, after the worst case on spot (no progress at all until the fallback time), an on-demand
relaunch from the last checkpoint still ends before the deadline:

    fallback_time = deadline - margin - (on-demand start-up + restart overhead + full runtime)

The launch's MaxWaitTimeInSeconds ends spot at the fallback time at the latest, so SageMaker
itself enforces the safety net even if the controller is down. While spot runs, the Uniform
Progress rule of "Can't Be Late" (Wu et al., NSDI'24) falls back earlier when the job is idle
(waiting for capacity, interrupted) and behind the progress a uniform pace would have made.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

MIN_SPOT_WINDOW_FACTOR = 1.0  # spot must get at least one restart overhead of useful time


@dataclass(frozen=True, slots=True)
class SpotWindow:
    safe: bool
    fallback_time: float  # when spot gives way to on-demand (INF without a deadline)
    max_wait_seconds: int  # StoppingCondition.MaxWaitTimeInSeconds
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
) -> SpotWindow:
    cap = max(int(math.ceil(runtime_cap_seconds)), 1)
    if deadline is None:
        max_wait = int(math.ceil(cap * max_wait_factor))
        return SpotWindow(True, now + max_wait, max_wait, cap)
    fallback = deadline - safety_margin_seconds - (startup_seconds + restart_overhead_seconds + runtime_seconds)
    window = fallback - now
    needed = startup_seconds + MIN_SPOT_WINDOW_FACTOR * restart_overhead_seconds
    if window < needed:
        return SpotWindow(
            False, fallback, 0, cap,
            f"only {max(window, 0) / 60:.0f} min before the on-demand fallback must start; spot needs "
            f"at least {needed / 60:.0f} min to be worth launching",
        )
    max_wait = int(window)
    return SpotWindow(True, fallback, max_wait, min(cap, max_wait))


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
) -> bool:
    """Should a running spot job be stopped and relaunched on on-demand now?

    Safety net: at the fallback time, always. Uniform Progress: when the job is not running on
    spot (waiting for capacity or interrupted) and its progress is behind the uniform pace
    C * (t - t0) / (D - t0), fall back at once rather than hoping spot returns.
    """
    if now >= fallback_time:
        return True
    if deadline is None or running_on_spot:
        return False
    span = deadline - launch_time
    if span <= 0:
        return True
    expected = runtime_seconds * min((now - launch_time + 2 * restart_overhead_seconds) / span, 1.0)
    return progress_seconds < expected
