"""Bursts are ordinary Jobs, on the real control plane: the real Job controller, scheduler, node
lifecycle, TTL-after-finished and DaemonSet controllers act on the pods the controller runs on
the virtual node spillway-sagemaker, under deploy/'s RBAC; moto's SageMaker (with a life cycle)
runs the training jobs. What the sandbox has no controller for is tested here:
activeDeadlineSeconds and ttlSecondsAfterFinished."""

from __future__ import annotations

import json

import pytest

from policies import constants as C
from scheduler.kube import KubeError
from sim.control_plane.plane import kubectl
from tests.real.conftest import (annotation, condition, job_gone, job_manifest, sagemaker_adapter,
                                 start_controller, training_status, wait_for)

pytestmark = pytest.mark.real
CLOUD = {C.MODE: "cloud", C.CAPACITY_TYPE: "on-demand"}


@pytest.fixture
def running(controller_kube, stop_event, sagemaker):
    return start_controller(controller_kube, stop_event, sagemaker=sagemaker_adapter(sagemaker),
                            sageMaker={"emit": "api"})


def pods_of(plane, namespace: str, job: str) -> list[dict]:
    return [p for p in plane.kube.list_pods() if p["metadata"]["namespace"] == namespace
            and (p["metadata"].get("labels") or {}).get("job-name") == job]


def test_kubectl_wait_returns_for_a_burst_and_ttl_after_finished_removes_it(plane, namespace, running):
    job = job_manifest("burst", namespace, **CLOUD, **{C.RUNTIME_ESTIMATE: "10m"})
    job["spec"]["ttlSecondsAfterFinished"] = 5
    plane.kube.batch.create_namespaced_job(namespace, job)
    waited = kubectl(plane.plane.kubeconfig, "wait", "--for=condition=complete", "job/burst", "-n", namespace, "--timeout=90s",
                                 check=False)
    assert waited.returncode == 0, waited.stderr
    wide = kubectl(plane.plane.kubeconfig, "get", "pods", "-n", namespace, "-l", "job-name=burst", "-o", "wide").stdout
    assert C.VIRTUAL_NODE_NAME in wide and "Completed" in wide, wide
    ann = plane.kube.get_job(namespace, "burst")["metadata"]["annotations"]
    assert ann[C.SAGEMAKER_STATUS].startswith("Completed") and float(ann[C.COST_USD]) > 0

    wait_for(lambda: job_gone(plane.kube, namespace, "burst"), what="the TTL-after-finished controller to delete the finished burst")
    [burst] = [b for b in running.ledger.bursts.values() if b.job == f"{namespace}/burst"]
    assert burst.outcome.startswith("Completed"), "its deletion after the end stopped nothing"


def test_active_deadline_seconds_stops_the_training_job_and_fails_the_job(plane, namespace, running, sagemaker):
    job = job_manifest("late", namespace, **CLOUD, **{C.RUNTIME_ESTIMATE: "4h"})
    job["spec"]["activeDeadlineSeconds"] = 20
    plane.kube.batch.create_namespaced_job(namespace, job)
    name = wait_for(lambda: annotation(plane.kube, namespace, "late", C.SAGEMAKER_JOB_NAME), what="the burst")
    wait_for(lambda: training_status(sagemaker, name) == "InProgress", what="its training job to run")
    failed = wait_for(lambda: _if_failed(plane.kube.get_job(namespace, "late")),
                      what="the Job controller to fail the Job at its deadline")
    assert any(c["reason"] == "DeadlineExceeded" for c in failed["status"]["conditions"])
    wait_for(lambda: training_status(sagemaker, name) in ("Stopping", "Stopped"), what="the training job to stop")
    wait_for(lambda: not pods_of(plane, namespace, "late"), what="its pod to go, not hang in Terminating")
    [burst] = [b for b in running.ledger.bursts.values() if b.job == f"{namespace}/late"]
    assert burst.outcome == "Stopped/PodDeleted"


