"""The controller as deploy/ runs it: the spillway-controller ServiceAccount's token under
deploy/'s RBAC, judged by the real RBAC authorizer; and two replicas over a real Lease."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from policies import constants as C
from scheduler.kube import KubeError
from tests.builders import BUCKET, ROLE
from tests.real.conftest import job_manifest, wait_for
from tests.real.test_bursts import CLOUD, training_jobs

SMALL = {**CLOUD, C.RUNTIME_ESTIMATE: "1h"}  # within the embedded default budget


@pytest.mark.parametrize("call", ["read a Secret", "delete a Node", "create a Pod", "create a Job"])
def test_a_call_outside_the_rbac_is_refused(plane, controller_kube, call):
    kube = controller_kube
    attempt = {
        "read a Secret": lambda: kube._call(kube.core.list_secret_for_all_namespaces),
        "delete a Node": lambda: kube._call(kube.core.delete_node, plane.kubelet.nodes[0].name),
        "create a Pod": lambda: kube._call(kube.core.create_namespaced_pod, "default", {
            "metadata": {"name": "nope"}, "spec": {"containers": [{"name": "c", "image": "busybox"}]}}),
        "create a Job": lambda: kube._call(kube.batch.create_namespaced_job, "default",
                                           job_manifest("nope", "default")),
    }[call]
    with pytest.raises(KubeError) as refused:
        attempt()
    assert refused.value.status == 403 and "system:serviceaccount:spillway-system:spillway-controller" in \
        refused.value.message


def test_of_two_replicas_only_the_leader_acts_and_a_killed_leader_is_replaced(plane, namespace,
                                                                              controller_kubeconfig, tmp_path):
    spillway = str(Path(sys.executable).parent / "spillway")
    policy_file = tmp_path / "policy.yaml"
    policy_file.write_text(yaml.safe_dump({"apiVersion": "spillway.io/v1alpha1", "kind": "BurstPolicy", "spec": {
        "allowlists": {"*": {"roleArns": [ROLE], "s3Prefixes": [BUCKET]}}, "sageMaker": {"emit": "ack"}}}))
    replicas = {name: subprocess.Popen(
        [spillway, "run", "--kubeconfig", str(controller_kubeconfig), "--policy", str(policy_file), "--no-sagemaker",
         "--lease-seconds", "3", "--identity", name, "--log-level", "WARNING", "--metrics-port", "-1"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True) for name in ("replica-a", "replica-b")}
    def holder() -> str | None:
        from kubernetes import client
        try:
            lease = client.CoordinationV1Api(plane.kube.api).read_namespaced_lease(C.LEASE_NAME, "spillway-system")
        except client.exceptions.ApiException:
            return None
        return lease.spec.holder_identity

    errors = ""
    try:
        first = wait_for(holder, timeout=30, what="a leader")
        plane.kube.batch.create_namespaced_job(namespace, job_manifest("one", namespace, **SMALL))
        wait_for(lambda: len(training_jobs(plane.kube, namespace)) == 1, what="the first burst")
        os.kill(replicas[first].pid, signal.SIGKILL)
        replicas[first].wait(timeout=10)
        plane.kube.batch.create_namespaced_job(namespace, job_manifest("two", namespace, **SMALL))
        wait_for(lambda: len(training_jobs(plane.kube, namespace)) == 2, what="the second burst, by the new leader")
        second = holder()
        assert second != first and second in replicas
        owners = sorted(cr["metadata"]["ownerReferences"][0]["name"] for cr in training_jobs(plane.kube, namespace))
        assert owners == ["one", "two"], "each burst created once, by whichever replica led"
    finally:
        for p in replicas.values():
            p.kill()
            p.wait(timeout=10)
        errors = "".join(p.stderr.read() for p in replicas.values() if p.stderr)
        print(errors)  # shown with a failure
    assert "403" not in errors and "Forbidden" not in errors, errors
