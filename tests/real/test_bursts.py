"""Bursts on the real control plane: the ACK TrainingJob as the real API server validates it
(fieldValidation=Strict against the published CRD), and what deletion does to it."""

from __future__ import annotations


import pytest

from policies import constants as C
from scheduler.kube import KubeError
from scheduler.ledger import DONE
from sim.control_plane.plane import kubectl
from tests.real.conftest import (annotation, job_gone, job_manifest, sagemaker_adapter, start_controller,
                                 training_status, wait_for)

CLOUD = {C.MODE: "cloud", C.CAPACITY_TYPE: "on-demand", C.RUNTIME_ESTIMATE: "10h"}
ACK = ("sagemaker.services.k8s.aws", "v1alpha1", "trainingjobs")


def training_jobs(kube, namespace: str) -> list[dict]:
    return kube.custom.list_namespaced_custom_object(*ACK[:2], namespace, ACK[2])["items"]


def test_a_cloud_job_becomes_an_ack_training_job_the_real_server_accepts_strictly(plane, namespace,
                                                                                  controller_kube, stop_event):
    plane.kube.batch.create_namespaced_job(namespace, job_manifest("burst", namespace, **CLOUD))
    start_controller(controller_kube, stop_event, sageMaker={"emit": "ack"})
    name = wait_for(lambda: annotation(plane.kube, namespace, "burst", C.SAGEMAKER_JOB_NAME), what="the launch")
    [cr] = wait_for(lambda: training_jobs(plane.kube, namespace), what="the TrainingJob")
    assert cr["metadata"]["name"] == name
    job = plane.kube.get_job(namespace, "burst")
    assert cr["metadata"]["ownerReferences"][0]["uid"] == job["metadata"]["uid"]
    assert cr["spec"]["roleARN"] and cr["spec"]["resourceConfig"]["instanceCount"] == 1
    # Strict is what makes the schema bite: the legacy operator's spelling is refused, not pruned.
    wrong = {**cr, "metadata": {"name": "wrong-spelling", "namespace": namespace},
             "spec": {**cr["spec"], "roleArn": cr["spec"]["roleARN"]}}
    wrong.pop("status", None)
    with pytest.raises(KubeError) as refused:
        controller_kube.create_custom(wrong, ACK[2])
    assert refused.value.status == 400 and 'unknown field "spec.roleArn"' in refused.value.message
    # kubectl deletes in the background: the garbage collector takes the TrainingJob with its Job.
    kubectl(plane.plane.kubeconfig, "delete", "job", "burst", "-n", namespace)
    wait_for(lambda: not training_jobs(plane.kube, namespace), what="the TrainingJob to be collected")


def test_a_job_deleted_with_no_propagation_policy_still_loses_its_training_job(plane, namespace,
                                                                               controller_kube, stop_event):
    """An API client that sends no propagationPolicy orphans a Job's dependents (batch/v1's
    default): the TrainingJob would keep running, and costing. The controller sees its Job go
    and deletes it (ACK's finalizer then stops the training job)."""
    plane.kube.batch.create_namespaced_job(namespace, job_manifest("orphan", namespace, **CLOUD))
    ctl = start_controller(controller_kube, stop_event, sageMaker={"emit": "ack"})
    wait_for(lambda: training_jobs(plane.kube, namespace), what="the TrainingJob")
    plane.kube.batch.delete_namespaced_job("orphan", namespace)  # no propagationPolicy: orphan
    wait_for(lambda: not training_jobs(plane.kube, namespace), what="the controller to delete the TrainingJob")
    [burst] = wait_for(lambda: [b for b in ctl.ledger.bursts.values() if b.job == f"{namespace}/orphan"
                                and b.state == DONE], what="the burst to be booked")
    assert burst.outcome == "Stopped/JobDeleted"


def test_a_job_burst_through_the_api_keeps_a_finalizer_and_its_deletion_stops_the_training_job(
        plane, namespace, controller_kube, stop_event, sagemaker):
    """emit: api has no custom resource for the garbage collector to take: the controller's
    finalizer holds the Job until it stopped the training job. On the real server, whatever the
    propagation policy; the finalizer comes off and the Job goes."""
    sm = sagemaker_adapter(sagemaker)
    plane.kube.batch.create_namespaced_job(namespace, job_manifest("apijob", namespace, **CLOUD))
    start_controller(controller_kube, stop_event, sagemaker=sm, sageMaker={"emit": "api"})
    name = wait_for(lambda: annotation(plane.kube, namespace, "apijob", C.SAGEMAKER_JOB_NAME), what="the launch")
    assert C.FINALIZER in plane.kube.get_job(namespace, "apijob")["metadata"]["finalizers"]
    wait_for(lambda: training_status(sagemaker, name) == "InProgress", what="the training job to run")
    plane.kube.batch.delete_namespaced_job("apijob", namespace)  # no propagationPolicy

    wait_for(lambda: job_gone(plane.kube, namespace, "apijob"), what="the Job to go once its training job was stopped")
    assert training_status(sagemaker, name) in ("Stopping", "Stopped")


