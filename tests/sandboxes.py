"""What tests run the controller against: the sandbox cluster and its Jobs, the controller on it,
and a real Prometheus scraping it. The fixtures that start them are in tests/conftest.py."""

from __future__ import annotations

import base64
import contextlib
import json
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import yaml
from kubernetes import client
from prometheus_api_client import PrometheusConnect
from prometheus_client.parser import text_string_to_metric_families

from policies import constants as C
from scheduler.controller import Controller, Settings
from scheduler.kube import Kube, api_client
from scheduler.kubelet_api import KubeletApi
from scheduler.run_cli import webhook_reads
from scheduler.sagemaker import SageMaker
from scheduler.webhook import WebhookServer
from sim.control_plane.pki import make_pki, serving_pair
from sim.sagemaker_lifecycle import SageMakerSandbox
from sim.sandbox.apiserver import SandboxServer
from sim.sandbox.machinery import Machinery, add_nodes
from tests.builders import policy, webhook_configs

IMAGE = "123456789012.dkr.ecr.us-east-1.amazonaws.com/train:1"
PRODUCT = "NVIDIA-A100-SXM4-80GB"
SUSPENDED = {"burstAs": "suspendedJob"}
KUBECTL = Path(sys.executable).parent / "kubectl"


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


class Cluster:
    """A sandbox with Spillway running on it, and kubectl pointed at it."""

    def __init__(self, tmp_path: Path, sagemaker: SageMakerSandbox, **spec):
        self.server = SandboxServer().start()
        store = self.server.store
        add_nodes(store, f"1x8:{PRODUCT}")
        for ns in ("ml", "spillway-system"):
            store.create(store.type_for("", "v1", "namespaces"), "", {"metadata": {"name": ns}})
        self.machinery = Machinery(store, time_scale=600).start()
        self.sagemaker = sagemaker
        self.config = self.server.kubeconfig(tmp_path / "kubeconfig")
        self.policy = policy(**{"sageMaker": {"emit": "api"}, **spec})
        pki = make_pki(tmp_path / "pki")
        cert, key = serving_pair(pki, "webhook", ("127.0.0.1",))
        # It reads the cluster as `spillway run` wires it (a Bayesian sweep's Job and finished pods).
        self.webhook = WebhookServer(self.policy, str(cert), str(key), host="127.0.0.1", port=0,
                                     **webhook_reads(Kube(api_client(host=self.server.url)))).start()
        ca = base64.b64encode(pki.ca_cert.read_bytes()).decode()
        self.kubectl_ok("apply", "-f", "-", stdin=yaml.safe_dump_all(
            webhook_configs(f"https://127.0.0.1:{self.webhook.port}", ca)))
        adapter = SageMaker("us-east-1", endpoint_url=sagemaker.endpoint_url, aws_access_key_id="sandbox",
                            aws_secret_access_key="sandbox")
        self.controller = Controller(Kube(api_client(host=self.server.url)), self.policy, sagemaker=adapter,
                                     settings=Settings(burst_poll_seconds=0, min_requeue_seconds=0.2))
        cert, key = serving_pair(pki, "kubelet", ("127.0.0.1",))  # the virtual node's, for kubectl logs
        self.kubelet_api = KubeletApi(self.controller.jobs_of, adapter.job_log, str(cert), str(key),
                                      host="127.0.0.1", port=0).start()
        self.controller.virtual_node.endpoint = ("127.0.0.1", self.kubelet_api.port)
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.controller.run, args=(self.stop,), daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.stop.set()
        self.thread.join(timeout=10)
        self.webhook.shutdown()
        self.kubelet_api.shutdown()
        self.machinery.stop()
        self.server.stop()

    def kubectl(self, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
        return subprocess.run([str(KUBECTL), "--kubeconfig", str(self.config), *args], input=stdin,
                              capture_output=True, text=True, timeout=120)

    def kubectl_ok(self, *args: str, stdin: str | None = None) -> str:
        done = self.kubectl(*args, stdin=stdin)
        assert done.returncode == 0, done.stderr
        return done.stdout

    def apply(self, job: dict) -> None:
        self.kubectl_ok("apply", "-f", "-", stdin=yaml.safe_dump(job))

    def job(self, name: str) -> dict:
        return json.loads(self.kubectl_ok("get", "job", name, "-n", "ml", "-o", "json"))

    def pods(self, name: str) -> list[dict]:
        return json.loads(self.kubectl_ok("get", "pods", "-n", "ml", "-l", f"job-name={name}", "-o", "json"))["items"]

    def training_job(self, name: str) -> dict:
        return self.sagemaker.client().describe_training_job(TrainingJobName=name)
