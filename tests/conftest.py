"""Fixtures shared by the test modules: a sandbox cluster, the sandbox's SageMaker, and a busy
cluster for Prometheus to scrape. Helpers that are not fixtures live in tests/builders.py (the
core's inputs), tests/sandboxes.py (the controller's world) and tests/waiting.py."""

from __future__ import annotations

import time

import pytest
from kubernetes import client

from sim.sagemaker_lifecycle import SageMakerSandbox
from sim.sandbox.apiserver import SandboxServer
from sim.sandbox.machinery import Machinery, add_nodes
from sim.sandbox.metrics import render
from tests.sandboxes import PRODUCT, busy_job, samples


@pytest.fixture
def cluster():
    server = SandboxServer().start()
    add_nodes(server.store, f"1x8:{PRODUCT}")
    for ns in ("ml", "spillway-system"):
        server.store.create(server.store.type_for("", "v1", "namespaces"), "", {"metadata": {"name": ns}})
    yield server
    server.stop()


@pytest.fixture(scope="module")
def sagemaker():
    sm = SageMakerSandbox(time_scale=600, startup_seconds=30, restart_seconds=30).start()
    yield sm
    sm.stop()


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
