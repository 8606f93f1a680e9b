"""spot.fallback modes in the simulator's engine, as the controller runs them (about 30 s).

    python bench/bench_spot_engine.py [--traces N] [--jobs N]

sim/spot_job.py judges spot rules in Can't Be Late's tick model. This bench runs the modes a policy
can select (launchWindow, progress, planned) through the event engine instead, on the bundled real
single-node AWS availability traces, with SageMaker's start-up (420 s) and checkpoint restore
(600 s): managed spot resumes the moment capacity returns, and nothing of spot shows while a burst
runs on on-demand. Per trace and Job shape (work / slack hours): `--jobs` deadline Jobs that all
burst (1 local node of 8 GPUs, spot by default, no budget), arriving 15 min apart; each draws its
own offset into the trace from the seed. Prints a table, then one JSON line with every figure.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from scheduler.output import table  # noqa: E402

from policies import BurstPolicy  # noqa: E402
from policies.model import Node  # noqa: E402
from sim.cloud import CloudModel  # noqa: E402
from sim.engine import SimConfig, simulate  # noqa: E402
from sim.report import summarize  # noqa: E402
from sim.spot_job import single_node_availability_traces  # noqa: E402
from sim.traces import TraceJob  # noqa: E402
import thresholds  # noqa: E402

H = 3600.0
MODES = ("launchWindow", "progress", "planned")
SHAPES = ((2, 1), (8, 4), (24, 12))  # hours of work, hours of slack


def policy_for(mode: str) -> BurstPolicy:
    return BurstPolicy.model_validate({"spec": {
        "managedJobs": {"defaultCapacityType": "spot"}, "local": {"maxWaitSeconds": 0},
        "spot": {"fallback": mode},
        "allowlists": {"*": {"roleArns": ["arn:aws:iam::1:role/r"], "s3Prefixes": ["s3://sim/"]}},
        "budgets": {"default": {"dailyUsd": None, "monthlyUsd": None}}}})


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--traces", type=int, default=17, help="how many of the 17 bundled traces (default all)")
    ap.add_argument("--jobs", type=int, default=20, help="deadline Jobs per trace and shape (default 20)")
    args = ap.parse_args()
    started = time.time()
    rows, figures = [], []
    for trace_id in single_node_availability_traces()[:args.traces]:
        for work, slack in SHAPES:
            jobs = [TraceJob(i, i * 900.0, 8, work * H, deadline_s=i * 900.0 + (work + slack) * H,
                             checkpointable=True, name=f"d{i}") for i in range(args.jobs)]
            cell = {"trace": trace_id, "work_h": work, "slack_h": slack}
            for mode in MODES:
                sim, records = simulate(jobs, SimConfig((Node("n0", 8),), policy_for(mode),
                                                        CloudModel(420, "trace", trace_id, 600), 60.0, 0))
                s = summarize(mode, sim, records)
                cell[mode] = {"usd": round(s.cloud_usd, 2), "misses": s.deadline_misses,
                              "back_to_spot": sum(r.back_to_spot for r in records)}
            figures.append(cell)
            base = cell["progress"]["usd"]
            rows.append([trace_id.removeprefix("availability-1n-"), f"{work}/{slack}",
                         *(f"{cell[m]['usd']:,.0f}" for m in MODES),
                         f"{100 * (cell['planned']['usd'] / base - 1):+.1f} %" if base else "-",
                         sum(cell[m]["misses"] for m in MODES), cell["planned"]["back_to_spot"]])
    print(table(["TRACE", "WORK/SLACK H", *(f"{m.upper()} $" for m in MODES), "PLANNED VS PROGRESS", "MISSES",
                 "BACK TO SPOT"], rows))
    ratios = [c["planned"]["usd"] / c["progress"]["usd"] - 1 for c in figures if c["progress"]["usd"]]
    out = {"cells": figures, "planned_vs_progress_min": round(min(ratios), 4),
           "planned_vs_progress_max": round(max(ratios), 4),
           "misses": sum(c[m]["misses"] for c in figures for m in MODES),
           "seconds": round(time.time() - started, 1)}
    thresholds.report("bench_spot_engine", out)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
