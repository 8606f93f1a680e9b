"""The whole queue in one cycle: plan(), the incremental QueuePlanner, and what a Plan asks for.

The top layer: it imports policies.decide and the layers below it."""

from .actions import cycle_actions
from .plan_result import Plan, SolverReport, queue_order
from .planning import plan
from .queue_planner import QueuePlanner

__all__ = [
    "Plan", "QueuePlanner", "SolverReport", "cycle_actions", "plan", "queue_order",
]
