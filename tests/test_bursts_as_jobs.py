"""Bursts are ordinary Jobs (spec.sageMaker.burstAs: virtualNode), on the sandbox: its Job
controller, scheduler and admission webhooks, Spillway's controller and webhook, and moto's
SageMaker with a life cycle. kubectl sees a burst run on the virtual node spillway-sagemaker
and finish as its training job does (tests/real/test_bursts_as_jobs.py: the same on the real
control plane, with what only it has: activeDeadlineSeconds and ttlSecondsAfterFinished)."""

from __future__ import annotations

import json

import pytest
import yaml

from policies import constants as C
from scheduler.cli import main
from tests.sandboxes import IMAGE, PRODUCT, Cluster
from tests.waiting import wait_for



@pytest.fixture
def cluster(tmp_path, sagemaker):
    made = Cluster(tmp_path, sagemaker)
    yield made
    made.close()


def burst_job(name: str, runtime: str = "10m", backoff_limit: int = 0, **ann: str) -> dict:
    """A Job that opts in and must burst, written as users write it: without suspend."""
    return {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": name, "namespace": "ml", "annotations": {
        C.MODE: "cloud", C.CAPACITY_TYPE: "on-demand", C.RUNTIME_ESTIMATE: runtime, **ann}},
        "spec": {"backoffLimit": backoff_limit, "template": {"spec": {
            "restartPolicy": "Never", "nodeSelector": {C.GPU_PRODUCT_LABEL: PRODUCT},
            "containers": [{"name": "trainer", "image": IMAGE, "resources": {"limits": {C.GPU_RESOURCE: "8"}}}]}}}}


def test_a_burst_runs_on_the_virtual_node_and_kubectl_wait_sees_it_complete(cluster):
    done = cluster.kubectl("apply", "-f", "-", stdin=yaml.safe_dump(burst_job("burst")))
    assert done.returncode == 0 and "created suspended" in done.stderr, done.stderr
    waited = cluster.kubectl("wait", "--for=condition=complete", "job/burst", "-n", "ml", "--timeout=60s")
    assert waited.returncode == 0, waited.stderr
    job = cluster.job("burst")
    ann = job["metadata"]["annotations"]
    assert ann[C.DECISION_PLACEMENT] == "SageMakerOnDemand" and ann[C.SAGEMAKER_STATUS].startswith("Completed")
    assert float(ann[C.COST_USD]) > 0
    assert cluster.training_job(ann[C.SAGEMAKER_JOB_NAME])["TrainingJobStatus"] == "Completed"
    wide = cluster.kubectl_ok("get", "pods", "-n", "ml", "-l", "job-name=burst", "-o", "wide")
    assert C.VIRTUAL_NODE_NAME in wide and "Completed" in wide, wide
    [pod] = cluster.pods("burst")
    assert pod["status"]["phase"] == "Succeeded"
    [container] = pod["status"]["containerStatuses"]
    assert container["state"]["terminated"]["exitCode"] == 0
    template = job["spec"]["template"]["spec"]
    assert template["nodeSelector"] == {C.VIRTUAL_NODE_LABEL: "true"}, "the local GPU product label went"
    node = json.loads(cluster.kubectl_ok("get", "node", C.VIRTUAL_NODE_NAME, "-o", "json"))
    assert {"key": C.VIRTUAL_NODE_TAINT, "value": "true", "effect": "NoSchedule"} in node["spec"]["taints"]


