"""The ACK SageMaker controller's part for batch transform, in the sandbox's stand-in: Model
resources become SageMaker models, TransformJob resources become transform jobs, and the transform
job's status is mirrored back (transformJobStatus, failureReason, ackResourceMetadata).

As ACK does: each resource gets its finalizer; a TransformJob whose model SageMaker does not know
yet is created on a later pass (ACK requeues it); a deleted TransformJob has its transform job
stopped, and a deleted Model its model deleted, before the finalizer goes. sim.sandbox.ack's
AckStandIn runs it on each of its passes.
"""

from __future__ import annotations

from .ack_spelling import TERMINAL, to_api
from .store import ApiError, Store

MODEL_FINALIZER = "finalizers.sagemaker.services.k8s.aws/Model"
TRANSFORM_FINALIZER = "finalizers.sagemaker.services.k8s.aws/TransformJob"


def _api(spec: dict) -> dict:
    """ACK spelling to the API's, with ACK's URL too (modelDataURL -> ModelDataUrl)."""
    request = to_api(spec)
    container = request.get("PrimaryContainer")
    if isinstance(container, dict) and "ModelDataURL" in container:
        container["ModelDataUrl"] = container.pop("ModelDataURL")
    return request


class AckTransformStandIn:
    def __init__(self, store: Store, sagemaker, *, account: str, region: str):
        self.store, self.sm, self.account, self.region = store, sagemaker, account, region
        self.models = store.type_for("sagemaker.services.k8s.aws", "v1alpha1", "models")
        self.transforms = store.type_for("sagemaker.services.k8s.aws", "v1alpha1", "transformjobs")

    def reconcile(self) -> None:
        for kind, one in ((self.models, self._model), (self.transforms, self._transform)):  # models first
            with self.store.lock:
                resources = list(self.store.objects[kind.key].items())
            for (ns, name), obj in resources:
                try:
                    one(ns, name, obj)
                except ApiError:
                    continue  # changed under us; the next pass sees the new version

    def _model(self, ns: str, name: str, obj: dict) -> None:
        meta, spec, status = obj["metadata"], obj.get("spec") or {}, obj.get("status") or {}
        model_name = spec.get("modelName") or name
        if self._deleting(self.models, ns, name, meta, MODEL_FINALIZER):
            try:
                self.sm.delete_model(ModelName=model_name)
            except Exception:  # noqa: BLE001 - already gone
                pass
            self._release(self.models, ns, name, meta, MODEL_FINALIZER)
            return
        if (status.get("ackResourceMetadata") or {}).get("arn"):
            return
        try:
            self.sm.create_model(**_api(spec))
        except Exception as exc:  # noqa: BLE001 - SageMaker said no (or it exists: adopted below)
            if "already existing" not in str(exc):
                self._status(self.models, ns, name, {**status, "conditions": _terminal(str(exc))})
                return
        arn = self.sm.describe_model(ModelName=model_name)["ModelArn"]
        self._status(self.models, ns, name, {**status, "ackResourceMetadata": self._metadata(arn),
                                              "conditions": [_synced(True, "Model is created")]})

    def _transform(self, ns: str, name: str, obj: dict) -> None:
        meta, spec, status = obj["metadata"], obj.get("spec") or {}, obj.get("status") or {}
        job_name = spec.get("transformJobName") or name
        if self._deleting(self.transforms, ns, name, meta, TRANSFORM_FINALIZER):
            if status.get("transformJobStatus") == "InProgress":
                try:
                    self.sm.stop_transform_job(TransformJobName=job_name)
                except Exception:  # noqa: BLE001 - already gone
                    pass
            self._release(self.transforms, ns, name, meta, TRANSFORM_FINALIZER)
            return
        arn = (status.get("ackResourceMetadata") or {}).get("arn")
        if arn is None:
            try:
                arn = self.sm.create_transform_job(**_api(spec))["TransformJobArn"]
            except Exception as exc:  # noqa: BLE001
                if "Could not find model" in str(exc):
                    return  # its Model is not there yet: ACK requeues, and so does the next pass
                self._status(self.transforms, ns, name, {**status, "conditions": _terminal(str(exc))})
                return
            status = {**status, "ackResourceMetadata": self._metadata(arn)}
        described = self.sm.describe_transform_job(TransformJobName=job_name)
        state = described.get("TransformJobStatus")
        new = {**status, "transformJobStatus": state,
               "conditions": [_synced(state in TERMINAL, f"TransformJob is {state}")]}
        if described.get("FailureReason"):
            new["failureReason"] = described["FailureReason"]
        if new != status:
            self._status(self.transforms, ns, name, new)

    def _deleting(self, kind, ns: str, name: str, meta: dict, finalizer: str) -> bool:
        """Whether the resource is being deleted; if not, it is adopted with the finalizer."""
        finalizers = meta.get("finalizers") or []
        if meta.get("deletionTimestamp"):
            return True
        if finalizer not in finalizers:
            self._patch(kind, ns, name, {"metadata": {"finalizers": [*finalizers, finalizer]}})
        return False

    def _release(self, kind, ns: str, name: str, meta: dict, finalizer: str) -> None:
        """Let a deleted resource go, its SageMaker side cleaned up."""
        kept = [f for f in meta.get("finalizers") or [] if f != finalizer]
        self._patch(kind, ns, name, {"metadata": {"finalizers": kept}})

    def _metadata(self, arn: str) -> dict:
        return {"arn": arn, "ownerAccountID": self.account, "region": self.region}

    def _patch(self, kind, ns: str, name: str, patch: dict) -> None:
        from .patches import merge_patch

        self.store.update(kind, ns, name, merge_patch(self.store.get(kind, ns, name), patch))

    def _status(self, kind, ns: str, name: str, status: dict) -> None:
        current = self.store.get(kind, ns, name)
        self.store.update(kind, ns, name, {**current, "status": status}, subresource="status")


def _synced(done: bool, message: str) -> dict:
    return {"type": "ACK.ResourceSynced", "status": "True" if done else "False", "message": message}


def _terminal(message: str) -> list[dict]:
    return [{"type": "ACK.Terminal", "status": "True", "message": message[:1000]},
            {"type": "ACK.ResourceSynced", "status": "False", "message": "creation failed"}]

