"""PNG plots of a simulation: where the policies sit on the cost/wait plane, and how a run unfolded."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only, no display
import matplotlib.pyplot as plt  # noqa: E402

from .engine import Simulation  # noqa: E402
from .report import Summary, pareto_front  # noqa: E402


def plot_pareto(summaries: list[Summary], path: Path, title: str = "") -> Path:
    """Cloud dollars against p95 wait, one point per policy, the Pareto frontier joined."""
    fig, ax = plt.subplots(figsize=(7, 4.5), dpi=120)
    points = [(s.cloud_usd, s.wait_p95_hours) for s in summaries]
    front = pareto_front(points)
    ax.scatter([p[0] for p in points], [p[1] for p in points], color="tab:blue", zorder=3)
    for s, (x, y) in zip(summaries, points):
        ax.annotate(s.policy, (x, y), textcoords="offset points", xytext=(6, 4), fontsize=9)
    if len(front) > 1:
        ax.plot([points[i][0] for i in front], [points[i][1] for i in front], color="tab:orange",
                linestyle="--", label="Pareto frontier", zorder=2)
        ax.legend(loc="upper right")
    ax.set_xlabel("cloud spend (USD)")
    ax.set_ylabel("p95 wait (hours)")
    ax.set_title(title or "Cost against waiting")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def plot_timeline(sim: Simulation, path: Path, title: str = "") -> Path:
    """Queue length, local GPU utilization and cumulative cloud spend over the run."""
    samples = sim.samples
    fig, axes = plt.subplots(3, 1, figsize=(8, 6.5), dpi=120, sharex=True)
    if samples:
        hours = [s[0] / 3600 for s in samples]
        axes[0].step(hours, [s[1] for s in samples], where="post", color="tab:purple")
        axes[1].step(hours, [100 * s[2] / max(sim.total_gpus, 1) for s in samples], where="post", color="tab:green")
        axes[2].plot(hours, [s[3] for s in samples], color="tab:red")
    axes[0].set_ylabel("Jobs waiting")
    axes[1].set_ylabel("local GPUs busy (%)")
    axes[1].set_ylim(0, 105)
    axes[2].set_ylabel("cloud spend (USD)")
    axes[2].set_xlabel("hours since the first arrival")
    for ax in axes:
        ax.grid(alpha=0.3)
    axes[0].set_title(title or "Simulation over time")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path
