"""Spillway's pure decision core: policy model, catalog, capacity forecast, decide() and plan().

No network, no clock reads, no global randomness: time comes in as `now`, and the controller
and the simulator call these same functions.

Five sub-packages, each imported through its face (its __init__), in layers (tests/test_contract.py):
queue (plan(), QueuePlanner) > decide (one Job) > forecast (capacity, estimates) | spot > model.
"""

from .decide import Cycle, assume, decide, evaluate, is_managed
from .forecast import Derived
from .model import (BurstPolicy, CapacityType, Catalog, CloudJob, CloudLaunch, CompletedJob, Decision, Evidence,
                    InputError, InputIssue, InstanceType, JobRequest, Mode, Node, OptionCost, Placement, Reason,
                    RunningPod, Snapshot, Spend, check_policy_text, constants, default_catalog, default_policy,
                    job_from_manifest, json_schema, load_policy, load_snapshot)
from .queue import Plan, SolverReport, plan, queue_order
from .spot import SpotWindow, spot_fallback_due, spot_window

__all__ = [
    "BurstPolicy", "CapacityType", "Catalog", "CloudJob", "CloudLaunch", "CompletedJob", "Cycle",
    "Decision", "Derived", "Evidence", "InputError", "InputIssue", "InstanceType", "JobRequest", "Mode", "Node",
    "OptionCost", "Placement", "Plan", "Reason", "RunningPod", "Snapshot", "SolverReport", "Spend",
    "SpotWindow", "assume", "check_policy_text", "decide", "default_catalog", "default_policy",
    "constants", "evaluate", "is_managed", "job_from_manifest", "json_schema", "load_policy", "load_snapshot", "plan",
    "queue_order", "spot_fallback_due", "spot_window",
]
