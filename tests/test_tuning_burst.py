"""A tuning burst's own steps in the controller (scheduler/tuning_burst.py), without a cluster: a
tuning job is read in DescribeTrainingJob's terms, priced from its trials, its best trial written
as the Job's annotations, and its Indexed Job's pods follow the count of completed trials. The
tuning job resources it emits pass their real CRDs with fieldValidation=Strict."""

from __future__ import annotations

import copy
import json
from datetime import datetime, timedelta, timezone
from importlib import resources

import pytest
import yaml

from policies import decide, job_from_manifest
from policies import constants as C
from policies.decide import tuning_job_name, tuning_job_resource
from policies.model import EmitTarget, SageMakerKind, default_catalog
from scheduler.node_agent import Shown
from scheduler.tuning_burst import (best_trial_annotations, cost, followed, followed_resource, trial_pod_shown)
from sim.sandbox.validation import validate
from tests.crds import crd_type
from tests.builders import BUCKET, cluster, policy

EXAMPLE = yaml.safe_load(resources.files("policies").joinpath("examples/tuning-job.yaml").read_text())
START = datetime(2026, 11, 28, 15, 0, tzinfo=timezone.utc)


def burst(emit: str = "ack"):
    m = copy.deepcopy(EXAMPLE)
    m["metadata"].update(namespace="ml", uid="6f1c2d3e-0000-4000-8000-0000000000b7")
    ann = m["metadata"]["annotations"]
    for key in (C.INPUT_S3_URI, C.OUTPUT_S3_URI, C.CHECKPOINT_S3_URI):
        ann[key] = ann[key].replace("s3://spillway-example/", BUCKET)
    ann[C.MODE] = "cloud"
    j = job_from_manifest(m)
    d = decide(j, cluster().nodes(1, 8).build(), policy(sageMaker={"emit": emit, "allowedInstanceTypes": ["ml.g6.*"]}))
    assert d.launch is not None and d.launch.kind == SageMakerKind.TUNING
    return j, d.launch



def trial(n: int, status: str, started: bool = True, minutes: float | None = None) -> dict:
    out = {"TrainingJobName": f"sweep-00{n}-abcdef0{n}", "TrainingJobStatus": status}
    if started:
        out["TrainingStartTime"] = START
    if minutes is not None:
        out["TrainingEndTime"] = START + timedelta(minutes=minutes)
    return out


@pytest.mark.parametrize("emit, kind", [("ack", "HyperParameterTuningJob"), ("legacy", "HyperparameterTuningJob")])
def test_every_emitted_tuning_job_passes_its_crd_strictly(emit, kind):
    j, launch = burst(emit)
    cr = tuning_job_resource(j, launch, tuning_job_name(j), EmitTarget(emit))
    assert cr["kind"] == kind
    assert validate(crd_type(kind), cr, strict=True) == []


def test_a_tuning_job_is_starting_until_a_trial_starts_then_tuning():
    starting = followed({"HyperParameterTuningJobStatus": "InProgress", "HyperParameterTuningJobArn": "arn:h"}, [], {})
    assert (starting["TrainingJobStatus"], starting["SecondaryStatus"], starting["TrainingJobArn"]) == \
        ("InProgress", "Starting", "arn:h")
    running = followed({"HyperParameterTuningJobStatus": "InProgress"}, [trial(1, "InProgress")], {})
    assert running["SecondaryStatus"] == "Tuning" and running["TrainingStartTime"] == START
    done = followed({"HyperParameterTuningJobStatus": "Completed",
                     "TrainingJobStatusCounters": {"Completed": 2}}, [trial(1, "Completed", minutes=30)], {})
    assert (done["SecondaryStatus"], done["_completed"]) == ("Completed", 2)


def test_its_cost_is_its_trials_billed_seconds_and_running_time():
    _, launch = burst()
    itype = default_catalog().get(launch.instance_type, launch.region)
    assert itype is not None and launch.spot
    starting = followed({"HyperParameterTuningJobStatus": "InProgress"}, [trial(1, "InProgress", started=False)], {})
    assert cost(launch, itype, starting, START.timestamp()) is None, "nothing billed before a trial starts"
    trials = [trial(1, "Completed", minutes=60), trial(2, "InProgress")]
    described = followed({"HyperParameterTuningJobStatus": "InProgress"}, trials,
                         {"sweep-001-abcdef01": 1800.0, "sweep-002-abcdef02": None})
    half_hour_later = START.timestamp() + 1800
    # The ended trial: its 1,800 billable seconds (spot's discount in them) at the on-demand price;
    # the running one: half an hour so far at the spot rate.
    expected = 0.5 * itype.on_demand_usd_per_hour + 0.5 * itype.spot_usd_per_hour
    assert cost(launch, itype, described, half_hour_later) == pytest.approx(expected)


