"""The controller against the sandbox: 1,000 nodes and 5,000 annotated Jobs.

    python bench/bench_controller.py            # 1,000 nodes x 8 GPUs, 5,000 Jobs
    python bench/bench_controller.py --quick    # 100 nodes, 500 Jobs

The sandbox (its API server, and its Job controller, scheduler and kubelet unless
--no-machinery) runs in this process; `spillway run` runs as its own process (as in a cluster),
so its peak RSS is its own. The Jobs (1, 2, 4 or 8 GPUs, a mix of runtime
estimates; every third one mode cloud, the rest mode auto) are created suspended before the
controller starts; every one of them needs a decision: a third burst (as ACK TrainingJob
resources, each with its ledger record), the cluster has room for some, the rest wait.

Reports:
- reconcile throughput: Jobs whose decision landed on the Job (un-suspended, launched, or a Wait
  written) per second, from the controller's start (process start-up and the first lists
  included) to the last write (goal >= 200 Jobs/s); and from the first write to the last;
- decision-to-action latency: from the start of the cycle that decided a Job (its
  spillway.io/decided-at) to the moment the write reached the API server, p50 / p99;
- the controller's peak RSS (VmHWM; goal <= 250 MB), and the time of a cycle that finds nothing
  to do (its second cycle, from its own spillway_cycle_seconds metric).
The last line printed is one JSON object with every figure.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import yaml  # noqa: E402

from policies import constants as C  # noqa: E402
from policies.model import parse_time  # noqa: E402
from sim.sandbox.apiserver import SandboxServer  # noqa: E402
from sim.sandbox.machinery import Machinery, add_nodes  # noqa: E402
import thresholds  # noqa: E402

PRODUCT = "NVIDIA-A100-SXM4-80GB"
POLICY = {"apiVersion": "spillway.io/v1alpha1", "kind": "BurstPolicy", "spec": {
    "allowlists": {"*": {"roleArns": ["arn:aws:iam::123456789012:role/SpillwayTraining"],
                         "s3Prefixes": ["s3://spillway-example/"]}},
    "budgets": {"default": {"dailyUsd": 1_000_000, "monthlyUsd": 10_000_000}}}}


def job(i: int) -> dict:
    """Every third Job must burst (mode cloud: the write path of a burst, its ledger record and its
    TrainingJob, is measured too); the rest are the core's to place, locally or waiting."""
    gpus = (1, 2, 4, 8)[i % 4]
    hours = (1, 2, 4, 8, 12)[i % 5]
    mode = "cloud" if i % 3 == 0 else "auto"
    return {"metadata": {"name": f"train-{i:05d}", "namespace": f"team-{i % 10}", "annotations": {
        C.MODE: mode, C.RUNTIME_ESTIMATE: f"{hours}h"}},
        "spec": {"suspend": True, "template": {"spec": {
            "restartPolicy": "Never", "nodeSelector": {C.GPU_PRODUCT_LABEL: PRODUCT},
            "containers": [{"name": "t", "image": "123456789012.dkr.ecr.us-east-1.amazonaws.com/train:1",
                            "resources": {"limits": {C.GPU_RESOURCE: str(gpus)}}}]}}}}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def metric(port: int, name: str) -> float | None:
    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    return None


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--timeout", type=float, default=300.0)
    ap.add_argument("--workers", type=int, default=8, help="the controller's --workers")
    ap.add_argument("--no-machinery", action="store_true",
                    help="without the sandbox's Job controller, scheduler and kubelet (the API server alone)")
    args = ap.parse_args()
    nodes, jobs = (100, 500) if args.quick else (1000, 5000)
    server = SandboxServer(history=jobs * 8).start()
    store = server.store
    add_nodes(store, f"{nodes}x8:{PRODUCT}")
    ns_type, job_type = store.type_for("", "v1", "namespaces"), store.type_for("batch", "v1", "jobs")
    for ns in ["spillway-system", *{f"team-{i % 10}" for i in range(jobs)}]:
        store.create(ns_type, "", {"metadata": {"name": ns}})
    for i in range(jobs):
        store.create(job_type, job(i)["metadata"]["namespace"], job(i))
    # The sandbox's Job controller, scheduler and kubelet: un-suspended Jobs get pods that bind and
    # run (in real time: the estimates are hours, so none ends during the run).
    machinery = None if args.no_machinery else Machinery(store, time_scale=1.0).start()

    landed: dict[str, float] = {}
    latencies: list[float] = []
    placements: dict[str, int] = {}
    done = threading.Event()

    def on_event(event) -> None:
        if event.plural != "jobs" or event.type != "MODIFIED":
            return
        ann = event.obj["metadata"].get("annotations") or {}
        key = f"{event.obj['metadata']['namespace']}/{event.obj['metadata']['name']}"
        if C.DECISION_PLACEMENT in ann and key not in landed:
            now = time.time()
            landed[key] = now
            latencies.append(now - parse_time(ann[C.DECIDED_AT]))
            placements[ann[C.DECISION_PLACEMENT]] = placements.get(ann[C.DECISION_PLACEMENT], 0) + 1
            if len(landed) == jobs:
                done.set()

    store.listeners.append(on_event)
    tmp = Path(tempfile.mkdtemp())
    kubeconfig = server.kubeconfig(tmp / "kubeconfig")
    (tmp / "policy.yaml").write_text(yaml.safe_dump(POLICY))
    port = free_port()
    spillway = str(Path(sys.executable).parent / "spillway")
    start = time.time()
    proc = subprocess.Popen([spillway, "run", "--kubeconfig", str(kubeconfig), "--policy", str(tmp / "policy.yaml"),
                             "--no-leader-elect", "--no-sagemaker", "--metrics-port", str(port), "--kubelet-port", "-1",
                             "--log-level", "WARNING", "--workers", str(args.workers)],
                            stderr=subprocess.PIPE, text=True)
    try:
        finished = done.wait(args.timeout)
        end = max(landed.values()) if landed else time.time()
        deadline = time.time() + 60
        second = None
        while time.time() < deadline:  # the second cycle: the same world, nothing to write
            try:
                count = metric(port, "spillway_cycle_seconds_count")
                if count and count >= 2:
                    second = metric(port, "spillway_cycle_seconds_sum")
                    break
            except OSError:
                pass
            time.sleep(0.2)
        first_sum = None
        rss = peak_rss_mb(proc.pid)
    finally:
        proc.kill()
        stderr = proc.communicate(timeout=10)[1]
        pods = len(store.objects[("", "pods")])
        training_jobs = len(store.objects.get(("sagemaker.services.k8s.aws", "trainingjobs"), {}))
        ledger = sum(ns == "spillway-system" for ns, _ in store.objects[("", "configmaps")])
        if machinery is not None:
            machinery.stop()
        server.stop()
    warnings = [line for line in stderr.splitlines() if " WARNING " in line or " ERROR " in line]
    if not finished or warnings:
        print("\n".join(warnings[:20]) or stderr[-3000:], file=sys.stderr)
    elapsed = end - start
    lat = sorted(latencies)
    figures = {
        "nodes": nodes, "jobs": jobs, "decided": len(landed), "finished": finished,
        "machinery": machinery is not None, "pods": pods,
        "placements": dict(sorted(placements.items())),
        "training_jobs": training_jobs, "ledger_records": ledger,
        "seconds_to_last_decision": round(elapsed, 2),
        "throughput_jobs_per_s": round(len(landed) / elapsed, 1) if elapsed > 0 else None,
        "seconds_to_first_decision": round(min(landed.values()) - start, 2) if landed else None,
        "throughput_while_writing_jobs_per_s": round(len(landed) / (end - min(landed.values())), 1)
        if len(landed) > 1 else None,
        "latency_p50_s": round(statistics.median(lat), 3) if lat else None,
        "latency_p99_s": round(lat[int(0.99 * (len(lat) - 1))], 3) if lat else None,
        "controller_peak_rss_mb": round(rss, 1),
        "two_cycles_seconds": round(second, 2) if second is not None else first_sum,
        "controller_warnings": len(warnings),
        "workers": args.workers,
        "cpus": os.cpu_count(),
    }
    print(f"{len(landed)}/{jobs} Jobs decided in {elapsed:.1f} s ({figures['throughput_jobs_per_s']} Jobs/s); "
          f"decision-to-action p50 {figures['latency_p50_s']} s, p99 {figures['latency_p99_s']} s; "
          f"controller peak RSS {figures['controller_peak_rss_mb']} MB")
    thresholds.report("bench_controller", figures)
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
