"""Spot or on-demand, tick by tick, for one deadline Job: the plan that is cheapest on average.

Greedy (policies/spot/window.py) idles through every outage until the slack is gone and then runs the
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

import csv
import functools
import gzip
import io
import math
from collections.abc import Sequence
from importlib import resources
from dataclasses import dataclass
from typing import TYPE_CHECKING, NamedTuple

import numpy as np

if TYPE_CHECKING:
    from ..model import BurstPolicy

NOTHING, SPOT, ON_DEMAND = 0, 1, 2
LOST = 3  # blind plans: no plan meets the deadline from here in the plan's coarse model (on-demand now)
INSTANCES = ("none", "spot", "od")  # the names sim/spot_job.py and policies/spot/window.py use
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
    return pooled_availability_model([history], tick_seconds, ages, prior_ticks)


def pooled_availability_model(histories: Sequence[Sequence[bool]], tick_seconds: float, ages: int = DEFAULT_AGES,
                              prior_ticks: float = PRIOR_TICKS) -> AvailabilityModel:
    """Fit one model to several histories (each oldest first), as if they were one long one
    without the seams between them."""
    if ages < 1:
        raise ValueError("ages must be at least 1")
    ends = {True: np.zeros(ages), False: np.zeros(ages)}
    seen = {True: np.zeros(ages), False: np.zeros(ages)}
    for history in histories:
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


@functools.cache
def bundled_availability_runs() -> dict[str, tuple[tuple[bool, int], ...]]:
    """The real single-node AWS availability traces this package ships (data/PROVENANCE.md):
    per trace, its runs in order as (available, seconds)."""
    raw = resources.files("policies").joinpath("data/spot_availability_runs.csv.gz").read_bytes()
    out: dict[str, list[tuple[bool, int]]] = {}
    with io.TextIOWrapper(gzip.GzipFile(fileobj=io.BytesIO(raw)), encoding="utf-8") as fh:
        for row in csv.DictReader(fh):
            out.setdefault(row["trace_id"], []).append((row["available"] == "1", int(row["seconds"])))
    return {trace: tuple(runs) for trace, runs in out.items()}


def sampled(runs: Sequence[tuple[bool, float]], tick_seconds: float) -> list[bool]:
    """A run-length trace seen once a tick, from its start: available at a tick if it is at the
    tick's start."""
    out, run_end, k = [], 0.0, -1
    total = sum(seconds for _, seconds in runs)
    t = 0.0
    while t < total:
        while t >= run_end:
            k += 1
            run_end += runs[k][1]
        out.append(runs[k][0])
        t += tick_seconds
    return out


@functools.cache
def prior_availability_model(tick_seconds: float, exclude: tuple[str, ...] = ()) -> AvailabilityModel:
    """What a controller plans by before it has seen spot of its own: one model fitted to every
    bundled real trace (but `exclude`, for leave-one-out measurements), seen at `tick_seconds`."""
    runs = bundled_availability_runs()
    return pooled_availability_model([sampled(runs[t], tick_seconds) for t in sorted(runs) if t not in exclude],
                                     tick_seconds)


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
        done = _band_index(self.lowest, self.actions.shape[4], self.unit_seconds, elapsed_ticks, progress_seconds)
        if done is None:
            return "od"
        age = min(max(age_ticks, 1), self.actions.shape[3]) - 1
        instance = INSTANCES.index(current)
        if instance == SPOT and not spot_available:
            instance = NOTHING
        return INSTANCES[int(self.actions[elapsed_ticks, instance, int(spot_available), age, done])]


def _band_index(lowest: np.ndarray, band: int, unit_seconds: float, elapsed_ticks: int,
                progress_seconds: float) -> int | None:
    """Where the work done sits in a plan's band at this tick; None when only on-demand is left:
    past the plan's horizon, or behind every plan that meets the deadline (as fast as possible)."""
    if elapsed_ticks >= len(lowest):
        return None
    done = int(math.floor(progress_seconds / unit_seconds + 1e-9)) - int(lowest[elapsed_ticks])
    return None if done < 0 else min(done, band - 1)


