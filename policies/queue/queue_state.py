"""QueueState: what the QueuePlanner's modes read and change of the queue the planner keeps.

The planner (queue_planner.py) makes its modes and hands itself to them; named here as a
protocol, the modes need not import the planner that imports them (no import cycle)."""

from __future__ import annotations

from typing import Protocol

from ..decide import Cycle, Evaluated
from ..forecast import Derived
from ..model import BurstPolicy, Catalog, Decision, JobRequest, Snapshot
from .planning_window import PlanningWindow
from .queue_streams import Entry, OrderKey


class QueueState(Protocol):
    policy: BurstPolicy
    catalog: Catalog | None
    optimizer: str
    jobs: dict[str, JobRequest]
    order: dict[str, OrderKey]
    new: list[Entry]  # not decided since they came in (and, stable, volatile ones waiting)
    evaluated: int  # Jobs decided, summed over cycles
    window: PlanningWindow | None  # local.planningDepth's planned Jobs; None: no depth

    def remove(self, key: str) -> None:
        """A Job left the queue: placed, deleted, or taken over by hand."""

    def start_cycle(self, snapshot: Snapshot, now: float, derived: Derived) -> Cycle:
        """A fresh Cycle on the snapshot under the planner's policy and catalog."""

    def backfill_behind(self, cycle: Cycle, decisions: list[Decision]) -> list[tuple[JobRequest, Evaluated]]:
        """The Jobs queued behind the planned ones that start now; they leave the queue."""
