"""A sweep's trials on the cluster: the Job webhook readies a Random, Grid or Bayesian sweep's pod
template, and the pod webhook gives the pod of index i trial i's hyperparameters as SageMaker passes
them (SM_HP_<NAME>, SM_HPS, /opt/ml/input/config/hyperparameters.json), or refuses it with the
reason; a Bayesian trial's are asked of Optuna given the finished trials recorded on its Job."""

from __future__ import annotations

import base64
import copy
import json
from importlib import resources

import jsonpatch
import yaml

from policies import constants as C
from policies import job_from_manifest
from policies.model import (HYPERPARAMETERS_DIR, TrialResult, read_trial_results, read_tuning_spec, trial_hyperparameters,
                            trial_results_text)
from scheduler.controller import LOG_ATTEMPTS, Controller
from scheduler.kube import KubeError
from scheduler.trial_history import UnreadableLog, harvested, index_of, unrecorded
from scheduler.trial_pods import COMPLETION_INDEX, TRIAL_LABEL, VOLUME
from scheduler.webhook import mutate, mutate_trial_pod, validate
from scheduler.world import World
from tests.builders import policy

EXAMPLE = yaml.safe_load(resources.files("policies").joinpath("examples/tuning-job.yaml").read_text())
SPEC_TEXT = EXAMPLE["metadata"]["annotations"][C.TUNING_SPEC]


def sweep(**annotations: str | None) -> dict:
    job = copy.deepcopy(EXAMPLE)
    del job["spec"]["suspend"]
    ann = job["metadata"]["annotations"]
    for key, value in annotations.items():
        if value is None:
            ann.pop(key, None)
        else:
            ann[key] = value
    return job


def patched(response: dict, obj: dict) -> dict:
    assert response["allowed"], response
    if "patch" not in response:
        return obj
    return jsonpatch.apply_patch(obj, json.loads(base64.b64decode(response["patch"])))


def create(obj: dict, **extra) -> dict:
    return {"uid": "u1", "operation": "CREATE", "namespace": "ml-research", "object": obj, **extra}


def trial_pod(job: dict, index: int | None, env: list | None = None) -> dict:
    """The pod the Job controller creates from the (mutated) template: its labels and annotations,
    and the index it writes."""
    template = job["spec"]["template"]
    annotations = dict((template.get("metadata") or {}).get("annotations") or {})
    if index is not None:
        annotations[COMPLETION_INDEX] = str(index)
    spec = copy.deepcopy(template["spec"])
    if env is not None:
        spec["containers"][0]["env"] = env
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": f"{job['metadata']['name']}-{index}-abcde", "namespace": "ml-research",
                         "labels": dict((template.get("metadata") or {}).get("labels") or {}),
                         "annotations": annotations},
            "spec": spec}


def test_the_job_webhook_labels_a_random_sweeps_template_and_puts_its_spec_on_it():
    job = patched(mutate(create(sweep()), policy()), sweep())
    assert job["spec"]["suspend"] is True
    meta = job["spec"]["template"]["metadata"]
    assert meta["labels"] == {TRIAL_LABEL: "true"}
    assert meta["annotations"] == {C.TUNING_SPEC: SPEC_TEXT}


def test_a_spec_in_a_configmap_is_copied_onto_the_template_at_create():
    job = sweep(**{C.TUNING_SPEC: None, C.TUNING_SPEC_CONFIGMAP: "resnet/sweep.yaml"})
    job["spec"]["template"]["metadata"] = {"labels": {"team": "vision"}}
    asked = []

    def read(namespace, name):
        asked.append((namespace, name))
        return {"data": {"sweep.yaml": SPEC_TEXT}}

    out = patched(mutate(create(job), policy(), read), job)
    assert asked == [("ml-research", "resnet")]
    assert out["spec"]["template"]["metadata"] == {"labels": {"team": "vision", TRIAL_LABEL: "true"},
                                                   "annotations": {C.TUNING_SPEC: SPEC_TEXT}}
    assert validate(create(job), policy(), read)["allowed"]
    denied = validate(create(job), policy(), lambda ns, name: None)
    assert not denied["allowed"] and "no ConfigMap resnet in the Job's namespace" in denied["status"]["message"]


