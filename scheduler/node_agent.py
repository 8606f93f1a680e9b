"""The agent of the virtual node `spillway-sagemaker`: a kubelet's part, with SageMaker as its runtime.

A burst with spec.sageMaker.burstAs: virtualNode goes this way (scheduler.controller drives it):
1. The burst is written to the ledger; then the still-suspended Job's pod template gets the
   virtual node's selector and tolerations (`template_patch`), and the Job is un-suspended. The
   Job controller makes its pods; the scheduler binds them to the virtual node, the only node
   whose taint they tolerate.
2. Once the Job's whole gang is bound (`gang_bound`), its training job is created, once.
3. Every cycle, each pod shows what its training job does (`shown`, `pod_status`), as a kubelet
   reports a container: Pending while SageMaker starts, Running while it trains, Succeeded on
   Completed, Failed with SageMaker's FailureReason. The Job controller then completes or fails
   the Job, so `kubectl wait`, backoffLimit and ttlSecondsAfterFinished work on bursts.
4. A pod being deleted (its Job's activeDeadlineSeconds, a user) has its training job stopped,
   and is then removed, as a kubelet confirms a deletion once its containers are gone.
5. A pod that is no burst's (a DaemonSet's, one that tolerates everything) is failed with a
   reason, never run: the virtual node runs only what Spillway placed there.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from policies import constants as C
from policies.model import PodReason, format_time

NOT_READY = "node.kubernetes.io/not-ready"
UNREACHABLE = "node.kubernetes.io/unreachable"
# The virtual node's own taint, and the two the node lifecycle controller puts on a node it stops
# hearing from: tolerated without a limit, so a controller restart never evicts a training job.
TOLERATIONS = (
    {"key": C.VIRTUAL_NODE_TAINT, "operator": "Exists", "effect": "NoSchedule"},
    {"key": NOT_READY, "operator": "Exists", "effect": "NoExecute"},
    {"key": UNREACHABLE, "operator": "Exists", "effect": "NoExecute"},
)
SELECTOR = {C.VIRTUAL_NODE_LABEL: "true"}
# SecondaryStatus values during which the training job holds instances and trains (or restores,
# or waits for spot to come back): the pod is Running. Before them it starts: the pod is Pending.
# A transform job's are given in those terms by scheduler.transform_burst (Transforming, once started),
# and a tuning job's by scheduler.tuning_burst (Tuning, once a trial started).
TRAINING = {"Training", "Uploading", "Interrupted", "Restarting", "Completed", "Stopping", "Stopped",
            "Failed", "MaxRuntimeExceeded", "MaxWaitTimeExceeded", "Updating", "Transforming", "Tuning"}


def template_patch(template_spec: dict) -> dict | None:
    """The merge patch of a Job's spec.template.spec that sends its pods to the virtual node, or
    None when they go there already. Only what Kubernetes lets change on a suspended Job that
    never started: the node selector (the local GPU product label goes: the virtual node has
    none), the affinity (it names local nodes or pods), the tolerations."""
    selector = template_spec.get("nodeSelector") or {}
    tolerations = list(template_spec.get("tolerations") or [])
    wanted = tolerations + [t for t in TOLERATIONS if t not in tolerations]
    if selector == SELECTOR and not template_spec.get("affinity") and wanted == tolerations:
        return None
    return {"nodeSelector": {**{k: None for k in selector}, **SELECTOR}, "affinity": None, "tolerations": wanted}


def sent_to_virtual_node(job: dict) -> bool:
    spec = ((job.get("spec") or {}).get("template") or {}).get("spec") or {}
    return template_patch(spec) is None


def gang_size(job: dict) -> int:
    """How many pods run at once: min(parallelism, completions), as the Job controller makes them."""
    spec = job.get("spec") or {}
    parallelism = spec["parallelism"] if spec.get("parallelism") is not None else 1
    completions = spec["completions"] if spec.get("completions") is not None else parallelism
    return max(min(parallelism, completions), 1)


def owner_uid(pod: dict) -> str:
    return next((r.get("uid", "") for r in pod["metadata"].get("ownerReferences") or [] if r.get("controller")), "")


def phase(pod: dict) -> str:
    return (pod.get("status") or {}).get("phase", "Pending")


def live(pod: dict) -> bool:
    return phase(pod) in ("Pending", "Running") and not pod["metadata"].get("deletionTimestamp")


def gang_bound(job: dict, pods: list[dict]) -> bool:
    """All the pods that run at once are bound to the virtual node: the training job may start."""
    return sum(live(p) for p in pods) >= gang_size(job)


@dataclass(frozen=True)
class Shown:
    """What a burst's pods show: a pod phase, and the why of a Pending or an ended pod."""

    phase: str  # Pending | Running | Succeeded | Failed
    reason: str = ""
    message: str = ""


