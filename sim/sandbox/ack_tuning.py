"""The ACK SageMaker controller's part for hyperparameter tuning, in the sandbox's stand-in:
HyperParameterTuningJob resources become tuning jobs, and the tuning job's status is mirrored back
in ACK's spelling (hyperParameterTuningJobStatus, failureReason, bestTrainingJob with
trainingJobARN and type_, ackResourceMetadata).

As ACK does: the resource gets its finalizer; a deleted one has its tuning job stopped before the
finalizer goes; SageMaker refusing the job is an ACK.Terminal condition. sim.sandbox.ack's
AckStandIn runs it on each of its passes.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from .ack_spelling import TERMINAL, to_api
from .store import ApiError, Store

FINALIZER = "finalizers.sagemaker.services.k8s.aws/HyperParameterTuningJob"


def _api(spec: dict) -> dict:
    """ACK spelling to the API's; ACK spells the objective's Type `type_` (a Go keyword)."""
    request = to_api(spec)
    objective = (request.get("HyperParameterTuningJobConfig") or {}).get("HyperParameterTuningJobObjective") or {}
    if "Type_" in objective:
        objective["Type"] = objective.pop("Type_")
    return request


def _ack_best(best: dict[str, Any]) -> dict[str, Any]:
    """BestTrainingJob in ACK's spelling, its times as RFC 3339 strings."""
    out: dict[str, Any] = {}
    for key, value in best.items():
        name = key[:1].lower() + key[1:]
        if key == "TrainingJobArn":
            name = "trainingJobARN"
        if isinstance(value, datetime):
            value = value.strftime("%Y-%m-%dT%H:%M:%SZ")
        if key == "FinalHyperParameterTuningJobObjectiveMetric":
            value = {"type_": value.get("Type"), "metricName": value.get("MetricName"), "value": value.get("Value")}
        out[name] = value
    return out


class AckTuningStandIn:
    def __init__(self, store: Store, sagemaker, *, account: str, region: str):
        self.store, self.sm, self.account, self.region = store, sagemaker, account, region
        self.type = store.type_for("sagemaker.services.k8s.aws", "v1alpha1", "hyperparametertuningjobs")

    def reconcile(self) -> None:
        with self.store.lock:
            resources = list(self.store.objects[self.type.key].items())
        for (ns, name), obj in resources:
            try:
                self._one(ns, name, obj)
            except ApiError:
                continue  # changed under us; the next pass sees the new version

    def _one(self, ns: str, name: str, obj: dict) -> None:
        meta, spec, status = obj["metadata"], obj.get("spec") or {}, obj.get("status") or {}
        job_name = spec.get("hyperParameterTuningJobName") or name
        finalizers = meta.get("finalizers") or []
        if meta.get("deletionTimestamp"):
            if status.get("hyperParameterTuningJobStatus") == "InProgress":
                try:
                    self.sm.stop_hyper_parameter_tuning_job(HyperParameterTuningJobName=job_name)
                except Exception:  # noqa: BLE001 - already gone
                    pass
            self._patch(ns, name, {"metadata": {"finalizers": [f for f in finalizers if f != FINALIZER]}})
            return
        if FINALIZER not in finalizers:
            self._patch(ns, name, {"metadata": {"finalizers": [*finalizers, FINALIZER]}})
        if not (status.get("ackResourceMetadata") or {}).get("arn"):
            try:
                arn = self.sm.create_hyper_parameter_tuning_job(**_api(spec))["HyperParameterTuningJobArn"]
            except Exception as exc:  # noqa: BLE001 - SageMaker said no: a terminal condition
                self._status(ns, name, {**status, "conditions": [
                    {"type": "ACK.Terminal", "status": "True", "message": str(exc)[:1000]},
                    {"type": "ACK.ResourceSynced", "status": "False", "message": "creation failed"}]})
                return
            status = {**status, "ackResourceMetadata": {"arn": arn, "ownerAccountID": self.account,
                                                         "region": self.region}}
        described = self.sm.describe_hyper_parameter_tuning_job(HyperParameterTuningJobName=job_name)
        state = described.get("HyperParameterTuningJobStatus")
        new = {**status, "hyperParameterTuningJobStatus": state,
               "conditions": [{"type": "ACK.ResourceSynced", "status": "True" if state in TERMINAL else "False",
                               "message": f"HyperParameterTuningJob is {state}"}]}
        if described.get("FailureReason"):
            new["failureReason"] = described["FailureReason"]
        if described.get("BestTrainingJob"):
            new["bestTrainingJob"] = _ack_best(described["BestTrainingJob"])
        if new != status:
            self._status(ns, name, new)

    def _patch(self, ns: str, name: str, patch: dict) -> None:
        from .patches import merge_patch

        self.store.update(self.type, ns, name, merge_patch(self.store.get(self.type, ns, name), patch))

    def _status(self, ns: str, name: str, status: dict) -> None:
        current = self.store.get(self.type, ns, name)
        self.store.update(self.type, ns, name, {**current, "status": status}, subresource="status")