def test_the_best_trial_is_written_from_the_api_and_from_either_resource_status():
    best = {"TrainingJobName": "sweep-007-0a1b2c3d", "TunedHyperParameters": {"optimizer": "sgd", "lr": "0.01"},
            "FinalHyperParameterTuningJobObjectiveMetric": {"Type": "Maximize", "MetricName": "val:acc",
                                                            "Value": 0.93}}
    want = {C.TUNING_BEST_TRIAL: "sweep-007-0a1b2c3d", C.TUNING_BEST_OBJECTIVE: "val:acc=0.93",
            C.TUNING_BEST_HYPERPARAMETERS: '{"lr": "0.01", "optimizer": "sgd"}'}
    assert best_trial_annotations(best) == want
    ack = followed_resource({"status": {"hyperParameterTuningJobStatus": "Completed", "bestTrainingJob": {
        "trainingJobName": "sweep-007-0a1b2c3d", "tunedHyperParameters": {"optimizer": "sgd", "lr": "0.01"},
        "finalHyperParameterTuningJobObjectiveMetric": {"type_": "Maximize", "metricName": "val:acc",
                                                        "value": 0.93}}}})
    assert ack["_resource"] and best_trial_annotations(ack["_best"]) == want
    legacy = followed_resource({"status": {
        "hyperParameterTuningJobStatus": "Completed", "trainingJobStatusCounters": {"completed": 16},
        "bestTrainingJob": {"trainingJobName": "sweep-007-0a1b2c3d",
                            "tunedHyperParameters": [{"name": "optimizer", "value": "sgd"},
                                                     {"name": "lr", "value": "0.01"}],
                            "finalHyperParameterTuningJobObjectiveMetric": {"metricName": "val:acc", "value": 0.93}}}})
    assert legacy["_completed"] == 16 and best_trial_annotations(legacy["_best"]) == want
    assert json.loads(want[C.TUNING_BEST_HYPERPARAMETERS]) == best["TunedHyperParameters"]
    assert best_trial_annotations(None) == {}


def test_the_pod_of_index_i_succeeds_once_i_plus_one_trials_completed():
    def pod(index: str) -> dict:
        return {"metadata": {"annotations": {"batch.kubernetes.io/job-completion-index": index}}}

    running = Shown("Running")
    described = {"TrainingJobStatus": "InProgress", "_completed": 2}
    phases = [trial_pod_shown(running, pod(str(i)), described).phase for i in range(4)]
    assert phases == ["Succeeded", "Succeeded", "Running", "Running"]
    failed = Shown("Failed", "SageMakerTrainingFailed", "stopped")
    assert trial_pod_shown(failed, pod("0"), described) == failed, "an ended tuning job's answer stands"
    assert trial_pod_shown(running, pod("0"), None) == running, "nothing known yet"


def test_ended_trials_are_described_once_and_forgotten_when_the_sweep_ends():
    from scheduler.tuning_burst import TuningSteps

    class Trials:  # the SageMaker adapter's calls that TuningSteps makes
        def __init__(self):
            self.described: list[str] = []

        def describe_tuning_job(self, name):
            return {"HyperParameterTuningJobStatus": "InProgress", "HyperParameterTuningJobArn": "arn:h"}

        def tuning_trials(self, name):
            return [trial(1, "Completed", minutes=60) | {"TrainingJobName": f"{name}-001-abcdef01"},
                    trial(2, "InProgress") | {"TrainingJobName": f"{name}-002-abcdef02"}]

        def describe(self, name):
            self.described.append(name)
            return {"BillableTimeInSeconds": 1800}

    steps, sm = TuningSteps(), Trials()
    for _ in range(3):
        described = steps.described(sm, "sweep")
    assert sm.described == ["sweep-001-abcdef01"], "an ended trial's billed seconds never change: asked once"
    assert described is not None and described["_trials"][0][2] == 1800 and described["_trials"][1][2] is None
    steps.ended(sm, "sweep", EmitTarget.API)
    steps.described(sm, "sweep")
    assert sm.described == ["sweep-001-abcdef01"] * 2, "forgotten once the burst ended"
