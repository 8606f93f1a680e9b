"""One scenario, replayed by `sim`'s engine and by the controller (against the sandbox here, the
real control plane in tests/real): its Jobs, their manifests, the simulator's decisions, and the
comparison of two runs."""

from __future__ import annotations

import pytest

from policies import BurstPolicy
from policies import constants as C
from policies.model.snapshot import Node
from sim.engine import SimConfig, simulate
from sim.sandbox.machinery import RUN_SECONDS
from sim.traces import TraceJob
from tests.builders import BUCKET, ROLE

PRODUCT = "NVIDIA-A100-SXM4-80GB"
POLICY = BurstPolicy.model_validate({"spec": {
    "local": {"maxWaitSeconds": 900},
    "allowlists": {"*": {"roleArns": [ROLE], "s3Prefixes": [BUCKET]}},
    "budgets": {"default": {}},  # no budget: a burst's end changes no decision, and bursts run no further here
}})


# (arrival s, GPUs, duration s, namespace): 2 nodes x 8 GPUs fill up, later Jobs wait, some burst.
SCENARIO = [(0, 8, 3600, "ml"), (0, 4, 1800, "ml"), (60, 4, 2400, "cv"), (120, 8, 1200, "ml"),
            (300, 2, 600, "cv"), (600, 4, 900, "ml"), (900, 8, 600, "cv"), (1500, 1, 300, "ml"),
            (1800, 4, 1200, "cv"), (2400, 8, 1800, "ml")]


def trace(scale: float = 1.0) -> list[TraceJob]:
    """The scenario, its times divided by scale (the real control plane runs it 60 times faster)."""
    return [TraceJob(i, at / scale, gpus, seconds / scale, gpu_product=PRODUCT, namespace=ns, name=f"job-{i}")
            for i, (at, gpus, seconds, ns) in enumerate(SCENARIO)]


def manifest(job: TraceJob) -> dict:
    # The run time is on the pod template, where a real Job controller passes it on to the pods.
    return {"metadata": {"name": job.name, "namespace": job.namespace, "annotations": {
        C.MODE: "auto", C.RUNTIME_ESTIMATE: str(int(job.duration_s))}},
        "spec": {"suspend": True, "template": {"metadata": {"annotations": {RUN_SECONDS: str(int(job.duration_s))}},
                                               "spec": {
            "restartPolicy": "Never", "nodeSelector": {C.GPU_PRODUCT_LABEL: PRODUCT},
            "containers": [{"name": "t", "image": "123456789012.dkr.ecr.us-east-1.amazonaws.com/t:1",
                            "resources": {"limits": {C.GPU_RESOURCE: str(job.gpus_per_pod)}}}]}}}}


def through_the_simulator(jobs: list[TraceJob] | None = None, policy: BurstPolicy = POLICY) -> dict[str, tuple]:
    nodes = tuple(Node(f"gpu-node-{i:03d}", 8, PRODUCT) for i in range(2))
    _, records = simulate(jobs or trace(), SimConfig(nodes=nodes, policy=policy, tick_seconds=0))
    return {f"{r.request.namespace}/{r.request.name}": (r.placement, r.reason, r.start) for r in records}


def assert_same_decisions(simulated: dict[str, tuple], controlled: dict[str, tuple]) -> None:
    """Every Job: the same placement and reason, and the same start to the millisecond; and the
    scenario put Jobs on both sides."""
    assert set(simulated) == set(controlled)
    for key in sorted(simulated):
        placement, reason, start = simulated[key]
        assert controlled[key][:2] == (placement, reason), key
        assert controlled[key][2] == pytest.approx(start, abs=1e-3), key
    kinds = {p for p, _, _ in simulated.values()}
    assert {"Local", "SageMakerOnDemand"} <= kinds or {"Local", "SageMakerSpot"} <= kinds, \
        "the scenario must exercise both sides"
