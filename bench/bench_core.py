"""Decision-core speed: decide() latency with 10k pending Jobs on 1k nodes, plan() wall time.

    python bench/bench_core.py            # full sizes (about 10 s on 2 cores: 8.6 s measured)
    python bench/bench_core.py --quick    # smaller, for a smoke run

Goals (issue 2): decide() p99 <= 1 ms; plan() <= 1 s at 500 pending Jobs.
The last line printed is one JSON object with every figure.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from policies import BurstPolicy, JobRequest, decide, plan  # noqa: E402
from policies.forecast import Derived  # noqa: E402
from policies.model import Node, RunningPod, Snapshot, Spend  # noqa: E402
import thresholds  # noqa: E402

NOW = 1_795_000_000.0
PRODUCTS = ["NVIDIA-A100-SXM4-80GB", "NVIDIA-H100-80GB-HBM3", "NVIDIA-A10G"]
POLICY = BurstPolicy.model_validate({"spec": {
    "allowlists": {"*": {"roleArns": ["arn:aws:iam::1:role/r"], "s3Prefixes": ["s3://b/"]}},
    "budgets": {"default": {"dailyUsd": 5000, "monthlyUsd": 50000}},
}})


def world(nodes: int, pending: int, seed: int, busy=(0, 4, 6, 8, 8)) -> tuple[Snapshot, list[JobRequest]]:
    rng = random.Random(seed)
    node_list = tuple(Node(f"node-{i:04d}", 8, PRODUCTS[i % 3]) for i in range(nodes))
    running = []
    for n in node_list:  # default: about 65 % busy, ending over the next 12 h
        used = rng.choice(busy)
        if used:
            running.append(RunningPod(f"ml/r-{n.name}", n.name, used, NOW - 3600, NOW + rng.uniform(60, 12 * 3600)))
    jobs = [JobRequest(namespace=rng.choice(["ml", "cv", "nlp"]), name=f"job-{i:05d}",
                       gpus_per_pod=rng.choices([1, 2, 4, 8], [0.7, 0.15, 0.1, 0.05])[0],
                       pods=1 if rng.random() < 0.97 else 2, gpu_product=rng.choice(PRODUCTS + [None]),
                       submit_time=NOW - rng.uniform(0, 4 * 3600), image="img",
                       runtime_estimate_seconds=rng.expovariate(1 / 3600) + 60,
                       checkpoint_s3_uri="s3://b/c/" if rng.random() < 0.5 else None)
            for i in range(pending)]
    return Snapshot(NOW, node_list, tuple(running), (), (Spend("ml", 100, 1000),), (), tuple(jobs)), jobs


def percentile(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(round(q / 100 * (len(values) - 1))))]


def bench_decide(nodes: int, pending: int, calls: int) -> dict:
    snap, jobs = world(nodes, pending, seed=1)
    derived = Derived(snap, POLICY)  # what the core derives from this snapshot, kept across calls
    t = time.perf_counter()
    decide(jobs[0], snap, POLICY, NOW, derived=derived)  # builds the queue forecast once per snapshot
    first = time.perf_counter() - t
    rng = random.Random(2)
    queued, new = [], []
    for _ in range(calls):
        job = rng.choice(jobs)
        t = time.perf_counter()
        decide(job, snap, POLICY, NOW, derived=derived)
        queued.append(time.perf_counter() - t)
    _, fresh = world(nodes, calls, seed=3)
    for job in fresh:  # Jobs not in the queue: forecast against the whole queue's reservations
        t = time.perf_counter()
        decide(job, snap, POLICY, NOW, derived=derived)
        new.append(time.perf_counter() - t)
    ms = lambda xs, q: round(percentile(xs, q) * 1000, 3)  # noqa: E731
    return {"nodes": nodes, "pending": pending, "calls": calls,
            "first_call_builds_queue_forecast_s": round(first, 3),
            "decide_queued_p50_ms": ms(queued, 50), "decide_queued_p99_ms": ms(queued, 99),
            "decide_new_job_p50_ms": ms(new, 50), "decide_new_job_p99_ms": ms(new, 99)}


def bench_plan(nodes: int, sizes: list[int], optimizer: str, repeats: int) -> dict:
    out = {}
    for n in sizes:
        # 90 % busy: the queue outgrows the free GPUs, so the choice of who bursts matters.
        snap, jobs = world(nodes, n, seed=4, busy=(4, 8, 8, 8, 8))
        snap = Snapshot(snap.time, snap.nodes, snap.running, (), snap.spend)
        walls = []
        for _ in range(repeats):
            t = time.perf_counter()
            result = plan(jobs, snap, POLICY, NOW, optimizer=optimizer, time_limit_seconds=2.0)
            walls.append(time.perf_counter() - t)
        out[f"plan_{optimizer}_{n}_s"] = round(statistics.median(walls), 3)
        placements = [d.placement.value for d in result.decisions]
        out[f"plan_{optimizer}_{n}_local_burst_wait"] = [placements.count("Local"), sum(
            p.startswith("SageMaker") for p in placements), placements.count("Wait")]
        if optimizer == "cpsat":
            out[f"plan_cpsat_{n}_status"] = result.solver.status
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args()
    nodes, pending, calls = (200, 2000, 300) if args.quick else (1000, 10000, 2000)
    sizes = [100, 500] if args.quick else [100, 500, 2000]
    figures = {"machine_cores": __import__("os").cpu_count()}
    print(f"decide(): {nodes} nodes, {pending} pending Jobs, {calls} calls ...", flush=True)
    figures.update(bench_decide(nodes, pending, calls))
    print(f"plan() greedy on {nodes} nodes: {sizes} pending Jobs ...", flush=True)
    figures.update(bench_plan(nodes, sizes, "greedy", 3))
    print("plan() cpsat (window 200 Jobs, 2 s deterministic limit) ...", flush=True)
    figures.update(bench_plan(nodes, sizes, "cpsat", 1))
    for k, v in figures.items():
        print(f"  {k:40s} {v}", flush=True)
    thresholds.report("bench_core", figures)
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
