"""A hyperparameter sweep on SageMaker, in the simulated world: its trials, each a training job.

The tuning job keeps `parallel` trials running; a trial starts on the first slot free, pays
SageMaker's start-up and runs its trial time on one instance, billed per second throughout, as
a training burst is. On on-demand that gives the core's model exactly: trials x (start-up +
trial) instance-seconds, ended after ceil(trials / parallel) x (start-up + trial). On managed
spot each trial meets its own interruptions (the instances are independent): it pays the
restart overhead after each, keeps its progress only when checkpointed, and has no on-demand
fallback (SageMaker's tuner has none). SageMaker would stop a trial that waits for spot past
MaxWaitTimeInSeconds and count it failed; here it runs to the end, so a sweep is never cut short.

The trials touch nothing else in the world (no fallback, no plan, no safety net: the core offers
a sweep spot only without a deadline), so the whole sweep is worked out when it launches; the
engine books it when it ends, as SageMaker bills a job.
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass
from typing import Callable, Protocol


class Availability(Protocol):
    """sim.cloud's spot availability processes (AlwaysAvailable, PoissonInterruptions, TraceAvailability)."""

    def available(self, t: float) -> bool: ...

    def next_change(self, t: float) -> float: ...


@dataclass(frozen=True)
class SweepShape:
    trials: int
    parallel: int  # trials at once (the Job's parallelism, at most its trials)
    trial_seconds: float
    startup_seconds: float
    usd_per_second: float  # one instance, at the price the burst runs on
    spot: bool
    checkpointable: bool = False
    restart_overhead_seconds: float = 0.0


@dataclass(frozen=True)
class SweepOutcome:
    end: float
    usd: float  # all trials, on the price the burst runs on
    wasted_usd: float  # start-ups and restarts after interruptions, and work lost without a checkpoint
    preemptions: int


def run_sweep(shape: SweepShape, start: float, availability: Callable[[int], Availability]) -> SweepOutcome:
    """The sweep launched at `start`; availability(i) is trial i's spot process (unused on on-demand)."""
    slots = [start] * shape.parallel
    end, usd, wasted, preemptions = start, 0.0, 0.0, 0
    for i in range(shape.trials):
        begin = heapq.heappop(slots)
        if shape.spot:
            finish, paid, lost, interrupted = _spot_trial(shape, begin, availability(i))
        else:
            finish = begin + shape.startup_seconds + shape.trial_seconds
            paid, lost, interrupted = shape.usd_per_second * (finish - begin), 0.0, 0
        heapq.heappush(slots, finish)
        end, usd, wasted, preemptions = max(end, finish), usd + paid, wasted + lost, preemptions + interrupted
    return SweepOutcome(end, usd, wasted, preemptions)


def _spot_trial(shape: SweepShape, t: float, avail) -> tuple[float, float, float, int]:
    """(finish, paid, of which wasted, interruptions) of one trial on managed spot from t, as the
    engine runs a training burst on spot: wait for capacity, pay the overhead, run until done or
    interrupted. The first overhead is the start-up; after a wait or an interruption, the restart."""
    rate, work, overhead = shape.usd_per_second, shape.trial_seconds, shape.startup_seconds
    paid = wasted = 0.0
    interruptions = 0
    while True:
        if not avail.available(t):
            t = avail.next_change(t)
            if t == float("inf"):
                raise RuntimeError("a spot trial waits for capacity that never returns")
            overhead = shape.restart_overhead_seconds
            continue
        finish = t + overhead + work
        next_interruption = getattr(avail, "next_interruption", None)  # Poisson draws; a trace changes
        stop = min(finish, next_interruption(t) if next_interruption else avail.next_change(t))
        stop = max(stop, t + 1e-3)  # a trace boundary a hair away: step past it, as the engine does
        elapsed = stop - t
        useful = max(elapsed - overhead, 0.0)
        paid += rate * elapsed
        wasted += rate * min(elapsed, overhead)
        if useful >= work - 1e-9:
            return stop, paid, wasted, interruptions
        if shape.checkpointable:
            work -= useful
        else:
            wasted += rate * useful  # no checkpoint: the trial starts over
        interruptions += 1
        t, overhead = stop, shape.restart_overhead_seconds
