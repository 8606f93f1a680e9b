"""Sandbox API throughput with 1,000 nodes and 10,000 Jobs, through the official kubernetes client.

    python bench/bench_sandbox.py            # 1,000 nodes, 10,000 Jobs
    python bench/bench_sandbox.py --quick    # 100 nodes, 1,000 Jobs

Reports creates/s (Jobs created one by one over keep-alive HTTP), list latency (all Jobs, and a
label-selected tenth of them), and watch event latency (create -> event received). The last line
printed is one JSON object with every figure.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from kubernetes import client, watch  # noqa: E402

from sim.sandbox.apiserver import SandboxServer  # noqa: E402
from sim.sandbox.machinery import add_nodes  # noqa: E402
import thresholds  # noqa: E402


def job(i: int) -> dict:
    return {"apiVersion": "batch/v1", "kind": "Job",
            "metadata": {"name": f"job-{i:05d}", "labels": {"shard": str(i % 10)}},
            "spec": {"suspend": True, "template": {"spec": {"restartPolicy": "Never", "containers": [
                {"name": "t", "image": "train:1", "resources": {"limits": {"nvidia.com/gpu": "1"}}}]}}}}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args()
    nodes, jobs = (100, 1000) if args.quick else (1000, 10000)
    server = SandboxServer(history=jobs * 2).start()
    t = time.perf_counter()
    add_nodes(server.store, f"{nodes}x8:NVIDIA-A100-SXM4-80GB")
    add_nodes_s = time.perf_counter() - t
    cfg = client.Configuration()
    cfg.host = server.url
    batch = client.BatchV1Api(client.ApiClient(cfg))
    core = client.CoreV1Api(client.ApiClient(cfg))
    t = time.perf_counter()
    for i in range(jobs):
        batch.create_namespaced_job("default", job(i))
    create_s = time.perf_counter() - t
    lists, selected, node_lists = [], [], []
    for _ in range(5):
        t = time.perf_counter()
        assert len(batch.list_namespaced_job("default").items) == jobs
        lists.append(time.perf_counter() - t)
        t = time.perf_counter()
        assert len(batch.list_namespaced_job("default", label_selector="shard=3").items) == jobs // 10
        selected.append(time.perf_counter() - t)
        t = time.perf_counter()
        assert len(core.list_node().items) == nodes
        node_lists.append(time.perf_counter() - t)
    raw = []
    import urllib.request
    for _ in range(5):  # the server's share: one HTTP GET and json.loads, no client models
        t = time.perf_counter()
        with urllib.request.urlopen(f"{server.url}/apis/batch/v1/namespaces/default/jobs") as resp:
            assert len(json.loads(resp.read())["items"]) == jobs
        raw.append(time.perf_counter() - t)
    rv = batch.list_namespaced_job("default", limit=1).metadata.resource_version
    latencies, sent = [], {}
    done = threading.Event()

    def watcher():
        for event in watch.Watch().stream(batch.list_namespaced_job, "default", resource_version=rv,
                                          timeout_seconds=60, _preload_content=True):
            name = event["object"].metadata.name
            if name in sent:
                latencies.append(time.perf_counter() - sent[name])
                if len(latencies) == 200:
                    done.set()
                    return

    thread = threading.Thread(target=watcher, daemon=True)
    thread.start()
    time.sleep(0.3)
    for i in range(200):
        name = f"watched-{i:03d}"
        body = job(i)
        body["metadata"]["name"] = name
        sent[name] = time.perf_counter()
        batch.create_namespaced_job("default", body)
        time.sleep(0.005)
    done.wait(30)
    server.stop()
    ms = lambda xs: round(statistics.median(xs) * 1000, 2)  # noqa: E731
    figures = {
        "nodes": nodes, "jobs": jobs, "add_nodes_s": round(add_nodes_s, 2),
        "creates_per_s": round(jobs / create_s), "list_all_jobs_ms_p50": ms(lists),
        "list_all_jobs_raw_http_ms_p50": ms(raw),
        "list_selected_tenth_ms_p50": ms(selected), "list_nodes_ms_p50": ms(node_lists),
        "watch_event_latency_ms_p50": ms(latencies),
        "watch_event_latency_ms_p99": round(sorted(latencies)[int(0.99 * (len(latencies) - 1))] * 1000, 2),
        "watch_events_received": len(latencies),
    }
    for k, v in figures.items():
        print(f"  {k:32s} {v}")
    thresholds.report("bench_sandbox", figures)
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
