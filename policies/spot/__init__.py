"""Managed spot under a deadline: the fallback rule and the tick-by-tick spot plan.

Imports only policies.model."""

from .spot_plan import (BlindSpotPlan, SpotBelief, availability_model, blind_choice, observe, plan_spot,
                        plan_spot_blind, planned_switch, policy_burst_plan, run_age, spot_seen_in_status)
from .window import (MOVING_FALLBACK, SpotWindow, greedy_choice, spot_fallback_due, spot_fallback_time, spot_window,
                     uniform_progress_choice)

__all__ = [
    "BlindSpotPlan", "MOVING_FALLBACK", "SpotBelief", "SpotWindow", "availability_model", "blind_choice",
    "greedy_choice", "observe", "plan_spot", "plan_spot_blind", "planned_switch", "policy_burst_plan",
    "run_age", "spot_fallback_due", "spot_fallback_time", "spot_seen_in_status", "spot_window",
    "uniform_progress_choice",
]