class _Grid(NamedTuple):
    """The Job in the plan's units: work counts in units of the greatest common divisor of a tick
    and a tick less the changeover, so no rounding enters; `lowest`/`highest` bound, per tick, the
    work done from which the deadline can still be met and that has been reachable."""
    unit: int
    stay: int  # units of work in a tick on the same instance
    switch: int  # ... in a tick on a new one (the changeover lost)
    total: int
    ticks: int
    spot_price: float  # a tick's
    od_price: float
    lowest: np.ndarray
    highest: np.ndarray
    band: int


def _grid(model: AvailabilityModel, work_seconds: float, deadline_seconds: float, changeover_seconds: float,
          spot_usd_per_hour: float, on_demand_usd_per_hour: float, max_units_per_tick: int | None = None) -> _Grid:
    tick = int(round(model.tick_seconds))
    overhead = int(math.ceil(changeover_seconds - 1e-9))
    if not 0 <= overhead < tick:
        raise ValueError(f"the changeover ({overhead} s) must be shorter than a tick ({tick} s)")
    unit = math.gcd(tick, tick - overhead)
    units = max_units_per_tick
    while units is not None and tick // unit > units:
        # Coarser units keep a long Job's plan small. Rounding the changeover up and a tick's work
        # down makes the plan think it is behind, never ahead: it can only err toward the deadline.
        # Where the rounded changeover would fill the tick, the units get finer.
        coarse = math.ceil(tick / units)
        if math.ceil(overhead / coarse) * coarse < tick:
            unit, overhead = coarse, math.ceil(overhead / coarse) * coarse
            break
        units *= 2
    stay, switch = tick // unit, (tick - overhead) // unit
    total = math.ceil(work_seconds / unit - 1e-9)
    ticks = max(math.ceil(deadline_seconds / tick - 1e-9), 1)
    lowest = np.array([max(0, total - (ticks - t) * stay) for t in range(ticks)])
    highest = np.array([min(total, t * stay) for t in range(ticks)])
    return _Grid(unit, stay, switch, total, ticks, spot_usd_per_hour * tick / 3600,
                 on_demand_usd_per_hour * tick / 3600, lowest, highest, int(max(highest - lowest).clip(min=0)) + 1)


def plan_spot(model: AvailabilityModel, *, work_seconds: float, deadline_seconds: float, changeover_seconds: float,
              spot_usd_per_hour: float, on_demand_usd_per_hour: float) -> SpotPlan:
    """Backward induction over the Job's ticks. Work is counted in units of the greatest common
    divisor of a tick and a tick less the changeover, so no rounding enters; the changeover must
    be shorter than a tick. Only the states that can still meet the deadline and have been
    reachable are solved: a band as wide as the slack, which keeps CBL's 48-h Job with 10-min ticks
    to a few tenths of a second."""
    grid = _grid(model, work_seconds, deadline_seconds, changeover_seconds, spot_usd_per_hour, on_demand_usd_per_hour)
    unit, stay, switch, total, ticks, _, _, lowest, highest, band = grid
    ages = len(model.up_hazard)
    price = {SPOT: grid.spot_price, ON_DEMAND: grid.od_price}
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
    return SpotPlan(actions, lowest, float(model.tick_seconds), float(unit), total)


# --- SageMaker's view: blind while on on-demand ------------------------------------------------
# A managed spot job tells the controller whether it trains or waits for capacity, so on spot (or
# waiting for it) availability is seen every tick. On on-demand nothing is seen: the plan keeps
# what it saw last (availability and its age when it left spot) and how many ticks ago that was,
# and weighs going back by the model's odds that spot is there now. Going back launches a managed
# spot job: it trains at once if spot is there (after the changeover), else it waits at no cost.

UNSEEN_TICKS = 36  # beliefs are told apart up to 6 h of 10-min ticks; later ones share the 6-h belief


