"""The core's vocabulary: the policy, the catalog, Jobs, snapshots, decisions, units and errors.

The bottom layer: it imports no other part of policies/."""

from . import constants
from .catalog import Catalog, InstanceType, default_catalog, gpu_family_of_product
from .cli_numbers import AT_LEAST_ONE, COUNT, FRACTION, METRICS_PORT, NON_NEGATIVE, PORT, POSITIVE, SECONDS
from .constants import (BudgetExhaustedAction, BurstAs, CapacityType, EmitTarget, EventReason, LEASE_NAME, Mode,
                        Placement, PodReason, Reason, SAGEMAKER_IMAGE, SageMakerKind, SplitType, WaitCostBasis)
from .decision import CloudLaunch, Decision, Evidence, OptionCost, Text
from .errors import InputError, InputIssue
from .jobs import JobRequest, family_of, job_from_manifest, pod_spec_gpus
from .loading import parse_yaml
from .policy import BudgetLimit, BudgetPeriod, BurstPolicy, json_schema
from .policy_loading import check_policy_text, default_policy, load_policy
from .snapshot import CloudJob, CompletedJob, Node, RunningPod, Snapshot, Spend, load_snapshot
from .units import (finite_or_none, format_micro_time, format_time, next_utc_midnight, next_utc_month_start,
                    parse_duration, parse_gpu_quantity, parse_time)
from .tuning_spec import ObjectiveType, ParameterRange, RangeKind, Scaling, Strategy, TuningSpec, read_tuning_spec
from .tuning_trials import (HYPERPARAMETERS_DIR, HYPERPARAMETERS_FILE, hp_variable, hyperparameters_json,
                            trial_environment, trial_hyperparameters)
from .tuning_results import TrialResult, objective_from_log, read_trial_results, trial_results_text
from .values import value

__all__ = [
    "AT_LEAST_ONE", "BudgetExhaustedAction", "BudgetLimit", "BudgetPeriod", "BurstAs", "BurstPolicy",
    "COUNT", "CapacityType", "Catalog", "CloudJob", "CloudLaunch", "CompletedJob", "Decision", "EmitTarget",
    "EventReason", "Evidence", "FRACTION", "InputError", "InputIssue", "InstanceType", "JobRequest",
    "LEASE_NAME", "METRICS_PORT", "Mode", "NON_NEGATIVE", "Node", "OptionCost", "PORT", "POSITIVE",
    "Placement", "PodReason", "Reason", "RunningPod", "SAGEMAKER_IMAGE", "SECONDS", "SageMakerKind", "Snapshot",
    "SplitType", "Spend",
    "Text", "WaitCostBasis", "check_policy_text", "constants", "default_catalog", "default_policy",
    "family_of", "finite_or_none", "format_micro_time", "format_time", "gpu_family_of_product",
    "job_from_manifest", "json_schema", "load_policy", "load_snapshot", "next_utc_midnight",
    "next_utc_month_start", "parse_duration", "parse_gpu_quantity", "parse_time", "parse_yaml",
    "pod_spec_gpus", "value",
    "HYPERPARAMETERS_DIR", "HYPERPARAMETERS_FILE", "ObjectiveType", "ParameterRange", "RangeKind", "Scaling",
    "Strategy", "TuningSpec", "hp_variable", "read_tuning_spec", "hyperparameters_json", "trial_environment", "trial_hyperparameters",
    "TrialResult", "objective_from_log", "read_trial_results", "trial_results_text",
]
