"""The BurstPolicy: one pydantic model, from which validation, defaults and the JSON Schema come.

YAML keys are camelCase with units in their names (maxWaitSeconds, dailyUsd). Every field
has a default, so an empty `spec: {}` is a complete, conservative policy.
"""

from __future__ import annotations

import fnmatch
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, model_validator
from pydantic.alias_generators import to_camel

from .constants import (
    API_VERSION,
    POLICY_KIND,
    BudgetExhaustedAction,
    BurstAs,
    CapacityType,
    EmitTarget,
    Mode,
    WaitCostBasis,
)

NonNegFloat = Annotated[float, Field(ge=0)]
BudgetPeriod = Literal["daily", "monthly"]  # the window of a budget that binds
PosInt = Annotated[int, Field(gt=0)]


class _Model(BaseModel):
    model_config = ConfigDict(
        allow_inf_nan=False,  # 1e400 or .inf is a typo, not a limit: leave a limit out to lift it
        alias_generator=to_camel,
        populate_by_name=True,
        extra="forbid",
        frozen=True,
        use_enum_values=False,
    )


class ManagedJobs(_Model):
    """Which Jobs Spillway manages."""

    namespaces: list[str] = Field(
        default_factory=list,
        description="Namespaces whose GPU Jobs are all managed (opt-in per namespace). "
        "A Job elsewhere is managed only when it carries the spillway.io/mode annotation.",
    )
    default_mode: Mode = Field(
        Mode.AUTO, description="Mode of a managed Job that has no spillway.io/mode annotation."
    )
    default_capacity_type: CapacityType = Field(
        CapacityType.ANY, description="SageMaker capacity a burst may use when the Job does not say."
    )


class LocalSide(_Model):
    """The cluster side: how long Jobs may wait and when the cluster counts as hot."""

    max_wait_seconds: NonNegFloat = Field(
        10_000_000, description="Longest a Job waits for local GPUs before it bursts (if it may burst), "
        "whatever the tradeoff says. The default (116 days) leaves it to the tradeoff: on Philly, a day's "
        "limit sent out the biggest, longest Jobs and cost 23-35 % more."
    )
    max_wait_per_gpu_second: NonNegFloat = Field(
        0.0,
        description="Adds this x the Job's GPUs x its runtime to maxWaitSeconds, so big Jobs may wait "
        "longer (Starburst's compute-weighted wait; 0.076 means 4.6 min per GPU-hour).",
    )
    burst_timing: Literal["early", "atMaxWait"] = Field(
        "early",
        description="When the max wait sends a Job out. early: as soon as the forecast says the wait would "
        "pass it; atMaxWait: once the Job has waited that long (the forecast may be wrong in its favour). "
        "Either way the tradeoff bursts a Job whose forecast wait is worth more than the burst.",
    )
    queueing: Literal["backfill", "outOfOrder", "fifo"] = Field(
        "backfill",
        description="backfill: a waiting Job holds its forecast slot, later Jobs may use gaps before it; "
        "outOfOrder: whatever fits starts, waiting Jobs hold nothing; fifo: no Job starts before one "
        "queued ahead of it.",
    )
    hot_utilization_percent: Annotated[float, Field(ge=0, le=100)] = Field(
        90,
        description="Average DCGM GPU utilization over hotWindowSeconds at or above which the "
        "cluster is hot: a Job that cannot start now bursts at once instead of waiting.",
    )
    hot_window_seconds: PosInt = Field(600, description="Window of the utilization average.")
    gpu_hour_usd: NonNegFloat = Field(
        0.0,
        description="Internal price of one local GPU-hour (0: local GPUs are already paid for).",
    )
    planning_depth: PosInt | None = Field(
        None,
        description="Plan only this many Jobs from the head of the queue, as Slurm's main pass does "
        "(default_queue_depth). The Jobs behind them wait unplanned (QueuedBeyondPlanningDepth) until "
        "Jobs ahead leave: they never burst, and only a single pod that fits now, for its whole run, "
        "in the GPUs the planned Jobs leave starts (backfill). This bounds a cycle's cost when "
        "thousands of Jobs queue, as when a budget holds them back. Unset: every Job is planned.",
    )
    overrun_remaining_fraction: Annotated[float, Field(gt=0, le=10)] = Field(
        0.5,
        description="A running Job past its expected end is assumed to need this fraction of its "
        "elapsed time again (estimates are often wrong; this keeps forecasts finite and sane).",
    )