@dataclass(frozen=True, eq=False)
class BlindSpotPlan:
    """plan_spot_blind's actions: `seen` for a Job on spot or waiting for it (NOTHING/SPOT/ON_DEMAND
    by [tick, instance, available, age index, done - lowest]); `unseen` for a Job on on-demand
    (SPOT = go back to spot, ON_DEMAND = stay, by [tick, what was seen last, ticks since - 1,
    done - lowest]). `posterior_age` is the likeliest age of what a Job back from on-demand sees."""
    seen: np.ndarray
    unseen: np.ndarray
    lowest: np.ndarray
    beliefs: np.ndarray  # [last seen state, ticks since - 1, state now] -> probability
    unit_seconds: float
    ages: int

    def choice(self, *, elapsed_ticks: int, progress_seconds: float, current: str, spot_available: bool | None,
               age_ticks: int, last_seen: tuple[bool, int] | None = None, unseen_ticks: int = 0,
               say_lost: bool = False) -> str:
        """"spot", "od" or "none" for the tick that starts now. On on-demand `spot_available` is
        not known (None) and `last_seen` = (available, age in ticks) when the Job left spot,
        `unseen_ticks` ago; "spot" then means: launch managed spot, which runs if spot is there.
        Where no plan meets the deadline in the plan's model it says "od", or, with `say_lost`,
        "lost": a caller with a finer safety net of its own may trust that instead."""
        lost = "lost" if say_lost else "od"
        done = _band_index(self.lowest, self.seen.shape[4], self.unit_seconds, elapsed_ticks, progress_seconds)
        if done is None:
            return lost
        if current == "od":
            assert last_seen is not None, "on on-demand, the plan needs what the Job saw last"
            state = self.state_index(*last_seen)
            n = min(max(unseen_ticks, 1), UNSEEN_TICKS) - 1
            action = int(self.unseen[elapsed_ticks, state, n, done])
        else:
            instance = SPOT if current == "spot" and spot_available else NOTHING
            age = min(max(age_ticks, 1), self.ages) - 1
            assert spot_available is not None, "on spot or waiting, the Job sees whether spot is there"
            action = int(self.seen[elapsed_ticks, instance, int(spot_available), age, done])
        return lost if action == LOST else INSTANCES[action]

    def state_index(self, available: bool, age_ticks: int) -> int:
        return int(available) * self.ages + min(max(age_ticks, 1), self.ages) - 1

    def likeliest_age(self, last_seen: tuple[bool, int], unseen_ticks: int, available: bool) -> int:
        """The likeliest age (ticks) of what a Job that went back to spot sees now."""
        n = min(max(unseen_ticks, 1), UNSEEN_TICKS) - 1
        row = self.beliefs[self.state_index(*last_seen), n]
        part = row[int(available) * self.ages:(int(available) + 1) * self.ages]
        return int(np.argmax(part)) + 1


class SpotBelief(NamedTuple):
    """What a Job under a blind plan knows of spot: what it saw last (None: nothing yet), how many
    ticks that had lasted then, and at which tick of the Job it saw it."""
    available: bool | None = None
    age: int = 1
    seen_tick: int = -1


def observe(plan: BlindSpotPlan, belief: SpotBelief, tick: int, available: bool) -> SpotBelief:
    """The belief after seeing spot `available` (or not) at `tick`. Seen the tick before: the run
    goes on (or a new one starts). After ticks unseen (on on-demand), or never seen: the age is
    the likeliest one given what was seen last."""
    gap = tick - belief.seen_tick
    if gap <= 0:
        return belief
    if belief.available is None:
        age = plan.likeliest_age((available, 1), UNSEEN_TICKS, available)  # about the stationary odds
    elif gap == 1:
        age = belief.age + 1 if belief.available == available else 1
    else:
        age = plan.likeliest_age((belief.available, belief.age), gap, available)
    return SpotBelief(available, age, tick)


def blind_choice(plan: BlindSpotPlan, belief: SpotBelief, *, tick: int, progress_seconds: float,
                 current: str, say_lost: bool = False) -> str:
    """The plan's action at `tick` for a Job on `current` ("spot": on managed spot, training or
    waiting for capacity; "od": on on-demand) with this belief (on spot: updated by `observe` at
    this tick). "spot" from on-demand means: relaunch on managed spot. `say_lost`: see
    BlindSpotPlan.choice."""
    if belief.available is None:  # nothing seen yet (a managed spot job still starting): keep to it
        return "od" if current == "od" else "none"
    if current == "od":
        return plan.choice(elapsed_ticks=tick, progress_seconds=progress_seconds, current="od",
                           spot_available=None, age_ticks=0, last_seen=(belief.available, belief.age),
                           unseen_ticks=tick - belief.seen_tick, say_lost=say_lost)
    return plan.choice(elapsed_ticks=tick, progress_seconds=progress_seconds, current=current,
                       spot_available=bool(belief.available), age_ticks=belief.age, say_lost=say_lost)


