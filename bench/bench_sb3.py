"""Case SB-3 (Starburst, ATC'24, end-to-end shape on Philly): savings against No-Wait by load.

    python bench/bench_sb3.py                  # Philly week 6, s = 0.4 ... 3
    python bench/bench_sb3.py --weeks 5-6 --loads 0.7 1.5

The bundled Philly week is replayed in Starburst's world (instant cloud, no spot, a decision at
every event) on clusters sized so that the system load s = volume / (span x 8 GPUs x N) takes
the given values. The volume counts the GPU-hours offered inside the arrival span (each Job as
if it started on arrival, cut at the last arrival): one week of Philly holds Jobs that run for
weeks, and counting their whole run would make every cluster look overloaded. For each load: cloud GPU-hours, savings against No-Wait, mean JCT and wait of
No-Wait, Constant-Wait (c = 1 h, FIFO) and Starburst's Compute-Wait (c = 0.076, out-of-order;
the paper's queue cap of 30 is not modelled). Published shape: Compute-Wait saves 54-91 % at a
JCT at most 5.8 % above No-Wait, more than Constant-Wait, and savings peak at moderate load.
The last line printed is one JSON object with every figure.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sim.cli_world import parse_cluster  # noqa: E402
from sim.cloud import CloudModel  # noqa: E402
from sim.engine import SimConfig, simulate  # noqa: E402
from sim.presets import baseline  # noqa: E402
from sim.report import summarize  # noqa: E402
from sim.traces import load_philly  # noqa: E402
import thresholds  # noqa: E402

POLICIES = {
    "no-wait": {},
    "constant-wait": {"maxWaitSeconds": 3600},
    "compute-wait": {"maxWaitPerGpuSecond": 0.076},
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--weeks", default="6-6", help="Philly weeks FIRST-LAST (default 6-6)")
    ap.add_argument("--loads", nargs="+", type=float, default=[0.4, 0.7, 1.0, 1.5, 2.0, 3.0])
    args = ap.parse_args()
    first, last = (int(x) for x in args.weeks.split("-"))
    jobs = load_philly(weeks=(first, last))
    first_arrival, last_arrival = min(j.arrival_s for j in jobs), max(j.arrival_s for j in jobs)
    span = last_arrival - first_arrival
    volume = sum(j.total_gpus * max(min(j.arrival_s + j.duration_s, last_arrival) - j.arrival_s, 0.0) for j in jobs)
    started = time.perf_counter()
    figures: dict = {"jobs": len(jobs), "volume_gpu_hours": round(volume / 3600), "span_hours": round(span / 3600, 1)}
    print(f"{len(jobs)} Jobs, {volume / 3600:,.0f} GPU-h offered within {span / 3600:.0f} h of arrivals")
    print(f"{'load':>5} {'nodes':>5}  " + "  ".join(f"{p:>30}" for p in POLICIES))
    for load in args.loads:
        nodes = max(round(volume / (span * 8 * load)), 1)
        row = {"nodes": nodes}
        for name, coefficients in POLICIES.items():
            config = SimConfig(parse_cluster(f"{nodes}x8"), baseline(name, **coefficients),
                               CloudModel(0.0, "none", None, 0.0), 0.0, 0)
            sim, records = simulate(jobs, config)
            s = summarize(name, sim, records)
            row[name] = {"cloud_gpu_hours": round(s.cloud_gpu_hours, 1), "jct_mean_hours": round(s.jct_mean_hours, 3),
                         "wait_mean_hours": round(s.wait_mean_hours, 3)}
        base = row["no-wait"]
        for name in POLICIES:
            r = row[name]
            r["savings_pct"] = round(100 * (1 - r["cloud_gpu_hours"] / base["cloud_gpu_hours"]), 1) \
                if base["cloud_gpu_hours"] else 0.0
            r["jct_vs_no_wait_pct"] = round(100 * (r["jct_mean_hours"] / base["jct_mean_hours"] - 1), 1)
        figures[str(load)] = row
        cells = [f"{row[p]['cloud_gpu_hours']:>9,.0f} GPU-h {row[p]['savings_pct']:>5.1f}% "
                 f"JCT{row[p]['jct_vs_no_wait_pct']:>+6.1f}%" for p in POLICIES]
        print(f"{load:>5} {nodes:>5}  " + "  ".join(f"{c:>30}" for c in cells), flush=True)
    figures["wall_s"] = round(time.perf_counter() - started, 1)
    thresholds.report("bench_sb3", figures)
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
