"""A Local decision on the real control plane: the controller un-suspends the Job, the real
kube-scheduler binds its pods where the decision said, and the real Job controller completes it."""

from __future__ import annotations

from policies import constants as C
from tests.real.conftest import job_if, job_manifest, start_controller, wait_for


def test_a_suspended_job_that_fits_is_unsuspended_bound_by_the_real_scheduler_and_completed(
        plane, namespace, controller_kube, stop_event):
    plane.kube.batch.create_namespaced_job(namespace, job_manifest("fits", namespace))
    start_controller(controller_kube, stop_event)
    job = wait_for(lambda: job_if(plane.kube, namespace, "fits", "Complete"), timeout=90, what="the Job to complete")
    ann = job["metadata"]["annotations"]
    assert ann[C.DECISION_PLACEMENT] == "Local" and ann[C.DECISION_REASON] == "LocalCapacityAvailable"
    assert job["status"]["succeeded"] == 1
    [pod] = plane.kube.list_pods(f"metadata.namespace={namespace}")
    assert pod["spec"]["nodeName"] == ann[C.LOCAL_NODES].split("=")[0], "the pod runs where the decision said"
    assert pod["status"]["phase"] == "Succeeded"


def test_a_gang_and_a_job_placed_together_bind_where_the_core_put_them(plane, namespace, controller_kube,
                                                                      stop_event):
    """Without the pin, kube-scheduler's default scoring (least allocated) spreads the gang's two
    4-GPU pods over both nodes, and the 8-GPU Job the core placed beside it never binds."""
    plane.kube.batch.create_namespaced_job(namespace, job_manifest("gang", namespace, gpus=4, parallelism=2))
    plane.kube.batch.create_namespaced_job(namespace, job_manifest("whole", namespace, gpus=8))
    start_controller(controller_kube, stop_event)
    done = {name: wait_for(lambda n=name: job_if(plane.kube, namespace, n, "Complete"), timeout=120,
                           what=f"{name} to complete") for name in ("gang", "whole")}
    where = {name: dict(part.split("=") for part in job["metadata"]["annotations"][C.LOCAL_NODES].split(","))
             for name, job in done.items()}
    assert len(where["gang"]) == 1 and where["gang"] != where["whole"], where
    for pod in plane.kube.list_pods(f"metadata.namespace={namespace}"):
        owner = pod["metadata"]["labels"]["job-name"]
        assert pod["spec"]["nodeName"] in where[owner], (owner, pod["spec"]["nodeName"], where)
