"""Spillway's Kueue admission check, its reading and writing (scheduler/kueue.py), on a recording
fake of the Kube adapter; tests/real/test_kueue.py runs it against Kueue itself."""

from __future__ import annotations

import logging

from policies import constants as C
from scheduler.kube import KubeError
from scheduler.kueue import KueueChecks, PendingCheck


class FakeKube:
    def __init__(self, objects: dict[str, list[dict]] | None = None, error: KubeError | None = None):
        self.objects, self.error = objects or {}, error
        self.calls: list[tuple] = []

    def list_custom(self, api_version: str, plural: str) -> list[dict]:
        self.calls.append(("list", plural))
        if self.error is not None:
            raise self.error
        return self.objects.get(plural, [])

    def get_custom(self, api_version: str, plural: str, namespace: str, name: str) -> dict:
        return next(o for o in self.objects[plural] if o["metadata"]["name"] == name)

    def patch_custom_status(self, api_version, plural, namespace, name, patch):
        self.calls.append(("patch", plural, name, patch))
        return {}


CHECK = {"metadata": {"name": "burst", "generation": 1}, "spec": {"controllerName": C.KUEUE_CHECK_CONTROLLER}}
OTHER = {"metadata": {"name": "provisioning"}, "spec": {"controllerName": "kueue.x-k8s.io/provisioning-request"}}


def workload(state: str = "Pending", reserved: bool = True) -> dict:
    return {"metadata": {"name": "job-train-1", "namespace": "ml", "resourceVersion": "7",
                         "ownerReferences": [{"kind": "Job", "name": "train", "uid": "job-uid", "controller": True}]},
            "spec": {"podSets": [{"name": "main", "count": 1}]},
            "status": {**({"admission": {"clusterQueue": "gpu"}} if reserved else {}),
                       "admissionChecks": [{"name": "burst", "state": state, "message": ""},
                                           {"name": "provisioning", "state": "Ready", "message": "ok"}]}}


def test_a_pending_check_with_quota_reserved_is_spillways_to_decide_and_its_check_is_marked_active():
    kube = FakeKube({"admissionchecks": [CHECK, OTHER], "workloads": [workload(), workload("Ready")]})
    pending = KueueChecks(kube).pending(0.0)
    assert pending == {"job-uid": PendingCheck("ml", "job-train-1", "burst", "job-uid", ("main",))}
    [active] = [c for c in kube.calls if c[0] == "patch"]
    assert active[1:3] == ("admissionchecks", "burst"), "only Spillway's own AdmissionCheck is marked"
    assert active[3]["status"]["conditions"][0]["type"] == "Active"
    assert KueueChecks(FakeKube({"admissionchecks": [CHECK], "workloads": [workload(reserved=False)]})).pending(0.0) \
        == {}, "no quota reserved yet: nothing to decide"


def test_ready_writes_only_spillways_state_with_tolerations_and_keeps_the_other_checks():
    kube = FakeKube({"workloads": [workload()]})
    KueueChecks(kube).ready(PendingCheck("ml", "job-train-1", "burst", "job-uid", ("main",)), "bursting", 0.0)
    [(_, plural, name, patch)] = [c for c in kube.calls if c[0] == "patch"]
    assert (plural, name, patch["metadata"]["resourceVersion"]) == ("workloads", "job-train-1", "7")
    mine, other = patch["status"]["admissionChecks"]
    assert (mine["state"], mine["message"]) == ("Ready", "bursting")
    assert [t["key"] for t in mine["podSetUpdates"][0]["tolerations"]] == ["node.kubernetes.io/not-ready",
                                                                          "node.kubernetes.io/unreachable"]
    assert other == {"name": "provisioning", "state": "Ready", "message": "ok"}, "another check is written back as read"


def test_without_kueue_it_says_so_once_and_asks_again_later(caplog):
    kube = FakeKube(error=KubeError(404, "NotFound", "the server could not find the requested resource"))
    checks = KueueChecks(kube)
    with caplog.at_level(logging.INFO, logger="scheduler.kueue"):
        assert checks.pending(0.0) == {} and checks.pending(10.0) == {}
        assert len([c for c in kube.calls if c[0] == "list"]) == 1, "not asked again at once"
        assert checks.pending(601.0) == {}
    assert len([c for c in kube.calls if c[0] == "list"]) == 2, "asked again after 10 minutes"
    assert [r.message for r in caplog.records].count(
        "no Kueue here (NotFound); not acting as an admission check") == 1, "said once"
    forbidden = KueueChecks(FakeKube(error=KubeError(403, "Forbidden", "cannot list admissionchecks")))
    with caplog.at_level(logging.WARNING, logger="scheduler.kueue"):
        forbidden.pending(0.0)
    assert any("apply deploy/kueue/" in r.message for r in caplog.records if r.levelno == logging.WARNING)

