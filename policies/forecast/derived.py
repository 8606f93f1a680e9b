"""What the core works out from one Snapshot under one policy, kept for the rest of the cycle.

A Snapshot is a plain value, never changed once made: the cluster at one instant. What the core
derives from it (the capacity timeline of the running pods, decide()'s forecast of the queue, the
run times of completed Jobs by family) lives here instead, in an object made for one (snapshot,
policy) and passed to the core by whoever calls it. Dropping it never changes an answer, and it
cannot be reused for another snapshot or policy by mistake: it holds the pair it was made for.
"""

from __future__ import annotations

from .capacity import CapacityTimeline, LocalSlot
from .estimates import RuntimeHistory, estimate_runtime, expected_end, runtime_history
from ..model import BurstPolicy, JobRequest, Snapshot


class Derived:
    __slots__ = ("snapshot", "policy", "capacity", "_history", "_timelines", "_queue")

    def __init__(self, snapshot: Snapshot, policy: BurstPolicy, capacity: CapacityTimeline | None = None):
        """capacity: the timeline of snapshot.running as of snapshot.time, kept incrementally by an
        adapter that sees every pod start and end (the simulator does). The core only reads it."""
        self.snapshot, self.policy, self.capacity = snapshot, policy, capacity
        self._history: RuntimeHistory | None = None
        self._timelines: dict[float, CapacityTimeline] = {}
        self._queue: dict[float, tuple[dict[str, LocalSlot], CapacityTimeline]] = {}

    def history(self) -> RuntimeHistory:
        """Run times of the snapshot's completed Jobs, by (namespace, family)."""
        if self._history is None:
            self._history = runtime_history(self.snapshot.completed)
        return self._history

    def runtime(self, job: JobRequest) -> tuple[float, str]:
        return estimate_runtime(job, self.policy, self.history())

    def timeline(self, now: float) -> CapacityTimeline:
        """Nodes and running work only; the adapter's own timeline when it is as of `now`."""
        if self.capacity is not None and self.capacity.origin == now:
            return self.capacity
        timeline = self._timelines.get(now)
        if timeline is None:
            releases = [(p.node, p.gpus, expected_end(p, self.snapshot.time, self.policy, self.history()))
                        for p in self.snapshot.running]
            timeline = self._timelines[now] = CapacityTimeline.from_nodes(now, self.snapshot.nodes, releases)
        return timeline

    def queue_forecast(self, now: float) -> tuple[dict[str, LocalSlot], CapacityTimeline]:
        """Conservative-backfilling reservations for snapshot.pending, in the order given."""
        forecast = self._queue.get(now)
        if forecast is None:
            timeline = self.timeline(now).copy()
            slots = {}
            for job in self.snapshot.pending:
                runtime = self.runtime(job)[0]
                slot = timeline.earliest_start(job.gpus_per_pod, job.pods, job.gpu_product, runtime)
                slots[job.key] = slot
                timeline.reserve(slot, job.gpus_per_pod, runtime)
            forecast = self._queue[now] = (slots, timeline)
        return forecast
