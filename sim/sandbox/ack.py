"""A stand-in for the ACK SageMaker controller: TrainingJob custom resources become SageMaker
training jobs (on the sandbox's SageMaker), and their status is mirrored back onto the resource.
Model and TransformJob resources go the same way (sim.sandbox.ack_transform), and so do
HyperParameterTuningJob resources (sim.sandbox.ack_tuning).

What the real controller does and this one does too: adopt the resource with its finalizer,
create the job with the spec translated field by field (roleARN -> RoleArn, s3URI -> S3Uri ...),
fill status.ackResourceMetadata, trainingJobStatus, secondaryStatus, failureReason and
modelArtifacts, set ACK.ResourceSynced (and ACK.Terminal when SageMaker refuses the job), and
stop the job before it lets a deleted resource go.
"""

from __future__ import annotations

from .ack_spelling import TERMINAL, api_name, to_api
from .ack_transform import AckTransformStandIn
from .ack_tuning import AckTuningStandIn
from .loop import ReconcileLoop
from .store import ApiError, Store

FINALIZER = "finalizers.sagemaker.services.k8s.aws/TrainingJob"
__all__ = ["AckStandIn", "FINALIZER", "TERMINAL", "api_name", "to_api"]


class AckStandIn(ReconcileLoop):
    name = "ack-sagemaker"

    def __init__(self, store: Store, sagemaker, *, account: str = "123456789012", region: str = "us-east-1",
                 period: float = 0.1):
        super().__init__(period)
        self.store, self.sm, self.account, self.region = store, sagemaker, account, region
        self.type = store.type_for("sagemaker.services.k8s.aws", "v1alpha1", "trainingjobs")
        self.transforms = AckTransformStandIn(store, sagemaker, account=account, region=region)  # Model, TransformJob
        self.tunings = AckTuningStandIn(store, sagemaker, account=account, region=region)  # HyperParameterTuningJob

    def reconcile(self) -> None:
        with self.store.lock:
            resources = [((ns, name), obj) for (ns, name), obj in self.store.objects[self.type.key].items()]
        for (ns, name), obj in resources:
            try:
                self._one(ns, name, obj)
            except ApiError:
                continue  # changed under us; the next pass sees the new version
        self.transforms.reconcile()
        self.tunings.reconcile()

    def _one(self, ns: str, name: str, obj: dict) -> None:
        meta, spec, status = obj["metadata"], obj.get("spec") or {}, obj.get("status") or {}
        job_name = spec.get("trainingJobName") or name
        if meta.get("deletionTimestamp"):
            if status.get("trainingJobStatus") == "InProgress":
                try:
                    self.sm.stop_training_job(TrainingJobName=job_name)
                except Exception:  # noqa: BLE001 - already gone
                    pass
            self._patch(ns, name, {"metadata": {"finalizers": [f for f in meta.get("finalizers") or []
                                                               if f != FINALIZER]}})
            return
        if FINALIZER not in (meta.get("finalizers") or []):
            self._patch(ns, name, {"metadata": {"finalizers": [*(meta.get("finalizers") or []), FINALIZER]}})
        arn = (status.get("ackResourceMetadata") or {}).get("arn")
        if arn is None:
            request = to_api(spec)
            request["TrainingJobName"] = job_name
            try:
                arn = self.sm.create_training_job(**request)["TrainingJobArn"]
            except Exception as exc:  # noqa: BLE001 - SageMaker said no: a terminal condition
                self._status(ns, name, {**status, "conditions": [
                    {"type": "ACK.Terminal", "status": "True", "message": str(exc)[:1000]},
                    {"type": "ACK.ResourceSynced", "status": "False", "message": "creation failed"}]})
                return
            status = {**status, "ackResourceMetadata": {"arn": arn, "ownerAccountID": self.account,
                                                         "region": self.region}}
        described = self.sm.describe_training_job(TrainingJobName=job_name)
        new = {**status,
               "trainingJobStatus": described.get("TrainingJobStatus"),
               "secondaryStatus": described.get("SecondaryStatus"),
               "conditions": [{"type": "ACK.ResourceSynced",
                               "status": "True" if described.get("TrainingJobStatus") in TERMINAL else "False",
                               "message": f"TrainingJob is {described.get('TrainingJobStatus')}"}]}
        if described.get("FailureReason"):
            new["failureReason"] = described["FailureReason"]
        if described.get("TrainingJobStatus") == "Completed" and described.get("ModelArtifacts"):
            new["modelArtifacts"] = {"s3ModelArtifacts": described["ModelArtifacts"].get("S3ModelArtifacts")}
        if new != status:
            self._status(ns, name, new)

    def _patch(self, ns: str, name: str, patch: dict) -> None:
        from .patches import merge_patch

        current = self.store.get(self.type, ns, name)
        self.store.update(self.type, ns, name, merge_patch(current, patch))

    def _status(self, ns: str, name: str, status: dict) -> None:
        current = self.store.get(self.type, ns, name)
        self.store.update(self.type, ns, name, {**current, "status": status}, subresource="status")