def test_a_hyperband_sweep_or_a_training_job_is_not_readied_for_trials():
    hyperband = sweep(**{C.TUNING_SPEC: SPEC_TEXT.replace("strategy: Random", "strategy: Hyperband")})
    assert "metadata" not in patched(mutate(create(hyperband), policy()), hyperband)["spec"]["template"]
    training = sweep(**{C.SAGEMAKER_KIND: None, C.TUNING_SPEC: None})
    assert "metadata" not in patched(mutate(create(training), policy()), training)["spec"]["template"]


def test_the_pod_of_index_i_gets_trial_is_values_as_sagemaker_passes_them():
    job = patched(mutate(create(sweep()), policy()), sweep())
    pod = trial_pod(job, 5, env=[{"name": "SM_HP_EPOCHS", "value": "1"}, {"name": "DATA", "value": "/d"}])
    out = patched(mutate_trial_pod(create(pod), policy()), pod)
    values = trial_hyperparameters(job_from_manifest(EXAMPLE).tuning, 5)
    assert json.loads(out["metadata"]["annotations"][C.TRIAL_HYPERPARAMETERS]) == values
    env = {e["name"]: e["value"] for e in out["spec"]["containers"][0]["env"]}
    assert env["SM_HP_LEARNING_RATE"] == values["learning_rate"] and env["SM_HP_OPTIMIZER"] == values["optimizer"]
    assert json.loads(env["SM_HPS"]) == values
    assert env["SM_HP_EPOCHS"] == "1", "a variable the container sets is left as it is"
    assert env["DATA"] == "/d"
    volume = next(v for v in out["spec"]["volumes"] if v["name"] == VOLUME)
    assert volume["downwardAPI"]["items"] == [{"path": "hyperparameters.json", "fieldRef": {
        "fieldPath": f"metadata.annotations['{C.TRIAL_HYPERPARAMETERS}']"}}]
    assert out["spec"]["containers"][0]["volumeMounts"] == [
        {"name": VOLUME, "mountPath": HYPERPARAMETERS_DIR, "readOnly": True}]
    again = patched(mutate_trial_pod(create(trial_pod(job, 5)), policy()), trial_pod(job, 5))
    assert again["metadata"]["annotations"][C.TRIAL_HYPERPARAMETERS] == \
        out["metadata"]["annotations"][C.TRIAL_HYPERPARAMETERS], "a retried trial gets the same values"


def test_a_trial_pod_without_its_index_is_refused_with_the_reason():
    job = patched(mutate(create(sweep()), policy()), sweep())
    answer = mutate_trial_pod(create(trial_pod(job, None)), policy())
    assert not answer["allowed"]
    assert "completionMode: Indexed" in answer["status"]["message"]


# --- a Bayesian sweep: Optuna asked given the Job's finished trials ------------------------------------

BAYES_TEXT = SPEC_TEXT.replace("strategy: Random", "strategy: Bayesian")
JOB_UID = "0b5e1c1e-0000-4000-8000-00000000b001"


def bayesian_job(results: list[TrialResult] | None = None, placement: str = "Local") -> dict:
    """The sweep as the pod webhook reads it from the API: mutated at create, placed, its
    finished trials recorded."""
    job = patched(mutate(create(sweep(**{C.TUNING_SPEC: BAYES_TEXT})), policy()), sweep(**{C.TUNING_SPEC: BAYES_TEXT}))
    job["metadata"].update(namespace="ml-research", uid=JOB_UID)
    job["metadata"]["annotations"][C.DECISION_PLACEMENT] = placement
    if results is not None:
        job["metadata"]["annotations"][C.TRIAL_RESULTS] = trial_results_text(results)
    return job


