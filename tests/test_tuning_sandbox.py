"""Hyperparameter tuning bursts on the sandbox, end to end with kubectl: the example sweep
(policies/examples/tuning-job.yaml, an Indexed Job whose pods are its trials) bursts to a SageMaker
tuning job (moto, whose trials live as training jobs with a life cycle), its pods on the virtual
node succeed as trials complete, the Job completes (`kubectl wait --for=condition=complete`) with
its status, its cost (the trials' billed seconds) and its best trial on it; deleting it stops the
tuning job."""

from __future__ import annotations

import copy
import json
from importlib import resources

import pytest
import yaml

from policies import constants as C
from policies.model import default_catalog
from scheduler.cli import main
from sim.sagemaker_lifecycle import SageMakerSandbox
from sim.sandbox.ack import AckStandIn
from sim.tuning_lifecycle import TUNING_CREATES
from tests.builders import BUCKET
from tests.sandboxes import Cluster
from tests.waiting import wait_for

EXAMPLE = yaml.safe_load(resources.files("policies").joinpath("examples/tuning-job.yaml").read_text())
TUNING_TYPES = ["ml.g6.*"]


@pytest.fixture(scope="module")
def sagemaker():
    """The sandbox's SageMaker 6,000 times faster than real time: the example's 16 trials of 45 min,
    4 at a time, take about 2 s."""
    sm = SageMakerSandbox(time_scale=6000, startup_seconds=30, restart_seconds=30).start()
    yield sm
    sm.stop()


def sweep(name: str, **ann: str) -> dict:
    """The example sweep in namespace ml, sent to SageMaker (mode cloud: the sandbox's GPUs are free)."""
    m = copy.deepcopy(EXAMPLE)
    m["metadata"] = {"name": name, "namespace": "ml", "annotations": m["metadata"]["annotations"]}
    annotations = m["metadata"]["annotations"]
    for key in (C.INPUT_S3_URI, C.OUTPUT_S3_URI, C.CHECKPOINT_S3_URI):
        annotations[key] = annotations[key].replace("s3://spillway-example/", BUCKET)
    annotations.update({C.MODE: "cloud", **ann})
    return m


def cluster_for(tmp_path, sagemaker, emit: str) -> Cluster:
    return Cluster(tmp_path, sagemaker, sageMaker={"emit": emit, "allowedInstanceTypes": TUNING_TYPES})


