"""PNG plots of a simulation: where the policies sit on the cost/wait plane, and how a run unfolded."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # files only, no display
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.text import Text  # noqa: E402

from .engine import Simulation  # noqa: E402
from .plot_kinds import draw_by_kind, kinds_present  # noqa: E402
from .report import Summary, pareto_front  # noqa: E402


def plot_pareto(summaries: list[Summary], path: Path, title: str = "") -> Path:
    fig = pareto_figure(summaries, title)
    fig.savefig(path)
    plt.close(fig)
    return path


def pareto_figure(summaries: list[Summary], title: str = ""):
    """Cloud dollars against p95 wait, one point per policy, the Pareto frontier joined. Dollars
    are on a log axis when they span more than 20x (a $1k policy beside a $1M one would otherwise
    sit on the axis), and no label covers another."""
    fig, ax = plt.subplots(figsize=(7.5, 4.8), dpi=120)
    points = [(s.cloud_usd, s.wait_p95_hours) for s in summaries]
    front = pareto_front(points)
    ax.scatter([p[0] for p in points], [p[1] for p in points], color="tab:blue", zorder=3)
    if len(front) > 1:
        ax.plot([points[i][0] for i in front], [points[i][1] for i in front], color="tab:orange",
                linestyle="--", label="Pareto frontier", zorder=2)
        ax.legend(loc="best")
    positive = [x for x, _ in points if x > 0]
    if positive and max(positive) > 20 * min(positive):
        # Symmetric log: $0 (local-only) keeps its place at the left, the rest spread by ratio.
        linthresh = max(min(positive), 1.0)
        ax.set_xscale("symlog", linthresh=linthresh, linscale=0.5)
        decades = range(math.ceil(math.log10(linthresh)), math.ceil(math.log10(max(positive))) + 1)
        ax.xaxis.set_major_locator(matplotlib.ticker.FixedLocator([0.0, *(10.0 ** k for k in decades)]))
        ax.xaxis.set_minor_locator(matplotlib.ticker.NullLocator())
        ax.xaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(_dollars))
        ax.set_xlabel("cloud spend (USD, log scale)")
    else:
        ax.xaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(_dollars))
        ax.set_xlabel("cloud spend (USD)")
    ax.set_ylabel("p95 wait (hours)")
    ax.set_title(title or "Cost against waiting")
    ax.grid(alpha=0.3, which="both")
    ax.margins(0.15)
    fig.tight_layout()
    _place_labels(fig, ax, [s.policy for s in summaries], points)
    return fig


def _dollars(x: float, _pos=None) -> str:
    return f"${x / 1e6:g}M" if abs(x) >= 1e6 else f"${x / 1e3:g}k" if abs(x) >= 1e3 else f"${x:g}"


# Where a label may go, in points from its dot: beside it first, then farther out with a leader line.
_NEAR = [(6, 4), (6, -12), (-6, 4), (-6, -12), (0, 10), (0, -18)]
_OFFSETS = _NEAR + [(dx * r, dy * r) for r in (3, 5, 7) for dx, dy in ((6, 5), (6, -5), (-6, 5), (-6, -5), (0, 6),
                                                                       (0, -6))]


def _place_labels(fig, ax, labels: list[str], points: list[tuple[float, float]]) -> None:
    """Each label at the first offset where it stays inside the axes and covers no label placed
    before it, nor any dot; a leader line joins a label placed away from its dot."""
    fig.canvas.draw()  # settles the axis limits: extents measured before a draw are wrong
    renderer = fig.canvas.get_renderer()
    frame = ax.get_window_extent(renderer)
    dots = [ax.transData.transform(p) for p in points]
    taken: list[Any] = []  # the boxes of the labels placed
    for label, (x, y) in sorted(zip(labels, points), key=lambda lp: (lp[1][0], lp[1][1])):
        best: tuple[Any, Any] | None = None  # (the label, its box; None: placed as a last resort)
        for i, (dx, dy) in enumerate(_OFFSETS):
            ha = "left" if dx > 0 else "right" if dx < 0 else "center"
            text = ax.annotate(label, (x, y), textcoords="offset points", xytext=(dx, dy), fontsize=9, ha=ha,
                               va="center", arrowprops={"arrowstyle": "-", "color": "0.55", "lw": 0.6,
                                                        "shrinkA": 1, "shrinkB": 3})
            # The text alone: an Annotation's own extent includes its leader line, which reaches the dot.
            text.update_positions(renderer)
            box = Text.get_window_extent(text, renderer).expanded(1.04, 1.15)
            inside = frame.x0 <= box.x0 and box.x1 <= frame.x1 and frame.y0 <= box.y0 and box.y1 <= frame.y1
            clear = not any(box.overlaps(b) for b in taken) and not any(box.contains(*d) for d in dots)
            if inside and clear:
                best = (text, box)
                break
            if best is None and clear:
                best = (text, box)  # clear but clipped: kept only if nothing better comes
                continue
            text.remove()
        if best is None:  # nowhere is clear: beside the dot, as a last resort
            best = (ax.annotate(label, (x, y), textcoords="offset points", xytext=_NEAR[0], fontsize=9), None)
        for t in ax.texts[:]:
            if t is not best[0] and t.get_text() == label and t.xy == (x, y):
                t.remove()
        if best[1] is not None:
            taken.append(best[1])


def plot_timeline(sim: Simulation, path: Path, title: str = "") -> Path:
    fig = timeline_figure(sim, title)
    fig.savefig(path)
    plt.close(fig)
    return path


# Beyond the window, this much of it again is shown, so that its last changes are not on the edge.
WINDOW_MARGIN = 0.05
# A tail up to this many times the window is drawn: cut, it would save little room and hide runs.
TAIL_DRAWN_UP_TO = 1.0


def activity_window(sim: Simulation) -> float:
    """Seconds from the first arrival to the last decision: when the queue is empty after the last
    arrival. What follows is the tail of runs finishing, with nothing left to decide; it can be 50
    times as long (a week of arrivals, one 60-day run)."""
    samples = sim.samples
    if not samples:
        return 0.0
    last_arrival = max((r.trace.arrival_s for r in sim.records), default=0.0)
    drained = next((t for t, queue, _, _ in samples if t >= last_arrival and queue == 0), samples[-1][0])
    return max(last_arrival, drained)


def timeline_figure(sim: Simulation, title: str = ""):
    """Queue length, local GPU utilization and cumulative cloud spend over the arrival window (from
    the first arrival to the last Job out of the queue): where the policy acts. A tail longer than
    the window is summed up in a note under the plots rather than drawn, which would squeeze the
    window to a sliver."""
    samples = sim.samples
    fig, axes = plt.subplots(3, 1, figsize=(8, 6.5), dpi=120, sharex=True)
    window = activity_window(sim)
    end = samples[-1][0] if samples else 0.0
    cut = window > 0 and end > window * (1 + TAIL_DRAWN_UP_TO)
    shown = window * (1 + WINDOW_MARGIN) if cut else end
    if samples:
        kept = [s for s in samples if s[0] <= shown]
        after = next((s for s in samples if s[0] > shown), None)
        if after is not None:  # hold each line to the window's edge, as its value was there
            kept.append((shown, *kept[-1][1:]) if kept else (shown, *after[1:]))
        hours = [s[0] / 3600 for s in kept]
        kinds = kinds_present(sim)
        if kinds:  # transform or tuning Jobs too: each panel stacked by kind
            draw_by_kind(axes, sim, [s[0] for s in kept], kinds)
        else:
            axes[0].step(hours, [s[1] for s in kept], where="post", color="tab:purple")
            axes[1].step(hours, [100 * s[2] / max(sim.total_gpus, 1) for s in kept], where="post", color="tab:green")
            # Spend steps when a training job ends and is billed: no line between two bills.
            axes[2].step(hours, [s[3] for s in kept], where="post", color="tab:red")
        axes[2].set_xlim(0, max(shown / 3600, 1e-9))
    axes[0].set_ylabel("Jobs waiting")
    axes[1].set_ylabel("local GPUs busy (%)")
    axes[1].set_ylim(0, 105)
    axes[2].set_ylabel("cloud spend (USD)")
    axes[2].set_xlabel("hours since the first arrival")
    for ax in axes:
        ax.grid(alpha=0.3)
    axes[0].set_title(title or "Simulation over time")
    note = tail_note(sim, shown)
    fig.tight_layout(rect=(0, 0.05 if note else 0, 1, 1))
    if note:
        fig.text(0.5, 0.012, note, ha="center", va="bottom", fontsize=8.5, color="0.3")
    return fig


def tail_note(sim: Simulation, shown: float) -> str:
    """What the timeline leaves out after `shown` seconds, in a line; empty when nothing is left out."""
    samples = sim.samples
    if not samples or samples[-1][0] <= shown:
        return ""
    end, total = samples[-1][0], samples[-1][3]
    at_edge = max((s[3] for s in samples if s[0] <= shown), default=0.0)
    running = sum(1 for r in sim.records if r.finish is not None and r.finish > shown)
    spend = (f"${total - at_edge:,.0f} more billed as bursts end (${total:,.0f} in all)" if total > at_edge + 0.005
             else "no more cloud spend")
    return (f"Not drawn: hours {_hours(shown)}-{_hours(end)}, no Job waiting; {running:,} "
            f"{'Job' if running == 1 else 'Jobs'} still running, {spend}.")


def _hours(seconds: float) -> str:
    hours = seconds / 3600
    return f"{hours:,.1f}" if hours < 10 else f"{hours:,.0f}"
