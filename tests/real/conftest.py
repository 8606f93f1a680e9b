"""The real-control-plane tier: one plane per test session (etcd, kube-apiserver,
kube-controller-manager, kube-scheduler built from upstream by `scripts/control-plane build`),
with GPU nodes run by the stand-in kubelet. Every test here is marked `real`; the default test
run leaves them out, and `python -m pytest -m real` runs them. Nothing here is skipped: with the
binaries missing, the plane's fixture fails and says how to build them.
"""

from __future__ import annotations

import itertools
import threading
import time
from pathlib import Path

import pytest

from policies import constants as C
from scheduler.controller import Controller, Settings
from scheduler.kube import Kube, KubeError, api_client
from sim.control_plane.plane import kubectl, write_kubeconfig
from sim.control_plane.setup import RunningPlane, start_plane
from tests import waiting
from tests.builders import policy

ROOT = Path(__file__).resolve().parents[2]
IMAGE = "123456789012.dkr.ecr.us-east-1.amazonaws.com/train:1"
DEPLOY_RBAC = [ROOT / "deploy/base" / f for f in ("namespace.yaml", "serviceaccount.yaml", "rbac.yaml")]

PRODUCT = "NVIDIA-A100-SXM4-80GB"
NODES = f"2x8:{PRODUCT}"
_names = itertools.count()


def pytest_collection_modifyitems(items):
    here = Path(__file__).parent
    for item in items:
        if here in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.real)


@pytest.fixture(scope="session")
def plane(tmp_path_factory) -> RunningPlane:
    folder = tmp_path_factory.mktemp("control-plane")
    # With Kueue, as clusters that queue batch work run it: its Job webhook sees every Job created.
    with start_plane(folder, nodes=NODES, kube_for=lambda path: Kube(api_client(str(path))),
                     time_scale=60.0, kueue=True) as running:
        yield running


@pytest.fixture
def namespace(plane) -> str:
    """A namespace of its own for each test, deleted after it."""
    name = f"t{next(_names)}-{int(time.time()) % 100000}"
    plane.kube.core.create_namespace({"metadata": {"name": name}})
    yield name
    plane.kube.core.delete_namespace(name)

    def gone() -> bool:
        # A pod on the virtual node goes once its agent (the controller) confirms; with the test's
        # controller stopped, nothing does, as for any node that is down: an admin force-deletes.
        for pod in plane.kube.list_pods(field_selector=f"spec.nodeName={C.VIRTUAL_NODE_NAME}"):
            if pod["metadata"]["namespace"] == name and pod["metadata"].get("deletionTimestamp"):
                plane.kube.delete_pod(name, pod["metadata"]["name"], grace_period_seconds=0)
        return name not in {n.metadata.name for n in plane.kube.core.list_namespace().items}

    # Gone, with its pods: the next test finds every GPU free.
    wait_for(gone, timeout=120, what=f"namespace {name} to be deleted")


def wait_for(check, timeout: float = 60.0, step: float = 0.1, what: str = "the condition"):
    """tests.waiting.wait_for, with the real plane's longer default timeout."""
    return waiting.wait_for(check, timeout, step, what)


@pytest.fixture
def stop_event():
    stop = threading.Event()
    yield stop
    stop.set()


@pytest.fixture(scope="session")
def controller_kubeconfig(plane, tmp_path_factory) -> Path:
    """The controller's identity as deploy/ makes it: the spillway-controller ServiceAccount under
    deploy/'s RBAC, with a token from the TokenRequest API; the real authorizer judges every call."""
    for f in DEPLOY_RBAC:
        kubectl(plane.plane.kubeconfig, "apply", "-f", str(f))
    token = kubectl(plane.plane.kubeconfig, "create", "token", "spillway-controller", "-n", "spillway-system",
                    "--duration=6h").stdout.strip()
    path = tmp_path_factory.mktemp("controller") / "controller.kubeconfig"
    assert plane.plane.pki is not None
    return write_kubeconfig(path, plane.plane.url, plane.plane.pki.ca_cert, token, user="spillway-controller")


@pytest.fixture
def controller_kube(controller_kubeconfig) -> Kube:
    return Kube(api_client(str(controller_kubeconfig)))


def job_manifest(name: str, namespace: str, *, gpus: int = 8, parallelism: int = 1, run_seconds: int = 120,
                 **ann: str) -> dict:
    """A suspended, annotated Job; its pods run run_seconds (virtual) on the stand-in kubelet."""
    spec = {"suspend": True, "backoffLimit": 0, "parallelism": parallelism, "completions": parallelism,
            "template": {"metadata": {"annotations": {"sandbox.spillway.io/run-seconds": str(run_seconds)}},
                         "spec": {"restartPolicy": "Never", "nodeSelector": {C.GPU_PRODUCT_LABEL: PRODUCT},
                                  "containers": [{"name": "trainer", "image": IMAGE, "resources": {
                                      "limits": {C.GPU_RESOURCE: str(gpus)}}}]}}}
    if parallelism > 1:
        spec["completionMode"] = "Indexed"
    return {"apiVersion": "batch/v1", "kind": "Job",
            "metadata": {"name": name, "namespace": namespace,
                         "annotations": {C.MODE: "auto", C.RUNTIME_ESTIMATE: "1h", **ann}},
            "spec": spec}


def start_controller(kube: Kube, stop: threading.Event, *, sagemaker=None, **spec) -> Controller:
    """The controller, running (watches and all) on a thread until stop is set."""
    ctl = Controller(kube, policy(**spec), sagemaker=sagemaker, clock=time.time,
                     settings=Settings(min_requeue_seconds=0.5, burst_poll_seconds=1))
    threading.Thread(target=ctl.run, args=(stop,), daemon=True, name="controller").start()
    return ctl


def condition(job: dict, kind: str) -> bool:
    return any(c.get("type") == kind and c.get("status") == "True"
               for c in (job.get("status") or {}).get("conditions") or [])


def job_if(kube: Kube, namespace: str, name: str, kind: str) -> dict | None:
    job = kube.get_job(namespace, name)
    return job if condition(job, kind) else None


def annotation(kube: Kube, namespace: str, name: str, key: str) -> str | None:
    return (kube.get_job(namespace, name)["metadata"].get("annotations") or {}).get(key)


@pytest.fixture(scope="module")
def sagemaker():
    """moto's SageMaker with the sandbox's life cycle, 600 times faster than real time."""
    from sim.sagemaker_lifecycle import SageMakerSandbox

    sm = SageMakerSandbox(time_scale=600, startup_seconds=30, restart_seconds=30).start()
    yield sm
    sm.stop()


def sagemaker_adapter(sagemaker):
    """The controller's SageMaker adapter on that SageMaker."""
    from scheduler.sagemaker import SageMaker

    return SageMaker("us-east-1", endpoint_url=sagemaker.endpoint_url, aws_access_key_id="sandbox",
                     aws_secret_access_key="sandbox")


def training_status(sagemaker, name: str) -> str | None:
    try:
        return sagemaker.client().describe_training_job(TrainingJobName=name)["TrainingJobStatus"]
    except sagemaker.client().exceptions.ClientError:
        return None


def job_gone(kube: Kube, namespace: str, name: str) -> bool:
    try:
        kube.get_job(namespace, name)
    except KubeError as exc:
        return exc.not_found
    return False