def _transition(model: AvailabilityModel) -> np.ndarray:
    """One tick of the semi-Markov chain over states (available, age index), index = available * ages + age."""
    ages = len(model.up_hazard)
    older = np.minimum(np.arange(ages) + 1, ages - 1)
    step = np.zeros((2 * ages, 2 * ages))
    for up, hazards in ((1, model.up_hazard), (0, model.down_hazard)):
        for k, h in enumerate(hazards):
            step[up * ages + k, (1 - up) * ages] += h
            step[up * ages + k, up * ages + older[k]] += 1 - h
    return step


def plan_spot_blind(model: AvailabilityModel, *, work_seconds: float, deadline_seconds: float,
                    changeover_seconds: float, spot_usd_per_hour: float, on_demand_usd_per_hour: float,
                    max_units_per_tick: int | None = None) -> BlindSpotPlan:
    """plan_spot for a controller that cannot see spot while it runs on on-demand. The value of a
    Job on on-demand is kept per belief (what it saw last, ticks since); going back is worth the
    belief's average of what each state it may find is worth (spot runs if there, else it waits).
    One approximation: a Job back from on-demand is valued as if it knew the age of what it finds
    (it acts on the likeliest age)."""
    grid = _grid(model, work_seconds, deadline_seconds, changeover_seconds, spot_usd_per_hour, on_demand_usd_per_hour,
                 max_units_per_tick)
    unit, stay, switch, total, ticks, spot_price, od_price, lowest, highest, band = grid
    ages = len(model.up_hazard)
    states = 2 * ages
    step = _transition(model)
    beliefs = _beliefs(step, states)
    belief_rows = beliefs.reshape(states * UNSEEN_TICKS, states)  # row (last seen, n - 1)
    later = np.minimum(np.arange(UNSEEN_TICKS) + 1, UNSEEN_TICKS - 1)  # n - 1 at the next tick
    seen_actions = np.full((ticks, 2, 2, ages, band), ON_DEMAND, dtype=np.int8)
    unseen_actions = np.full((ticks, states, UNSEEN_TICKS, band), ON_DEMAND, dtype=np.int8)
    # next-tick values: seen[instance none/spot, state, done], unseen[last seen state, n - 1, done]
    seen = np.full((2, states, total + 1), np.inf)
    unseen = np.full((states, UNSEEN_TICKS, total + 1), np.inf)
    seen[..., total] = unseen[..., total] = 0.0
    up_rows, down_rows = slice(ages, states), slice(0, ages)

    def expect(v: np.ndarray) -> np.ndarray:
        """E[v(next state)] for each state now: v is [state, done]."""
        return _safe_matmul(step, v)

    written = (total, total - 1)  # the window of done the arrays hold values for, besides `total`
    for t in range(ticks - 1, -1, -1):
        lo, hi = int(lowest[t]), int(highest[t])
        # the arrays hold the next tick's values; outside this tick's window everything is lost (inf)
        if hi < lo:
            seen[..., written[0]:written[1] + 1] = unseen[..., written[0]:written[1] + 1] = np.inf
            seen[..., total] = unseen[..., total] = 0.0
            written = (total, total - 1)
            continue
        span = hi - lo + 1
        width = span + stay
        got = min(hi + stay, total) - lo + 1
        nxt_seen = np.zeros((2, states, width))
        nxt_unseen = np.zeros((states, UNSEEN_TICKS, width))
        nxt_seen[..., :got] = seen[..., lo:lo + got]
        nxt_unseen[..., :got] = unseen[..., lo:lo + got]
        # Running a tick on...: nothing (waiting for spot), spot (preempted if it goes), on-demand
        idle = expect(nxt_seen[NOTHING])
        spot_next = nxt_seen[NOTHING].copy()
        spot_next[up_rows] = nxt_seen[SPOT][up_rows]  # still up: on spot; gone: waiting
        on_spot = expect(spot_next)
        leave_for_od = od_price + nxt_unseen[:, 0, switch:switch + span]  # [state, done]: seen now, n = 1 next
        options = np.full((2, 3, states, span), np.inf)  # [instance now, action, state, done]
        options[:, NOTHING] = idle[:, :span]
        options[NOTHING, SPOT, up_rows] = spot_price + on_spot[up_rows, switch:switch + span]
        options[SPOT, SPOT, up_rows] = spot_price + on_spot[up_rows, stay:stay + span]
        options[:, ON_DEMAND] = leave_for_od
        best = options.argmin(axis=1)
        cheapest = np.take_along_axis(options, best[:, None], axis=1)[:, 0]
        best[~np.isfinite(cheapest)] = LOST
        cheapest[SPOT, down_rows] = np.inf  # no such state: preempted means waiting
        seen_actions[t, ..., :span] = best.reshape(2, 2, ages, span)  # state = available * ages + age
        # Back from on-demand: spot runs if it is there (a changeover), else the Job waits.
        back = idle[:, :span].copy()
        back[up_rows] = spot_price + on_spot[up_rows, switch:switch + span]
        go_back = _safe_matmul(belief_rows, back).reshape(states, UNSEEN_TICKS, span)
        stay_od = od_price + nxt_unseen[:, later, stay:stay + span]
        choose = np.where(go_back < stay_od, SPOT, ON_DEMAND).astype(np.int8)
        value_unseen = np.minimum(go_back, stay_od)
        choose[~np.isfinite(value_unseen)] = LOST
        unseen_actions[t, :, :, :span] = choose
        seen[..., written[0]:written[1] + 1] = np.inf
        unseen[..., written[0]:written[1] + 1] = np.inf
        seen[..., lo:hi + 1] = cheapest
        unseen[..., lo:hi + 1] = value_unseen
        seen[..., total] = unseen[..., total] = 0.0
        written = (lo, hi)
    return BlindSpotPlan(seen_actions, unseen_actions, lowest, beliefs, float(unit), ages)


