"""The admission webhook's answers (pure): suspend what opts in, refuse what does not parse."""

from __future__ import annotations

import base64
import json

from policies import constants as C
from scheduler.webhook import mutate, validate
from tests.builders import policy


def job(annotations=None, *, suspend=None, labels=None, namespace="ml") -> dict:
    spec = {"template": {"spec": {"restartPolicy": "Never", "containers": [
        {"name": "t", "image": "t:1", "resources": {"limits": {"nvidia.com/gpu": "1"}}}]}}}
    if suspend is not None:
        spec["suspend"] = suspend
    return {"apiVersion": "batch/v1", "kind": "Job", "metadata": {
        "name": "train", "namespace": namespace, "annotations": annotations or {}, "labels": labels or {}}, "spec": spec}


def request(obj, operation="CREATE", old=None) -> dict:
    return {"uid": "u-1", "operation": operation, "namespace": obj["metadata"]["namespace"], "object": obj,
            **({"oldObject": old} if old is not None else {})}


def patch_of(response: dict) -> list:
    return json.loads(base64.b64decode(response["patch"])) if "patch" in response else []


def test_an_opted_in_job_is_suspended_and_others_are_left_alone():
    answer = mutate(request(job({C.MODE: "auto"})), policy())
    assert answer["allowed"] and answer["uid"] == "u-1" and answer["patchType"] == "JSONPatch"
    assert patch_of(answer) == [{"op": "add", "path": "/spec/suspend", "value": True}]
    assert patch_of(mutate(request(job({C.MODE: "auto"}, suspend=True)), policy())) == []
    assert patch_of(mutate(request(job()), policy())) == []  # not opted in
    queued = job({C.MODE: "auto"}, labels={"kueue.x-k8s.io/queue-name": "lq"})
    assert patch_of(mutate(request(queued), policy())) == [], "Kueue suspends its own Jobs"
    managed = policy(managedJobs={"namespaces": ["research"]})
    assert patch_of(mutate(request(job(namespace="research")), managed)), "a managed namespace opts in"
    assert patch_of(mutate(request(job({C.MODE: "auto"}), "UPDATE", job()), policy())) == []


def test_a_wrong_annotation_is_refused_with_the_field_and_its_fix():
    answer = validate(request(job({C.MODE: "auto", C.RUNTIME_ESTIMATE: "soon"})), policy())
    assert answer["allowed"] is False and answer["status"]["code"] == 422
    message = answer["status"]["message"]
    assert message.startswith("ml/train: error: ") and C.RUNTIME_ESTIMATE in message and "(fix: " in message
    assert validate(request(job({C.MODE: "auto", C.RUNTIME_ESTIMATE: "2h"})), policy())["allowed"]


def test_an_update_is_judged_only_when_a_users_spillway_input_changed():
    bad = job({C.MODE: "auto", C.CAPACITY_TYPE: "cheap"})
    assert validate(request(bad, "UPDATE", bad), policy())["allowed"], "unchanged inputs: Spillway's writes pass"
    written = job({C.MODE: "auto", C.CAPACITY_TYPE: "cheap", C.DECISION_REASON: "Wait"})
    assert validate(request(written, "UPDATE", bad), policy())["allowed"]
    fine = job({C.MODE: "auto"})
    assert validate(request(bad, "UPDATE", fine), policy())["allowed"] is False
