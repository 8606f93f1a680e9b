"""The report's rows per kind of Job (training, transform, tuning), beside the totals.

They appear only when the trace holds a kind beyond training: a training-only report is the
totals alone, as it always was.
"""

from __future__ import annotations

from dataclasses import dataclass

from policies.model import SageMakerKind

from .engine import JobRecord

HOUR = 3600.0


@dataclass(frozen=True)
class KindSummary:
    kind: str
    jobs: int
    local_jobs: int
    bursts: int
    cloud_usd: float
    wait_mean_hours: float  # arrival to local start or SageMaker launch
    jct_mean_hours: float

    def as_dict(self) -> dict:
        return {k: (round(v, 6) if isinstance(v, float) else v) for k, v in self.__dict__.items()}


def kind_summaries(done: list[JobRecord]) -> tuple[KindSummary, ...]:
    """One summary per kind present among the finished Jobs, in SageMakerKind's order; none when
    every Job is a training Job."""
    by_kind: dict[SageMakerKind, list[JobRecord]] = {}
    for r in done:
        by_kind.setdefault(r.trace.kind, []).append(r)
    if set(by_kind) <= {SageMakerKind.TRAINING}:
        return ()
    return tuple(_summary(kind, by_kind[kind]) for kind in SageMakerKind if kind in by_kind)


def _summary(kind: SageMakerKind, records: list[JobRecord]) -> KindSummary:
    def mean_hours(values: list[float]) -> float:
        return sum(values) / len(values) / HOUR

    bursts = sum(r.placement.startswith("SageMaker") for r in records)
    return KindSummary(kind.value, len(records), sum(r.placement == "Local" for r in records), bursts,
                       sum(r.cloud_usd for r in records),
                       mean_hours([_known(r.start) - r.trace.arrival_s for r in records]),
                       mean_hours([_known(r.finish) - r.trace.arrival_s for r in records]))


def _known(t: float | None) -> float:
    assert t is not None  # a finished Job started and finished
    return t


def kind_rows(kinds_of: list[tuple[KindSummary, ...]]) -> list[tuple[str, list[str]]]:
    """(label, a cell per run) rows for the table: three per kind present in any run ('-' where a
    run has none of that kind)."""
    present = [k.value for k in SageMakerKind if any(s.kind == k.value for kinds in kinds_of for s in kinds)]
    rows: list[tuple[str, list[str]]] = []
    for kind in present:
        found = [next((s for s in kinds if s.kind == kind), None) for kinds in kinds_of]
        rows.append((f"{kind} Jobs (local / burst)",
                     ["-" if s is None else f"{s.jobs} ({s.local_jobs} / {s.bursts})" for s in found]))
        rows.append((f"  {kind} cloud $", ["-" if s is None else f"${s.cloud_usd:,.2f}" for s in found]))
        rows.append((f"  {kind} wait / JCT mean (h)",
                     ["-" if s is None else f"{s.wait_mean_hours:.3f} / {s.jct_mean_hours:.3f}" for s in found]))
    return rows