def test_spillway_logs_and_kubectl_logs_print_a_bursts_training_log(cluster, capsys,
                                                                                      monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "sandbox")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "sandbox")
    cluster.apply(burst_job("logged"))
    waited = cluster.kubectl("wait", "--for=condition=complete", "job/logged", "-n", "ml", "--timeout=60s")
    assert waited.returncode == 0, waited.stderr
    name = cluster.job("logged")["metadata"]["annotations"][C.SAGEMAKER_JOB_NAME]
    common = ["-n", "ml", "--kubeconfig", str(cluster.config), "--sagemaker-endpoint-url",
              cluster.sagemaker.endpoint_url]
    assert main(["logs", "logged", *common]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"==> SageMaker training job {name} (training job 1 of 1) <==")
    assert "Training: " in out and "Completed: Training job completed" in out
    logs = cluster.kubectl_ok("logs", "job/logged", "-n", "ml")  # through the API server, to the node's agent
    assert logs == out, "kubectl logs of the burst's pod shows what spillway logs does"
    assert cluster.kubectl_ok("logs", "job/logged", "-n", "ml", "--tail=1") == "[sandbox] Completed: Training job completed\n"
    local = burst_job("stays")
    local["metadata"]["annotations"][C.MODE] = "local"
    cluster.apply(local)
    assert main(["logs", "stays", *common]) == 1
    err = capsys.readouterr().err
    assert "ml/stays" in err and "has not burst to SageMaker" in err and "kubectl logs job/stays" in err


def test_a_failed_training_job_fails_the_job_with_sagemakers_reason(cluster):
    cluster.apply(burst_job("doomed", runtime="2h"))
    name = wait_for(lambda: cluster.job("doomed")["metadata"]["annotations"].get(C.SAGEMAKER_JOB_NAME),
                    what="the burst to be named")
    wait_for(lambda: _status_of(cluster, name), what="SageMaker to know the training job")
    pod = wait_for(lambda: next(iter(cluster.pods("doomed")), None), what="the burst's pod")
    assert pod["spec"]["nodeName"] == C.VIRTUAL_NODE_NAME
    cluster.sagemaker.fail(name, "AlgorithmError: CUDA out of memory")
    waited = cluster.kubectl("wait", "--for=condition=failed", "job/doomed", "-n", "ml", "--timeout=60s")
    assert waited.returncode == 0, waited.stderr
    [pod] = cluster.pods("doomed")
    assert pod["status"]["phase"] == "Failed" and pod["status"]["reason"] == "SageMakerFailed"
    assert "CUDA out of memory" in pod["status"]["message"]
    assert pod["status"]["containerStatuses"][0]["state"]["terminated"]["exitCode"] == 1


def test_backoff_limit_retries_a_failed_burst_as_a_new_training_job(cluster):
    cluster.apply(burst_job("flaky", runtime="30m", backoff_limit=1))
    first = wait_for(lambda: cluster.job("flaky")["metadata"]["annotations"].get(C.SAGEMAKER_JOB_NAME),
                     what="the first training job")
    wait_for(lambda: _status_of(cluster, first), what="SageMaker to know it")
    cluster.sagemaker.fail(first, "AlgorithmError: NCCL timeout")
    second = wait_for(lambda: _other_name(cluster, "flaky", first), timeout=30, what="a retry")
    wait_for(lambda: _status_of(cluster, second), what="SageMaker to know the retry")
    burst = cluster.controller.ledger.bursts[cluster.job("flaky")["metadata"]["uid"]]
    assert burst.names == [first, second] and len(burst.pods) == 2, "one training job per pod the Job made"
    assert burst.committed_usd == pytest.approx(burst.costs[first] + burst.attempt_usd, abs=0.01), \
        "the retry is committed on top of what the first one cost"
    cluster.sagemaker.fail(second, "AlgorithmError: NCCL timeout")
    waited = cluster.kubectl("wait", "--for=condition=failed", "job/flaky", "-n", "ml", "--timeout=60s")
    assert waited.returncode == 0, waited.stderr
    assert sorted(p["status"]["reason"] for p in cluster.pods("flaky")) == ["SageMakerFailed"] * 2


