"""A burst that runs as a SageMaker batch transform job, for the controller: how it is sent, read
back, stopped and priced. The controller follows it through the same ledger and cycle as a
training burst; only these steps differ.

- Sent: the Model first (a transform job names an existing model), then the transform job, both
  under the name derived from the Job's UID. After a crash between the two, the next cycle sends
  both again: the Model is adopted, and the transform job is created once (SageMaker, or the API
  server for a resource, refuses a second one under its name).
- Read back: DescribeTransformJob (or the resource's status) is put in the terms the controller
  follows every burst by, DescribeTrainingJob's (`followed`), so status, cost, the Job's
  annotations and the virtual node's pods come from one path for both kinds.
- Stopped: StopTransformJob, or deleting the resource (its controller stops the job). A transform
  job has no MaxRuntimeInSeconds, so the controller stops one that has run past the launch's
  runtime cap: what it commits against the budget is never exceeded (`past_runtime_cap`).
- Cleaned up: the Model made through the API is deleted once its transform job ended.
- Priced: from TransformStartTime to TransformEndTime (or now), per instance, at the catalog's
  transform price.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from policies.decide import (MODEL_PLURAL, TRANSFORM_PLURALS, create_model_request, create_transform_job_request,
                             model_resource, training_job_name, transform_job_resource)
from policies.model import CloudLaunch, EmitTarget, InstanceType, JobRequest, SageMakerKind, parse_time

from .burst_kind import API_VERSIONS, KindSteps, create_once
from .kube import Kube
from .sagemaker import SageMaker, SageMakerError

TERMINAL = ("Completed", "Failed", "Stopped")
# The SecondaryStatus a transform job is given, in the controller's terms: it holds its instances
# and transforms once it has a TransformStartTime (the virtual node's pods then run).
STARTING, TRANSFORMING = "Starting", "Transforming"


def send(kube: Kube, sagemaker: SageMaker | None, job: JobRequest, launch: CloudLaunch, name: str,
         target: EmitTarget) -> str:
    """Create the Model and the transform job (or their resources); the ARN when SageMaker gave one."""
    if target in (EmitTarget.API, EmitTarget.LEGACY) and sagemaker is None:
        raise SageMakerError("NoClient", f"a batch transform burst with spec.sageMaker.emit {target.value} "
                             "creates its Model with CreateModel, but the controller runs with --no-sagemaker; "
                             "drop that flag, or emit ack")
    if target == EmitTarget.API:
        assert sagemaker is not None
        sagemaker.create_model(create_model_request(job, launch, name))
        return sagemaker.create_transform_job(create_transform_job_request(job, launch, name))
    if target == EmitTarget.ACK:
        create_once(kube, model_resource(job, launch, name), MODEL_PLURAL)
    else:  # the legacy operator has no Model resource: the model is made through the API
        assert sagemaker is not None
        sagemaker.create_model(create_model_request(job, launch, name))
    create_once(kube, transform_job_resource(job, launch, name, target), TRANSFORM_PLURALS[target])
    return ""


def stop(kube: Kube, sagemaker: SageMaker | None, namespace: str, name: str, target: EmitTarget) -> None:
    if target == EmitTarget.API:
        if sagemaker is not None:
            sagemaker.stop_transform_job(name)
        return
    kube.delete_custom(API_VERSIONS[target], TRANSFORM_PLURALS[target], namespace, name)


def forget_model(sagemaker: SageMaker | None, name: str, target: EmitTarget) -> None:
    """Delete the Model of an ended transform job that Spillway made through the API (api, legacy):
    SageMaker keeps models until they are deleted, and an account may hold only so many. Best
    effort, after the ledger booked the end: a crash just before leaves one model behind, no more.
    An ACK Model resource is owned by the Job and goes with it."""
    if target != EmitTarget.ACK and sagemaker is not None:
        sagemaker.delete_model(name)


def followed(described: dict[str, Any]) -> dict[str, Any]:
    """DescribeTransformJob's answer in DescribeTrainingJob's terms (see the module's docstring)."""
    status = described.get("TransformJobStatus")
    started = described.get("TransformStartTime")
    if status in TERMINAL or status == "Stopping":
        secondary = status
    else:
        secondary = TRANSFORMING if started is not None else STARTING
    return {"TrainingJobStatus": status, "SecondaryStatus": secondary,
            "FailureReason": described.get("FailureReason") or None,
            "TrainingJobArn": described.get("TransformJobArn"),
            "TrainingStartTime": started, "TrainingEndTime": described.get("TransformEndTime")}


def followed_resource(cr: dict[str, Any]) -> dict[str, Any]:
    """A transform job resource's status in the same terms, when SageMaker cannot be asked (no
    billing figures there: the controller then charges the committed figure once it ends)."""
    status = cr.get("status") or {}
    state = status.get("transformJobStatus") or status.get("TransformJobStatus")
    if not state:
        return {"_pending": True}  # created, not yet picked up by its SageMaker controller
    return {"TrainingJobStatus": state, "SecondaryStatus": state if state in TERMINAL else TRANSFORMING,
            "FailureReason": status.get("failureReason") or status.get("additional"),
            "TrainingJobArn": (status.get("ackResourceMetadata") or {}).get("arn"), "_resource": True}


def cost(launch: CloudLaunch, itype: InstanceType, described: dict[str, Any], now: float) -> float | None:
    """Dollars billed so far: instance-seconds since TransformStartTime at the transform price;
    None before it started (nothing billed yet)."""
    start = described.get("TrainingStartTime")
    if start is None or itype.transform_usd_per_hour is None:
        return None
    end = described.get("TrainingEndTime")
    ran = max((_seconds(end) if end is not None else now) - _seconds(start), 0.0)
    return ran * launch.instance_count * itype.transform_usd_per_hour / 3600


def past_runtime_cap(launch: CloudLaunch, described: dict[str, Any], now: float) -> bool:
    """A transform job that has run past the launch's runtime cap (SageMaker would not stop it)."""
    start = described.get("TrainingStartTime")
    if start is None or described.get("TrainingJobStatus") in TERMINAL:
        return False
    return now - _seconds(start) >= launch.max_runtime_seconds


def _seconds(t: Any) -> float:
    return t.timestamp() if isinstance(t, datetime) else parse_time(str(t))


class TransformSteps(KindSteps):
    """This module's steps, as the controller calls a kind's (scheduler.burst_kind)."""

    kind = SageMakerKind.TRANSFORM
    plurals = TRANSFORM_PLURALS

    def job_name(self, job: JobRequest) -> str:
        return training_job_name(job)  # a transform job's name is derived as a training job's is

    def send(self, kube: Kube, sagemaker: SageMaker | None, job: JobRequest, launch: CloudLaunch, name: str,
             target: EmitTarget) -> str:
        return send(kube, sagemaker, job, launch, name, target)

    def stop(self, kube: Kube, sagemaker: SageMaker | None, namespace: str, name: str, target: EmitTarget) -> None:
        stop(kube, sagemaker, namespace, name, target)

    def described(self, sagemaker: SageMaker, name: str) -> dict[str, Any] | None:
        found = sagemaker.describe_transform_job(name)
        return followed(found) if found is not None else None

    def followed_resource(self, cr: dict[str, Any]) -> dict[str, Any]:
        return followed_resource(cr)

    def cost(self, launch: CloudLaunch, itype: InstanceType, described: dict[str, Any], now: float) -> float | None:
        return cost(launch, itype, described, now)

    def past_runtime_cap(self, launch: CloudLaunch, described: dict[str, Any], now: float) -> bool:
        return past_runtime_cap(launch, described, now)

    def ended(self, sagemaker: SageMaker | None, name: str, target: EmitTarget) -> None:
        forget_model(sagemaker, name, target)