def _beliefs(step: np.ndarray, states: int) -> np.ndarray:
    """[last seen state, n - 1, state now]: where spot may be n ticks after it was last seen."""
    beliefs = np.empty((states, UNSEEN_TICKS, states))
    power = np.eye(states)
    for n in range(UNSEEN_TICKS):
        power = power @ step
        beliefs[:, n] = power
    return beliefs


def _safe_matmul(weights: np.ndarray, values: np.ndarray) -> np.ndarray:
    """weights @ values where 0 x inf counts 0 (an impossible branch adds nothing) and any
    possible branch to inf gives inf (a plan never risks the deadline, however unlikely the model
    thinks the branch: the model may be wrong)."""
    finite = np.isfinite(values)
    out = weights @ np.where(finite, values, 0.0)
    if not finite.all():
        out[(weights > 0).astype(float) @ (~finite).astype(float) > 0] = np.inf
    return out


# --- A burst's plan, for the controller and the simulator's engine ----------------------------------

BURST_UNITS_PER_TICK = 6  # work resolution of a burst's plan
PLAN_BYTES_MAX = 64 * 2**20  # a longer Job's plan counts work in coarser units (the controller keeps a few)
SPOT_HAS_CAPACITY = ("Downloading", "DownloadingTrainingImage", "PreparingTrainingStack", "Training", "Uploading")
SPOT_LACKS_CAPACITY = ("Interrupted", "Restarting")


