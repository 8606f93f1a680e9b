"""Local capacity over time and run-time estimates: what one Snapshot says about the future.

Imports only policies.model."""

from .capacity import CapacityTimeline, INF, LocalSlot, occupation_digest
from .derived import Derived
from .estimates import estimate_runtime, expected_end

__all__ = [
    "CapacityTimeline", "Derived", "INF", "LocalSlot", "estimate_runtime", "expected_end",
    "occupation_digest",
]
