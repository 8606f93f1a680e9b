"""The virtual node on the real control plane: kept Ready by its Lease (the node lifecycle
controller leaves it untainted), the real scheduler binds there only pods that tolerate its
taint, and the core never counts it as local capacity."""

from __future__ import annotations

import threading

from policies import constants as C
from scheduler.virtual_node import VirtualNode
from scheduler.world import nodes_of
from tests.real.conftest import job_manifest, wait_for


def test_the_virtual_node_takes_only_pods_that_tolerate_it_and_is_no_local_capacity(plane, namespace):
    stop = threading.Event()
    keeper = VirtualNode(plane.kube)
    keeper.start(stop)
    try:
        def ready_and_untainted() -> dict | None:
            # The API server's TaintNodesByCondition admission gives a new Node the not-ready taint;
            # the node lifecycle controller takes it off once the Ready condition is heard.
            for n in plane.kube.list_nodes():
                if n["metadata"]["name"] != C.VIRTUAL_NODE_NAME:
                    continue
                ready = any(c["type"] == "Ready" and c["status"] == "True" for c in n["status"].get("conditions") or [])
                if ready and [t["key"] for t in n["spec"].get("taints") or []] == [C.VIRTUAL_NODE_TAINT]:
                    return n
            return None

        wait_for(ready_and_untainted, what="the virtual node to be Ready, with its own taint only")
        assert C.VIRTUAL_NODE_NAME not in {n.name for n in nodes_of(plane.kube.list_nodes())}
        burst = job_manifest("burst", namespace, gpus=8)
        burst["spec"]["suspend"] = False
        burst["metadata"]["annotations"] = {}
        burst["spec"]["template"]["spec"].update({
            "nodeSelector": {C.VIRTUAL_NODE_LABEL: "true"},
            "tolerations": [{"key": C.VIRTUAL_NODE_TAINT, "operator": "Exists", "effect": "NoSchedule"}]})
        plane.kube.batch.create_namespaced_job(namespace, burst)
        ordinary = job_manifest("ordinary", namespace, gpus=1)
        ordinary["spec"]["suspend"] = False
        ordinary["metadata"]["annotations"] = {}
        plane.kube.batch.create_namespaced_job(namespace, ordinary)

        def bound() -> dict[str, str] | None:
            pods = plane.kube.list_pods(f"metadata.namespace={namespace}")
            where = {p["metadata"]["labels"]["job-name"]: p["spec"].get("nodeName") for p in pods}
            return where if len(where) == 2 and all(where.values()) else None

        where = wait_for(bound, what="both pods to be bound")
        assert where["burst"] == C.VIRTUAL_NODE_NAME and where["ordinary"].startswith("gpu-node-")
    finally:
        stop.set()
        for pod in plane.kube.list_pods(f"spec.nodeName={C.VIRTUAL_NODE_NAME}"):
            plane.kube.delete_pod(pod["metadata"]["namespace"], pod["metadata"]["name"], grace_period_seconds=0)
        plane.kube._call(plane.kube.core.delete_node, C.VIRTUAL_NODE_NAME)
