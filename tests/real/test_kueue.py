"""Kueue v0.17, built from its module, on the real plane: a Job that names a LocalQueue is
suspended by Kueue's webhook at creation, admitted against the ClusterQueue's GPU quota, and run
by the real Job controller and scheduler to completion."""

from __future__ import annotations

from sim.control_plane.plane import kubectl
from tests.real.conftest import job_if, job_manifest, wait_for

QUEUE_LABEL = "kueue.x-k8s.io/queue-name"


def queue_manifests(namespace: str) -> str:
    return f"""
apiVersion: kueue.x-k8s.io/v1beta2
kind: ResourceFlavor
metadata: {{name: gpu-{namespace}}}
---
apiVersion: kueue.x-k8s.io/v1beta2
kind: ClusterQueue
metadata: {{name: cq-{namespace}}}
spec:
  namespaceSelector: {{}}
  resourceGroups:
  - coveredResources: [cpu, memory, nvidia.com/gpu]
    flavors:
    - name: gpu-{namespace}
      resources:
      - {{name: cpu, nominalQuota: 100}}
      - {{name: memory, nominalQuota: 1Ti}}
      - {{name: nvidia.com/gpu, nominalQuota: 8}}
---
apiVersion: kueue.x-k8s.io/v1beta2
kind: LocalQueue
metadata: {{name: lq, namespace: {namespace}}}
spec: {{clusterQueue: cq-{namespace}}}
"""


def test_kueue_suspends_admits_and_runs_a_queued_job(plane, namespace):
    kubectl(plane.plane.kubeconfig, "apply", "-f", "-", stdin=queue_manifests(namespace))
    try:
        job = job_manifest("queued", namespace, gpus=4)
        job["spec"]["suspend"] = False  # Kueue's webhook suspends it: the user does not
        job["metadata"]["annotations"] = {}  # not Spillway's
        job["metadata"]["labels"] = {QUEUE_LABEL: "lq"}
        job["spec"]["template"]["spec"]["containers"][0]["resources"]["requests"] = {"cpu": "1", "memory": "1Gi"}
        created = plane.kube._call(plane.kube.batch.create_namespaced_job, namespace, job)
        assert created["spec"]["suspend"] is True, "Kueue's mutating webhook suspended it at creation"
        done = wait_for(lambda: job_if(plane.kube, namespace, "queued", "Complete"), timeout=120,
                        what="Kueue to admit the Job and the Job to complete")
        assert done["status"]["succeeded"] == 1
        workloads = plane.kube.custom.list_namespaced_custom_object("kueue.x-k8s.io", "v1beta2", namespace, "workloads")
        [workload] = workloads["items"]
        kinds = {c["type"] for c in workload["status"]["conditions"] if c["status"] == "True"}
        assert {"QuotaReserved", "Admitted", "Finished"} <= kinds, kinds
    finally:
        kubectl(plane.plane.kubeconfig, "delete", "--wait=false", "clusterqueue", f"cq-{namespace}", check=False)
        kubectl(plane.plane.kubeconfig, "delete", "--wait=false", "resourceflavor", f"gpu-{namespace}", check=False)
