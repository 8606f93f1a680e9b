"""Spot or on-demand, tick by tick, for one deadline Job: the plan that is cheapest on average.

Greedy (policies/spot.py) idles through every outage until the slack is gone and then runs the
rest on on-demand. Real spot outages are mostly short, but a few last hours, and the longer one
has lasted, the longer it tends to go on. The cheapest rule therefore depends on how availability
behaves, which a history of it tells. This module learns that behaviour and plans by it:

1. `availability_model` fits a semi-Markov model to a history of availability, one value per
   tick: for an up (or down) run that has lasted k ticks, the chance it ends at the next tick,
   for k = 1 .. ages (the last age stands for "ages or more"). Sparse ages are pulled toward the
   state's overall rate, so a short history gives a memoryless model.
2. `plan_spot` solves, by backward dynamic programming, the expected cost to go of every state
   (ticks left, work done, instance now, availability and its age) under that model, with the
   deadline as a hard constraint (on-demand is always there, so a feasible plan never misses),
   and keeps the cheapest action of each state.
3. `SpotPlan.choice` reads the action for the current state.

The tick model is "Can't Be Late"'s (sim/spot_job.py): each tick the Job runs on spot (if
available), on-demand or nothing; a tick on a new instance loses the changeover; every tick on
an instance is billed whole; a preemption leaves the Job on nothing. On a memoryless history the
plan behaves like greedy; where outages have structure it leaves spot for on-demand early in a
long outage and comes back to spot when spot has been back long enough to last.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

NOTHING, SPOT, ON_DEMAND = 0, 1, 2
INSTANCES = ("none", "spot", "od")  # the names sim/spot_job.py and policies/spot.py use
DEFAULT_AGES = 8  # ages tracked: 8 ticks of 10 min; longer runs share the last age's rate
PRIOR_TICKS = 5.0  # weight, in ticks observed, of the state's overall rate at each age


@dataclass(frozen=True, slots=True)
class AvailabilityModel:
    """Per-age end rates of availability runs: up_hazard[k] is the chance that spot, available
    for k + 1 ticks in a row, is gone at the next tick; down_hazard[k] that an outage of k + 1
    ticks ends at the next tick. The last entry holds for every longer run."""
    tick_seconds: float
    up_hazard: tuple[float, ...]
    down_hazard: tuple[float, ...]


def availability_model(history: Sequence[bool], tick_seconds: float, ages: int = DEFAULT_AGES,
                       prior_ticks: float = PRIOR_TICKS) -> AvailabilityModel:
    """Fit the model to `history` (True = spot available), one value per tick, oldest first."""
    if ages < 1:
        raise ValueError("ages must be at least 1")
    ends = {True: np.zeros(ages), False: np.zeros(ages)}
    seen = {True: np.zeros(ages), False: np.zeros(ages)}
    age = 0
    for i in range(len(history) - 1):
        now, after = bool(history[i]), bool(history[i + 1])
        age = age + 1 if i and bool(history[i - 1]) == now else 1
        k = min(age, ages) - 1
        seen[now][k] += 1
        ends[now][k] += now != after
    hazards = {}
    for state in (True, False):
        overall = (ends[state].sum() + 1.0) / (seen[state].sum() + 2.0)  # Laplace: never 0 or 1
        hazards[state] = tuple(float(x) for x in (ends[state] + prior_ticks * overall) / (seen[state] + prior_ticks))
    return AvailabilityModel(tick_seconds, hazards[True], hazards[False])


def run_age(history: Sequence[bool]) -> int:
    """How many ticks the last value of `history` has lasted (1 for a fresh change)."""
    if not history:
        return 1
    last, age = history[-1], 0
    for value in reversed(history):
        if value != last:
            break
        age += 1
    return age


@dataclass(frozen=True, eq=False)
class SpotPlan:
    """The cheapest action of every reachable state of one Job, from plan_spot. At tick t only
    work done in [lowest[t], lowest[t] + width) can still meet the deadline and has been reachable."""
    actions: np.ndarray  # [tick, instance, available, age index, done - lowest[tick]] -> NOTHING/SPOT/ON_DEMAND
    lowest: np.ndarray  # [tick] -> the least work done (units) from which the deadline can be met
    tick_seconds: float
    unit_seconds: float  # work is counted in these units
    total_units: int

    def choice(self, *, elapsed_ticks: int, progress_seconds: float, current: str, spot_available: bool,
               age_ticks: int) -> str:
        """"spot", "od" or "none" for the tick that starts now. `current` is what the Job runs on
        ("none" after a preemption); `age_ticks` how long availability has been as it is now."""
        if elapsed_ticks >= self.actions.shape[0]:
            return "od"  # past the plan's horizon: finish as fast as possible
        done = int(math.floor(progress_seconds / self.unit_seconds + 1e-9)) - int(self.lowest[elapsed_ticks])
        if done < 0:
            return "od"  # behind every plan that meets the deadline: as fast as possible
        done = min(done, self.actions.shape[4] - 1)
        age = min(max(age_ticks, 1), self.actions.shape[3]) - 1
        instance = INSTANCES.index(current)
        if instance == SPOT and not spot_available:
            instance = NOTHING
        return INSTANCES[int(self.actions[elapsed_ticks, instance, int(spot_available), age, done])]


def plan_spot(model: AvailabilityModel, *, work_seconds: float, deadline_seconds: float, changeover_seconds: float,
              spot_usd_per_hour: float, on_demand_usd_per_hour: float) -> SpotPlan:
    """Backward induction over the Job's ticks. Work is counted in units of the greatest common
    divisor of a tick and a tick less the changeover, so no rounding enters; the changeover must
    be shorter than a tick. Only the states that can still meet the deadline and have been
    reachable are solved: a band as wide as the slack, which keeps CBL's 48-h Job with 10-min ticks
    to a few tenths of a second."""
    tick = int(round(model.tick_seconds))
    overhead = int(round(changeover_seconds))
    if not 0 <= overhead < tick:
        raise ValueError(f"the changeover ({overhead} s) must be shorter than a tick ({tick} s)")
    unit = math.gcd(tick, tick - overhead)
    stay, switch = tick // unit, (tick - overhead) // unit
    total = math.ceil(work_seconds / unit - 1e-9)
    ticks = max(math.ceil(deadline_seconds / tick - 1e-9), 1)
    ages = len(model.up_hazard)
    price = {SPOT: spot_usd_per_hour * tick / 3600, ON_DEMAND: on_demand_usd_per_hour * tick / 3600}
    lowest = np.array([max(0, total - (ticks - t) * stay) for t in range(ticks)])
    highest = np.array([min(total, t * stay) for t in range(ticks)])
    band = int(max(highest - lowest).clip(min=0)) + 1
    actions = np.full((ticks, 3, 2, ages, band), ON_DEMAND, dtype=np.int8)
    older = np.minimum(np.arange(ages) + 1, ages - 1)  # age index at the next tick if nothing changes
    hazard = {1: np.asarray(model.up_hazard)[:, None], 0: np.asarray(model.down_hazard)[:, None]}
    # value[instance, available, age, done]: expected cost to go at the start of the next tick;
    # at the deadline only a finished Job costs nothing more
    value = np.full((3, 2, ages, total + 1), np.inf)
    value[..., total] = 0.0

    def expected(instance: int, up: int, nxt: np.ndarray) -> np.ndarray:
        """Expected next-tick value, per age, of running on `instance` through a tick that starts
        with availability `up`: it flips (to age 1) with the hazard, or stays and ages."""
        flipped = 1 - up
        after_flip = nxt[NOTHING if (instance == SPOT and flipped == 0) else instance, flipped, 0]
        after_stay = nxt[instance, up][older]
        h = hazard[up]
        # 0 x inf is 0 here: an impossible branch adds nothing
        return np.where(h > 0, h * after_flip, 0.0) + np.where(h < 1, (1 - h) * after_stay, 0.0)

    for t in range(ticks - 1, -1, -1):
        lo, hi = int(lowest[t]), int(highest[t])
        if hi < lo:
            value = np.full_like(value, np.inf)
            continue
        span = hi - lo + 1
        # the next tick's values for work done lo .. hi + stay; past the end the Job is finished (0)
        nxt = np.zeros((3, 2, ages, span + stay))
        seen = min(hi + stay, total) - lo + 1
        nxt[..., :seen] = value[..., lo:lo + seen]
        value = np.full_like(value, np.inf)
        for up in (0, 1):
            # options[current, target]: the cost to go of running on target this tick, from current
            options = np.full((3, 3, ages, span), np.inf)
            options[:, NOTHING] = expected(NOTHING, up, nxt)[..., :span]
            for target in ((SPOT, ON_DEMAND) if up else (ON_DEMAND,)):
                future = expected(target, up, nxt)
                options[:, target] = price[target] + future[..., switch:switch + span]
                options[target, target] = price[target] + future[..., stay:stay + span]
            best = options.argmin(axis=1)
            cheapest = np.take_along_axis(options, best[:, None], axis=1)[:, 0]
            best[~np.isfinite(cheapest)] = ON_DEMAND  # lost anyway: go as fast as possible
            actions[t, :, up, :, :span] = best
            value[:, up, :, lo:hi + 1] = cheapest
        value[SPOT, 0] = np.inf  # preempted: that state is NOTHING
        value[..., total] = 0.0
    return SpotPlan(actions, lowest, float(tick), float(unit), total)
