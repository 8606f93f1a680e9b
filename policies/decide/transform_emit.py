"""A batch transform burst, written out as what SageMaker or the cluster is sent: a Model, then a
transform job that names it.

Pure, as policies.emit is for training: the same JobRequest and CloudLaunch always give the same
requests, under names derived from the Job's UID (the Model is named as its transform job), so a
controller that crashed part-way sends the very same thing again and SageMaker, or the API
server, refuses a second copy.

Three targets (spec.sageMaker.emit):
- api: CreateModel, then CreateTransformJob.
- ack: a Model and a TransformJob resource (sagemaker.services.k8s.aws/v1alpha1). ACK's
  TransformJob names its model by a plain modelName, so the Model resource is created first.
- legacy: the 2020 operator has a BatchTransformJob (sagemaker.aws.amazon.com/v1) and no Model
  resource: its model is made with CreateModel, then the BatchTransformJob resource names it.
Nothing is invented: the input is one S3 prefix, the output one S3 path, and content and split
type travel only when the Job's annotations give them.
"""

from __future__ import annotations

from typing import Any

from ..model import CloudLaunch, EmitTarget, JobRequest, constants as C
from .emit import ACK_API_VERSION, LEGACY_API_VERSION, _ack_key, _converted, _legacy_key, owned_metadata, training_job_name

TRANSFORM_PLURALS = {EmitTarget.ACK: "transformjobs", EmitTarget.LEGACY: "batchtransformjobs"}
TRANSFORM_KINDS = {EmitTarget.ACK: "TransformJob", EmitTarget.LEGACY: "BatchTransformJob"}
MODEL_PLURAL = "models"  # ACK only


def transform_job_name(job: JobRequest, attempt: int = 0) -> str:
    """The transform job's name (and its Model's): derived from the Job's UID as a training job's
    is, so a retry can never launch twice; attempt n > 0 is the n-th backoffLimit retry."""
    return training_job_name(job, attempt)


def _tags(job: JobRequest) -> list[dict[str, str]]:
    return [{"Key": C.TAG_NAMESPACE, "Value": job.namespace}, {"Key": C.TAG_JOB, "Value": job.name},
            {"Key": C.TAG_UID, "Value": job.uid or "-"}]


def create_model_request(job: JobRequest, launch: CloudLaunch, name: str) -> dict[str, Any]:
    """The CreateModel request: the Job's container image (it serves the model), the model
    artifact when the Job names one, and its literal env."""
    container: dict[str, Any] = {"Image": job.training_image}
    if job.model_s3_uri:
        container["ModelDataUrl"] = job.model_s3_uri
    if job.environment:
        container["Environment"] = dict(job.environment)
    return {"ModelName": name, "ExecutionRoleArn": launch.role_arn, "PrimaryContainer": container,
            "Tags": _tags(job)}


def create_transform_job_request(job: JobRequest, launch: CloudLaunch, name: str) -> dict[str, Any]:
    """The CreateTransformJob request over the Job's input prefix, on launch.instance_count
    instances (the Job's parallelism)."""
    transform_input: dict[str, Any] = {"DataSource": {"S3DataSource": {"S3DataType": "S3Prefix",
                                                                        "S3Uri": job.input_s3_uri}}}
    if job.content_type:
        transform_input["ContentType"] = job.content_type
    if job.split_type:
        transform_input["SplitType"] = job.split_type.value
    return {
        "TransformJobName": name,
        "ModelName": name,
        "TransformInput": transform_input,
        "TransformOutput": {"S3OutputPath": launch.output_s3_uri},
        "TransformResources": {"InstanceType": launch.instance_type, "InstanceCount": int(launch.instance_count)},
        "Tags": _tags(job),
    }




def model_resource(job: JobRequest, launch: CloudLaunch, name: str) -> dict[str, Any]:
    """The ACK Model resource (the only target with one)."""
    request = create_model_request(job, launch, name)
    # ACK spells ModelDataUrl modelDataURL and ExecutionRoleArn executionRoleARN.
    spec = {_ack_spelling(k): _converted(v, k, _ack_spelling) for k, v in request.items()}
    return {"apiVersion": ACK_API_VERSION, "kind": "Model", "metadata": owned_metadata(job, name), "spec": spec}


def transform_job_resource(job: JobRequest, launch: CloudLaunch, name: str, target: EmitTarget) -> dict[str, Any]:
    """The ACK TransformJob, or the legacy BatchTransformJob (which also carries its region)."""
    request = create_transform_job_request(job, launch, name)
    if target == EmitTarget.ACK:
        spec = {_ack_spelling(k): _converted(v, k, _ack_spelling) for k, v in request.items()}
        api_version = ACK_API_VERSION
    elif target == EmitTarget.LEGACY:
        spec = {_legacy_key(k): _converted(v, k, _legacy_key) for k, v in request.items()}
        spec["region"] = launch.region
        api_version = LEGACY_API_VERSION
    else:
        raise ValueError(f"{target.value} is not emitted as a custom resource")
    return {"apiVersion": api_version, "kind": TRANSFORM_KINDS[target], "metadata": owned_metadata(job, name),
            "spec": spec}


def _ack_spelling(key: str) -> str:
    """ACK's Go-style spelling, with its Url -> URL too (ModelDataUrl -> modelDataURL)."""
    key = _ack_key(key)
    return key[:-3] + "URL" if key.endswith("Url") else key


def emitted(job: JobRequest, launch: CloudLaunch, name: str, target: EmitTarget) -> list[dict[str, Any]]:
    """What a transform burst sends, in order, as `spillway explain` shows it: for api the two
    requests, for ack the two resources, for legacy the CreateModel request and the resource."""
    if target == EmitTarget.API:
        return [{"CreateModel": create_model_request(job, launch, name)},
                {"CreateTransformJob": create_transform_job_request(job, launch, name)}]
    if target == EmitTarget.ACK:
        return [model_resource(job, launch, name), transform_job_resource(job, launch, name, target)]
    return [{"CreateModel": create_model_request(job, launch, name)}, transform_job_resource(job, launch, name, target)]