class InstanceTypeRule(_Model):
    """Maps Jobs to SageMaker types; the first matching rule wins."""

    gpu_product: str = Field(
        "*", description="Glob over the Job's nvidia.com/gpu.product node selector ('*' any, '' none)."
    )
    gpus_per_pod: PosInt | None = Field(None, description="Match only Jobs with this many GPUs per pod.")
    instance_types: list[str] = Field(
        min_length=1, description="Candidates in order of preference; the first allowed one with quota wins."
    )


class PriceOverride(_Model):
    on_demand_usd_per_hour: NonNegFloat | None = None
    spot_usd_per_hour: NonNegFloat | None = None
    transform_usd_per_hour: NonNegFloat | None = Field(
        None, description="SageMaker batch transform price per instance-hour; a type with none known "
        "(see `spillway catalog`) takes no transform bursts until it is given here.",
    )


class SageMakerSide(_Model):
    """The cloud side: where and how bursts run."""

    region: str = Field("us-east-1", description="AWS region of the SageMaker training jobs.")
    emit: EmitTarget = Field(
        EmitTarget.ACK,
        description="ack: sagemaker.services.k8s.aws/v1alpha1 TrainingJob; legacy: "
        "sagemaker.aws.amazon.com/v1 TrainingJob; api: boto3 CreateTrainingJob.",
    )
    burst_as: BurstAs = Field(
        BurstAs.VIRTUAL_NODE,
        description="virtualNode: a burst Job runs, as Kubernetes sees it: its pods are bound to the "
        "virtual node spillway-sagemaker and mirror the training job, so the Job completes or fails "
        "(kubectl wait, backoffLimit, activeDeadlineSeconds, ttlSecondsAfterFinished all work). "
        "suspendedJob: the Job stays suspended and only its spillway.io/ annotations tell how the "
        "training job goes (no Node object, no node RBAC).",
    )
    instance_types: list[InstanceTypeRule] = Field(
        default_factory=list,
        description="Mapping rules. Without a matching rule, the cheapest allowed NVIDIA type of the "
        "Job's GPU family with at least its GPUs per pod is used.",
    )
    allowed_instance_types: list[str] = Field(
        default_factory=lambda: ["ml.*"], description="Globs of types any burst may use."
    )
    quotas: dict[str, Annotated[int, Field(ge=0)]] = Field(
        default_factory=dict,
        description="Concurrent instances per type (your SageMaker service quota). Absent: unlimited.",
    )
    startup_seconds: NonNegFloat = Field(
        420, description="Provisioning plus image download before training starts."
    )
    transform_startup_seconds: NonNegFloat = Field(
        420,
        description="Provisioning, image and model download, and the model server's health check "
        "before a batch transform job sends its first records. No published figure was found: "
        "training's start-up until you measure your own.",
    )
    max_runtime_factor: Annotated[float, Field(ge=1)] = Field(
        2.0,
        description="MaxRuntimeInSeconds = this x the runtime estimate. It bounds what a wrong "
        "estimate can cost, and it is what budgets are charged against up front.",
    )
    prices: dict[str, PriceOverride] = Field(
        default_factory=dict, description="Price overrides per instance type, e.g. negotiated rates."
    )


