"""Spillway's pure decision core: policy model, catalog, capacity forecast, decide() and plan().

No network, no clock reads, no global randomness: time comes in as `now`, and the controller
and the simulator call these same functions.
"""

from .catalog import Catalog, InstanceType, default_catalog
from .constants import CapacityType, Mode, Placement, Reason
from .decide import Cycle, assume, decide, evaluate, is_managed
from .decision import CloudLaunch, Decision, Evidence, OptionCost
from .derived import Derived
from .errors import InputError, InputIssue
from .jobs import JobRequest, job_from_manifest
from .plan import Plan, SolverReport, plan, queue_order
from .policy import BurstPolicy, json_schema
from .policy_loading import check_policy_text, default_policy, load_policy
from .snapshot import CloudJob, CompletedJob, Node, RunningPod, Snapshot, Spend, load_snapshot
from .spot import SpotWindow, spot_fallback_due, spot_window

__all__ = [
    "BurstPolicy", "CapacityType", "Catalog", "CloudJob", "CloudLaunch", "CompletedJob", "Cycle",
    "Decision", "Derived", "Evidence", "InputError", "InputIssue", "InstanceType", "JobRequest", "Mode", "Node",
    "OptionCost", "Placement", "Plan", "Reason", "RunningPod", "Snapshot", "SolverReport", "Spend",
    "SpotWindow", "assume", "check_policy_text", "decide", "default_catalog", "default_policy",
    "evaluate", "is_managed", "job_from_manifest", "json_schema", "load_policy", "load_snapshot", "plan",
    "queue_order", "spot_fallback_due", "spot_window",
]
