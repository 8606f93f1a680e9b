"""Case CBL-1 ("Can't Be Late", NSDI'24): the Poisson sweep, 1,000 traces per hourly rate.

    python bench/bench_cbl.py

Mean cost in USD of on-demand, spot-only, the strawman (the early simulator's greedy, billed as
its loop bills it), greedy (the same rule, idle once done), Uniform Progress, and Spillway's own
spot policy under spot.fallback launchWindow and progress, next to the stored results of the
paper's simulator (greedy and the ILP optimum). The last line printed is one JSON object with
every figure.
"""

from __future__ import annotations

import json
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sim.spot_job import sweep  # noqa: E402
import thresholds  # noqa: E402

PUBLISHED = {  # rate: (on-demand, spot-only, greedy, ILP optimum)
    0.1: (147.39, 47.36, 47.52, 47.29), 0.2: (147.39, 47.92, 50.65, 48.12), 0.3: (147.39, 48.55, 69.30, 52.50),
    0.4: (147.39, 49.28, 93.45, 61.25), 0.5: (147.39, 50.15, 109.54, 71.42), 0.6: (147.39, 51.20, 119.88, 81.99),
}
RULES = ["on-demand", "spot-only", "strawman", "greedy", "uniform-progress", "spillway", "spillway-progress"]
SHORT = {"on-demand": "OD", "spot-only": "spot", "strawman": "strawman", "greedy": "greedy",
         "uniform-progress": "UP", "spillway": "sw-window", "spillway-progress": "sw-progress"}


def main() -> None:
    started = time.perf_counter()
    figures = {}
    print(f"{'rate':>5} " + " ".join(f"{SHORT[r]:>11}" for r in RULES) + "   published greedy / ILP")
    for rate, published in PUBLISHED.items():
        row = {}
        for rule in RULES:
            runs = sweep(rate, rule)
            row[rule] = round(statistics.mean(r.cost_usd for r in runs), 2)
            if rule not in ("on-demand", "spot-only"):
                row[f"{rule}_deadline_misses"] = sum(not r.met_deadline for r in runs)
        row["strawman_vs_published_pct"] = round(100 * (row["strawman"] / published[2] - 1), 2)
        figures[str(rate)] = row
        print(f"{rate:>5} " + " ".join(f"{row[r]:>11.2f}" for r in RULES) +
              f"   {published[2]:.2f} / {published[3]:.2f}  (strawman {row['strawman_vs_published_pct']:+.2f} %)")
    figures["wall_s"] = round(time.perf_counter() - started, 1)
    thresholds.report("bench_cbl", figures)
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