def test_a_retry_the_budget_cannot_pay_is_refused_and_the_job_fails(tmp_path, sagemaker):
    # This burst commits about $141 (8 A100s for twice its 2-hour estimate, plus start-up). A $150
    # daily budget pays for it, and, once it has cost the difference, no longer for a second one.
    cluster = Cluster(tmp_path, sagemaker, budgets={"default": {"dailyUsd": 150, "monthlyUsd": 5000}})
    try:
        cluster.apply(burst_job("flaky", runtime="2h", backoff_limit=2))
        job = wait_for(lambda: (j := cluster.job("flaky"))["metadata"]["annotations"].get(C.SAGEMAKER_JOB_NAME) and j,
                       what="the first training job")
        name, uid = job["metadata"]["annotations"][C.SAGEMAKER_JOB_NAME], job["metadata"]["uid"]
        committed = float(job["metadata"]["annotations"][C.COMMITTED_USD])
        assert 100 <= committed <= 150
        # 45 minutes of training bill more than the $20 the budget leaves after the commitment.
        wait_for(lambda: cluster.sagemaker.trained_seconds(name) >= 45 * 60, timeout=30,
                 what="the first training job to train for 45 virtual minutes")
        cluster.sagemaker.fail(name, "AlgorithmError: NCCL timeout")
        waited = cluster.kubectl("wait", "--for=condition=failed", "job/flaky", "-n", "ml", "--timeout=60s")
        assert waited.returncode == 0, waited.stderr
        reasons = sorted(p["status"].get("reason", "") for p in cluster.pods("flaky"))
        assert reasons == ["BudgetExhausted", "BudgetExhausted", "SageMakerFailed"], reasons
        events = json.loads(cluster.kubectl_ok("get", "events", "-n", "ml", "-o", "json"))["items"]
        refused = [e["message"] for e in events if e["reason"] == "SageMakerRetryRefused"]
        assert refused and "the daily budget of namespace ml has $" in refused[0], refused
        burst = cluster.controller.ledger.bursts[uid]
        assert burst.names == [name], "no second training job"
        assert burst.cost_usd > 150 - committed, "what the first one billed left too little for another"
    finally:
        cluster.close()


def test_deleting_a_burst_job_stops_its_training_job_and_leaves_no_pod_behind(cluster):
    cluster.apply(burst_job("gone", runtime="2h"))
    name = wait_for(lambda: cluster.job("gone")["metadata"]["annotations"].get(C.SAGEMAKER_JOB_NAME),
                    what="the burst to be named")
    wait_for(lambda: _status_of(cluster, name) == "InProgress", what="its training job to run")
    wait_for(lambda: any(p["status"]["phase"] == "Running" for p in cluster.pods("gone")), what="a Running pod")
    cluster.kubectl_ok("delete", "job", "gone", "-n", "ml", "--wait=false")
    wait_for(lambda: _status_of(cluster, name) in ("Stopping", "Stopped"), what="the training job to stop")
    wait_for(lambda: not cluster.pods("gone"), what="the pod to go (not hang in Terminating)")


def test_a_pod_spillway_did_not_place_on_the_virtual_node_is_failed_never_run(cluster):
    wait_for(lambda: cluster.kubectl("get", "node", C.VIRTUAL_NODE_NAME).returncode == 0, what="the virtual node")
    stray = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "stray", "namespace": "ml"},
             "spec": {"nodeName": C.VIRTUAL_NODE_NAME, "containers": [{"name": "c", "image": "busybox"}]}}
    cluster.kubectl_ok("apply", "-f", "-", stdin=yaml.safe_dump(stray))
    pod = wait_for(lambda: _failed(cluster, "stray"), what="the stray pod to be failed")
    assert pod["status"]["reason"] == "NotPlacedBySpillway"
    assert "not placed there by Spillway" in pod["status"]["message"]


def test_a_wrong_annotation_is_refused_at_kubectl_apply(cluster):
    done = cluster.kubectl("apply", "-f", "-", stdin=yaml.safe_dump(burst_job("soon", runtime="soon")))
    assert done.returncode != 0 and C.RUNTIME_ESTIMATE in done.stderr, done.stderr


def _status_of(cluster: Cluster, name: str) -> str | None:
    try:
        return cluster.training_job(name)["TrainingJobStatus"]
    except cluster.sagemaker.client().exceptions.ClientError:
        return None


def _other_name(cluster: Cluster, job: str, first: str) -> str | None:
    name = cluster.job(job)["metadata"]["annotations"].get(C.SAGEMAKER_JOB_NAME)
    return name if name and name != first else None


def _failed(cluster: Cluster, name: str) -> dict | None:
    pod = json.loads(cluster.kubectl_ok("get", "pod", name, "-n", "ml", "-o", "json"))
    return pod if pod["status"].get("phase") == "Failed" else None
