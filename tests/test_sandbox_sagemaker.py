"""SageMaker in the sandbox: a life cycle on moto's backend, for boto3 callers and for the ACK
stand-in that turns TrainingJob custom resources into training jobs."""

from __future__ import annotations

import json
import time

import pytest
from kubernetes import client

from sim.sagemaker_lifecycle import SageMakerSandbox
from sim.sandbox.ack import AckStandIn, to_api
from sim.sandbox.apiserver import SandboxServer
from tests.builders import ACK_JOB
from tests.waiting import wait_for

REQUEST = dict(AlgorithmSpecification={"TrainingImage": "img", "TrainingInputMode": "File"},
               RoleArn="arn:aws:iam::123456789012:role/r", OutputDataConfig={"S3OutputPath": "s3://b/out/"},
               ResourceConfig={"InstanceType": "ml.g5.xlarge", "InstanceCount": 1, "VolumeSizeInGB": 50},
               StoppingCondition={"MaxRuntimeInSeconds": 3600, "MaxWaitTimeInSeconds": 7200})


@pytest.fixture(scope="module")
def sagemaker():
    sm = SageMakerSandbox(time_scale=600, startup_seconds=60, restart_seconds=30).start()
    yield sm
    sm.stop()


def statuses(sm, name, until=("Completed", "Stopped", "Failed"), timeout=10):
    seen, c, end = [], sm.client(), time.monotonic() + timeout
    while time.monotonic() < end:
        d = c.describe_training_job(TrainingJobName=name)
        pair = (d["TrainingJobStatus"], d["SecondaryStatus"])
        if not seen or seen[-1] != pair:
            seen.append(pair)
        if pair[0] in until:
            return seen, d
        time.sleep(0.02)
    raise AssertionError(f"{name} stuck at {seen[-1]}")


def test_on_demand_job_walks_the_life_cycle(sagemaker):
    sagemaker.client().create_training_job(TrainingJobName="od", HyperParameters={"sandbox_run_seconds": "120"},
                                           **REQUEST)
    seen, d = statuses(sagemaker, "od")
    assert seen == [("InProgress", "Starting"), ("InProgress", "Downloading"), ("InProgress", "Training"),
                    ("Completed", "Completed")]
    assert d["TrainingTimeInSeconds"] == pytest.approx(120, abs=15)
    assert d["BillableTimeInSeconds"] == d["TrainingTimeInSeconds"]


def test_managed_spot_is_interrupted_resumes_and_bills_at_the_spot_rate(sagemaker):
    sagemaker.client().create_training_job(TrainingJobName="spot", EnableManagedSpotTraining=True,
                                           HyperParameters={"sandbox_run_seconds": "120",
                                                            "sandbox_interruptions": "1"}, **REQUEST)
    seen, d = statuses(sagemaker, "spot")
    assert ("InProgress", "Interrupted") in seen and seen[-1] == ("Completed", "Completed")
    assert [t["Status"] for t in d["SecondaryStatusTransitions"]].count("Training") == 2
    assert d["BillableTimeInSeconds"] < d["TrainingTimeInSeconds"]  # the spot discount, as SageMaker reports it


def test_max_wait_expiry_and_stop(sagemaker):
    c = sagemaker.client()
    c.create_training_job(TrainingJobName="late", EnableManagedSpotTraining=True,
                          HyperParameters={"sandbox_run_seconds": "5000"},
                          **{**REQUEST, "StoppingCondition": {"MaxRuntimeInSeconds": 3600, "MaxWaitTimeInSeconds": 300}})
    seen, d = statuses(sagemaker, "late")
    assert seen[-1] == ("Stopped", "MaxWaitTimeExceeded") and "MaxWaitTimeInSeconds" in d["FailureReason"]
    c.create_training_job(TrainingJobName="stopme", HyperParameters={"sandbox_run_seconds": "100000"}, **REQUEST)
    statuses(sagemaker, "stopme", until=("InProgress",))
    c.stop_training_job(TrainingJobName="stopme")
    seen, _ = statuses(sagemaker, "stopme")
    assert seen[-1] == ("Stopped", "Stopped")


def test_ack_field_names_translate_to_the_api():
    assert to_api({"roleARN": "r", "checkpointConfig": {"s3URI": "s3://x"}, "hyperParameters": {"lr_max": "1"},
                   "tags": [{"key": "a", "value": "b"}], "resourceConfig": {"volumeKMSKeyID": "k"}}) == {
        "RoleArn": "r", "CheckpointConfig": {"S3Uri": "s3://x"}, "HyperParameters": {"lr_max": "1"},
        "Tags": [{"Key": "a", "Value": "b"}], "ResourceConfig": {"VolumeKmsKeyId": "k"}}


def test_a_training_job_resource_reaches_completed_through_moto(sagemaker):
    server = SandboxServer().start()
    ack = AckStandIn(server.store, sagemaker.client(), period=0.05).start()
    try:
        cfg = client.Configuration()
        cfg.host = server.url
        crs = client.CustomObjectsApi(client.ApiClient(cfg))
        g, v, p = "sagemaker.services.k8s.aws", "v1alpha1", "trainingjobs"
        body = json.loads(json.dumps(ACK_JOB))
        body["metadata"]["name"] = body["spec"]["trainingJobName"] = "ack-1"
        body["spec"]["hyperParameters"] = {"sandbox_run_seconds": "120"}
        crs.create_namespaced_custom_object(g, v, "default", p, body)
        done = wait_for(lambda: (o := crs.get_namespaced_custom_object(g, v, "default", p, "ack-1"))
                        .get("status", {}).get("trainingJobStatus") == "Completed" and o)
        assert done["status"]["ackResourceMetadata"]["arn"].endswith(":training-job/ack-1")
        assert done["status"]["conditions"][0] == {"type": "ACK.ResourceSynced", "status": "True",
                                                   "message": "TrainingJob is Completed"}
        assert "finalizers.sagemaker.services.k8s.aws/TrainingJob" in done["metadata"]["finalizers"]
        body["metadata"]["name"] = body["spec"]["trainingJobName"] = "ack-2"
        body["spec"]["hyperParameters"] = {"sandbox_run_seconds": "100000"}
        crs.create_namespaced_custom_object(g, v, "default", p, body)
        wait_for(lambda: crs.get_namespaced_custom_object(g, v, "default", p, "ack-2").get("status", {})
                 .get("trainingJobStatus") == "InProgress")
        crs.delete_namespaced_custom_object(g, v, "default", p, "ack-2")
        wait_for(lambda: "ack-2" not in [o["metadata"]["name"] for o in
                                         crs.list_namespaced_custom_object(g, v, "default", p)["items"]])
        statuses(sagemaker, "ack-2")  # the job was stopped before the resource went away
    finally:
        ack.stop()
        server.stop()