def owned_trial_pod(job: dict, index: int) -> dict:
    pod = trial_pod(job, index)
    pod["metadata"]["ownerReferences"] = [{"apiVersion": "batch/v1", "kind": "Job", "name": job["metadata"]["name"],
                                           "uid": JOB_UID, "controller": True}]
    return pod


def succeeded(job: dict, index: int) -> dict:
    pod = owned_trial_pod(job, index)
    pod["status"] = {"phase": "Succeeded"}
    return pod


def ask(job: dict | None, pod: dict, finished_pods: list[dict]) -> dict:
    reads: list[tuple[str, str]] = []

    def read_job(namespace: str, name: str) -> dict | None:
        reads.append((namespace, name))
        return job

    answer = mutate_trial_pod(create(pod), policy(), read_job, lambda namespace, uid: finished_pods)
    assert reads == [("ml-research", pod["metadata"]["ownerReferences"][0]["name"])]
    return answer


def test_a_bayesian_sweeps_template_is_readied_and_its_trial_asks_optuna_given_the_recorded_trials():
    job = bayesian_job()
    assert job["spec"]["template"]["metadata"]["labels"][TRIAL_LABEL] == "true"
    first = patched(ask(job, owned_trial_pod(job, 0), []), owned_trial_pod(job, 0))
    values = json.loads(first["metadata"]["annotations"][C.TRIAL_HYPERPARAMETERS])
    assert 1e-4 <= float(values["learning_rate"]) <= 0.3 and values["epochs"] == "12"
    assert first["metadata"]["annotations"][C.TRIAL_ASKED_WITH] == ""
    env = {e["name"]: e["value"] for e in first["spec"]["containers"][0]["env"]}
    assert env["SM_HP_LEARNING_RATE"] == values["learning_rate"] and json.loads(env["SM_HPS"]) == values
    assert any(v["name"] == VOLUME for v in first["spec"]["volumes"])

    done = [TrialResult(0, "p0", values, 0.71), TrialResult(1, "p1", {**values, "learning_rate": "0.2"}, None, "no match")]
    later = bayesian_job(done)
    pod = owned_trial_pod(later, 2)
    out = patched(ask(later, pod, [succeeded(later, 0), succeeded(later, 1)]), pod)
    assert out["metadata"]["annotations"][C.TRIAL_ASKED_WITH] == "0", "a trial without an objective teaches nothing"
    again = patched(ask(later, pod, [succeeded(later, 0), succeeded(later, 1)]), pod)
    assert again["metadata"]["annotations"] == out["metadata"]["annotations"], "the same history, the same values"


def test_a_bayesian_trial_waits_for_every_finished_trials_objective_to_be_recorded():
    job = bayesian_job([TrialResult(0, "p0", {"learning_rate": "0.01"}, 0.5)])
    answer = ask(job, owned_trial_pod(job, 3), [succeeded(job, 0), succeeded(job, 1), succeeded(job, 2)])
    assert not answer["allowed"]
    assert "trial 3 waits for the objective of finished trials 1, 2" in answer["status"]["message"]
    assert C.TRIAL_RESULTS in answer["status"]["message"]


def test_a_bayesian_trial_whose_job_cannot_be_read_is_refused_with_the_reason():
    job = bayesian_job()
    gone = ask(None, owned_trial_pod(job, 0), [])
    assert not gone["allowed"] and "Job ml-research/sweep-resnet-lr is not there" in gone["status"]["message"]

    def broken(namespace: str, name: str) -> dict:
        raise OSError("connection refused")

    failed = mutate_trial_pod(create(owned_trial_pod(job, 0)), policy(), broken, lambda namespace, uid: [])
    assert not failed["allowed"]
    assert "cannot read Job ml-research/sweep-resnet-lr or its pods (connection refused)" in failed["status"]["message"]
    blind = mutate_trial_pod(create(owned_trial_pod(job, 0)), policy())
    assert not blind["allowed"] and "cannot read Jobs" in blind["status"]["message"]
    orphan = mutate_trial_pod(create(trial_pod(job, 0)), policy(), lambda ns, name: job, lambda ns, uid: [])
    assert not orphan["allowed"] and "names no Job as its owner" in orphan["status"]["message"]