@pytest.mark.parametrize("emit", ["api", "ack"])
def test_the_example_sweep_bursts_and_completes_with_its_cost_and_best_trial(tmp_path, sagemaker, emit, capsys,
                                                                            monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "sandbox")  # spillway logs builds its own clients
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "sandbox")
    made = cluster_for(tmp_path, sagemaker, emit)
    ack = AckStandIn(made.server.store, sagemaker.client(), period=0.05).start() if emit == "ack" else None
    try:
        done = made.kubectl("apply", "-f", "-", stdin=yaml.safe_dump(sweep(f"sweep-{emit}")))
        assert done.returncode == 0, done.stderr
        waited = made.kubectl("wait", "--for=condition=complete", f"job/sweep-{emit}", "-n", "ml", "--timeout=60s")
        assert waited.returncode == 0, waited.stderr
        ann = made.job(f"sweep-{emit}")["metadata"]["annotations"]
        name = ann[C.SAGEMAKER_JOB_NAME]
        assert ann[C.DECISION_PLACEMENT] == "SageMakerSpot" and "16 managed spot trials, 4 at once" in \
            ann[C.DECISION_MESSAGE]
        assert ann[C.SAGEMAKER_STATUS] == "Completed/Completed"
        described = sagemaker.client().describe_hyper_parameter_tuning_job(HyperParameterTuningJobName=name)
        assert described["HyperParameterTuningJobStatus"] == "Completed"
        assert described["TrainingJobStatusCounters"]["Completed"] == 16
        assert TUNING_CREATES[name] == 1, "created once"
        best = described["BestTrainingJob"]
        assert ann[C.TUNING_BEST_TRIAL] == best["TrainingJobName"] and best["TrainingJobName"].startswith(f"{name}-")
        objective = best["FinalHyperParameterTuningJobObjectiveMetric"]
        assert ann[C.TUNING_BEST_OBJECTIVE] == f"validation:accuracy={objective['Value']}"
        tuned = json.loads(ann[C.TUNING_BEST_HYPERPARAMETERS])
        assert tuned == best["TunedHyperParameters"] and set(tuned) == {"learning_rate", "batch_size", "optimizer"}
        # Each trial trained its runtime estimate (45 min, virtual) on managed spot: billed at the spot rate.
        itype = default_catalog().get("ml.g6.xlarge", "us-east-1")
        assert itype is not None
        trials = sagemaker.client().list_training_jobs_for_hyper_parameter_tuning_job(
            HyperParameterTuningJobName=name, MaxResults=100)["TrainingJobSummaries"]
        billed = [sagemaker.client().describe_training_job(TrainingJobName=t["TrainingJobName"])
                  ["BillableTimeInSeconds"] for t in trials]
        assert len(billed) == 16
        assert float(ann[C.COST_USD]) == pytest.approx(sum(billed) * itype.on_demand_usd_per_hour / 3600, abs=0.006)
        assert float(ann[C.COST_USD]) == pytest.approx(16 * 2700 * itype.spot_usd_per_hour / 3600, rel=0.01)
        assert float(ann[C.COST_USD]) <= float(ann[C.COMMITTED_USD])
        pods = made.pods(f"sweep-{emit}")
        assert len(pods) == 16 and all(p["spec"]["nodeName"] == C.VIRTUAL_NODE_NAME for p in pods)
        assert all(p["status"]["phase"] == "Succeeded" for p in pods)
        events = made.kubectl_ok("get", "events", "-n", "ml", "-o", "json")
        assert f"SageMaker hyperparameter tuning job {name} is Completed" in events
        logs = made.kubectl_ok("logs", f"job/sweep-{emit}", "-n", "ml")  # its trials', from CloudWatch
        first = sorted(t["TrainingJobName"] for t in trials)[0]
        assert logs.startswith(f"==> SageMaker training job {first} (training job 1 of 16) <==\n"), logs[:300]
        assert logs.count("[sandbox] Completed: Training job completed") == 16, logs[-300:]
        assert main(["logs", f"sweep-{emit}", "-n", "ml", "--kubeconfig", str(made.config),
                     "--sagemaker-endpoint-url", sagemaker.endpoint_url]) == 0
        assert capsys.readouterr().out == logs, "spillway logs prints what kubectl logs does"
        if emit == "ack":
            [cr] = json.loads(made.kubectl_ok("get", "hyperparametertuningjobs.sagemaker.services.k8s.aws", "-n", "ml",
                                              "-o", "json"))["items"]
            assert cr["metadata"]["name"] == name and cr["status"]["hyperParameterTuningJobStatus"] == "Completed"
            assert cr["status"]["bestTrainingJob"]["trainingJobName"] == best["TrainingJobName"]
    finally:
        if ack is not None:
            ack.stop()
        made.close()


