"""The virtual node spillway-sagemaker: kept as a virtual kubelet keeps its node, and never counted
as local capacity, nor its pods as local work."""

from __future__ import annotations

import pytest

from policies import constants as C
from scheduler.kube import Kube, api_client
from scheduler.virtual_node import ALLOCATABLE, VirtualNode, node_manifest
from scheduler.world import World, nodes_of, running_of
from sim.sandbox.apiserver import SandboxServer
from sim.sandbox.machinery import add_nodes


@pytest.fixture
def sandbox():
    server = SandboxServer().start()
    add_nodes(server.store, "1x8:NVIDIA-A100-SXM4-80GB")
    yield server
    server.stop()


def test_the_virtual_node_is_made_kept_and_mended(sandbox):
    kube = Kube(api_client(host=sandbox.url))
    keeper = VirtualNode(kube, clock=lambda: 1_795_000_000.0)
    keeper.ensure()
    keeper.ensure()  # a second pass changes nothing
    keeper.heartbeat()
    node = kube.get_node(C.VIRTUAL_NODE_NAME)
    assert node["metadata"]["labels"][C.VIRTUAL_NODE_LABEL] == "true"
    assert node["spec"]["taints"] == [{"key": C.VIRTUAL_NODE_TAINT, "value": "true", "effect": "NoSchedule"}]
    assert node["status"]["allocatable"] == ALLOCATABLE
    [ready] = [c for c in node["status"]["conditions"] if c["type"] == "Ready"]
    assert ready["status"] == "True" and ready["lastHeartbeatTime"] == "2026-11-18T11:06:40Z"
    lease = sandbox.store.get(sandbox.store.type_for("coordination.k8s.io", "v1", "leases"), "kube-node-lease",
                              C.VIRTUAL_NODE_NAME)
    assert lease["spec"]["renewTime"].startswith("2026-11-18T11:06:40")
    assert lease["metadata"]["ownerReferences"][0]["uid"] == node["metadata"]["uid"]
    kube.patch_node(C.VIRTUAL_NODE_NAME, {"spec": {"taints": None}, "metadata": {"labels": {"type": "x"}}})
    keeper.ensure()  # someone removed its taint and changed a label: both come back
    node = kube.get_node(C.VIRTUAL_NODE_NAME)
    assert [t["key"] for t in node["spec"]["taints"]] == [C.VIRTUAL_NODE_TAINT]
    assert node["metadata"]["labels"]["type"] == "virtual-kubelet"


def test_the_core_never_sees_the_virtual_node_as_local_capacity_nor_its_pods_as_local_work():
    gpu_node = {"metadata": {"name": "gpu-node-000", "labels": {C.GPU_PRODUCT_LABEL: "A100"}},
                "status": {"allocatable": {C.GPU_RESOURCE: "8"}, "conditions": [{"type": "Ready", "status": "True"}]}}
    virtual = {**node_manifest(), "status": {**node_manifest()["status"],
                                             "conditions": [{"type": "Ready", "status": "True"}]}}
    assert [n.name for n in nodes_of([gpu_node, virtual])] == ["gpu-node-000"]

    def pod(name: str, node: str) -> dict:
        return {"metadata": {"name": name, "namespace": "ml"}, "spec": {"nodeName": node, "containers": [
            {"name": "t", "resources": {"limits": {C.GPU_RESOURCE: "8"}}}]}, "status": {"phase": "Running"}}

    world = World(1_795_000_000.0, [], [pod("local", "gpu-node-000"), pod("burst", C.VIRTUAL_NODE_NAME)],
                  [gpu_node, virtual])
    assert [r.node for r in running_of(world)] == ["gpu-node-000"]