def shown(*, done: bool, described: dict | None, outcome: str, name: str, what: str = "training job") -> Shown:
    """A burst's pods, from its training job: described is SageMaker's last word on it (None
    before it exists), outcome the ledger's "TrainingJobStatus/SecondaryStatus" once it ended.
    what: how the messages name the job (a transform burst's: "transform job")."""
    described = described or {}
    status = described.get("TrainingJobStatus") or (outcome.split("/")[0] if done else "")
    secondary = described.get("SecondaryStatus") or ""
    if done or status in ("Completed", "Failed", "Stopped"):
        if status == "Completed":
            return Shown("Succeeded", "Completed", f"SageMaker {what} {name} completed")
        if status == "LaunchFailed":  # SageMaker refused to create it: outcome says why
            return Shown("Failed", "SageMakerLaunchFailed", f"SageMaker refused {what} {name}: "
                         f"{outcome.partition('/')[2]}")
        why = described.get("FailureReason") or outcome or status
        reason = PodReason.TRAINING_STOPPED if status == "Stopped" else PodReason.TRAINING_FAILED
        return Shown("Failed", reason.value, f"SageMaker {what} {name}: {why}")
    if secondary in TRAINING:
        return Shown("Running")
    return Shown("Pending", PodReason.STARTING.value,
                 f"SageMaker {what} {name}: {secondary or 'not created yet'}")


def pod_status(pod: dict, show: Shown, now: float) -> dict | None:
    """The pods/status a kubelet would write to show it, or None when the pod shows it already.
    An ended pod never changes again, and a Running one never goes back to Pending (a spot
    fallback relaunches its training job; the pod runs on)."""
    status = pod.get("status") or {}
    current = phase(pod)
    if current in ("Succeeded", "Failed") or (current == "Running" and show.phase == "Pending"):
        return None
    if current == show.phase and show.phase == "Running":
        return None
    containers = [c.get("name", "main") for c in (pod.get("spec") or {}).get("containers") or []]
    stamp = format_time(now)
    started = status.get("startTime") or stamp
    if show.phase == "Pending":
        states: list[dict[str, dict[str, Any]]] = [{"waiting": {"reason": show.reason, "message": show.message}}] * len(
            containers)
        if status.get("containerStatuses") and _waiting_message(status) == show.message:
            return None
        return {"phase": "Pending", "conditions": _conditions(status, False, stamp),
                "containerStatuses": _containers(containers, states, ready=False)}
    if show.phase == "Running":
        states = [{"running": {"startedAt": stamp}}] * len(containers)
        return {"phase": "Running", "startTime": started, "conditions": _conditions(status, True, stamp),
                "containerStatuses": _containers(containers, states, ready=True)}
    failed = show.phase == "Failed"
    ran_from = _running_since(status) or started
    # A failed container's reason is SageMaker's, not the kubelet's "Error": kubectl get pods shows it.
    states = [{"terminated": {"exitCode": 1 if failed else 0, "reason": show.reason if failed else "Completed",
                              "message": show.message, "startedAt": ran_from, "finishedAt": stamp}}] * len(containers)
    out = {"phase": show.phase, "startTime": started, "conditions": _conditions(status, False, stamp),
           "containerStatuses": _containers(containers, states, ready=False)}
    if failed:
        out.update(reason=show.reason, message=show.message)
    return out


def refused(pod: dict, now: float, reason: PodReason, message: str) -> dict | None:
    """The status that fails a pod the agent will not run (None if it has ended already)."""
    if phase(pod) in ("Succeeded", "Failed"):
        return None
    return {"phase": "Failed", "reason": reason.value, "message": message,
            "conditions": _conditions(pod.get("status") or {}, False, format_time(now))}


def _containers(names: list[str], states: list[dict], *, ready: bool) -> list[dict]:
    return [{"name": n, "ready": ready, "started": ready, "restartCount": 0, "image": "sagemaker",
             "imageID": "", "state": s} for n, s in zip(names, states)]


def _conditions(status: dict, ready: bool, stamp: str) -> list[dict]:
    """Ready and ContainersReady set by type, as a kubelet keeps them; the scheduler's PodScheduled stays."""
    value = "True" if ready else "False"
    kept = [c for c in status.get("conditions") or [] if c.get("type") not in ("Ready", "ContainersReady")]
    old = {c.get("type"): c for c in status.get("conditions") or []}
    new = []
    for kind in ("Ready", "ContainersReady"):
        was = old.get(kind)
        moved = was is None or was.get("status") != value
        new.append({"type": kind, "status": value, "lastTransitionTime": stamp if moved or was is None else was.get(
            "lastTransitionTime", stamp)})
    return kept + new


def _waiting_message(status: dict) -> str:
    state = (status.get("containerStatuses") or [{}])[0].get("state") or {}
    return (state.get("waiting") or {}).get("message", "")


def _running_since(status: dict) -> str | None:
    state = (status.get("containerStatuses") or [{}])[0].get("state") or {}
    return (state.get("running") or {}).get("startedAt")