def burst_plan(*, tick_seconds: float, work_seconds: float, time_left_seconds: float, changeover_seconds: float,
               spot_usd_per_hour: float, on_demand_usd_per_hour: float,
               model: AvailabilityModel | None = None) -> BlindSpotPlan | None:
    """The blind plan of a managed spot burst from its launch: `work_seconds` to do in
    `time_left_seconds` (to the deadline less the safety margin, counted in whole ticks, so the plan
    never uses a tick that ends after it), a changeover of `changeover_seconds` (start-up plus
    checkpoint restore) per relaunch. `model` defaults to the prior fitted to the bundled real
    traces. Work is counted in sixths of a tick, coarser where the plan would pass PLAN_BYTES_MAX.
    None when not one tick is left, or when even the coarsest plan would be too big (then the
    progress safety net alone decides, as under spot.fallback progress)."""
    ticks = math.floor(time_left_seconds / tick_seconds + 1e-9)
    if ticks < 1:
        return None
    model = model or prior_availability_model(float(tick_seconds))
    deadline_seconds = ticks * tick_seconds
    for units in (BURST_UNITS_PER_TICK, 3, 2, 1):
        grid = _grid(model, work_seconds, deadline_seconds, changeover_seconds, spot_usd_per_hour,
                     on_demand_usd_per_hour, max_units_per_tick=units)
        if blind_plan_bytes(grid, len(model.up_hazard)) <= PLAN_BYTES_MAX:
            return plan_spot_blind(model, work_seconds=work_seconds, deadline_seconds=deadline_seconds,
                                   changeover_seconds=changeover_seconds, spot_usd_per_hour=spot_usd_per_hour,
                                   on_demand_usd_per_hour=on_demand_usd_per_hour, max_units_per_tick=units)
    return None


def policy_burst_plan(policy: BurstPolicy, *, work_seconds: float, deadline: float, launched_at: float,
                      spot_usd_per_hour: float, on_demand_usd_per_hour: float) -> BlindSpotPlan | None:
    """burst_plan for a burst launched at `launched_at` under `policy` (a BurstPolicy): its plan
    tick, its safety margin, and a changeover of SageMaker start-up plus restart overhead. The
    controller and the simulator's engine both make their plans here."""
    spot = policy.spec.spot
    return burst_plan(tick_seconds=spot.plan_tick_seconds, work_seconds=work_seconds,
                      time_left_seconds=deadline - spot.safety_margin_seconds - launched_at,
                      changeover_seconds=policy.spec.sage_maker.startup_seconds + spot.restart_overhead_seconds,
                      spot_usd_per_hour=spot_usd_per_hour, on_demand_usd_per_hour=on_demand_usd_per_hour)


def planned_switch(plan: BlindSpotPlan, belief: SpotBelief, *, tick: int, progress_seconds: float, on_spot: bool,
                   seen: bool | None) -> tuple[bool, SpotBelief]:
    """One plan tick of a managed spot burst: on spot, what it shows of spot (`seen`; None: cannot
    tell yet) updates the belief; then whether to change capacity (spot -> on-demand, or back),
    and the belief. Where the coarse plan sees no way to the deadline, the burst keeps what it
    runs on: the exact progress safety net (policies.spot.spot_fallback_due) decides then."""
    if on_spot and seen is not None:
        belief = observe(plan, belief, tick, seen)
    choice = blind_choice(plan, belief, tick=tick, progress_seconds=progress_seconds,
                          current="spot" if on_spot else "od", say_lost=True)
    return (choice == "od") if on_spot else (choice == "spot"), belief


def blind_plan_bytes(grid: _Grid, ages: int) -> int:
    """What plan_spot_blind holds for this grid: its action arrays and, while it solves, its values."""
    states = 2 * ages
    actions = grid.ticks * (4 * ages + states * UNSEEN_TICKS) * grid.band
    values = (2 * states + states * UNSEEN_TICKS) * (grid.total + 1) * 8
    return actions + values


def spot_seen_in_status(secondary_status: str | None, seconds_since_created: float, startup_seconds: float
                        ) -> bool | None:
    """Whether a managed spot job's SageMaker secondary status shows spot capacity: True once it has
    instances, False when interrupted or still starting after a start-up's time (waiting for
    capacity), None while it may just be starting."""
    if secondary_status in SPOT_HAS_CAPACITY:
        return True
    if secondary_status in SPOT_LACKS_CAPACITY:
        return False
    if secondary_status in ("Starting", "LaunchingMLInstances"):
        return False if seconds_since_created > startup_seconds else None
    return None
