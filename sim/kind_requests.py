"""What a trace Job of each kind adds to its JobRequest: the fields the core reads to decide it.

A transform Job is its kind alone (its instances are its pods). A sweep also needs a TuningSpec,
but the core reads only its shape (trials, pods, waves) and whether its strategy is drawn locally,
so the spec here is a stand-in: one objective and one range, a categorical one with a value per
trial for Grid (which runs each combination once).
"""

from __future__ import annotations

from typing import Any

from policies.model import ObjectiveType, ParameterRange, RangeKind, SageMakerKind, Strategy, TuningSpec

from .traces import TraceJob


def kind_request_fields(job: TraceJob) -> dict[str, Any]:
    """Keyword arguments for the JobRequest of `job`: none for a training Job, which keeps the
    request (and every figure of a training-only trace) as it was."""
    if job.kind == SageMakerKind.TRAINING:
        return {}
    if job.kind == SageMakerKind.TRANSFORM:
        return {"sagemaker_kind": job.kind}
    return {"sagemaker_kind": job.kind, "trials": job.trials, "tuning": stand_in_spec(job.strategy, job.trials)}


def stand_in_spec(strategy: Strategy, trials: int) -> TuningSpec:
    if strategy == Strategy.GRID:
        searched = ParameterRange("choice", RangeKind.CATEGORICAL, values=tuple(str(i) for i in range(trials)))
    else:
        searched = ParameterRange("learning_rate", RangeKind.CONTINUOUS, 1e-5, 1e-1)
    return TuningSpec("objective", r"objective=([0-9.eE+-]+)", ObjectiveType.MINIMIZE, strategy, (searched,))
