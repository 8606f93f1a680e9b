"""Every string that crosses a boundary: annotation keys, reasons, conditions, labels.

One module, so the controller, the simulator, the CLI and the docs can never disagree on a
spelling. Reasons are CamelCase categories (Kubernetes API conventions); the message that
travels with a reason carries the specifics.
"""

from __future__ import annotations

from enum import Enum
from typing import Final

API_GROUP = "spillway.io"
API_VERSION: Final = "spillway.io/v1alpha1"  # f"{API_GROUP}/v1alpha1", as a literal the schema types can name
POLICY_KIND: Final = "BurstPolicy"
SNAPSHOT_KIND = "ClusterSnapshot"

# --- Job annotations (read) -------------------------------------------------------------
ANNOTATION_PREFIX = f"{API_GROUP}/"
MODE = f"{API_GROUP}/mode"  # auto | local | cloud; its presence opts the Job in
CAPACITY_TYPE = f"{API_GROUP}/capacity-type"  # any | spot | on-demand
RUNTIME_ESTIMATE = f"{API_GROUP}/runtime-estimate"  # "5400", "90m", "1h30m"
DEADLINE = f"{API_GROUP}/deadline"  # RFC 3339, e.g. 2026-11-29T08:00:00Z
CHECKPOINT_S3_URI = f"{API_GROUP}/checkpoint-s3-uri"  # makes the Job checkpointable
OUTPUT_S3_URI = f"{API_GROUP}/output-s3-uri"
INPUT_S3_URI = f"{API_GROUP}/input-s3-uri"
ROLE_ARN = f"{API_GROUP}/role-arn"
INSTANCE_TYPE = f"{API_GROUP}/instance-type"  # pins the SageMaker type
WAIT_USD_PER_HOUR = f"{API_GROUP}/wait-usd-per-hour"  # per-Job trade-off override
MAX_WAIT_SECONDS = f"{API_GROUP}/max-wait-seconds"  # per-Job max local wait override
SAGEMAKER_IMAGE = f"{API_GROUP}/sagemaker-image"  # the image SageMaker runs (an ECR image), if not the pod's
SAGEMAKER_KIND = f"{API_GROUP}/sagemaker-kind"  # training (default) | transform: what a burst runs as
MODEL_S3_URI = f"{API_GROUP}/model-s3-uri"  # transform: the model artifact (model.tar.gz) its container loads
CONTENT_TYPE = f"{API_GROUP}/content-type"  # transform: the MIME type of the input records, e.g. text/csv
SPLIT_TYPE = f"{API_GROUP}/split-type"  # transform: how the input is cut into records: None | Line | RecordIO | TFRecord
TRANSFORM_ONLY_ANNOTATIONS = (MODEL_S3_URI, CONTENT_TYPE, SPLIT_TYPE)
TUNING_SPEC = f"{API_GROUP}/tuning-spec"  # tuning: the sweep's objective, strategy and ranges, as YAML
TUNING_SPEC_CONFIGMAP = f"{API_GROUP}/tuning-spec-configmap"  # tuning: a ConfigMap holding it: name or name/key
TUNING_SPEC_KEY = "tuning.yaml"  # the ConfigMap key read when the annotation names no key
TUNING_ONLY_ANNOTATIONS = (TUNING_SPEC, TUNING_SPEC_CONFIGMAP)

READ_ANNOTATIONS = (
    MODE,
    CAPACITY_TYPE,
    RUNTIME_ESTIMATE,
    DEADLINE,
    CHECKPOINT_S3_URI,
    OUTPUT_S3_URI,
    INPUT_S3_URI,
    ROLE_ARN,
    INSTANCE_TYPE,
    WAIT_USD_PER_HOUR,
    MAX_WAIT_SECONDS,
    SAGEMAKER_IMAGE,
    SAGEMAKER_KIND,
    MODEL_S3_URI,
    CONTENT_TYPE,
    SPLIT_TYPE,
    TUNING_SPEC,
    TUNING_SPEC_CONFIGMAP,
)

