"""A Local decision on the real control plane: the controller un-suspends the Job, the real
kube-scheduler binds its pods where the decision said, and the real Job controller completes it."""

from __future__ import annotations

import threading

from policies import constants as C
from scheduler.controller import Controller, Settings
from tests.builders import policy
from tests.real.conftest import PRODUCT, wait_for

IMAGE = "123456789012.dkr.ecr.us-east-1.amazonaws.com/train:1"


def job_manifest(name: str, namespace: str, *, gpus: int = 8, parallelism: int = 1, run_seconds: int = 120,
                 **ann: str) -> dict:
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


def run_controller(plane, stop: threading.Event, **spec) -> Controller:
    ctl = Controller(plane.kube, policy(**spec), clock=__import__("time").time,
                     settings=Settings(min_requeue_seconds=0.5, burst_poll_seconds=1))
    threading.Thread(target=ctl.run, args=(stop,), daemon=True).start()
    return ctl


def job_status(plane, namespace: str, name: str) -> dict:
    return plane.kube.get_job(namespace, name)


def completed(plane, namespace: str, name: str) -> dict | None:
    job = job_status(plane, namespace, name)
    return job if condition(job, "Complete") else None


def condition(job: dict, kind: str) -> bool:
    return any(c.get("type") == kind and c.get("status") == "True" for c in (job.get("status") or {}).get("conditions") or [])


def test_a_suspended_job_that_fits_is_unsuspended_bound_by_the_real_scheduler_and_completed(plane, namespace,
                                                                                          stop_event):
    plane.kube.batch.create_namespaced_job(namespace, job_manifest("fits", namespace))
    run_controller(plane, stop_event)
    job = wait_for(lambda: completed(plane, namespace, "fits"), timeout=90, what="the Job to complete")
    ann = job["metadata"]["annotations"]
    assert ann[C.DECISION_PLACEMENT] == "Local" and ann[C.DECISION_REASON] == "LocalCapacityAvailable"
    assert job["status"]["succeeded"] == 1
    [pod] = plane.kube.list_pods(f"metadata.namespace={namespace}")
    assert pod["spec"]["nodeName"] == ann[C.LOCAL_NODES].split("=")[0], "the pod runs where the decision said"
    assert pod["status"]["phase"] == "Succeeded"
