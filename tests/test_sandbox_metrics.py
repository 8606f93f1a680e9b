"""A real Prometheus scrapes the sandbox's DCGM and kube-state-metrics series and answers the
PromQL the controller will use (Debian's prometheus, started here on loopback)."""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import time

import pytest
import yaml
from kubernetes import client
from prometheus_api_client import PrometheusConnect
from prometheus_client.parser import text_string_to_metric_families

from sim.sandbox.apiserver import SandboxServer
from sim.sandbox.machinery import Machinery, add_nodes
from sim.sandbox.metrics import MetricStyle, render

PROMETHEUS = shutil.which("prometheus")
needs_prometheus = pytest.mark.skipif(
    PROMETHEUS is None and not os.environ.get("CI"),
    reason="install Debian's prometheus (CI does: .ci/run) to run the PromQL tests")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def busy_job(name, gpus, ns="default", util="90"):
    return {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": name},
            "spec": {"template": {"metadata": {"annotations": {"sandbox.spillway.io/run-seconds": "3600",
                                                                "sandbox.spillway.io/gpu-util": util}},
                                  "spec": {"restartPolicy": "Never", "containers": [
                                      {"name": "trainer", "image": "i",
                                       "resources": {"limits": {"nvidia.com/gpu": str(gpus)}}}]}}}}


@pytest.fixture
def busy_cluster():
    server = SandboxServer().start()
    add_nodes(server.store, "2x8:NVIDIA-A100-SXM4-80GB")
    machinery = Machinery(server.store, time_scale=1.0).start()
    cfg = client.Configuration()
    cfg.host = server.url
    batch = client.BatchV1Api(client.ApiClient(cfg))
    batch.create_namespaced_job("default", busy_job("a", 8, util="90"))
    batch.create_namespaced_job("default", busy_job("b", 4, util="60"))
    deadline = time.monotonic() + 10
    while sum(s.value == 1 and s.labels["phase"] == "Running"
              for s in samples(render(server.store), "kube_pod_status_phase")) < 2:
        assert time.monotonic() < deadline, "pods did not start"
        time.sleep(0.05)
    yield server
    machinery.stop()
    server.stop()


def samples(text: str, name: str) -> list:
    """The samples of one family, parsed back with prometheus-client's own parser."""
    return [sample for family in text_string_to_metric_families(text) for sample in family.samples
            if sample.name == name]


def test_exposition_uses_the_real_names_and_label_spellings(busy_cluster):
    text = render(busy_cluster.store)
    util = samples(text, "DCGM_FI_DEV_GPU_UTIL")
    first = next(s for s in util if s.labels["gpu"] == "0" and s.labels["Hostname"] == "gpu-node-000")
    assert first.labels["modelName"] == "NVIDIA A100 SXM4 80GB" and first.labels["DCGM_FI_DRIVER_VERSION"]
    [allocatable] = [s for s in samples(text, "kube_node_status_allocatable") if s.labels["node"] == "gpu-node-000"]
    assert allocatable.labels == {"node": "gpu-node-000", "resource": "nvidia_com_gpu", "unit": "integer"}
    assert allocatable.value == 8
    busy = [s for s in util if "pod" in s.labels]
    assert len(busy) == 12 and all(s.labels["namespace"] == "default" for s in busy)
    idle = [s for s in util if "pod" not in s.labels]
    assert len(idle) == 4 and all(s.value == 0 for s in idle)
    both = samples(render(busy_cluster.store, MetricStyle("both", exported=True)), "DCGM_FI_DEV_GPU_UTIL")
    assert all(s.labels["hostname"] == s.labels["Hostname"] for s in both)
    exported = [s for s in both if "exported_pod" in s.labels]
    assert len(exported) == 12 and not any("pod" in s.labels for s in both)


@contextlib.contextmanager
def real_prometheus(target: str, tmp_path):
    """Debian's prometheus on a free loopback port, scraping `target` every second; yields a client
    once the first scrape is queryable (~5 s: Prometheus batches target discovery)."""
    assert PROMETHEUS, "CI must install Debian's prometheus"
    port = free_port()
    (tmp_path / "prometheus.yml").write_text(yaml.safe_dump({
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "scrape_configs": [{"job_name": "sandbox", "honor_labels": True, "static_configs": [{"targets": [target]}]}],
    }))
    proc = subprocess.Popen([PROMETHEUS, f"--config.file={tmp_path / 'prometheus.yml'}",
                             f"--storage.tsdb.path={tmp_path / 'data'}", f"--web.listen-address=127.0.0.1:{port}"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        prom = PrometheusConnect(url=f"http://127.0.0.1:{port}", disable_ssl=True)
        deadline = time.monotonic() + 30
        while True:
            try:
                if prom.custom_query("count(DCGM_FI_DEV_GPU_UTIL)"):
                    break
            except Exception:  # noqa: BLE001 - not listening yet
                pass
            assert time.monotonic() < deadline, "Prometheus never scraped the sandbox"
            time.sleep(0.2)
        yield prom
    finally:
        proc.terminate()
        proc.wait(10)


@needs_prometheus
def test_a_real_prometheus_answers_the_controllers_promql(busy_cluster, tmp_path):
    with real_prometheus(busy_cluster.url.removeprefix("http://"), tmp_path) as prom:
        value = lambda q: float(prom.custom_query(q)[0]["value"][1])  # noqa: E731
        free = ('sum(kube_node_status_allocatable{resource="nvidia_com_gpu"}) - '
                'sum(kube_pod_container_resource_requests{resource="nvidia_com_gpu",node!=""})')
        assert value(free) == 4
        assert value("avg(DCGM_FI_DEV_GPU_UTIL)") == pytest.approx((8 * 90 + 4 * 60) / 16)
        per_node = prom.custom_query(
            # accepts both spellings of the host label (dcgm-exporter renamed Hostname to hostname)
            'avg by (node) (label_replace(DCGM_FI_DEV_GPU_UTIL{Hostname!=""}, "node", "$1", "Hostname", "(.+)") '
            'or label_replace(DCGM_FI_DEV_GPU_UTIL{hostname!=""}, "node", "$1", "hostname", "(.+)"))')
        assert {r["metric"]["node"]: float(r["value"][1]) for r in per_node} == {
            "gpu-node-000": 90.0, "gpu-node-001": 30.0}
        by_ns = prom.custom_query('sum by (namespace) (DCGM_FI_DEV_GPU_UTIL{pod!=""} > bool 0)')
        assert {r["metric"]["namespace"]: float(r["value"][1]) for r in by_ns} == {"default": 12.0}
        assert value('sum(kube_job_status_active{job_name=~"a|b"})') == 2
        assert value("avg(avg_over_time(DCGM_FI_DEV_GPU_UTIL[10m]))") == pytest.approx(60.0)  # the hot window
