"""The cluster as the core sees it: Kubernetes objects (plain dicts) to a policies.Snapshot.

- Nodes: allocatable nvidia.com/gpu, the GPU feature discovery product label, cordons.
- Running work: every bound, unfinished pod that holds GPUs, whoever owns it (not only
  Spillway's Jobs), with its expected end when its Job carries a runtime estimate.
- GPUs held by a Local decision: a Job Spillway un-suspended whose pods are not bound yet holds
  the GPUs of the nodes it was given (spillway.io/local-nodes) from the moment of the decision,
  so the next cycle cannot hand them to another Job.
- History: completed Jobs (for runtime estimates of similar Jobs).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from policies import constants as C
from policies.model import (CompletedJob, Node, RunningPod, family_of, parse_duration, parse_gpu_quantity, parse_time,
                            pod_spec_gpus)

GPU_PHASES = ("Pending", "Running")


@dataclass
class World:
    """One read of the cluster."""

    now: float
    jobs: list[dict]
    pods: list[dict]
    nodes: list[dict]
    jobs_by_uid: dict[str, dict] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.jobs_by_uid = {j["metadata"].get("uid", ""): j for j in self.jobs}


def key_of(obj: dict) -> str:
    return f"{obj['metadata'].get('namespace', '')}/{obj['metadata']['name']}"


def annotations_of(obj: dict) -> dict[str, str]:
    return obj["metadata"].get("annotations") or {}


def _time(text: str | None) -> float | None:
    try:
        return parse_time(text) if text else None
    except ValueError:
        return None


def is_virtual(node: dict) -> bool:
    return (node["metadata"].get("labels") or {}).get(C.VIRTUAL_NODE_LABEL) == "true"


def nodes_of(items: list[dict]) -> tuple[Node, ...]:
    """The cluster's own GPU nodes: a virtual node (its pods run on SageMaker) is never local capacity."""
    out = []
    for n in items:
        if is_virtual(n):
            continue
        status = n.get("status") or {}
        try:
            gpus = parse_gpu_quantity((status.get("allocatable") or {}).get(C.GPU_RESOURCE, 0))
        except ValueError:
            gpus = 0
        ready = any(c.get("type") == "Ready" and c.get("status") == "True" for c in status.get("conditions") or [])
        schedulable = ready and not (n.get("spec") or {}).get("unschedulable")
        labels = n["metadata"].get("labels") or {}
        out.append(Node(n["metadata"]["name"], gpus, labels.get(C.GPU_PRODUCT_LABEL), schedulable))
    return tuple(sorted(out, key=lambda n: n.name))


def _owner_uid(pod: dict) -> str | None:
    for ref in pod["metadata"].get("ownerReferences") or []:
        if ref.get("controller"):
            return ref.get("uid")
    return None


def _runtime_estimate(job: dict | None) -> float | None:
    if job is None:
        return None
    try:
        text = annotations_of(job).get(C.RUNTIME_ESTIMATE)
        return parse_duration(text) if text else None
    except ValueError:
        return None


def running_of(world: World) -> tuple[RunningPod, ...]:
    """Bound pods holding GPUs, and the GPUs Local decisions hold for pods not bound yet."""
    out: list[RunningPod] = []
    bound_jobs: set[str] = set()
    virtual = {n["metadata"]["name"] for n in world.nodes if is_virtual(n)}
    for pod in world.pods:
        node = (pod.get("spec") or {}).get("nodeName")
        if node in virtual:
            continue  # a burst's pod: its work runs on SageMaker, and the ledger has it in flight
        phase = (pod.get("status") or {}).get("phase", "Pending")
        gpus = pod_spec_gpus(pod.get("spec") or {})
        if not node or phase not in GPU_PHASES or not gpus:
            continue
        owner_uid = _owner_uid(pod)
        job = world.jobs_by_uid.get(owner_uid or "")
        if owner_uid:
            bound_jobs.add(owner_uid)
        start = _time((pod.get("status") or {}).get("startTime")) or _time(
            pod["metadata"].get("creationTimestamp")) or world.now
        estimate = _runtime_estimate(job)
        owner = key_of(job) if job is not None else key_of(pod)
        out.append(RunningPod(owner, node, gpus, start, start + estimate if estimate else None))
    for job in world.jobs:
        uid = job["metadata"].get("uid", "")
        if uid in bound_jobs or (job.get("spec") or {}).get("suspend") or finished(job):
            continue
        held = local_hold(job)
        if not held:
            continue
        start = _time(annotations_of(job).get(C.DECIDED_AT)) or world.now
        estimate = _runtime_estimate(job)
        for node, gpus in held:
            out.append(RunningPod(key_of(job), node, gpus, start, start + estimate if estimate else None))
    return tuple(out)


def local_hold(job: dict) -> list[tuple[str, int]]:
    """(node, GPUs) that Spillway's Local decision gave this Job, from its annotations."""
    ann = annotations_of(job)
    if ann.get(C.DECISION_PLACEMENT) != "Local" or not ann.get(C.LOCAL_NODES):
        return []
    per_pod = pod_spec_gpus(_template_spec(job))
    out = []
    for part in ann[C.LOCAL_NODES].split(","):
        node, _, pods = part.partition("=")
        try:
            out.append((node, per_pod * int(pods or 1)))
        except ValueError:
            continue
    return out


def _template_spec(job: dict) -> dict:
    return ((job.get("spec") or {}).get("template") or {}).get("spec") or {}


def format_local_nodes(nodes: tuple[str, ...], pods: tuple[int, ...]) -> str:
    return ",".join(f"{n}={p}" for n, p in zip(nodes, pods))


def finished(job: dict) -> bool:
    return any(c.get("type") in ("Complete", "Failed") and c.get("status") == "True"
               for c in (job.get("status") or {}).get("conditions") or [])


def completed_of(world: World) -> tuple[CompletedJob, ...]:
    """Finished Jobs that ran on the cluster: what similar Jobs took."""
    out = []
    for job in world.jobs:
        status = job.get("status") or {}
        if not any(c.get("type") == "Complete" and c.get("status") == "True" for c in status.get("conditions") or []):
            continue
        start, end = _time(status.get("startTime")), _time(status.get("completionTime"))
        if start is None or end is None or end <= start:
            continue
        gpus = pod_spec_gpus(_template_spec(job))
        name = job["metadata"]["name"]
        out.append(CompletedJob(job["metadata"].get("namespace", ""), family_of(name),
                                gpus, end - start))
    return tuple(out)
