"""Kueue v0.17, built from its module, on the real plane: a Job that names a LocalQueue is
suspended by Kueue's webhook at creation, admitted against the ClusterQueue's GPU quota, and run
by the real Job controller and scheduler to completion."""

from __future__ import annotations

from pathlib import Path

from policies import constants as C
from scheduler.kueue import CONTROLLER_NAME
from sim.control_plane.plane import kubectl
from tests.real.conftest import (PRODUCT, annotation, job_if, job_manifest, sagemaker_adapter,
                                 start_controller, wait_for)

ROOT = Path(__file__).resolve().parents[2]

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


def burst_queue_manifests(namespace: str) -> str:
    """deploy/kueue's shape, named for this test: the cluster's 8 GPUs, then SageMaker behind
    Spillway's admission check."""
    return f"""
apiVersion: kueue.x-k8s.io/v1beta2
kind: ResourceFlavor
metadata: {{name: local-{namespace}}}
spec: {{nodeLabels: {{{C.GPU_PRODUCT_LABEL}: {PRODUCT}}}}}
---
apiVersion: kueue.x-k8s.io/v1beta2
kind: ResourceFlavor
metadata: {{name: sagemaker-{namespace}}}
spec:
  nodeLabels: {{{C.VIRTUAL_NODE_LABEL}: "true"}}
  tolerations: [{{key: {C.VIRTUAL_NODE_TAINT}, operator: Exists, effect: NoSchedule}}]
---
apiVersion: kueue.x-k8s.io/v1beta2
kind: AdmissionCheck
metadata: {{name: spillway-{namespace}}}
spec: {{controllerName: {CONTROLLER_NAME}}}
---
apiVersion: kueue.x-k8s.io/v1beta2
kind: ClusterQueue
metadata: {{name: cq-{namespace}}}
spec:
  namespaceSelector: {{}}
  resourceGroups:
  - coveredResources: [cpu, memory, nvidia.com/gpu]
    flavors:
    - name: local-{namespace}
      resources:
      - {{name: cpu, nominalQuota: 100}}
      - {{name: memory, nominalQuota: 1Ti}}
      - {{name: nvidia.com/gpu, nominalQuota: 8}}
    - name: sagemaker-{namespace}
      resources:
      - {{name: cpu, nominalQuota: 100}}
      - {{name: memory, nominalQuota: 1Ti}}
      - {{name: nvidia.com/gpu, nominalQuota: 64}}
  admissionChecksStrategy:
    admissionChecks:
    - {{name: spillway-{namespace}, onFlavors: [sagemaker-{namespace}]}}
---
apiVersion: kueue.x-k8s.io/v1beta2
kind: LocalQueue
metadata: {{name: lq, namespace: {namespace}}}
spec: {{clusterQueue: cq-{namespace}}}
"""


def queued_job(name: str, namespace: str, parallelism: int = 1, run_seconds: int = 600, **ann: str) -> dict:
    """A Job for Kueue: its GPU model comes from the flavor, so it has no node selector of its own."""
    job = job_manifest(name, namespace, gpus=8, parallelism=parallelism, run_seconds=run_seconds, **ann)
    job["spec"]["suspend"] = False
    job["metadata"]["labels"] = {QUEUE_LABEL: "lq"}
    spec = job["spec"]["template"]["spec"]
    spec.pop("nodeSelector")
    spec["containers"][0]["resources"]["requests"] = {"cpu": "1", "memory": "1Gi"}
    return job


def test_spillway_is_kueues_admission_check_for_the_sagemaker_flavor(plane, namespace, controller_kube,
                                                                     stop_event, sagemaker):
    kubectl(plane.plane.kubeconfig, "apply", "-f", str(ROOT / "deploy" / "kueue" / "rbac.yaml"))
    kubectl(plane.plane.kubeconfig, "apply", "-f", "-", stdin=burst_queue_manifests(namespace))
    try:
        start_controller(controller_kube, stop_event, sagemaker=sagemaker_adapter(sagemaker),
                         sageMaker={"emit": "api"})
        pinned = {C.INSTANCE_TYPE: "ml.p4d.24xlarge", C.RUNTIME_ESTIMATE: "30m"}
        # The cluster's 8 GPUs are taken (for long) by the first Job, admitted there without the check.
        plane.kube._call(plane.kube.batch.create_namespaced_job, namespace,
                         queued_job("first", namespace, run_seconds=10**6, **pinned))
        wait_for(lambda: [p for p in plane.kube.list_pods() if p["metadata"]["namespace"] == namespace
                          and p["status"].get("phase") == "Running"], timeout=60, what="the first Job to run")
        plane.kube._call(plane.kube.batch.create_namespaced_job, namespace,
                         queued_job("second", namespace, **pinned, **{C.MODE: "cloud"}))
        plane.kube._call(plane.kube.batch.create_namespaced_job, namespace,
                         queued_job("never", namespace, parallelism=2,  # 16 GPUs: more than the cluster's flavor
                                    **{C.MODE: "cloud", C.RUNTIME_ESTIMATE: "30m", C.ROLE_ARN: "arn:aws:iam::1:role/x"}))
        wait_for(lambda: job_if(plane.kube, namespace, "second", "Complete"), timeout=120,
                 what="Kueue to admit the second Job on SageMaker once Spillway said Ready, and it to complete")
        pods = {p["metadata"]["labels"]["job-name"]: p["spec"]["nodeName"] for p in plane.kube.list_pods()
                if p["metadata"]["namespace"] == namespace}
        assert pods["first"] != C.VIRTUAL_NODE_NAME, "the cluster's flavor first, without Spillway's check"
        assert pods["second"] == C.VIRTUAL_NODE_NAME, "admitted on the sagemaker flavor once Spillway said Ready"
        ann = plane.kube.get_job(namespace, "second")["metadata"]["annotations"]
        assert ann[C.SAGEMAKER_STATUS].startswith("Completed") and float(ann[C.COST_USD]) > 0
        checks = plane.kube.custom.list_cluster_custom_object("kueue.x-k8s.io", "v1beta2", "admissionchecks")
        [check] = [c for c in checks["items"] if c["metadata"]["name"] == f"spillway-{namespace}"]
        assert any(c["type"] == "Active" and c["status"] == "True" for c in check["status"]["conditions"])

        def deactivated() -> dict | None:
            # Rejected: Kueue deactivates the Workload (and, evicting it, resets the checks' states).
            for wl in plane.kube.custom.list_namespaced_custom_object("kueue.x-k8s.io", "v1beta2", namespace,
                                                                       "workloads")["items"]:
                if wl["metadata"]["ownerReferences"][0]["name"] == "never" and wl["spec"].get("active") is False:
                    return wl
            return None

        never = wait_for(deactivated, timeout=60, what="Kueue to deactivate a Job that must burst and may not")
        said = " ".join(c.get("message", "") for c in never["status"].get("conditions") or [])
        assert "BurstNotAllowed" in said or "spillway" in said, said
        assert annotation(plane.kube, namespace, "never", C.DECISION_REASON) == "BurstNotAllowed"
    finally:
        for kind, name in (("clusterqueue", f"cq-{namespace}"), ("admissioncheck", f"spillway-{namespace}"),
                           ("resourceflavor", f"local-{namespace}"), ("resourceflavor", f"sagemaker-{namespace}")):
            kubectl(plane.plane.kubeconfig, "delete", "--wait=false", kind, name, check=False)
