"""Spillway as a Kueue admission check (controllerName spillway.io/sagemaker-burst).

Kueue keeps quota, order and fair sharing. A ClusterQueue lists a `sagemaker` ResourceFlavor
(its nodeLabels and tolerations point at the virtual node) and, with admissionChecksStrategy
onFlavors, Spillway's AdmissionCheck on it. When Kueue reserves quota for a Workload on that
flavor, the check is Pending, and the controller's core decides the Job as it decides any other:

- a burst (bursting now is worth more than waiting, within budget): the burst is written to the
  ledger, then the check is Ready, with pod-set updates that tolerate the virtual node going
  not-ready or unreachable. Kueue admits the Workload and un-suspends the Job onto the virtual
  node, whose agent runs it on SageMaker;
- wait, or local GPUs free now: Retry, with requeueAfterSeconds. Kueue releases the quota and
  queues the Workload again (where the cluster's own flavor may take it);
- what can never burst (an allowlist, a Job SageMaker cannot run, no instance type): Rejected,
  with the reason.

Kueue owns `suspend` of the Jobs it queues: Spillway never un-suspends them itself.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from policies import constants as C
from policies.model import Decision, Reason, format_time

from .kube import Kube, KubeError
from .node_agent import TOLERATIONS

log = logging.getLogger(__name__)
API_VERSION = "kueue.x-k8s.io/v1beta2"
CONTROLLER_NAME = C.KUEUE_CHECK_CONTROLLER
NEVER = {Reason.BURST_NOT_ALLOWED, Reason.NOT_TRANSLATABLE, Reason.NO_INSTANCE_TYPE}
ASK_AGAIN_SECONDS = 600  # Kueue (or its RBAC) may be installed later: look again this often
RETRY_SECONDS_MIN = 10  # never ask Kueue to come back sooner: a Retry releases and re-reserves quota


@dataclass(frozen=True)
class PendingCheck:
    """A Workload whose Spillway check waits for a decision: quota is reserved on a flavor it guards."""

    namespace: str
    workload: str
    check: str
    job_uid: str
    pod_sets: tuple[str, ...]


def queued_by_kueue(job: dict) -> bool:
    return C.KUEUE_QUEUE_LABEL in (job["metadata"].get("labels") or {})


class KueueChecks:
    """Reads the Workloads that wait on Spillway's AdmissionChecks and writes their states."""

    def __init__(self, kube: Kube):
        self.kube = kube
        self.available = True  # False while Kueue is absent (or not ours to read): asked again later
        self._ask_again_at = 0.0
        self._told = 0  # the status last logged (404: no Kueue, 403: no RBAC)

    def pending(self, now: float) -> dict[str, PendingCheck]:
        """By the UID of each Workload's Job. Spillway's AdmissionChecks are marked Active first."""
        if not self.available and now < self._ask_again_at:
            return {}
        self.available = True
        try:
            checks = self._our_checks(now)
            workloads = self.kube.list_custom(API_VERSION, "workloads") if checks else []
        except KubeError as exc:
            if exc.status not in (403, 404):
                raise
            self.available, self._ask_again_at = False, now + ASK_AGAIN_SECONDS
            told, self._told = self._told, exc.status  # said once, not every time it asks again
            if exc.status == 404:
                if told != 404:
                    log.info("no Kueue here (%s); not acting as an admission check", exc.reason)
                return {}
            if told != 403:
                log.warning("Kueue is installed, but this controller may not read its AdmissionChecks and "
                            "Workloads (%s); apply deploy/kueue/ to let Spillway be its admission check", exc.message)
            return {}
        out = {}
        for wl in workloads:
            status = wl.get("status") or {}
            if not status.get("admission"):
                continue  # no quota reserved yet: nothing to decide
            owner = next((r.get("uid") for r in wl["metadata"].get("ownerReferences") or []
                          if r.get("kind") == "Job" and r.get("controller")), None)
            for state in status.get("admissionChecks") or []:
                if state.get("name") in checks and state.get("state") == "Pending" and owner:
                    pod_sets = tuple(p["name"] for p in (wl.get("spec") or {}).get("podSets") or [])
                    out[owner] = PendingCheck(wl["metadata"]["namespace"], wl["metadata"]["name"], state["name"],
                                              owner, pod_sets)
        return out

    def _our_checks(self, now: float) -> set[str]:
        names = set()
        for ac in self.kube.list_custom(API_VERSION, "admissionchecks"):
            if (ac.get("spec") or {}).get("controllerName") != CONTROLLER_NAME:
                continue
            names.add(ac["metadata"]["name"])
            conditions = (ac.get("status") or {}).get("conditions") or []
            if not any(c.get("type") == "Active" and c.get("status") == "True" for c in conditions):
                self.kube.patch_custom_status(API_VERSION, "admissionchecks", "", ac["metadata"]["name"], {
                    "status": {"conditions": [c for c in conditions if c.get("type") != "Active"] + [{
                        "type": "Active", "status": "True", "reason": "Active", "observedGeneration":
                            ac["metadata"].get("generation", 1), "lastTransitionTime": format_time(now),
                        "message": "Spillway decides whether Workloads on this flavor burst to SageMaker"}]}})
        return names

    def ready(self, pending: PendingCheck, message: str, now: float) -> None:
        updates = [{"name": name, "tolerations": [t for t in TOLERATIONS if t["effect"] == "NoExecute"]}
                   for name in pending.pod_sets]
        self._set(pending, {"state": "Ready", "message": message[:1000], "podSetUpdates": updates}, now)

    def retry(self, pending: PendingCheck, message: str, after_seconds: float, now: float) -> None:
        self._set(pending, {"state": "Retry", "message": message[:1000],
                            "requeueAfterSeconds": max(int(after_seconds), RETRY_SECONDS_MIN)}, now)

    def reject(self, pending: PendingCheck, message: str, now: float) -> None:
        self._set(pending, {"state": "Rejected", "message": message[:1000]}, now)

    def answer(self, pending: PendingCheck, d: Decision, now: float) -> None:
        """A decision that is not a burst, as the check's state."""
        if d.reason in NEVER:
            self.reject(pending, f"{d.reason.value}: {d.message}", now)
        elif d.placement.value == "Local":
            self.retry(pending, f"{d.reason.value}: local GPUs are free: {d.message}", RETRY_SECONDS_MIN, now)
        else:
            self.retry(pending, f"{d.reason.value}: {d.message}", d.requeue_after_seconds or 60.0, now)

    def _set(self, pending: PendingCheck, state: dict, now: float) -> None:
        """The check's state in the Workload's status, read-modify-write on its resourceVersion (a
        merge patch replaces the whole list: the other checks' states are written back as read)."""
        for _ in range(5):
            wl = self._get(pending)
            if wl is None:
                return
            states = (wl.get("status") or {}).get("admissionChecks") or []
            mine = next((s for s in states if s.get("name") == pending.check), None)
            if mine is None or mine.get("state") != "Pending":
                return  # Kueue moved on (evicted, or another writer answered)
            new = {k: v for k, v in mine.items() if k not in ("podSetUpdates", "requeueAfterSeconds")}
            new.update(state, lastTransitionTime=format_time(now))
            patch = {"metadata": {"resourceVersion": wl["metadata"]["resourceVersion"]},
                     "status": {"admissionChecks": [new if s is mine else s for s in states]}}
            try:
                self.kube.patch_custom_status(API_VERSION, "workloads", pending.namespace, pending.workload, patch)
                return
            except KubeError as exc:
                if not exc.conflict:
                    raise

    def _get(self, pending: PendingCheck) -> dict | None:
        try:
            return self.kube.get_custom(API_VERSION, "workloads", pending.namespace, pending.workload)
        except KubeError as exc:
            if exc.not_found:
                return None
            raise
