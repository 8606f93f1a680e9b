"""The immutable input of one scheduling cycle: nodes, running work, cloud work, spend, history.

Adapters (the controller) and the world model (the simulator) build it; the core only reads it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

from pydantic import Field

from .constants import SNAPSHOT_KIND
from .errors import InputError, InputIssue
from .jobs import JobRequest, job_from_manifest
from .loading import Lines, Path, dotted, line_of, load_model_checked
from .policy import _Model
from .units import parse_time
from .values import value


@dataclass(frozen=True, slots=True)
class Node:
    name: str
    allocatable_gpus: int
    gpu_product: str | None = None
    schedulable: bool = True


@dataclass(frozen=True, slots=True)
class RunningPod:
    """GPUs held on one node by a running Job (a multi-node Job has one entry per node)."""

    job: str  # namespace/name
    node: str
    gpus: int
    start_time: float
    expected_end_time: float | None = None  # None: estimate from history/policy


@value
class CloudJob:
    """A SageMaker job in flight: it holds quota and may still spend `committed_usd`."""

    job: str
    namespace: str
    instance_type: str
    instance_count: int
    committed_usd: float = 0.0


@value
class Spend:
    namespace: str
    today_usd: float = 0.0
    month_usd: float = 0.0


@dataclass(frozen=True, slots=True)
class CompletedJob:
    namespace: str
    family: str
    gpus: int
    duration_seconds: float


@value(eq=False)
class Snapshot:
    time: float
    nodes: tuple[Node, ...] = ()
    running: tuple[RunningPod, ...] = ()
    cloud: tuple[CloudJob, ...] = ()
    spend: tuple[Spend, ...] = ()
    completed: tuple[CompletedJob, ...] = ()
    pending: tuple[JobRequest, ...] = ()
    gpu_utilization_percent: float | None = None  # cluster average, when the adapter already averaged it
    utilization_samples: tuple[tuple[float, float], ...] = ()  # (time, cluster-average %), e.g. from DCGM
    # What the core derives from a snapshot (capacity timeline, queue forecast, run-time history)
    # is kept in a policies.forecast.Derived that the caller passes along, not here.

    def spend_of(self, namespace: str) -> Spend:
        for s in self.spend:
            if s.namespace == namespace:
                return s
        return Spend(namespace)

    def committed_of(self, namespace: str) -> float:
        return sum(c.committed_usd for c in self.cloud if c.namespace == namespace)

    def instances_in_use(self, instance_type: str) -> int:
        return sum(c.instance_count for c in self.cloud if c.instance_type == instance_type)

    def utilization_over(self, window_seconds: float, now: float) -> float | None:
        """Average GPU utilization over [now - window, now]: the samples if any, else the given figure."""
        recent = [pct for t, pct in self.utilization_samples if now - window_seconds <= t <= now]
        if recent:
            return sum(recent) / len(recent)
        return self.gpu_utilization_percent

    @property
    def total_gpus(self) -> int:
        return sum(n.allocatable_gpus for n in self.nodes if n.schedulable)


# --- the YAML file format (spillway.io/v1alpha1 ClusterSnapshot) --------------------------


class _NodeFile(_Model):
    name: str
    allocatable_gpus: int = Field(ge=0)
    gpu_product: str | None = None
    schedulable: bool = True


class _RunningFile(_Model):
    job: str = Field(description="namespace/name of the running Job")
    node: str
    gpus: int = Field(ge=0)
    start_time: str
    expected_end_time: str | None = None


class _CloudFile(_Model):
    job: str
    namespace: str
    instance_type: str
    instance_count: int = Field(1, ge=1)
    committed_usd: float = Field(0.0, ge=0)


class _SpendFile(_Model):
    namespace: str
    today_usd: float = Field(0.0, ge=0)
    month_usd: float = Field(0.0, ge=0)


class _CompletedFile(_Model):
    namespace: str
    family: str
    gpus: int = Field(ge=0)
    duration_seconds: float = Field(gt=0)


class SnapshotFile(_Model):
    api_version: str = Field("spillway.io/v1alpha1", alias="apiVersion")
    kind: str = SNAPSHOT_KIND
    time: str = Field(description="The snapshot's 'now', RFC 3339")
    nodes: list[_NodeFile] = Field(default_factory=list)
    running: list[_RunningFile] = Field(default_factory=list)
    cloud: list[_CloudFile] = Field(default_factory=list)
    spend: list[_SpendFile] = Field(default_factory=list)
    completed: list[_CompletedFile] = Field(default_factory=list)
    pending: list[dict[str, Any]] = Field(default_factory=list, description="batch/v1 Job manifests, queue order")
    gpu_utilization_percent: float | None = Field(None, ge=0, le=100)
    utilization_samples: list[tuple[str, Annotated[float, Field(ge=0, le=100)]]] = Field(
        default_factory=list, description="[time, cluster-average GPU utilization %] pairs")


def load_snapshot(text: str, source: str = "<snapshot>") -> Snapshot:
    built: list[Snapshot] = []

    def check(model: SnapshotFile, lines: Lines) -> list[InputIssue]:
        snapshot, issues = _snapshot_of(model, lines, source)
        built.append(snapshot)
        return issues

    _, _, issues = load_model_checked(SnapshotFile, text, source, SNAPSHOT_KIND, check)
    if issues:
        raise InputError(issues)
    return built[-1]


def _snapshot_of(model: SnapshotFile, lines: Lines, source: str) -> tuple[Snapshot, list[InputIssue]]:
    """The Snapshot of a schema-valid file, and what the schema cannot check (times, node names)."""
    issues: list[InputIssue] = []

    def when(value: str, path: Path) -> float:
        try:
            return parse_time(value)
        except ValueError as exc:
            issues.append(InputIssue(source, dotted(path), str(exc), "use RFC 3339 with a zone, e.g. "
                                     "2026-11-28T15:00:00Z", line_of(lines, path)))
            return 0.0

    now = when(model.time, ("time",))
    node_names = {n.name for n in model.nodes}
    if len(node_names) != len(model.nodes):
        issues.append(InputIssue(source, "nodes", "node names repeat", "give every node a unique name",
                                 line_of(lines, ("nodes",))))
    running = []
    for i, r in enumerate(model.running):
        if r.node not in node_names:
            issues.append(InputIssue(source, f"running[{i}].node", f"unknown node {r.node!r}",
                                     "name a node listed under nodes", line_of(lines, ("running", i, "node"))))
        start = when(r.start_time, ("running", i, "startTime"))
        end = when(r.expected_end_time, ("running", i, "expectedEndTime")) if r.expected_end_time else None
        running.append(RunningPod(r.job, r.node, r.gpus, start, end))
    pending = []
    for i, manifest in enumerate(model.pending):
        try:
            pending.append(job_from_manifest(manifest, source))
        except InputError as exc:
            for issue in exc.issues:
                path = ("pending", i) + tuple(issue.path.split(".")[:1])
                issues.append(InputIssue(source, f"pending[{i}].{issue.path}", issue.problem, issue.fix,
                                         line_of(lines, path)))
    samples = [(when(t, ("utilizationSamples", i)), pct) for i, (t, pct) in enumerate(model.utilization_samples)]
    return Snapshot(
        time=now,
        nodes=tuple(Node(n.name, n.allocatable_gpus, n.gpu_product, n.schedulable) for n in model.nodes),
        running=tuple(running),
        cloud=tuple(CloudJob(c.job, c.namespace, c.instance_type, c.instance_count, c.committed_usd)
                    for c in model.cloud),
        spend=tuple(Spend(s.namespace, s.today_usd, s.month_usd) for s in model.spend),
        completed=tuple(CompletedJob(c.namespace, c.family, c.gpus, c.duration_seconds) for c in model.completed),
        pending=tuple(pending),
        gpu_utilization_percent=model.gpu_utilization_percent,
        utilization_samples=tuple(samples),
    ), issues
