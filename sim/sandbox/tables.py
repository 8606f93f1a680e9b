"""Server-side printing: what `kubectl get` shows. kubectl asks for a meta.k8s.io/v1 Table
(Accept: application/json;as=Table) and prints its columns; a server that sends a plain list
gets NAME and AGE only. The columns here are kube-apiserver's for Pods, Jobs and Nodes
(priority 1: the ones -o wide adds); any other kind gets Name and Age, as a custom resource
without additionalPrinterColumns does."""

from __future__ import annotations

import time
from typing import Callable

from policies.model import parse_time

from .store import ResourceType

Column = tuple[str, str, int, Callable[[dict, float], object]]  # name, type, priority, cell


def wants_table(accept: str | None) -> bool:
    return "as=Table" in (accept or "")


def table(t: ResourceType, objects: list[dict], resource_version: str, now: float | None = None) -> dict:
    now = time.time() if now is None else now
    columns = COLUMNS.get(t.kind, DEFAULT)
    return {"kind": "Table", "apiVersion": "meta.k8s.io/v1", "metadata": {"resourceVersion": resource_version},
            "columnDefinitions": [{"name": name, "type": kind, "format": "name" if name == "Name" else "",
                                   "description": "", "priority": priority} for name, kind, priority, _ in columns],
            "rows": [{"cells": [cell(o, now) for _, _, _, cell in columns],
                      "object": {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1",
                                 "metadata": o["metadata"]}} for o in objects]}


def human_age(seconds: float) -> str:
    """kube-apiserver's short durations: 45s, 3m20s, 42m, 5h10m, 30h, 6d4h, 20d."""
    s = max(int(seconds), 0)
    if s < 120:
        return f"{s}s"
    m = s // 60
    if m < 10:
        return f"{m}m{s % 60}s" if s % 60 else f"{m}m"
    if m < 180:
        return f"{m}m"
    h = m // 60
    if h < 8:
        return f"{h}h{m % 60}m" if m % 60 else f"{h}h"
    if h < 48:
        return f"{h}h"
    d = h // 24
    return f"{d}d{h % 24}h" if d < 8 and h % 24 else f"{d}d"


def _age(obj: dict, now: float) -> str:
    created = obj["metadata"].get("creationTimestamp")
    return human_age(now - parse_time(created)) if created else "<unknown>"


def _name(obj: dict, now: float) -> str:
    return obj["metadata"]["name"]


def _pod_status(pod: dict, now: float) -> str:
    """kubectl's STATUS of a pod: the phase, or its reason, or a container's."""
    status = pod.get("status") or {}
    reason = status.get("reason") or status.get("phase") or "Pending"
    for c in status.get("containerStatuses") or []:
        state = c.get("state") or {}
        if (state.get("waiting") or {}).get("reason"):
            reason = state["waiting"]["reason"]
        elif "terminated" in state:
            done = state["terminated"]
            reason = done.get("reason") or f"ExitCode:{done.get('exitCode', 0)}"
    if pod["metadata"].get("deletionTimestamp"):
        reason = "Terminating"
    return reason


def _pod_ready(pod: dict, now: float) -> str:
    statuses = (pod.get("status") or {}).get("containerStatuses") or []
    total = len((pod.get("spec") or {}).get("containers") or [])
    return f"{sum(bool(c.get('ready')) for c in statuses)}/{total}"


def _restarts(pod: dict, now: float) -> int:
    return sum(c.get("restartCount", 0) for c in (pod.get("status") or {}).get("containerStatuses") or [])


def _job_status(job: dict, now: float) -> str:
    status = job.get("status") or {}
    true = {c.get("type") for c in status.get("conditions") or [] if c.get("status") == "True"}
    for kind, shown in (("Failed", "Failed"), ("Complete", "Complete"), ("Suspended", "Suspended"),
                        ("FailureTarget", "FailureTarget"), ("SuccessCriteriaMet", "SuccessCriteriaMet")):
        if kind in true:
            return shown
    return "Running"


def _completions(job: dict, now: float) -> str:
    spec, status = job.get("spec") or {}, job.get("status") or {}
    wanted = spec.get("completions")
    return f"{status.get('succeeded', 0)}/{wanted if wanted is not None else 1}"


def _duration(job: dict, now: float) -> str:
    status = job.get("status") or {}
    if not status.get("startTime"):
        return ""
    end = parse_time(status["completionTime"]) if status.get("completionTime") else now
    return human_age(end - parse_time(status["startTime"]))


def _node_status(node: dict, now: float) -> str:
    ready = next((c.get("status") for c in (node.get("status") or {}).get("conditions") or []
                  if c.get("type") == "Ready"), "Unknown")
    text = "Ready" if ready == "True" else "NotReady"
    return text + (",SchedulingDisabled" if (node.get("spec") or {}).get("unschedulable") else "")


def _roles(node: dict, now: float) -> str:
    labels = node["metadata"].get("labels") or {}
    roles = sorted(k.split("/", 1)[1] for k in labels if k.startswith("node-role.kubernetes.io/"))
    if labels.get("kubernetes.io/role"):
        roles.append(labels["kubernetes.io/role"])
    return ",".join(roles) or "<none>"


def _template(job: dict) -> dict:
    return ((job.get("spec") or {}).get("template") or {}).get("spec") or {}


DEFAULT: list[Column] = [("Name", "string", 0, _name), ("Age", "string", 0, _age)]
COLUMNS: dict[str, list[Column]] = {
    "Pod": [("Name", "string", 0, _name), ("Ready", "string", 0, _pod_ready), ("Status", "string", 0, _pod_status),
            ("Restarts", "string", 0, _restarts), ("Age", "string", 0, _age),
            ("IP", "string", 1, lambda p, now: (p.get("status") or {}).get("podIP") or "<none>"),
            ("Node", "string", 1, lambda p, now: (p.get("spec") or {}).get("nodeName") or "<none>"),
            ("Nominated Node", "string", 1, lambda p, now: "<none>"),
            ("Readiness Gates", "string", 1, lambda p, now: "<none>")],
    "Job": [("Name", "string", 0, _name), ("Status", "string", 0, _job_status),
            ("Completions", "string", 0, _completions), ("Duration", "string", 0, _duration),
            ("Age", "string", 0, _age),
            ("Containers", "string", 1, lambda j, now: ",".join(c.get("name", "") for c in
                                                               _template(j).get("containers") or [])),
            ("Images", "string", 1, lambda j, now: ",".join(c.get("image", "") for c in
                                                           _template(j).get("containers") or []))],
    "Node": [("Name", "string", 0, _name), ("Status", "string", 0, _node_status), ("Roles", "string", 0, _roles),
             ("Age", "string", 0, _age),
             ("Version", "string", 0, lambda n, now: ((n.get("status") or {}).get("nodeInfo") or {}).get(
                 "kubeletVersion", ""))],
}