class SpotSide(_Model):
    """Managed spot training and its deadline safety net."""

    enabled: bool = True
    interruption_model: Literal["advisor", "none"] = Field(
        "advisor",
        description="advisor: Poisson interruptions at the Spot Advisor band of the type; none: ignore.",
    )
    require_checkpoint: bool = Field(
        True,
        description="Burst to spot only Jobs with spillway.io/checkpoint-s3-uri (an interruption "
        "otherwise restarts from scratch).",
    )
    restart_overhead_seconds: NonNegFloat = Field(
        600, description="Wall time lost per interruption or fallback: relaunch, restore, lost progress."
    )
    safety_margin_seconds: NonNegFloat = Field(
        900, description="Slack kept between the on-demand fallback's predicted end and the deadline."
    )
    max_wait_factor: Annotated[float, Field(ge=1)] = Field(
        2.0,
        description="Without a deadline, MaxWaitTimeInSeconds = this x the runtime cap.",
    )
    fallback: Literal["launchWindow", "progress", "planned"] = Field(
        "progress",
        description="When a spot burst with a deadline gives way to on-demand. progress (the default): "
        "at the time fixed at launch, as if spot made no progress, moved later by every checkpointed "
        "second of progress; MaxWaitTimeInSeconds runs to the deadline, and the controller falls back "
        "when the time comes. launchWindow: at the time fixed at launch; MaxWaitTimeInSeconds stops "
        "spot then even if the controller is down (the on-demand relaunch still waits for the "
        "controller, in either mode), but a Job with little slack gets only minutes of spot and costs "
        "near on-demand (see the CBL-1 figures in the README). planned: every planTickSeconds the "
        "controller follows a plan of least expected cost under a model of spot availability "
        "(policies/spot/spot_plan.py): it may leave spot for on-demand early in a long outage and go back "
        "to managed spot later; the progress rule stays on as the safety net.",
    )
    plan_tick_seconds: Annotated[float, Field(gt=0)] = Field(
        1800,
        description="spot.fallback planned: how often the plan is consulted. A changeover (sageMaker."
        "startupSeconds + restartOverheadSeconds) must fit in one tick.",
    )


class BudgetLimit(_Model):
    daily_usd: NonNegFloat | None = Field(None, description="Per UTC day; absent means no daily limit.")
    monthly_usd: NonNegFloat | None = Field(None, description="Per UTC calendar month.")

    def left(self, today_usd: float, month_usd: float, committed_usd: float) -> tuple[float, BudgetPeriod | None]:
        """Dollars still free after what was billed today and this month and what is committed,
        and which window binds (None without a limit)."""
        left: float = float("inf")
        which: BudgetPeriod | None = None
        if self.daily_usd is not None:
            left, which = self.daily_usd - today_usd - committed_usd, "daily"
        if self.monthly_usd is not None and self.monthly_usd - month_usd - committed_usd < left:
            left, which = self.monthly_usd - month_usd - committed_usd, "monthly"
        return left, which


class Budgets(_Model):
    default: BudgetLimit = Field(
        default_factory=lambda: BudgetLimit(daily_usd=500, monthly_usd=5000),
        description="Budget of a namespace not listed in `namespaces`.",
    )
    namespaces: dict[str, BudgetLimit] = Field(default_factory=dict)
    when_exhausted: BudgetExhaustedAction = Field(
        BudgetExhaustedAction.WAIT,
        description="wait: the Job waits for the budget to reset and holds no place in the local queue "
                    "(it still runs locally if GPUs are free first); localOnly: it joins the local queue "
                    "and holds its place there.",
    )


class Allowlist(_Model):
    role_arns: list[str] = Field(
        default_factory=list, description="IAM roles the namespace's bursts may use; the first is the default."
    )
    s3_prefixes: list[str] = Field(
        default_factory=list,
        description="S3 prefixes for output and checkpoints; the first is the default output prefix.",
    )
    instance_types: list[str] = Field(default_factory=lambda: ["ml.*"], description="Globs.")
    images: list[str] = Field(
        default_factory=lambda: ["*"],
        description="Globs of the images a burst may run on SageMaker (the pod's image, or the one in "
        "spillway.io/sagemaker-image), e.g. ['123456789012.dkr.ecr.us-east-1.amazonaws.com/*'].",
    )


class Tradeoff(_Model):
    """The one knob that moves the policy along the cost/latency curve."""

    wait_usd_per_hour: NonNegFloat = Field(
        15.0, description="What one hour of waiting is worth in dollars (per Job or per GPU). A Job bursts "
        "when its forecast wait is worth more than the burst costs: higher, less waiting and more dollars."
    )
    per: WaitCostBasis = Field(WaitCostBasis.JOB, description="job: flat per Job (a big Job waits longer "
                               "before it bursts, as its burst costs more); gpu: times the Job's GPUs.")


class LabelRuntime(_Model):
    label: str = Field(description="key=value on the Job's labels.")
    seconds: PosInt


class RuntimeEstimates(_Model):
    """Where run times come from when the Job does not say (spillway.io/runtime-estimate)."""

    default_seconds: PosInt = 3600
    by_namespace: dict[str, PosInt] = Field(default_factory=dict)
    by_label: list[LabelRuntime] = Field(default_factory=list)
    use_history: bool = Field(True, description="Use what similar completed Jobs took (median).")