def test_a_transform_job_becomes_an_ack_model_and_transform_job_the_real_server_accepts(plane, namespace,
                                                                                       controller_kube, stop_event):
    """A batch transform burst with emit ack: the Model first, then the TransformJob naming it, both
    created by the controller through the real API server (Strict, against the published CRDs),
    and both collected with their Job."""
    job = job_manifest("score", namespace, gpus=1, parallelism=2, **{
        **CLOUD, C.SAGEMAKER_KIND: "transform", C.INPUT_S3_URI: "s3://acme-ml/in/", C.CONTENT_TYPE: "text/csv"})
    job["spec"]["template"]["spec"]["nodeSelector"] = {C.GPU_PRODUCT_LABEL: "Tesla-T4"}
    del job["spec"]["completionMode"]  # a transform job splits its input: a work queue is what it is
    del job["spec"]["completions"]
    plane.kube.batch.create_namespaced_job(namespace, job)
    start_controller(controller_kube, stop_event, sageMaker={"emit": "ack", "allowedInstanceTypes": ["ml.g4dn.*"]})
    name = wait_for(lambda: annotation(plane.kube, namespace, "score", C.SAGEMAKER_JOB_NAME), what="the launch")
    models = ("sagemaker.services.k8s.aws", "v1alpha1", namespace, "models")
    transforms = ("sagemaker.services.k8s.aws", "v1alpha1", namespace, "transformjobs")
    [model] = wait_for(lambda: plane.kube.custom.list_namespaced_custom_object(*models)["items"], what="the Model")
    [cr] = wait_for(lambda: plane.kube.custom.list_namespaced_custom_object(*transforms)["items"],
                    what="the TransformJob")
    assert model["metadata"]["name"] == cr["metadata"]["name"] == cr["spec"]["modelName"] == name
    assert cr["spec"]["transformResources"] == {"instanceType": "ml.g4dn.xlarge", "instanceCount": 2}
    assert cr["spec"]["transformInput"]["contentType"] == "text/csv"
    kubectl(plane.plane.kubeconfig, "delete", "job", "score", "-n", namespace)
    wait_for(lambda: not plane.kube.custom.list_namespaced_custom_object(*transforms)["items"]
             and not plane.kube.custom.list_namespaced_custom_object(*models)["items"],
             what="the Model and TransformJob to be collected with their Job")


def test_a_sweep_becomes_an_ack_hyperparameter_tuning_job_the_real_server_accepts(plane, namespace,
                                                                                  controller_kube, stop_event):
    """A Bayesian sweep sent to SageMaker (mode cloud: on a free cluster, auto would keep it
    local, Optuna choosing its trials) with emit ack: one HyperParameterTuningJob, created by the controller through the real API server (Strict,
    against the published CRD), and collected with its Job."""
    spec = ("objective: {metric: validation:loss, regex: 'val_loss=([0-9.]+)', type: Minimize}\n"
            "strategy: Bayesian\n"
            "parameters:\n  lr: {type: continuous, min: 0.0001, max: 0.1, scaling: Logarithmic}\n"
            "static: {epochs: 3}\n")
    job = job_manifest("sweep", namespace, gpus=1, parallelism=2, **{
        C.MODE: "cloud", C.RUNTIME_ESTIMATE: "30m", C.SAGEMAKER_KIND: "tuning", C.TUNING_SPEC: spec})
    job["spec"]["completions"] = 6
    plane.kube.batch.create_namespaced_job(namespace, job)
    start_controller(controller_kube, stop_event, sageMaker={"emit": "ack"})
    name = wait_for(lambda: annotation(plane.kube, namespace, "sweep", C.SAGEMAKER_JOB_NAME), what="the launch")
    tuning = ("sagemaker.services.k8s.aws", "v1alpha1", namespace, "hyperparametertuningjobs")
    [cr] = wait_for(lambda: plane.kube.custom.list_namespaced_custom_object(*tuning)["items"],
                    what="the HyperParameterTuningJob")
    assert cr["metadata"]["name"] == name and len(name) <= 32
    config = cr["spec"]["hyperParameterTuningJobConfig"]
    assert config["strategy"] == "Bayesian" and config["hyperParameterTuningJobObjective"]["type_"] == "Minimize"
    assert config["resourceLimits"] == {"maxNumberOfTrainingJobs": 6, "maxParallelTrainingJobs": 2}
    assert cr["spec"]["trainingJobDefinition"]["staticHyperParameters"] == {"epochs": "3"}
    assert not plane.kube.custom.list_namespaced_custom_object(*ACK[:2], namespace, ACK[2])["items"], \
        "a sweep is one tuning job, not training jobs"
    kubectl(plane.plane.kubeconfig, "delete", "job", "sweep", "-n", namespace)
    wait_for(lambda: not plane.kube.custom.list_namespaced_custom_object(*tuning)["items"],
             what="the HyperParameterTuningJob to be collected with its Job")
