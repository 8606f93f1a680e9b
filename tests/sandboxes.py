"""What tests run the controller against: the sandbox cluster and its Jobs, the controller on it,
and a real Prometheus scraping it. The fixtures that start them are in tests/conftest.py."""

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

from policies import constants as C
from scheduler.controller import Controller, Settings
from scheduler.kube import Kube, api_client
from tests.builders import policy

IMAGE = "123456789012.dkr.ecr.us-east-1.amazonaws.com/train:1"
PRODUCT = "NVIDIA-A100-SXM4-80GB"
SUSPENDED = {"burstAs": "suspendedJob"}


def kube_of(server) -> Kube:
    return Kube(api_client(host=server.url))


def manifest(name: str, gpus: int = 8, command: list[str] | None = None, run_seconds: int = 600, **ann: str) -> dict:
    container = {"name": "trainer", "image": IMAGE, "resources": {"limits": {"nvidia.com/gpu": str(gpus)}}}
    if command:
        container["command"] = command
    return {"apiVersion": "batch/v1", "kind": "Job",
            "metadata": {"name": name, "namespace": "ml", "annotations": {
                C.MODE: "auto", C.RUNTIME_ESTIMATE: "1h", **ann}},
            "spec": {"suspend": True, "backoffLimit": 0, "template": {
                "metadata": {"annotations": {"sandbox.spillway.io/run-seconds": str(run_seconds)}},
                "spec": {"restartPolicy": "Never", "nodeSelector": {C.GPU_PRODUCT_LABEL: PRODUCT},
                         "containers": [container]}}}}


def create(server, m: dict) -> dict:
    return client.BatchV1Api(api_client(host=server.url)).create_namespaced_job("ml", m).to_dict()


def controller(server, *, emit="ack", sm=None, **spec) -> Controller:
    p = policy(sageMaker={"emit": emit, **SUSPENDED}, **spec)
    return Controller(kube_of(server), p, sagemaker=sm, settings=Settings(burst_poll_seconds=0), clock=time.time)


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


def samples(text: str, name: str) -> list:
    """The samples of one family, parsed back with prometheus-client's own parser."""
    return [sample for family in text_string_to_metric_families(text) for sample in family.samples
            if sample.name == name]


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
