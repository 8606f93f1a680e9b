"""The controller at scale against the real control plane: 5,000 annotated Jobs beside 10,000 pods.

    python bench/bench_real_controller.py            # 5,000 Jobs, 10,000 other pods, 100 nodes
    python bench/bench_real_controller.py --quick    # 500 Jobs, 1,000 pods, 20 nodes

Needs `scripts/control-plane build`. The plane runs 100 nodes x 8 GPUs; its stand-in kubelet only
keeps them alive (pods stay where the scheduler bound them: they hold their GPUs all the same).
The 10,000 pods belong to 10 ordinary Jobs (no GPUs, not Spillway's), made by the real Job
controller and bound by the real scheduler; then the 5,000 Spillway Jobs (1, 2, 4 or 8 GPUs, mode
auto, estimates of 1 to 12 hours) are created suspended, and `spillway run` starts as its own
process, on deploy/'s ServiceAccount token, emitting bursts as ACK TrainingJobs.

Reports: how long until every Job carries its decision, and the rate; the controller's peak RSS
(VmHWM); what the API server counted while the controller ran (its own metrics): requests by
verb, LISTs of pods and Jobs, 429s, and requests that API Priority and Fairness rejected; the
controller's own cycle errors. The last line printed is one JSON object with every figure.
"""

from __future__ import annotations

import argparse
import json
import os
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import yaml  # noqa: E402

from policies import constants as C  # noqa: E402
from scheduler.kube import Kube, api_client  # noqa: E402
from sim.control_plane.plane import kubectl, write_kubeconfig  # noqa: E402
from sim.control_plane.setup import start_plane, wait_until  # noqa: E402
import thresholds  # noqa: E402

PRODUCT = "NVIDIA-A100-SXM4-80GB"
IMAGE = "123456789012.dkr.ecr.us-east-1.amazonaws.com/train:1"
POLICY = {"apiVersion": "spillway.io/v1alpha1", "kind": "BurstPolicy", "spec": {
    "sageMaker": {"emit": "ack"},
    "allowlists": {"*": {"roleArns": ["arn:aws:iam::123456789012:role/SpillwayTraining"],
                         "s3Prefixes": ["s3://spillway-example/"]}},
    "budgets": {"default": {"dailyUsd": 1_000_000, "monthlyUsd": 10_000_000}}}}


def spillway_job(i: int) -> dict:
    gpus, hours = (1, 2, 4, 8)[i % 4], (1, 2, 4, 8, 12)[i % 5]
    return {"apiVersion": "batch/v1", "kind": "Job",
            "metadata": {"name": f"train-{i:05d}", "namespace": f"team-{i % 10}", "annotations": {
                C.MODE: "auto", C.RUNTIME_ESTIMATE: f"{hours}h"}},
            "spec": {"suspend": True, "template": {"spec": {
                "restartPolicy": "Never", "nodeSelector": {C.GPU_PRODUCT_LABEL: PRODUCT},
                "containers": [{"name": "t", "image": IMAGE, "resources": {"limits": {C.GPU_RESOURCE: str(gpus)}}}]}}}}


def other_job(i: int, pods: int) -> dict:
    """Someone else's work: many small pods, no GPUs."""
    return {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": f"etl-{i}", "namespace": "other"},
            "spec": {"parallelism": pods, "completions": pods, "backoffLimit": 0, "template": {"spec": {
                "restartPolicy": "Never", "containers": [{"name": "etl", "image": "etl:1"}]}}}}


