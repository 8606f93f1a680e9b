"""A burst decision, written out as what SageMaker or the cluster is sent.

Pure: the same JobRequest and CloudLaunch always give the same request, byte for byte, so a
controller that crashed between deciding and creating sends the very same thing again under the
very same name (and SageMaker, or the API server, refuses the second copy).

Three targets (spec.sageMaker.emit):
- api: a boto3 CreateTrainingJob request.
- ack: a sagemaker.services.k8s.aws/v1alpha1 TrainingJob (the ACK controller creates the job).
- legacy: a sagemaker.aws.amazon.com/v1 TrainingJob (the 2020 SageMaker operator).
The two custom resources are the API request with their field spellings (ACK writes roleARN
and s3URI, the legacy operator roleArn and s3Uri). What a target cannot carry (command, args,
env) never reaches here: the decision was NotTranslatable (cloud.untranslatable_for).
"""

from __future__ import annotations

import hashlib
import re
from typing import Any, Callable

from ..model import CloudLaunch, EmitTarget, JobRequest, constants as C

ACK_API_VERSION = "sagemaker.services.k8s.aws/v1alpha1"
LEGACY_API_VERSION = "sagemaker.aws.amazon.com/v1"
TRAINING_CHANNEL = "training"  # SageMaker mounts it at /opt/ml/input/data/training
CHECKPOINT_LOCAL_PATH = "/opt/ml/checkpoints"
VOLUME_SIZE_GB = 100
_NAME_LIMIT = 63  # SageMaker: ^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}


def training_job_name(job: JobRequest, attempt: int = 0) -> str:
    """The SageMaker (and custom resource) name of a Job's burst: derived from its UID, so a retry
    can never launch twice. attempt 0 is the decision's launch; a spot launch's relaunches then
    alternate: 1, 3, ... on on-demand (-od1), 2, 4, ... back on managed spot (-sp2)."""
    identity = job.uid or job.key
    digest = hashlib.sha256(identity.encode()).hexdigest()[:10]
    suffix = f"-{digest}" + ("" if attempt == 0 else f"-{'od' if attempt % 2 else 'sp'}{attempt}")
    stem = re.sub(r"[^a-z0-9]+", "-", job.name.lower()).strip("-") or "job"
    return f"{stem[:_NAME_LIMIT - len(suffix)].rstrip('-')}{suffix}"


def create_training_job_request(job: JobRequest, launch: CloudLaunch, name: str, *,
                                 on_demand: bool = False) -> dict[str, Any]:
    """The CreateTrainingJob request. on_demand: the fallback relaunch of a spot burst (same
    checkpoint, no spot, the runtime cap of the launch)."""
    spot = launch.spot and not on_demand
    algorithm: dict[str, Any] = {"TrainingImage": job.training_image, "TrainingInputMode": "File"}
    if job.command:
        algorithm["ContainerEntrypoint"] = list(job.command)
    if job.args:
        algorithm["ContainerArguments"] = list(job.args)
    stopping: dict[str, Any] = {"MaxRuntimeInSeconds": int(launch.max_runtime_seconds)}
    if spot:
        # MaxWait covers waiting for capacity and training; it may not be below MaxRuntime.
        stopping["MaxWaitTimeInSeconds"] = max(int(launch.sagemaker_max_wait_seconds or 0), int(launch.max_runtime_seconds))
    request: dict[str, Any] = {
        "TrainingJobName": name,
        "RoleArn": launch.role_arn,
        "AlgorithmSpecification": algorithm,
        "ResourceConfig": {"InstanceType": launch.instance_type, "InstanceCount": int(launch.instance_count),
                           "VolumeSizeInGB": VOLUME_SIZE_GB},
        "OutputDataConfig": {"S3OutputPath": launch.output_s3_uri},
        "StoppingCondition": stopping,
        "EnableManagedSpotTraining": spot,
        "Tags": [{"Key": C.TAG_NAMESPACE, "Value": job.namespace}, {"Key": C.TAG_JOB, "Value": job.name},
                 {"Key": C.TAG_UID, "Value": job.uid or "-"}],
    }
    if job.environment:
        request["Environment"] = dict(job.environment)
    if job.input_s3_uri:
        request["InputDataConfig"] = [{"ChannelName": TRAINING_CHANNEL, "DataSource": {"S3DataSource": {
            "S3DataType": "S3Prefix", "S3Uri": job.input_s3_uri, "S3DataDistributionType": "FullyReplicated"}}}]
    if launch.checkpoint_s3_uri:
        request["CheckpointConfig"] = {"S3Uri": launch.checkpoint_s3_uri, "LocalPath": CHECKPOINT_LOCAL_PATH}
    return request


def training_job_resource(job: JobRequest, launch: CloudLaunch, name: str, target: EmitTarget, *,
                          on_demand: bool = False) -> dict[str, Any]:
    """The TrainingJob custom resource, owned by the Job (deleting the Job deletes it, and the
    SageMaker controller's finalizer stops the training job)."""
    request = create_training_job_request(job, launch, name, on_demand=on_demand)
    if target == EmitTarget.ACK:
        spec = {_ack_key(k): _converted(v, k, _ack_key) for k, v in request.items()}
        api_version = ACK_API_VERSION
    elif target == EmitTarget.LEGACY:
        request.pop("Environment", None)  # never here: untranslatable_for refused the burst
        spec = {_legacy_key(k): _converted(v, k, _legacy_key) for k, v in request.items()}
        spec["region"] = launch.region
        api_version = LEGACY_API_VERSION
    else:
        raise ValueError(f"{target.value} is not emitted as a custom resource")
    return {"apiVersion": api_version, "kind": "TrainingJob", "metadata": owned_metadata(job, name), "spec": spec}


def owned_metadata(job: JobRequest, name: str) -> dict[str, Any]:
    """A burst's resource is owned by its Job: deleting the Job deletes it (and its controller's
    finalizer stops the SageMaker job)."""
    return {
        "name": name,
        "namespace": job.namespace,
        "labels": {C.OWNER_LABEL: job.uid, "app.kubernetes.io/managed-by": C.CONTROLLER_NAME},
        "ownerReferences": [{"apiVersion": "batch/v1", "kind": "Job", "name": job.name, "uid": job.uid,
                             "controller": True, "blockOwnerDeletion": True}],
    }


_USER_KEYS = {"Environment", "HyperParameters", "StaticHyperParameters"}  # maps of the user's own names: kept verbatim


def _converted(value: Any, key: str, spell: Callable[[str], str]) -> Any:
    if isinstance(value, dict):
        if key in _USER_KEYS:
            return dict(value)
        return {spell(k): _converted(v, k, spell) for k, v in value.items()}
    if isinstance(value, list):
        return [_converted(v, key, spell) for v in value]
    return value


def _legacy_key(key: str) -> str:
    """CreateTrainingJob's spelling to the legacy operator's: RoleArn -> roleArn."""
    return key[:1].lower() + key[1:]


def _ack_key(key: str) -> str:
    """CreateTrainingJob's spelling to ACK's Go-style one: RoleArn -> roleARN, S3Uri -> s3URI."""
    key = _legacy_key(key)
    key = re.sub(r"Arn$", "ARN", key)
    key = re.sub(r"Uri$", "URI", key)
    return re.sub(r"Id$", "ID", key)
