"""The virtual node `spillway-sagemaker`: a Node object whose pods run on SageMaker.

This is its keeping, as the kubelet of a virtual-kubelet provider keeps its node: the Node exists
with its labels, a NoSchedule taint of its own (only pods that tolerate it land there), large
allocatable GPUs, CPU, memory and pods, and a Ready condition; its Lease in kube-node-lease is
renewed, so the node lifecycle controller never marks it NotReady nor taints it unreachable.

The core never counts it as local capacity (scheduler.world.nodes_of leaves it out), and pods
bound to it are not local work. Running those pods as SageMaker jobs is the node agent's work
(scheduler.node_agent, driven by the controller's cycle).
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Callable

from policies import constants as C
from policies.model import format_micro_time, format_time

from .kube import Kube, KubeError

log = logging.getLogger(__name__)
LEASE_NAMESPACE = "kube-node-lease"
LEASE_SECONDS = 40
# What SageMaker can take at once, as a kubelet reports capacity: far more than any Job asks, so
# the scheduler never refuses a burst pod for room; the money and the quotas are the core's.
ALLOCATABLE = {C.GPU_RESOURCE: "1000", "cpu": "10000", "memory": "100Ti", "pods": "10000",
               "ephemeral-storage": "100Ti"}


def node_manifest(name: str = C.VIRTUAL_NODE_NAME) -> dict:
    return {"apiVersion": "v1", "kind": "Node",
            "metadata": {"name": name, "labels": {
                C.VIRTUAL_NODE_LABEL: "true", "type": "virtual-kubelet", "kubernetes.io/role": "agent",
                "kubernetes.io/hostname": name, "kubernetes.io/os": "linux", "kubernetes.io/arch": "amd64"}},
            "spec": {"taints": [{"key": C.VIRTUAL_NODE_TAINT, "value": "true", "effect": "NoSchedule"}]},
            "status": {"capacity": dict(ALLOCATABLE), "allocatable": dict(ALLOCATABLE)}}


class VirtualNode:
    """ensure() makes the Node (or brings back its labels and taint); heartbeat() renews its Lease
    and Ready condition; run() does both until stopped, every HEARTBEAT_SECONDS."""

    HEARTBEAT_SECONDS = 10.0

    def __init__(self, kube: Kube, name: str = C.VIRTUAL_NODE_NAME, clock: Callable[[], float] = time.time):
        self.kube, self.name, self.clock = kube, name, clock
        self.uid = ""
        self.endpoint: tuple[str, int] | None = None  # where its kubelet API (kubectl logs) answers

    def _reported(self) -> dict:
        """What the node's status says of its kubelet: its capacity and, when served, the address
        and port the API server calls for kubectl logs."""
        status: dict = {"capacity": ALLOCATABLE, "allocatable": ALLOCATABLE}
        if self.endpoint is not None:
            host, port = self.endpoint
            status["addresses"] = [{"type": "InternalIP", "address": host}]
            status["daemonEndpoints"] = {"kubeletEndpoint": {"Port": port}}
        return status

    def ensure(self) -> None:
        want = node_manifest(self.name)
        try:
            node = self.kube.get_node(self.name)
        except KubeError as exc:
            if not exc.not_found:
                raise
            try:
                node = self.kube.create_node(want)
                log.info("created virtual node %s", self.name)
            except KubeError as again:
                if not again.conflict:
                    raise
                node = self.kube.get_node(self.name)  # another replica (or a cycle) made it first
        labels = node["metadata"].get("labels") or {}
        taints = (node.get("spec") or {}).get("taints") or []
        mine = want["spec"]["taints"][0]
        patch: dict = {}
        if any(labels.get(k) != v for k, v in want["metadata"]["labels"].items()):
            patch["metadata"] = {"labels": want["metadata"]["labels"]}
        if not any(t.get("key") == mine["key"] and t.get("effect") == mine["effect"] for t in taints):
            patch["spec"] = {"taints": [t for t in taints if t.get("key") != mine["key"]] + [mine]}
        if patch:
            node = self.kube.patch_node(self.name, patch)
        self.uid = node["metadata"]["uid"]
        status = node.get("status") or {}
        want = self._reported()
        if any(status.get(k) != v for k, v in want.items() if k != "capacity"):
            self.kube.patch_node_status(self.name, {"status": want})

    def heartbeat(self) -> None:
        now = self.clock()
        owner = {"apiVersion": "v1", "kind": "Node", "name": self.name, "uid": self.uid} if self.uid else None
        self.kube.renew_lease(LEASE_NAMESPACE, self.name, self.name, LEASE_SECONDS, format_micro_time(now), owner)
        ready = {"type": "Ready", "status": "True", "reason": "SageMakerReachable",
                 "message": "Spillway runs this node's pods as SageMaker jobs",
                 "lastHeartbeatTime": format_time(now), "lastTransitionTime": format_time(now)}
        self.kube.patch_node_status(self.name, {"status": {"conditions": [ready]}})

    def run(self, stop: threading.Event) -> None:
        while not stop.is_set():
            try:
                self.ensure()
                self.heartbeat()
            except KubeError as exc:  # the API server may be restarting: keep the node alive
                log.warning("could not keep virtual node %s: %s; retrying", self.name, exc)
            stop.wait(self.HEARTBEAT_SECONDS)

    def start(self, stop: threading.Event) -> threading.Thread:
        thread = threading.Thread(target=self.run, args=(stop,), name="virtual-node", daemon=True)
        thread.start()
        return thread
