"""The step every queue walk shares: decide one Job at its turn, and assume the decision.

plan() walks the whole queue with it; the QueuePlanner's modes walk the Jobs whose decision may
have changed. Assuming each decision before the next Job is looked at is what keeps two Jobs from
claiming the same GPUs, dollars or quota (Kueue's "assume, then write").
"""

from __future__ import annotations

from ..forecast import LocalSlot
from ..model import Decision, JobRequest, Placement
from ..decide import Cycle, Evaluated, assume, evaluate
from .plan_result import SolverReport


def decide_in_turn(job: JobRequest, cycle: Cycle, decisions: list[Decision], slot: LocalSlot | None = None,
                   prefer: Placement | None = None) -> Evaluated:
    """evaluate() and assume() one Job, and add its decision to the cycle's."""
    result = evaluate(job, cycle, slot, prefer)
    assume(result, job, cycle)
    decisions.append(result.decision)
    return result


GREEDY = SolverReport("greedy", "greedy")  # what the solver did in a cycle with no optimizer: nothing