@pytest.mark.parametrize("emit", ["api", "ack"])
def test_its_pods_run_while_trials_do_and_deleting_the_job_stops_the_tuning_job(tmp_path, sagemaker, emit):
    made = cluster_for(tmp_path, sagemaker, emit)
    # ack: deleting the Job garbage-collects its HyperParameterTuningJob, and ACK's finalizer stops the job
    ack = AckStandIn(made.server.store, sagemaker.client(), period=0.05).start() if emit == "ack" else None
    try:
        made.apply(sweep(f"long-{emit}", **{C.RUNTIME_ESTIMATE: "100h"}))
        name = wait_for(lambda: made.job(f"long-{emit}")["metadata"]["annotations"].get(C.SAGEMAKER_JOB_NAME),
                        what="the tuning job's name on the Job")
        wait_for(lambda: len([p for p in made.pods(f"long-{emit}") if p["status"].get("phase") == "Running"]) == 4,
                 what="the 4 pods that run at once to run once trials start")
        made.kubectl_ok("delete", "job", f"long-{emit}", "-n", "ml", "--wait=false")
        wait_for(lambda: sagemaker.client().describe_hyper_parameter_tuning_job(
            HyperParameterTuningJobName=name)["HyperParameterTuningJobStatus"] == "Stopped",
            what="the tuning job to be stopped")
        counters = sagemaker.client().describe_hyper_parameter_tuning_job(
            HyperParameterTuningJobName=name)["TrainingJobStatusCounters"]
        assert counters["Stopped"] == 4 and counters["Completed"] == 0, "its running trials were stopped"
        burst = wait_for(lambda: next((b for b in made.controller.ledger.bursts.values()
                                       if b.names == [name] and b.state == "done"), None),
                         what="the ledger to book the stopped burst")
        assert burst.outcome.startswith("Stopped")
    finally:
        if ack is not None:
            ack.stop()
        made.close()


def test_legacy_emission_makes_a_hyperparameter_tuning_job_resource(tmp_path, sagemaker):
    made = cluster_for(tmp_path, sagemaker, "legacy")
    try:
        made.apply(sweep("legacy"))
        [cr] = wait_for(lambda: json.loads(made.kubectl_ok(
            "get", "hyperparametertuningjobs.sagemaker.aws.amazon.com", "-n", "ml", "-o", "json"))["items"],
            what="the HyperparameterTuningJob resource")
        assert cr["spec"]["region"] == "us-east-1"
        assert cr["spec"]["hyperParameterTuningJobConfig"]["resourceLimits"] == {
            "maxNumberOfTrainingJobs": 16, "maxParallelTrainingJobs": 4}
        assert made.job("legacy")["metadata"]["annotations"][C.SAGEMAKER_JOB_NAME] == cr["metadata"]["name"]
    finally:
        made.close()


def test_a_sweep_whose_trials_all_fail_fails_its_pods_and_writes_no_best_trial(tmp_path, sagemaker):
    made = cluster_for(tmp_path, sagemaker, "api")
    try:
        failing = sweep("failing")
        annotations = failing["metadata"]["annotations"]
        spec = yaml.safe_load(annotations[C.TUNING_SPEC])
        spec["static"]["sandbox_fail"] = "true"  # the sandbox's trials fail (AlgorithmError), all of them
        annotations[C.TUNING_SPEC] = yaml.safe_dump(spec)
        failing["spec"].update(completions=2, parallelism=2, backoffLimit=0)
        for key in ("backoffLimitPerIndex", "maxFailedIndexes"):
            failing["spec"].pop(key)
        made.apply(failing)
        waited = made.kubectl("wait", "--for=condition=failed", "job/failing", "-n", "ml", "--timeout=60s")
        assert waited.returncode == 0, waited.stderr
        ann = made.job("failing")["metadata"]["annotations"]
        assert ann[C.SAGEMAKER_STATUS] == "Failed/Failed"
        assert not {C.TUNING_BEST_TRIAL, C.TUNING_BEST_OBJECTIVE, C.TUNING_BEST_HYPERPARAMETERS} & set(ann)
        described = sagemaker.client().describe_hyper_parameter_tuning_job(
            HyperParameterTuningJobName=ann[C.SAGEMAKER_JOB_NAME])
        assert described["TrainingJobStatusCounters"]["NonRetryableError"] == 2
        failed = [p for p in made.pods("failing") if p["status"]["phase"] == "Failed"]
        assert failed and all("All training jobs failed" in p["status"]["message"] for p in failed)
        assert TUNING_CREATES[ann[C.SAGEMAKER_JOB_NAME]] == 1, "a failed tuning job is not relaunched"
    finally:
        made.close()
