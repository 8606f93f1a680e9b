"""Batch transform bursts on the sandbox, end to end with kubectl: a Job annotated
spillway.io/sagemaker-kind: transform bursts to a SageMaker transform job (moto, with a life
cycle), its pod on the virtual node shows the transform job's progress, and the Job completes
(`kubectl wait --for=condition=complete`), with its status and cost on the Job; deleting it stops
the transform job; the webhook refuses bad transform annotations at `kubectl apply`."""

from __future__ import annotations

import json

import pytest
import yaml

from policies import constants as C
from scheduler.cli import main
from sim.sandbox.ack import AckStandIn
from sim.transform_lifecycle import MODEL_CREATES, TRANSFORM_CREATES
from tests.builders import BUCKET
from tests.sandboxes import Cluster
from tests.waiting import wait_for

T4 = "Tesla-T4"
IMAGE = "123456789012.dkr.ecr.us-east-1.amazonaws.com/score:1"
TRANSFORM_TYPES = ["ml.g4dn.*"]


def transform_job(name: str, *, parallelism: int = 2, run_seconds: int = 600, **ann: str) -> dict:
    """A batch inference Job that must burst, written as users write it (no suspend: the webhook adds it).
    SANDBOX_RUN_SECONDS tells the sandbox's SageMaker how long the transform runs (virtual seconds)."""
    return {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": name, "namespace": "ml", "annotations": {
        C.MODE: "cloud", C.SAGEMAKER_KIND: "transform", C.RUNTIME_ESTIMATE: "1h",
        C.MODEL_S3_URI: f"{BUCKET}models/m.tar.gz", C.INPUT_S3_URI: f"{BUCKET}in/", C.OUTPUT_S3_URI: f"{BUCKET}out/",
        C.CONTENT_TYPE: "text/csv", C.SPLIT_TYPE: "Line", **ann}},
        "spec": {"backoffLimit": 0, "parallelism": parallelism, "template": {"spec": {
            "restartPolicy": "Never", "nodeSelector": {C.GPU_PRODUCT_LABEL: T4},
            "containers": [{"name": "scorer", "image": IMAGE,
                            "env": [{"name": "SANDBOX_RUN_SECONDS", "value": str(run_seconds)}],
                            "resources": {"limits": {C.GPU_RESOURCE: "1"}}}]}}}}


def cluster_for(tmp_path, sagemaker, emit: str) -> Cluster:
    return Cluster(tmp_path, sagemaker, sageMaker={"emit": emit, "allowedInstanceTypes": TRANSFORM_TYPES})


@pytest.mark.parametrize("emit", ["api", "ack"])
def test_a_transform_burst_completes_as_a_job_with_its_cost(tmp_path, sagemaker, emit, capsys,
                                                            monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "sandbox")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "sandbox")
    made = cluster_for(tmp_path, sagemaker, emit)
    ack = AckStandIn(made.server.store, sagemaker.client(), period=0.05).start() if emit == "ack" else None
    try:
        done = made.kubectl("apply", "-f", "-", stdin=yaml.safe_dump(transform_job(f"score-{emit}")))
        assert done.returncode == 0 and "created suspended" in done.stderr, done.stderr
        waited = made.kubectl("wait", "--for=condition=complete", f"job/score-{emit}", "-n", "ml", "--timeout=60s")
        assert waited.returncode == 0, waited.stderr
        ann = made.job(f"score-{emit}")["metadata"]["annotations"]
        name = ann[C.SAGEMAKER_JOB_NAME]
        assert ann[C.DECISION_PLACEMENT] == "SageMakerOnDemand" and "transform has no managed spot" in \
            ann[C.DECISION_MESSAGE]
        assert ann[C.SAGEMAKER_STATUS] == "Completed/Completed"
        described = sagemaker.client().describe_transform_job(TransformJobName=name)
        assert described["TransformJobStatus"] == "Completed" and described["ModelName"] == name
        assert described["TransformResources"] == {"InstanceType": "ml.g4dn.xlarge", "InstanceCount": 2}
        ran = (described["TransformEndTime"] - described["TransformStartTime"]).total_seconds()
        assert 600 <= ran < 700, "the sandbox reports the virtual seconds it ran (stepped every 30 or so)"
        assert float(ann[C.COST_USD]) == pytest.approx(ran * 2 * 0.736 / 3600, abs=0.006)  # about $0.25
        assert TRANSFORM_CREATES[name] == 1 and MODEL_CREATES[name] == 1, "created once each"
        pages = sagemaker.client().get_paginator("list_models").paginate()
        models = [m["ModelName"] for page in pages for m in page["Models"] if m["ModelName"] == name]
        assert models == ([] if emit == "api" else [name]), "the API's Model goes when its job ends; ACK's with the Job"
        pods = made.pods(f"score-{emit}")
        assert len(pods) == 2 and all(p["spec"]["nodeName"] == C.VIRTUAL_NODE_NAME for p in pods)
        assert all(p["status"]["phase"] == "Succeeded" for p in pods)
        events = made.kubectl_ok("get", "events", "-n", "ml", "-o", "json")
        assert f"SageMaker transform job {name} is Completed" in events
        logs = made.kubectl_ok("logs", f"job/score-{emit}", "-n", "ml")  # the node agent serves CloudWatch's
        assert logs.startswith(f"==> SageMaker transform job {name} (transform job 1 of 1) <==\n"), logs
        assert logs.endswith("[sandbox] Completed: Transform job completed\n"), logs
        assert main(["logs", f"score-{emit}", "-n", "ml", "--kubeconfig", str(made.config),
                     "--sagemaker-endpoint-url", sagemaker.endpoint_url]) == 0
        assert capsys.readouterr().out == logs, "spillway logs prints what kubectl logs does"
        if emit == "ack":
            for plural in ("models", "transformjobs"):
                found = json.loads(made.kubectl_ok("get", f"{plural}.sagemaker.services.k8s.aws", "-n", "ml",
                                                   "-o", "json"))["items"]
                assert [r["metadata"]["name"] for r in found] == [name], plural
    finally:
        if ack is not None:
            ack.stop()
        made.close()