# --- Job annotations (written by the controller) ----------------------------------------
# What `kubectl describe job` shows of Spillway's story. job_from_manifest accepts them back.
DECISION_PLACEMENT = f"{API_GROUP}/placement"  # Local | SageMakerSpot | SageMakerOnDemand | Wait
DECISION_REASON = f"{API_GROUP}/reason"  # a Reason value
DECISION_MESSAGE = f"{API_GROUP}/message"
DECIDED_AT = f"{API_GROUP}/decided-at"  # RFC 3339 time of the decision above
LOCAL_NODES = f"{API_GROUP}/local-nodes"  # node=pods,... chosen by a Local decision (held until pods bind)
SAGEMAKER_JOB_NAME = f"{API_GROUP}/sagemaker-job-name"  # the training (or transform) job running this Job now
SAGEMAKER_JOB_ARN = f"{API_GROUP}/sagemaker-job-arn"
SAGEMAKER_STATUS = f"{API_GROUP}/sagemaker-status"  # TrainingJobStatus/SecondaryStatus
COMMITTED_USD = f"{API_GROUP}/committed-usd"  # the most the burst can cost (charged to the budget)
COST_USD = f"{API_GROUP}/cost-usd"  # billed so far (BillableTimeInSeconds x InstanceCount x price)
FALLBACK = f"{API_GROUP}/fallback"  # spot gave way to on-demand: when and why
ANNOTATION_ERROR = f"{API_GROUP}/annotation-error"  # the Job's annotations are wrong: what to fix
TUNING_BEST_TRIAL = f"{API_GROUP}/tuning-best-trial"  # a tuning burst's best training job
TUNING_BEST_OBJECTIVE = f"{API_GROUP}/tuning-best-objective"  # its objective: metric=value
TUNING_BEST_HYPERPARAMETERS = f"{API_GROUP}/tuning-best-hyperparameters"  # its tuned values, as JSON
# On a sweep's trial pod: its hyperparameters as JSON, the source of its hyperparameters.json file
TRIAL_HYPERPARAMETERS = f"{API_GROUP}/trial-hyperparameters"
# On a local Bayesian sweep's Job: each finished trial's values and objective (read from its log),
# as JSON; what its next trials are chosen from (policies/model/tuning_results.py)
TRIAL_RESULTS = f"{API_GROUP}/trial-results"
# On a local Bayesian trial's pod: the indexes of the finished trials Optuna was given to choose its values
TRIAL_ASKED_WITH = f"{API_GROUP}/trial-asked-with"
TRIAL_LABEL = f"{API_GROUP}/trial"  # "true" on a local-capable sweep's pods: the pod webhook's selector

WRITTEN_ANNOTATIONS = (
    DECISION_PLACEMENT,
    DECISION_REASON,
    DECISION_MESSAGE,
    DECIDED_AT,
    LOCAL_NODES,
    SAGEMAKER_JOB_NAME,
    SAGEMAKER_JOB_ARN,
    SAGEMAKER_STATUS,
    COMMITTED_USD,
    COST_USD,
    FALLBACK,
    ANNOTATION_ERROR,
    TUNING_BEST_TRIAL,
    TUNING_BEST_OBJECTIVE,
    TUNING_BEST_HYPERPARAMETERS,
    TRIAL_RESULTS,
)

# --- What the controller creates -------------------------------------------------------
CONTROLLER_NAME = "spillway"
FINALIZER = f"{API_GROUP}/sagemaker-cleanup"  # on a Job burst with emit: api: stop its training job first
LEASE_NAME = "spillway-controller"
OWNER_LABEL = f"{API_GROUP}/job-uid"  # on every resource Spillway creates for a Job
TAG_NAMESPACE = "spillway.io/namespace"  # SageMaker tags on every training job
TAG_JOB = "spillway.io/job"
TAG_UID = "spillway.io/job-uid"


class EventReason(str, Enum):
    """Event reasons the controller writes beside the decision's own Reason."""

    LAUNCHED = "SageMakerLaunched"  # a launch a crash interrupted, completed after the restart
    LAUNCH_FAILED = "SageMakerLaunchFailed"
    COMPLETED = "SageMakerCompleted"
    FAILED = "SageMakerFailed"
    STOPPED = "SageMakerStopped"
    FELL_BACK = "SpotFellBackToOnDemand"
    BACK_TO_SPOT = "SpotResumed"  # spot.fallback planned: relaunched on managed spot from on-demand
    INVALID_ANNOTATIONS = "InvalidAnnotations"
    RETRY_REFUSED = "SageMakerRetryRefused"  # backoffLimit asked for another training job the budget cannot pay


class PodReason(str, Enum):
    """Why the virtual node's agent ended a pod (its status.reason, as a kubelet's Evicted is)."""

    NOT_A_BURST = "NotPlacedBySpillway"  # only the pods of Spillway's bursts run on the virtual node
    STARTING = "SageMakerStarting"  # a container's waiting reason while its training job starts
    TRAINING_FAILED = "SageMakerFailed"
    TRAINING_STOPPED = "SageMakerStopped"
    OVER_BUDGET = "BudgetExhausted"  # a retry the budget cannot pay

# --- Kubernetes well-known keys ---------------------------------------------------------
GPU_RESOURCE = "nvidia.com/gpu"
GPU_PRODUCT_LABEL = "nvidia.com/gpu.product"  # set by NVIDIA GPU feature discovery

# --- The virtual node: where burst pods are bound (their work runs on SageMaker) ------------
VIRTUAL_NODE_NAME = "spillway-sagemaker"
VIRTUAL_NODE_LABEL = f"{API_GROUP}/virtual-node"  # "true" on it: never local capacity
VIRTUAL_NODE_TAINT = f"{API_GROUP}/sagemaker"  # NoSchedule: only pods that tolerate it land there
VIRTUAL_NODE_TYPE_LABEL = ("type", "virtual-kubelet")  # as every virtual-kubelet provider labels its node

