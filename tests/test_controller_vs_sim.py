"""What you simulate is what you run: one scenario replayed by `sim`'s engine and by the controller
against the sandbox cluster, on one virtual clock, gives every Job the same placement, reason
and start time.

The sandbox's store, its Job controller, scheduler and kubelet (Machinery) and the controller all
read the same injected clock; the harness moves it from event to event (an arrival, a pod's end,
the time the controller asked to look again), as the engine's event mode does.
"""

from __future__ import annotations

import pytest

from policies import BurstPolicy
from policies import constants as C
from policies.model.snapshot import Node
from policies.model.units import parse_time
from scheduler.controller import Controller, Settings
from scheduler.kube import Kube, api_client
from sim.engine import SIM_EPOCH, SimConfig, simulate
from sim.sandbox.apiserver import SandboxServer
from sim.sandbox.machinery import RUN_SECONDS, Machinery, add_nodes
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


class Clock:
    def __init__(self, t: float):
        self.t = t

    def __call__(self) -> float:
        return self.t


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


def through_the_controller() -> dict[str, tuple]:
    clock = Clock(SIM_EPOCH)
    server = SandboxServer(clock=clock, history=10_000).start()
    try:
        store = server.store
        add_nodes(store, f"2x8:{PRODUCT}")
        for ns in ("ml", "cv", "spillway-system"):
            store.create(store.type_for("", "v1", "namespaces"), "", {"metadata": {"name": ns}})
        machinery = Machinery(store, time_scale=1.0)  # driven by hand, on the virtual clock
        ctl = Controller(Kube(api_client(host=server.url)), POLICY, clock=clock,
                         settings=Settings(min_requeue_seconds=0.0, burst_poll_seconds=1e9, workers=1))
        jobs = store.type_for("batch", "v1", "jobs")
        arrivals = sorted(trace(), key=lambda j: j.arrival_s)
        ends: set[float] = set()
        placed: dict[str, tuple] = {}
        next_cycle = None
        while len(placed) < len(arrivals):
            candidates = [SIM_EPOCH + j.arrival_s for j in arrivals if SIM_EPOCH + j.arrival_s > clock.t]
            candidates += [e for e in ends if e > clock.t]
            if next_cycle is not None and next_cycle > clock.t:
                candidates.append(next_cycle)
            if clock.t == SIM_EPOCH and not placed:
                candidates.append(SIM_EPOCH)  # the first arrivals
            assert candidates, f"stuck at {clock.t - SIM_EPOCH} s with {len(placed)} placed"
            clock.t = min(candidates)
            for j in arrivals:
                if SIM_EPOCH + j.arrival_s == clock.t:
                    store.create(jobs, j.namespace, manifest(j))
            machinery.reconcile()  # pods that end now free their GPUs
            report = ctl.cycle()
            machinery.reconcile()  # pods of Jobs un-suspended now start now
            next_cycle = report.next_cycle_at
            for d in report.decisions:
                if d.placement.value != "Wait" and d.job not in placed:
                    ann = store.get(jobs, *d.job.split("/"))["metadata"]["annotations"]
                    start = parse_time(ann[C.DECIDED_AT]) - SIM_EPOCH
                    placed[d.job] = (d.placement.value, d.reason.value, start)
                    if d.placement.value == "Local":
                        duration = next(j.duration_s for j in arrivals if f"{j.namespace}/{j.name}" == d.job)
                        ends.add(clock.t + duration)
        return placed
    finally:
        server.stop()


def test_the_controller_on_the_sandbox_decides_as_the_simulator_does():
    assert_same_decisions(through_the_simulator(), through_the_controller())


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