@pytest.mark.parametrize("emit", ["api", "ack"])
def test_its_pods_show_the_transform_jobs_progress_and_deleting_the_job_stops_it(tmp_path, sagemaker, emit):
    made = cluster_for(tmp_path, sagemaker, emit)
    # ack: deleting the Job garbage-collects its TransformJob resource, and ACK's finalizer stops the job
    ack = AckStandIn(made.server.store, sagemaker.client(), period=0.05).start() if emit == "ack" else None
    try:
        made.apply(transform_job(f"long-{emit}", parallelism=1, run_seconds=10 ** 6))
        name = wait_for(lambda: made.job(f"long-{emit}")["metadata"]["annotations"].get(C.SAGEMAKER_JOB_NAME),
                        what="the transform job's name on the Job")
        wait_for(lambda: [p for p in made.pods(f"long-{emit}") if p["status"].get("phase") == "Running"],
                 what="the pod to run once the transform job starts")
        assert made.kubectl_ok("get", "pods", "-n", "ml", "-l", f"job-name=long-{emit}", "-o", "wide").count("Running") == 1
        made.kubectl_ok("delete", "job", f"long-{emit}", "-n", "ml", "--wait=false")
        wait_for(lambda: sagemaker.client().describe_transform_job(TransformJobName=name)["TransformJobStatus"]
                 == "Stopped", what="the transform job to be stopped")
        burst = wait_for(lambda: next((b for b in made.controller.ledger.bursts.values()
                                       if b.names == [name] and b.state == "done"), None),
                         what="the ledger to book the stopped burst")
        assert burst.outcome.startswith("Stopped")
    finally:
        if ack is not None:
            ack.stop()
        made.close()


@pytest.mark.parametrize("changes, named", [
    ({C.SPLIT_TYPE: "lines"}, C.SPLIT_TYPE),
    ({C.CAPACITY_TYPE: "spot"}, C.CAPACITY_TYPE),
])
def test_the_webhook_refuses_a_bad_transform_annotation_with_the_fix(tmp_path, sagemaker, changes, named):
    made = cluster_for(tmp_path, sagemaker, "api")
    try:
        done = made.kubectl("apply", "-f", "-", stdin=yaml.safe_dump(transform_job("bad", **changes)))
        assert done.returncode != 0 and named in done.stderr and "fix:" in done.stderr, done.stderr
    finally:
        made.close()


def test_legacy_emission_makes_the_model_through_the_api_and_a_batch_transform_job(tmp_path, sagemaker):
    made = cluster_for(tmp_path, sagemaker, "legacy")
    try:
        made.apply(transform_job("legacy", parallelism=1))
        found = wait_for(lambda: json.loads(made.kubectl_ok(
            "get", "batchtransformjobs.sagemaker.aws.amazon.com", "-n", "ml", "-o", "json"))["items"],
            what="the BatchTransformJob resource")
        [cr] = found
        name = cr["metadata"]["name"]
        assert cr["spec"]["modelName"] == name and cr["spec"]["region"] == "us-east-1"
        assert sagemaker.client().describe_model(ModelName=name)["PrimaryContainer"]["Image"] == IMAGE
        assert made.job("legacy")["metadata"]["annotations"][C.SAGEMAKER_JOB_NAME] == name
    finally:
        made.close()