def test_a_failed_training_job_fails_the_job(plane, namespace, running, sagemaker):
    plane.kube.batch.create_namespaced_job(namespace, job_manifest("doomed", namespace, **CLOUD,
                                                                   **{C.RUNTIME_ESTIMATE: "4h"}))
    name = wait_for(lambda: annotation(plane.kube, namespace, "doomed", C.SAGEMAKER_JOB_NAME), what="the burst")
    wait_for(lambda: training_status(sagemaker, name) == "InProgress", what="its training job to run")
    sagemaker.fail(name, "AlgorithmError: CUDA out of memory")
    waited = kubectl(plane.plane.kubeconfig, "wait", "--for=condition=failed", "job/doomed", "-n", namespace, "--timeout=90s",
                                 check=False)
    assert waited.returncode == 0, waited.stderr
    [pod] = pods_of(plane, namespace, "doomed")
    assert pod["status"]["phase"] == "Failed" and "CUDA out of memory" in pod["status"]["message"]


def test_a_daemonset_pod_on_the_virtual_node_is_failed_never_run(plane, namespace, running):
    wait_for(lambda: _exists(plane, C.VIRTUAL_NODE_NAME), what="the virtual node")
    daemonset = {"apiVersion": "apps/v1", "kind": "DaemonSet", "metadata": {"name": "everywhere"},
                 "spec": {"selector": {"matchLabels": {"app": "everywhere"}}, "template": {
                     "metadata": {"labels": {"app": "everywhere"}},
                     "spec": {"tolerations": [{"operator": "Exists"}],  # every taint: the virtual node's too
                              "containers": [{"name": "agent", "image": "busybox"}]}}}}
    kubectl(plane.plane.kubeconfig, "apply", "-n", namespace, "-f", "-", stdin=json.dumps(daemonset))

    def refused() -> dict | None:
        for pod in plane.kube.list_pods(field_selector=f"spec.nodeName={C.VIRTUAL_NODE_NAME}"):
            if pod["metadata"]["namespace"] == namespace and (pod.get("status") or {}).get("phase") == "Failed":
                return pod
        return None

    pod = wait_for(refused, what="the DaemonSet's pod on the virtual node to be failed")
    assert pod["status"]["reason"] == "NotPlacedBySpillway"


def _exists(plane, node: str) -> bool:
    try:
        plane.kube.get_node(node)
    except KubeError:
        return False
    return True


def _if_failed(job: dict) -> dict | None:
    return job if condition(job, "Failed") else None


def test_kubectl_logs_of_a_burst_pod_reach_the_virtual_nodes_kubelet_api(plane, namespace, controller_kube,
                                                                          stop_event, sagemaker, tmp_path):
    """kube-apiserver proxies pods/log to the node's kubelet endpoint, as for any node: the
    controller's kubelet API answers with the training job's CloudWatch log."""
    from scheduler.kubelet_api import KubeletApi
    from sim.control_plane.pki import serving_pair

    adapter = sagemaker_adapter(sagemaker)
    ctl = start_controller(controller_kube, stop_event, sagemaker=adapter, sageMaker={"emit": "api"})
    cert, key = serving_pair(plane.plane.pki, "spillway-kubelet", ("127.0.0.1",))
    api = KubeletApi(ctl.jobs_of, adapter.job_log, str(cert), str(key), host="127.0.0.1",
                     port=0).start()
    try:
        ctl.virtual_node.endpoint = ("127.0.0.1", api.port)
        ctl.virtual_node.ensure()  # its status says where (the keeper would, within 10 s)
        plane.kube.batch.create_namespaced_job(namespace, job_manifest("logged", namespace, **CLOUD,
                                                                       **{C.RUNTIME_ESTIMATE: "10m"}))
        waited = kubectl(plane.plane.kubeconfig, "wait", "--for=condition=complete", "job/logged", "-n", namespace,
                         "--timeout=90s", check=False)
        assert waited.returncode == 0, waited.stderr
        logs = kubectl(plane.plane.kubeconfig, "logs", "job/logged", "-n", namespace, check=False)
        assert logs.returncode == 0, logs.stderr
        name = annotation(plane.kube, namespace, "logged", C.SAGEMAKER_JOB_NAME)
        assert logs.stdout.startswith(f"==> SageMaker training job {name} (training job 1 of 1) <==\n")
        assert "Completed: Training job completed" in logs.stdout
    finally:
        api.shutdown()
