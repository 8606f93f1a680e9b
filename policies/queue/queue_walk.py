"""QueueWalk: one cycle over the queue, the walk that plan() and every QueuePlanner mode share.

A walk is a per-cycle object whose run() takes the same numbered steps for every planner:
  1. the wake set: the Jobs that may need a decision this cycle;
  2. the merged streams: the woken Jobs, and whatever else the planner reads, in queue order;
  3. each Job once, in queue order (walk): visit() it, which ends in decide_in_turn (evaluate
     and assume, so that two Jobs never claim the same GPUs, dollars or quota);
  4. after the walk: put back what the walk took out, and the Jobs behind the planning depth;
  5. the Plan, with when to run the next cycle at the latest (review_at).
A planner is a strategy for steps 1, 2 and 4 and for what visit() checks before deciding:
  - plan() (planning.py, FullWalk): no kept state; every planned Job is woken;
  - the QueuePlanner's modes keep state across cycles and wake only the Jobs whose decision may
    have changed: OutOfOrderWalk and FifoWalk under a stable policy (stable_modes.py),
    HeldSlotWalk otherwise (held_slot_walk.py). A differential test keeps them equal to plan().
"""

from __future__ import annotations

from typing import Iterable

from ..decide import Cycle, Evaluated, assume, evaluate
from ..forecast import Derived, LocalSlot
from ..model import Decision, JobRequest, Placement, Snapshot
from .plan_result import Plan, SolverReport
from .queue_streams import Entry, MergedStreams

GREEDY = SolverReport("greedy", "greedy")  # what the solver did in a cycle with no optimizer: nothing


def decide_in_turn(job: JobRequest, cycle: Cycle, decisions: list[Decision], slot: LocalSlot | None = None,
                   prefer: Placement | None = None) -> Evaluated:
    """The step every walk ends a visit with: evaluate() and assume() one Job, and add its decision
    to the cycle's. Assuming each decision before the next Job is looked at is what keeps two Jobs
    from claiming the same GPUs, dollars or quota (Kueue's "assume, then write")."""
    result = evaluate(job, cycle, slot, prefer)
    assume(result, job, cycle)
    decisions.append(result.decision)
    return result


class QueueWalk:
    """One cycle over the queue. Subclasses fill in the steps; run() takes them in order."""

    __slots__ = ("snapshot", "now", "derived", "jobs", "streams", "decisions", "solver")
    gated = False  # True: the planner may drop a stream whole (reads_on)
    streams: MergedStreams  # made in step 2 (merge_streams)

    def __init__(self, snapshot: Snapshot, now: float, derived: Derived, jobs: dict[str, JobRequest]):
        self.snapshot, self.now, self.derived = snapshot, now, derived
        self.jobs = jobs  # the queued Jobs by key: an entry whose Job left the queue is skipped
        self.decisions: list[Decision] = []
        self.solver = GREEDY  # what an optimizer did this cycle (FullWalk with CP-SAT says)

    def run(self) -> Plan:
        self.merge_streams(self.wake_set())  # 1, 2
        self.walk()  # 3
        self.after_walk()  # 4
        return Plan(tuple(self.decisions), self.solver, self.review_at())  # 5

    # --- the steps, as a planner fills them in ------------------------------------------------

    def wake_set(self) -> Iterable[Entry]:
        """1. The Jobs that may need a decision this cycle."""
        raise NotImplementedError

    def merge_streams(self, woken: Iterable[Entry]) -> None:
        """2. The woken Jobs in queue order; a planner adds the other streams it reads."""
        self.streams = MergedStreams((iter(sorted(woken)),))

    def walk(self) -> None:
        """3. Each Job once, in queue order, read from the merged streams as they grow (a visit may
        add the Jobs behind a change). A gated planner may drop a stream whole: it is not read on."""
        jobs, seen = self.jobs, set()
        # Bound here, not kept on the walk: a walk that referred to itself would live until the
        # garbage collector found it, and with it the cycle's copy of the timeline.
        gate = self.reads_on if self.gated else None
        pop, advance, visit = self.streams.pop, self.streams.advance, self.visit  # read once: a hot loop
        while (popped := pop()) is not None:
            order, key, s = popped
            entry = (order, key)
            if gate is not None and not gate(s, entry):
                continue
            advance(s)
            if key in seen or key not in jobs:
                continue
            seen.add(key)
            visit(entry, jobs[key])

    def reads_on(self, s: int, entry: Entry) -> bool:
        """3. Whether stream s reads on at this entry (False: the stream is dropped whole)."""
        return True

    def visit(self, entry: Entry, job: JobRequest) -> None:
        """3. One Job at its turn: the planner's checks, then decide_in_turn (or nothing, if the
        checks show its decision is the one it had)."""
        raise NotImplementedError

    def after_walk(self) -> None:
        """4. Put back what the walk took out; decide the Jobs behind the planning depth."""

    def review_at(self) -> float | None:
        """5. When the caller must run a cycle at the latest, even if nothing happens."""
        return None