# --- Kueue -------------------------------------------------------------------------------
KUEUE_QUEUE_LABEL = "kueue.x-k8s.io/queue-name"  # a Job Kueue queues: Kueue owns its suspend
KUEUE_CHECK_CONTROLLER = f"{API_GROUP}/sagemaker-burst"  # AdmissionCheck spec.controllerName Spillway answers


class BurstAs(str, Enum):
    """What Kubernetes sees of a burst (spec.sageMaker.burstAs)."""

    VIRTUAL_NODE = "virtualNode"  # the Job runs: its pods on the virtual node mirror the training job
    SUSPENDED_JOB = "suspendedJob"  # the Job stays suspended; status and cost are its annotations


class SageMakerKind(str, Enum):
    """What a burst runs as on SageMaker (spillway.io/sagemaker-kind)."""

    TRAINING = "training"  # a training job (the default)
    TRANSFORM = "transform"  # a batch transform job: a Model, then a transform job over S3 input
    TUNING = "tuning"  # a hyperparameter tuning job: the Indexed Job's pods are its trials

    @property
    def job_words(self) -> str:
        """How messages name the SageMaker job of this kind."""
        return {SageMakerKind.TRAINING: "training job", SageMakerKind.TRANSFORM: "transform job",
                SageMakerKind.TUNING: "hyperparameter tuning job"}[self]


class SplitType(str, Enum):
    """TransformInput.SplitType: how a transform job cuts its input files into records."""

    NONE = "None"
    LINE = "Line"
    RECORD_IO = "RecordIO"
    TF_RECORD = "TFRecord"


class Mode(str, Enum):
    """What the Job's owner allows."""

    AUTO = "auto"  # Spillway chooses
    LOCAL = "local"  # never burst
    CLOUD = "cloud"  # always burst (spot or on-demand as capacity-type and policy say)


class CapacityType(str, Enum):
    """Which SageMaker capacity the owner accepts when the Job bursts."""

    ANY = "any"
    SPOT = "spot"
    ON_DEMAND = "on-demand"


class Placement(str, Enum):
    LOCAL = "Local"
    SAGEMAKER_SPOT = "SageMakerSpot"
    SAGEMAKER_ON_DEMAND = "SageMakerOnDemand"
    WAIT = "Wait"

    @property
    def is_cloud(self) -> bool:
        return self in (Placement.SAGEMAKER_SPOT, Placement.SAGEMAKER_ON_DEMAND)


class Reason(str, Enum):
    """One CamelCase constant per cause of a decision."""

    # Local
    LOCAL_CAPACITY_AVAILABLE = "LocalCapacityAvailable"
    FORCED_LOCAL = "ForcedLocal"
    NOT_A_GPU_JOB = "NotAGpuJob"
    # Wait
    WAITING_FOR_LOCAL_CAPACITY = "WaitingForLocalCapacity"
    BUDGET_EXHAUSTED = "BudgetExhausted"
    QUOTA_EXHAUSTED = "QuotaExhausted"
    BURST_NOT_ALLOWED = "BurstNotAllowed"
    NOT_TRANSLATABLE = "NotTranslatable"
    NO_INSTANCE_TYPE = "NoInstanceType"
    NEVER_FITS_LOCALLY = "NeverFitsLocally"
    DEADLINE_UNREACHABLE = "DeadlineUnreachable"
    QUEUED_BEYOND_PLANNING_DEPTH = "QueuedBeyondPlanningDepth"  # local.planningDepth Jobs are ahead
    # Cloud
    FORCED_CLOUD = "ForcedCloud"
    MAX_WAIT_EXCEEDED = "MaxWaitExceeded"
    DEADLINE_REQUIRES_BURST = "DeadlineRequiresBurst"
    CLUSTER_HOT = "ClusterHot"
    BURST_CHEAPER_THAN_WAITING = "BurstCheaperThanWaiting"
    SPOT_SAFE_WITHIN_DEADLINE = "SpotSafeWithinDeadline"
    DEADLINE_REQUIRES_ON_DEMAND = "DeadlineRequiresOnDemand"
    OPTIMIZER_BURST = "OptimizerBurst"
    OPTIMIZER_KEEP_LOCAL = "OptimizerKeepLocal"


class EmitTarget(str, Enum):
    ACK = "ack"  # sagemaker.services.k8s.aws/v1alpha1 TrainingJob (a transform: Model + TransformJob)
    LEGACY = "legacy"  # sagemaker.aws.amazon.com/v1 TrainingJob (a transform: CreateModel + BatchTransformJob)
    API = "api"  # boto3 CreateTrainingJob (a transform: CreateModel + CreateTransformJob)


class BudgetExhaustedAction(str, Enum):
    WAIT = "wait"  # hold the Job until the budget window resets
    LOCAL_ONLY = "localOnly"  # give up bursting; run it locally when it fits


class WaitCostBasis(str, Enum):
    JOB = "job"
    GPU = "gpu"
