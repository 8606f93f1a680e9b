"""The cloud side of the world: SageMaker start-up, billing, and managed spot availability.

A spot availability process answers two questions for one burst: is spot capacity there at t,
and when does that next change. `poisson` draws interruptions at the Spot Advisor band of the
instance type (capacity returns at once; the restart overhead is the loss); `trace` replays a
real AWS availability trace (shared/data/spot_traces_skypilot) from a seeded random offset.
"""

from __future__ import annotations

import bisect
import csv
import gzip
import io
import math
from dataclasses import dataclass
from importlib import resources
from typing import Literal

import numpy as np

INF = math.inf
# What an interruption or fallback costs in the simulated world. The policy's spot.restartOverheadSeconds
# is its own estimate of it, and the spot fallback rule reads that one (as the controller does).
WORLD_RESTART_OVERHEAD_SECONDS = 600.0


@dataclass(frozen=True, slots=True)
class CloudModel:
    startup_seconds: float = 420.0
    spot: Literal["none", "poisson", "trace"] = "poisson"
    spot_trace_id: str | None = None  # None: a trace chosen per burst
    restart_overhead_seconds: float = WORLD_RESTART_OVERHEAD_SECONDS
    transform_startup_seconds: float = 420.0  # a batch transform job's own start-up (model server up)


class AlwaysAvailable:
    def available(self, t: float) -> bool:
        return True

    def next_change(self, t: float) -> float:
        return INF


class PoissonInterruptions:
    """Capacity is there except at instants drawn as a Poisson process (rate per hour)."""

    def __init__(self, rate_per_hour: float, rng: np.random.Generator):
        self.rate, self.rng = rate_per_hour, rng

    def available(self, t: float) -> bool:
        return True

    def next_interruption(self, t: float) -> float:
        if self.rate <= 0:
            return INF
        return t + float(self.rng.exponential(3600.0 / self.rate))


class TraceAvailability:
    """A real availability trace, started at an offset and wrapped around."""

    def __init__(self, starts: list[float], values: list[int], span: float, offset: float):
        self.starts, self.values, self.span, self.offset = starts, values, span, offset

    def _pos(self, t: float) -> tuple[int, float]:
        local = (t + self.offset) % self.span
        return bisect.bisect_right(self.starts, local) - 1, local

    def available(self, t: float) -> bool:
        return self.values[self._pos(t)[0]] == 1

    def next_change(self, t: float) -> float:
        i, local = self._pos(t)
        current, n = self.values[i], len(self.starts)
        dt = (self.starts[i + 1] if i + 1 < n else self.span) - local
        j = (i + 1) % n
        for _ in range(n):
            if self.values[j] != current:
                return t + dt
            dt += (self.starts[j + 1] if j + 1 < n else self.span) - self.starts[j]
            j = (j + 1) % n
        return INF


_TRACES: dict[str, tuple[list[float], list[int], float]] | None = None


def spot_traces() -> dict[str, tuple[list[float], list[int], float]]:
    global _TRACES
    if _TRACES is None:
        raw = resources.files("sim").joinpath("data/spot_segments.csv.gz").read_bytes()
        out: dict[str, tuple[list[float], list[int], float]] = {}
        with io.TextIOWrapper(gzip.GzipFile(fileobj=io.BytesIO(raw)), encoding="utf-8") as fh:
            for row in csv.DictReader(fh):
                starts, values, _ = out.setdefault(row["trace_id"], ([], [], 0.0))
                starts.append(float(row["start_s"]))
                values.append(int(row["value"]))
                out[row["trace_id"]] = (starts, values, float(row["end_s"]))
        _TRACES = out
    return _TRACES


def availability(model: CloudModel, rate_per_hour: float, rng: np.random.Generator):
    if model.spot == "none":
        return AlwaysAvailable()
    if model.spot == "poisson":
        return PoissonInterruptions(rate_per_hour, rng)
    traces = spot_traces()
    ids = sorted(traces)
    trace_id = model.spot_trace_id or ids[int(rng.integers(len(ids)))]
    if trace_id not in traces:
        raise ValueError(f"unknown spot trace {trace_id!r}; known: {', '.join(ids)}")
    starts, values, span = traces[trace_id]
    return TraceAvailability(starts, values, span, float(rng.uniform(0, span)))