def test_a_burst_bayesian_sweeps_pods_get_no_values_sagemakers_tuner_chooses_them():
    job = bayesian_job(placement="SageMakerSpot")
    answer = ask(job, owned_trial_pod(job, 4), [succeeded(job, 0)])
    assert answer["allowed"] and "patch" not in answer


def test_the_controllers_record_adds_each_new_trials_values_and_objective_and_keeps_the_rest():
    job = bayesian_job([TrialResult(0, "p0", {"learning_rate": "0.01"}, 0.5)])
    spec = read_tuning_spec(yaml.safe_load(BAYES_TEXT), "spec", None, lambda *problem: None)
    pods = [succeeded(job, i) for i in (0, 1, 2)]
    for i, pod in enumerate(pods):
        pod["metadata"]["annotations"][C.TRIAL_HYPERPARAMETERS] = json.dumps({"learning_rate": f"0.0{i + 1}"})
    fresh = unrecorded(job, pods)
    assert [index_of(p) for p in fresh] == [1, 2], "a restarted controller reads only what the Job lacks"
    logs = {pods[1]["metadata"]["name"]: "val_acc=0.7\nval_acc=0.83\n"}

    def read_log(namespace: str, name: str) -> str:
        if name not in logs:
            raise UnreadableLog("node gpu-7 is gone")
        return logs[name]

    results = read_trial_results(harvested(job, spec, fresh, read_log))
    assert [(r.index, r.values, r.objective) for r in results] == [
        (0, {"learning_rate": "0.01"}, 0.5), (1, {"learning_rate": "0.02"}, 0.83), (2, {"learning_rate": "0.03"}, None)]
    assert results[2].note == "its log cannot be read: node gpu-7 is gone", "recorded, so the sweep goes on"
    assert harvested(job, spec, [], read_log) is None


class LogsDown:
    """The controller's Kube where the API server cannot reach a finished trial's kubelet."""

    def __init__(self, pods: list[dict], status: int = 500):
        self.pods, self.status, self.reads, self.patches = pods, status, 0, []

    def list_pods_selected(self, label_selector: str, field_selector: str = "", namespace=None) -> list[dict]:
        assert (label_selector, field_selector) == (f"{TRIAL_LABEL}=true", "status.phase=Succeeded")
        return self.pods

    def read_pod_log(self, namespace: str, name: str) -> str:
        self.reads += 1
        raise KubeError(self.status, "InternalError", "dial tcp 10.0.0.7:10250: connect: connection refused")

    def patch_job(self, namespace: str, name: str, body: dict) -> dict:
        self.patches.append(body)
        return {"metadata": {"name": name, "namespace": namespace, "resourceVersion": "2"}}


def running_sweep() -> dict:
    job = bayesian_job()
    job["spec"]["suspend"] = False
    job["metadata"]["resourceVersion"] = "1"
    return job


def test_a_log_the_api_server_cannot_reach_delays_the_record_but_not_the_cycle_nor_the_sweep_for_ever():
    job = running_sweep()
    pod = succeeded(job, 0)
    kube = LogsDown([pod])
    ctl = Controller(kube, policy())  # type: ignore[arg-type]
    world = World(0.0, [job], [], [])
    for attempt in range(1, LOG_ATTEMPTS):
        assert ctl._record_trials(world) is True, "not yet: the cycle goes on, and looks again soon"
        assert kube.reads == attempt and kube.patches == []
    assert ctl._record_trials(world) is False
    [patch] = kube.patches
    [result] = read_trial_results(patch["metadata"]["annotations"][C.TRIAL_RESULTS])
    assert result.index == 0 and result.objective is None and "connection refused" in result.note
    job = running_sweep()
    gone = LogsDown([succeeded(job, 1)], status=404)
    ctl = Controller(gone, policy())  # type: ignore[arg-type]
    assert ctl._record_trials(World(0.0, [job], [], [])) is False and gone.reads == 1, "a 404 is final at once"
    assert len(gone.patches) == 1