class PolicySpec(_Model):
    managed_jobs: ManagedJobs = Field(default_factory=ManagedJobs)
    local: LocalSide = Field(default_factory=LocalSide)
    sage_maker: SageMakerSide = Field(default_factory=SageMakerSide, alias="sageMaker")
    spot: SpotSide = Field(default_factory=SpotSide)
    budgets: Budgets = Field(default_factory=Budgets)
    allowlists: dict[str, Allowlist] = Field(
        default_factory=dict,
        description="Per namespace ('*' for any). A namespace with no entry may not burst.",
    )
    tradeoff: Tradeoff = Field(default_factory=Tradeoff)
    runtime_estimates: RuntimeEstimates = Field(default_factory=RuntimeEstimates)

    @model_validator(mode="after")
    def _check_rules(self) -> "PolicySpec":
        changeover = self.sage_maker.startup_seconds + self.spot.restart_overhead_seconds
        if self.spot.fallback == "planned" and changeover >= self.spot.plan_tick_seconds:
            raise ValueError(
                f"spot.planTickSeconds: {self.spot.plan_tick_seconds:g} s is too short for spot.fallback "
                f"planned: a changeover (sageMaker.startupSeconds {self.sage_maker.startup_seconds:g} + "
                f"spot.restartOverheadSeconds {self.spot.restart_overhead_seconds:g}) must fit in one tick; "
                f"set planTickSeconds above {changeover:g}"
            )
        for ns, limit in self.budgets.namespaces.items():
            if limit.daily_usd is not None and limit.monthly_usd is not None:
                if limit.daily_usd > limit.monthly_usd:
                    raise ValueError(
                        f"budgets.namespaces.{ns}: dailyUsd {limit.daily_usd} exceeds monthlyUsd "
                        f"{limit.monthly_usd}; the daily limit could never be reached"
                    )
        return self


class Metadata(_Model):
    name: str = "default"


class BurstPolicy(_Model):
    api_version: Literal["spillway.io/v1alpha1"] = Field(API_VERSION, alias="apiVersion")
    kind: Literal["BurstPolicy"] = POLICY_KIND
    metadata: Metadata = Field(default_factory=Metadata)
    spec: PolicySpec = Field(default_factory=PolicySpec)
    # Memo of pure lookups on this (immutable) policy, e.g. which types a namespace may use.
    _memo: dict[Any, Any] = PrivateAttr(default_factory=dict)

    @property
    def memo(self) -> dict[Any, Any]:
        """The memo dict, read straight from pydantic's private store: `self._memo` goes through
        BaseModel.__getattr__, about 35 times slower, and the core reads it for every Job."""
        return self.__pydantic_private__["_memo"]  # type: ignore[index,no-any-return]  # set by PrivateAttr

    # --- lookups the core uses ---------------------------------------------------------
    def allowlist_for(self, namespace: str) -> Allowlist | None:
        return self.spec.allowlists.get(namespace) or self.spec.allowlists.get("*")

    def budget_for(self, namespace: str) -> BudgetLimit:
        return self.spec.budgets.namespaces.get(namespace, self.spec.budgets.default)

    def type_allowed(self, instance_type: str, namespace: str) -> bool:
        key = ("allowed", instance_type, namespace)
        memo = self.memo
        if key not in memo:
            memo[key] = self._type_allowed(instance_type, namespace)
        allowed: bool = memo[key]
        return allowed

    def _type_allowed(self, instance_type: str, namespace: str) -> bool:
        allow = self.allowlist_for(namespace)
        if allow is None:
            return False
        return _glob_any(instance_type, self.spec.sage_maker.allowed_instance_types) and _glob_any(
            instance_type, allow.instance_types
        )

    def to_yaml_dict(self) -> dict[str, Any]:
        return self.model_dump(mode="json", by_alias=True)


def _glob_any(name: str, patterns: list[str]) -> bool:
    return any(fnmatch.fnmatchcase(name, p) for p in patterns)


def json_schema() -> dict[str, Any]:
    schema = BurstPolicy.model_json_schema(by_alias=True)
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "Spillway BurstPolicy (spillway.io/v1alpha1)"
    return schema
