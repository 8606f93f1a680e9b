"""What the core returns: a Decision per Job, with the reason and the numbers behind it."""

from __future__ import annotations

import math
from dataclasses import asdict, field, fields
from typing import Any, Callable, Union

from .constants import Placement, Reason, SageMakerKind
from .units import format_time
from .values import value


@value
class CloudLaunch:
    """Everything an emitter needs to create the SageMaker training (or transform) job."""

    instance_type: str
    instance_count: int
    spot: bool
    role_arn: str
    output_s3_uri: str
    checkpoint_s3_uri: str | None
    max_runtime_seconds: int
    sagemaker_max_wait_seconds: int | None  # spot only: StoppingCondition.MaxWaitTimeInSeconds
    fallback_time: float | None  # spot only: when Spillway relaunches on on-demand
    region: str
    kind: SageMakerKind = SageMakerKind.TRAINING  # a training job, or a batch transform job (never spot)


@value
class OptionCost:
    placement: Placement
    expected_usd: float  # what it is expected to cost
    committed_usd: float  # the most it can cost (charged against the budget)
    start_time: float  # expected start of useful work
    end_time: float  # expected end
    score: float  # expected_usd + value of the wait until start_time
    instance_type: str | None = None
    note: str = ""


@value
class Evidence:
    now: float
    runtime_estimate_seconds: float
    runtime_source: str
    local_start_time: float  # inf: never fits locally
    local_wait_seconds: float
    waited_seconds: float  # since submission
    local_max_wait_seconds: float  # how long it may wait for local GPUs (local_max_wait())
    wait_usd_per_hour: float  # for this Job (after per-GPU scaling)
    deadline: float | None = None
    deadline_slack_seconds: float | None = None  # deadline - expected end of the chosen option
    cluster_hot: bool = False
    options: tuple[OptionCost, ...] = ()
    budget_remaining_usd: float | None = None
    trigger: str = ""  # what made a burst happen, when the reason names the spot/deadline choice
    blocked: str = ""  # why the cloud was not an option, when it was not (whatever the placement)
    blocked_reason: Reason | None = None  # the same, as a constant (BurstNotAllowed, BudgetExhausted, ...)
    # The least a burst would commit, when the budget alone stopped it (no type was short of quota):
    # the Job stays blocked while the namespace has less than this left.
    budget_needed_usd: float | None = None
    budget_needed_type: str = ""  # the instance type that burst would use; blocked again only while it has quota


Text = Union[str, Callable[[], str]]  # a message, or a function that writes it when first read


@value(eq=False)
class Decision:
    job: str  # namespace/name
    placement: Placement
    reason: Reason
    text: Text = field(repr=False)  # read it as .message
    evidence: Evidence
    requeue_after_seconds: float | None = None  # for Wait
    launch: CloudLaunch | None = None
    local_nodes: tuple[str, ...] = field(default=())
    local_pods: tuple[int, ...] = field(default=())  # pods on each of local_nodes (gangs may share a node)

    @property
    def message(self) -> str:
        """Why, in a sentence. Written on first read: a simulation decides millions of times and
        reads few of them, a controller writes each one to an Event."""
        text = self.text
        if not isinstance(text, str):
            text = text()
            object.__setattr__(self, "text", text)
        return text

    def _fields(self) -> tuple[Any, ...]:
        return (self.job, self.placement, self.reason, self.message, self.evidence, self.requeue_after_seconds,
                self.launch, self.local_nodes, self.local_pods)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Decision):
            return NotImplemented
        return self._fields() == other._fields()

    def __hash__(self) -> int:
        return hash(self._fields())

    def __reduce__(self) -> tuple[type[Decision], tuple[Any, ...]]:
        """Pickled and copied with the message written out (a function may not pickle)."""
        return (Decision, self._fields())

    def __repr__(self) -> str:
        names = ("job", "placement", "reason", "message", *(f.name for f in fields(self)[4:]))
        return f"Decision({', '.join(f'{n}={v!r}' for n, v in zip(names, self._fields()))})"

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready (infinities become null, times become RFC 3339)."""
        values = asdict(self)
        out = {"job": self.job, "placement": self.placement, "reason": self.reason, "message": self.message,
               **{k: v for k, v in values.items() if k not in ("job", "placement", "reason", "text")}}
        out["placement"] = self.placement.value
        out["reason"] = self.reason.value
        ev = out["evidence"]
        for key in ("now", "local_start_time", "deadline"):
            ev[key] = _time(ev[key])
        for key in ("local_wait_seconds", "deadline_slack_seconds"):
            ev[key] = _finite(ev[key])
        ev["blocked_reason"] = ev["blocked_reason"].value if ev["blocked_reason"] else None
        for opt in ev["options"]:
            opt["placement"] = opt["placement"].value if hasattr(opt["placement"], "value") else opt["placement"]
            opt["start_time"], opt["end_time"] = _time(opt["start_time"]), _time(opt["end_time"])
            opt["score"] = _finite(opt["score"])
        if out["launch"]:
            out["launch"]["kind"] = SageMakerKind(out["launch"]["kind"]).value
        if out["launch"] and out["launch"]["fallback_time"] is not None:
            out["launch"]["fallback_time"] = _time(out["launch"]["fallback_time"])
        rounded: dict[str, Any] = _round(out)
        return rounded


def _time(t: float | None) -> str | None:
    return None if t is None or not math.isfinite(t) else format_time(t)


def _finite(x: float | None) -> float | None:
    return None if x is None or not math.isfinite(x) else x


def _round(obj: Any) -> Any:
    if isinstance(obj, float):
        return round(obj, 4)
    if isinstance(obj, dict):
        return {k: _round(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_round(v) for v in obj]
    return obj