def apiserver_metrics(url: str, token: str, ca: Path) -> dict[str, float]:
    """The API server's counters that this bench reads, summed over their other labels."""
    context = ssl.create_default_context(cafile=str(ca))
    request = urllib.request.Request(f"{url}/metrics", headers={"Authorization": f"Bearer {token}"})
    text = urllib.request.urlopen(request, context=context, timeout=30).read().decode()
    out: dict[str, float] = {}
    for line in text.splitlines():
        if line.startswith("#"):
            continue
        name, _, value = line.rpartition(" ")
        key = None
        if name.startswith("apiserver_request_total{"):
            labels = dict(part.split("=", 1) for part in name[len("apiserver_request_total{"):-1].split(",") if "=" in part)
            labels = {k: v.strip('"') for k, v in labels.items()}
            verb, resource, code = labels.get("verb"), labels.get("resource"), labels.get("code")
            for k in (f"requests_{verb}", f"requests_{verb}_{resource}", f"code_{code}"):
                out[k] = out.get(k, 0.0) + float(value)
            continue
        if name.startswith("apiserver_flowcontrol_rejected_requests_total"):
            key = "apf_rejected"
        if key:
            out[key] = out.get(key, 0.0) + float(value)
    return out


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def controller_kubeconfig(plane, folder: Path) -> Path:
    """deploy/base's namespace, ServiceAccount and RBAC applied, and a kubeconfig with the
    controller's ServiceAccount token: the controller runs with what a deployment grants it."""
    for f in ("namespace.yaml", "serviceaccount.yaml", "rbac.yaml"):
        kubectl(plane.kubeconfig, "apply", "-f", str(ROOT / "deploy/base" / f))
    token = kubectl(plane.kubeconfig, "create", "token", "spillway-controller", "-n", "spillway-system",
                    "--duration=6h").stdout.strip()
    assert plane.pki is not None
    return write_kubeconfig(folder / "controller.kubeconfig", plane.url, plane.pki.ca_cert, token,
                            user="spillway-controller")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--timeout", type=float, default=900.0, help="seconds to wait for every decision")
    args = ap.parse_args()
    nodes, jobs, pods = (20, 500, 1000) if args.quick else (100, 5000, 10000)
    folder = Path(tempfile.mkdtemp(prefix="bench-real-"))
    with start_plane(folder, nodes=f"{nodes}x8:{PRODUCT}", kube_for=lambda p: Kube(api_client(str(p))),
                     time_scale=1.0) as running:
        running.kubelet.paused.set()  # nodes stay Ready; pods stay bound (and hold what they hold)
        plane, admin = running.plane, running.kube
        t0 = time.time()
        for ns in ["other", *{f"team-{i % 10}" for i in range(jobs)}]:
            kubectl(plane.kubeconfig, "create", "namespace", ns)
        for i in range(10):
            admin.batch.create_namespaced_job("other", other_job(i, pods // 10))

        def bound_pods() -> int:
            return len([p for p in admin.list_pods("metadata.namespace=other") if p["spec"].get("nodeName")])

        wait_until(lambda: bound_pods() >= pods, 900, f"{pods} pods made and bound", period=5)
        pods_seconds = time.time() - t0
        t1 = time.time()
        with ThreadPoolExecutor(8) as pool:
            list(pool.map(lambda i: admin._call(admin.batch.create_namespaced_job, f"team-{i % 10}",
                                                spillway_job(i)), range(jobs)))
        create_seconds = time.time() - t1
        config = controller_kubeconfig(plane, folder)
        assert plane.pki is not None
        (folder / "policy.yaml").write_text(yaml.safe_dump(POLICY))

        decided: set[str] = set()
        done = threading.Event()
        stop = threading.Event()

        def count_decisions() -> None:  # a watch of the Jobs, as the user's kubectl would
            while not stop.is_set():
                for j in admin.list_jobs():
                    ann = j["metadata"].get("annotations") or {}
                    if C.DECISION_PLACEMENT in ann:
                        decided.add(f"{j['metadata']['namespace']}/{j['metadata']['name']}")
                if len(decided) >= jobs:
                    done.set()
                    return
                stop.wait(2.0)

        before = apiserver_metrics(plane.url, plane.pki.tokens["admin"], plane.pki.ca_cert)
        spillway = str(Path(sys.executable).parent / "spillway")
        start = time.time()
        proc = subprocess.Popen([spillway, "run", "--kubeconfig", str(config), "--policy", str(folder / "policy.yaml"),
                                 "--no-leader-elect", "--no-sagemaker", "--metrics-port", "-1", "--log-level",
                                 "WARNING"], stderr=subprocess.PIPE, text=True)
        watcher = threading.Thread(target=count_decisions, daemon=True)
        watcher.start()
        try:
            finished = done.wait(args.timeout)
            elapsed = time.time() - start
            rss = peak_rss_mb(proc.pid)
            after = apiserver_metrics(plane.url, plane.pki.tokens["admin"], plane.pki.ca_cert)
        finally:
            stop.set()
            proc.kill()
            stderr = proc.communicate(timeout=30)[1]
        placements: dict[str, int] = {}
        for j in admin.list_jobs():
            p = (j["metadata"].get("annotations") or {}).get(C.DECISION_PLACEMENT)
            if p:
                placements[p] = placements.get(p, 0) + 1
        crs = len(admin.list_custom("sagemaker.services.k8s.aws/v1alpha1", "trainingjobs"))
    delta = {k: after.get(k, 0.0) - before.get(k, 0.0) for k in after}
    warnings = [line for line in stderr.splitlines() if " WARNING " in line or " ERROR " in line]
    if warnings:
        print("\n".join(warnings[:20]), file=sys.stderr)
    figures = {
        "nodes": nodes, "jobs": jobs, "other_pods": pods, "decided": len(decided), "finished": finished,
        "placements": dict(sorted(placements.items())), "training_jobs": crs,
        "seconds_to_make_and_bind_pods": round(pods_seconds, 1), "seconds_to_create_jobs": round(create_seconds, 1),
        "seconds_to_every_decision": round(elapsed, 1),
        "jobs_per_s": round(len(decided) / elapsed, 1) if elapsed else None,
        "controller_peak_rss_mb": round(rss, 1),
        "apiserver_list_pods": int(delta.get("requests_LIST_pods", 0)),
        "apiserver_list_jobs": int(delta.get("requests_LIST_jobs", 0)),
        "apiserver_patch_jobs": int(delta.get("requests_PATCH_jobs", 0)),
        "apiserver_429": int(delta.get("code_429", 0)),
        "apf_rejected": int(delta.get("apf_rejected", 0)),
        "controller_warnings": len(warnings),
        "cpus": os.cpu_count(),
    }
    print(f"{len(decided)}/{jobs} Jobs decided in {elapsed:.1f} s beside {pods} pods on {nodes} nodes; controller "
          f"peak RSS {figures['controller_peak_rss_mb']} MB; the API server answered "
          f"{figures['apiserver_list_pods']} pod LISTs and {figures['apiserver_429']} 429s "
          f"({figures['apf_rejected']} rejected by APF)")
    thresholds.report("bench_real_controller", figures)
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
