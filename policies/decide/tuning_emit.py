"""A sweep's burst, written out as what SageMaker or the cluster is sent: one hyperparameter tuning job.

Pure, as emit.py is for training: the same JobRequest and CloudLaunch always give the same
request under a name derived from the Job's UID, so a controller that crashed part-way sends the
very same thing again, and SageMaker, or the API server, refuses a second copy.

Three targets (spec.sageMaker.emit):
- api: CreateHyperParameterTuningJob.
- ack: a HyperParameterTuningJob (sagemaker.services.k8s.aws/v1alpha1). ACK spells the
  objective's Type `type_` (a Go keyword), and has no RandomSeed.
- legacy: a HyperparameterTuningJob (sagemaker.aws.amazon.com/v1): staticHyperParameters as a
  list of name/value, every range's scalingType given, its region, and no RandomSeed.
The sweep's shape travels as ResourceLimits: MaxNumberOfTrainingJobs is the Job's completions,
MaxParallelTrainingJobs its parallelism. Each trial is a training job on one instance, with the
objective's regex as its metric definition, and early stopping off (a trial on the cluster runs
to its end too). What a target cannot carry (env on ack and legacy, command and args anywhere)
never reaches here: the decision was NotTranslatable.
"""

from __future__ import annotations

import hashlib
import re
from typing import Any

from ..model import CloudLaunch, EmitTarget, JobRequest, constants as C
from ..model import RangeKind, TuningSpec
from .emit import ACK_API_VERSION, CHECKPOINT_LOCAL_PATH, LEGACY_API_VERSION, TRAINING_CHANNEL, VOLUME_SIZE_GB, \
    _ack_key, _converted, _legacy_key, owned_metadata

TUNING_PLURAL = "hyperparametertuningjobs"  # both targets
TUNING_KINDS = {EmitTarget.ACK: "HyperParameterTuningJob", EmitTarget.LEGACY: "HyperparameterTuningJob"}
_NAME_LIMIT = 32  # SageMaker: a tuning job's name is 1 to 32 characters (its trials add -NNN-xxxxxxxx)


def tuning_job_name(job: JobRequest) -> str:
    """The tuning job's name: derived from the Job's UID, so a retry can never launch twice."""
    digest = hashlib.sha256((job.uid or job.key).encode()).hexdigest()[:10]
    stem = re.sub(r"[^a-z0-9]+", "-", job.name.lower()).strip("-") or "sweep"
    return f"{stem[:_NAME_LIMIT - 11].rstrip('-')}-{digest}"


def _ranges(spec: TuningSpec) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = {}
    for p in spec.parameters:
        if p.kind == RangeKind.CATEGORICAL:
            out.setdefault("CategoricalParameterRanges", []).append({"Name": p.name, "Values": list(p.values)})
            continue
        key = "IntegerParameterRanges" if p.kind == RangeKind.INTEGER else "ContinuousParameterRanges"
        low, high = (str(int(p.low)), str(int(p.high))) if p.kind == RangeKind.INTEGER else (repr(p.low), repr(p.high))
        out.setdefault(key, []).append({"Name": p.name, "MinValue": low, "MaxValue": high,
                                        "ScalingType": p.scaling.value})
    return out


