"""The timeline's panels split by kind of Job (training, transform, tuning), stacked, when the
trace has more than training: which kind waits, which holds the cluster, which spends."""

from __future__ import annotations

import numpy as np
from matplotlib.ticker import MaxNLocator

from policies.model import SageMakerKind

from .engine import JobRecord, Simulation

COLORS = {SageMakerKind.TRAINING: "tab:blue", SageMakerKind.TRANSFORM: "tab:orange", SageMakerKind.TUNING: "tab:green"}
LABELS = {SageMakerKind.TRAINING: "training", SageMakerKind.TRANSFORM: "batch transform",
          SageMakerKind.TUNING: "tuning sweeps"}


def kinds_present(sim: Simulation) -> list[SageMakerKind]:
    """The kinds of the run's Jobs, in SageMakerKind's order; none when all are training Jobs."""
    found = {r.trace.kind for r in sim.records}
    return [] if found <= {SageMakerKind.TRAINING} else [k for k in SageMakerKind if k in found]


def kind_series(records: list[JobRecord], times: list[float]) -> tuple[list[float], list[float], list[float]]:
    """At each time (seconds), after everything that happened at it: the Jobs waiting, the local
    GPUs held and the cloud dollars billed so far, of these records (finished Jobs)."""
    t = np.asarray(times)

    def count_until(events: list[float], weights: list[float] | None = None) -> np.ndarray:
        order = np.argsort(events, kind="stable")
        at = np.asarray(events, dtype=float)[order]
        cum = np.concatenate([[0.0], np.cumsum(np.asarray(weights if weights is not None else [1.0] * len(events),
                                                          dtype=float)[order])])
        return cum[np.searchsorted(at, t, side="right")]

    spans = [(r, r.start, r.finish) for r in records if r.start is not None and r.finish is not None]
    local = [(r.request.total_gpus, start, end) for r, start, end in spans if r.placement == "Local"]
    bills = [(r.cloud_usd, end) for r, _, end in spans if r.placement.startswith("SageMaker")]
    queue = count_until([r.trace.arrival_s for r, _, _ in spans]) - count_until([start for _, start, _ in spans])
    gpus = [float(g) for g, _, _ in local]
    busy = count_until([start for _, start, _ in local], gpus) - count_until([end for _, _, end in local], gpus)
    spend = count_until([end for _, end in bills], [usd for usd, _ in bills])
    return queue.tolist(), busy.tolist(), spend.tolist()


def draw_by_kind(axes, sim: Simulation, times: list[float], kinds: list[SageMakerKind]) -> None:
    """The three panels (queue, local GPUs busy, cloud spend) as stacked steps, one band per kind."""
    hours = [x / 3600 for x in times]
    series = {k: kind_series([r for r in sim.records if r.trace.kind == k], times) for k in kinds}
    total = max(sim.total_gpus, 1)
    for panel, (ax, scale) in enumerate(zip(axes, (1.0, 100.0 / total, 1.0))):
        bands = [[v * scale for v in series[k][panel]] for k in kinds]
        ax.stackplot(hours, *bands, step="post", colors=[COLORS[k] for k in kinds], alpha=0.75,
                     labels=[LABELS[k] for k in kinds])
    # Whole Jobs, from 0: a queue that stays empty would otherwise get an axis of -0.04 to 0.04.
    axes[0].yaxis.set_major_locator(MaxNLocator(integer=True))
    axes[0].set_ylim(0, max(axes[0].get_ylim()[1], 1))
    axes[0].legend(loc="upper right", fontsize=8, ncol=len(kinds), framealpha=0.9)
