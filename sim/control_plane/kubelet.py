"""The kubelet of GPU nodes that have no machine behind them, as a client of a real API server.

It registers each node (allocatable nvidia.com/gpu, the GPU feature discovery product label),
renews the node's Lease in kube-node-lease and its Ready condition, so the node lifecycle
controller keeps it Ready and untainted; and it runs the pods the real scheduler binds to it,
with the sandbox's rule (`pod_status_at`): Running at once, then Succeeded after the seconds
in their sandbox.spillway.io/run-seconds annotation. A pod being deleted is removed, as a
kubelet does once its containers stopped, so nothing hangs in Terminating.

It speaks through an `ApiClient` (the composition root passes scheduler.kube.Kube), so this
package imports no Kubernetes SDK.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from typing import Callable, Protocol

from policies.model import format_micro_time, format_time

from ..cluster_spec import node_groups
from ..sandbox.machinery import pod_status_at

log = logging.getLogger(__name__)
GPU = "nvidia.com/gpu"
LEASE_NAMESPACE = "kube-node-lease"


class ApiClient(Protocol):
    def create_node(self, body: dict) -> dict: ...
    def patch_node_status(self, name: str, patch: dict) -> dict: ...
    def renew_lease(self, namespace: str, name: str, holder: str, seconds: int, now: str,
                    owner: dict | None = None) -> None: ...
    def list_pods(self, field_selector: str | None = None) -> list[dict]: ...
    def patch_pod_status(self, namespace: str, name: str, patch: dict) -> dict: ...
    def delete_pod(self, namespace: str, name: str, *, grace_period_seconds: int | None = None) -> None: ...


def node_manifest(name: str, gpus: int, product: str | None) -> dict:
    labels = {"kubernetes.io/hostname": name, "kubernetes.io/os": "linux", "kubernetes.io/arch": "amd64"}
    if product:
        labels.update({"nvidia.com/gpu.product": product, "nvidia.com/gpu.count": str(gpus)})
    resources = {GPU: str(gpus), "cpu": "96", "memory": "1Ti", "pods": "110", "ephemeral-storage": "1Ti"}
    return {"apiVersion": "v1", "kind": "Node", "metadata": {"name": name, "labels": labels},
            "status": {"capacity": resources, "allocatable": resources}}


@dataclass
class NodeSpec:
    name: str
    gpus: int
    product: str | None


def node_specs(spec: str, prefix: str = "gpu-node") -> list[NodeSpec]:
    """'2x8:NVIDIA-A100-SXM4-80GB,1x4' -> gpu-node-000, gpu-node-001 (8 GPUs), gpu-node-002 (4)."""
    out: list[NodeSpec] = []
    for n, g, product in node_groups(spec):
        for _ in range(n):
            out.append(NodeSpec(f"{prefix}-{len(out):03d}", g, product))
    return out


class StandInKubelet:
    """Plays the kubelet for `nodes`. `run()` on a thread serves until stopped; `step(now)` is one
    pass, for a test that drives time by hand (with a virtual `clock`, as the sandbox's Machinery)."""

    LEASE_SECONDS = 40
    HEARTBEAT_SECONDS = 10.0

    def __init__(self, api: ApiClient, nodes: list[NodeSpec], *, clock: Callable[[], float] = time.time,
                 time_scale: float = 1.0, default_run_seconds: float = 60.0, period: float = 0.2):
        self.api, self.nodes, self.clock = api, nodes, clock
        self.scale, self.default_run, self.period = time_scale, default_run_seconds, period
        self._names = {n.name for n in nodes}
        self._uids: dict[str, str] = {}
        self._beat_at = -float("inf")
        self.wake = threading.Event()  # set it (a watch does) to make run() look again now
        self.paused = threading.Event()  # set: run() only keeps the nodes alive (a test steps the pods)

    def register(self) -> None:
        for n in self.nodes:
            created = self.api.create_node(node_manifest(n.name, n.gpus, n.product))
            self._uids[n.name] = created["metadata"]["uid"]
        self.heartbeat(time.time())

    def heartbeat(self, wall: float) -> None:
        """The Lease and the Ready condition, in wall-clock time: the node lifecycle controller
        judges them by its own clock, whatever clock the pods run on."""
        for n in self.nodes:
            owner = {"apiVersion": "v1", "kind": "Node", "name": n.name, "uid": self._uids.get(n.name, "")}
            self.api.renew_lease(LEASE_NAMESPACE, n.name, n.name, self.LEASE_SECONDS, format_micro_time(wall),
                                 owner if owner["uid"] else None)
            ready = {"type": "Ready", "status": "True", "reason": "KubeletReady", "message": "stand-in kubelet is ready",
                     "lastHeartbeatTime": format_time(wall), "lastTransitionTime": format_time(wall)}
            self.api.patch_node_status(n.name, {"status": {"conditions": [ready]}})
        self._beat_at = wall

    def step(self, now: float | None = None) -> float:
        """One pass over the pods on these nodes; returns when the next pod ends (inf if none)."""
        now = self.clock() if now is None else now
        next_end = float("inf")
        for pod in self.api.list_pods():
            meta, spec = pod["metadata"], pod.get("spec") or {}
            if spec.get("nodeName") not in self._names:
                continue
            if meta.get("deletionTimestamp"):
                self.api.delete_pod(meta["namespace"], meta["name"], grace_period_seconds=0)
                continue
            new, end = pod_status_at(pod, now, default_run=self.default_run, scale=self.scale)
            next_end = min(next_end, end)
            if new is not None:
                self.api.patch_pod_status(meta["namespace"], meta["name"], {"status": new})
        return next_end

    def run(self, stop: threading.Event) -> None:
        while not stop.is_set():
            self.wake.clear()
            wall = time.time()
            try:
                if wall - self._beat_at >= self.HEARTBEAT_SECONDS:
                    self.heartbeat(wall)
                next_end = self.step() if not self.paused.is_set() else float("inf")
            except Exception as exc:  # noqa: BLE001 - a kubelet keeps going through API errors
                log.warning("stand-in kubelet pass failed: %s", exc)
                next_end = float("inf")
            wait = min(self.HEARTBEAT_SECONDS, max(next_end - self.clock(), self.period))
            self.wake.wait(wait)

    def start(self, stop: threading.Event) -> threading.Thread:
        thread = threading.Thread(target=self.run, args=(stop,), name="stand-in-kubelet", daemon=True)
        thread.start()
        return thread