def create_tuning_job_request(job: JobRequest, launch: CloudLaunch, name: str) -> dict[str, Any]:
    """The CreateHyperParameterTuningJob request."""
    spec = job.tuning
    assert spec is not None  # a tuning launch is made only for a sweep
    config: dict[str, Any] = {
        "Strategy": spec.strategy.value,
        "HyperParameterTuningJobObjective": {"Type": spec.objective.value, "MetricName": spec.metric},
        "ResourceLimits": {"MaxNumberOfTrainingJobs": job.trials, "MaxParallelTrainingJobs": min(job.pods, job.trials)},
        "ParameterRanges": _ranges(spec),
        "TrainingJobEarlyStoppingType": "Off",
        "RandomSeed": spec.seed,
    }
    stopping: dict[str, Any] = {"MaxRuntimeInSeconds": int(launch.max_runtime_seconds)}
    if launch.spot:
        stopping["MaxWaitTimeInSeconds"] = max(int(launch.sagemaker_max_wait_seconds or 0),
                                               int(launch.max_runtime_seconds))
    definition: dict[str, Any] = {
        "StaticHyperParameters": dict(spec.static),
        "AlgorithmSpecification": {"TrainingImage": job.training_image, "TrainingInputMode": "File",
                                   "MetricDefinitions": [{"Name": spec.metric, "Regex": spec.regex}]},
        "RoleArn": launch.role_arn,
        "OutputDataConfig": {"S3OutputPath": launch.output_s3_uri},
        "ResourceConfig": {"InstanceType": launch.instance_type, "InstanceCount": 1, "VolumeSizeInGB": VOLUME_SIZE_GB},
        "StoppingCondition": stopping,
        "EnableManagedSpotTraining": launch.spot,
    }
    if not spec.static:
        del definition["StaticHyperParameters"]
    if job.input_s3_uri:
        definition["InputDataConfig"] = [{"ChannelName": TRAINING_CHANNEL, "DataSource": {"S3DataSource": {
            "S3DataType": "S3Prefix", "S3Uri": job.input_s3_uri, "S3DataDistributionType": "FullyReplicated"}}}]
    if launch.checkpoint_s3_uri:
        definition["CheckpointConfig"] = {"S3Uri": launch.checkpoint_s3_uri, "LocalPath": CHECKPOINT_LOCAL_PATH}
    if job.environment:
        definition["Environment"] = dict(job.environment)
    return {
        "HyperParameterTuningJobName": name,
        "HyperParameterTuningJobConfig": config,
        "TrainingJobDefinition": definition,
        "Tags": [{"Key": C.TAG_NAMESPACE, "Value": job.namespace}, {"Key": C.TAG_JOB, "Value": job.name},
                 {"Key": C.TAG_UID, "Value": job.uid or "-"}],
    }


def tuning_job_resource(job: JobRequest, launch: CloudLaunch, name: str, target: EmitTarget) -> dict[str, Any]:
    """The ACK HyperParameterTuningJob, or the legacy HyperparameterTuningJob, owned by the Job
    (deleting the Job deletes it, and its controller stops the tuning job)."""
    request = create_tuning_job_request(job, launch, name)
    request["HyperParameterTuningJobConfig"].pop("RandomSeed")  # neither CRD has the field
    if target == EmitTarget.ACK:
        request["TrainingJobDefinition"].pop("Environment", None)  # never here: untranslatable_for refused it
        spec = {_ack_key(k): _converted(v, k, _ack_key) for k, v in request.items()}
        spec["hyperParameterTuningJobConfig"]["hyperParameterTuningJobObjective"]["type_"] = \
            spec["hyperParameterTuningJobConfig"]["hyperParameterTuningJobObjective"].pop("type")
        api_version = ACK_API_VERSION
    elif target == EmitTarget.LEGACY:
        request["TrainingJobDefinition"].pop("Environment", None)
        spec = {_legacy_key(k): _converted(v, k, _legacy_key) for k, v in request.items()}
        definition = spec["trainingJobDefinition"]
        if "staticHyperParameters" in definition:
            definition["staticHyperParameters"] = [{"name": k, "value": v}
                                                   for k, v in definition["staticHyperParameters"].items()]
        spec["region"] = launch.region
        api_version = LEGACY_API_VERSION
    else:
        raise ValueError(f"{target.value} is not emitted as a custom resource")
    return {"apiVersion": api_version, "kind": TUNING_KINDS[target], "metadata": owned_metadata(job, name),
            "spec": spec}


def tuning_emitted(job: JobRequest, launch: CloudLaunch, name: str, target: EmitTarget) -> list[dict[str, Any]]:
    """What a sweep's burst sends, as `spillway explain` shows it: the request, or the resource."""
    if target == EmitTarget.API:
        return [{"CreateHyperParameterTuningJob": create_tuning_job_request(job, launch, name)}]
    return [tuning_job_resource(job, launch, name, target)]
