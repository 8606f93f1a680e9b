"""What you simulate is what you run: one scenario replayed by `sim`'s engine and by the controller
against the sandbox cluster, on one virtual clock, gives every Job the same placement, reason
and start time.

The sandbox's store, its Job controller, scheduler and kubelet (Machinery) and the controller all
read the same injected clock; the harness moves it from event to event (an arrival, a pod's end,
the time the controller asked to look again), as the engine's event mode does.
"""

from __future__ import annotations

from policies import constants as C
from policies.model.units import parse_time
from scheduler.controller import Controller, Settings
from scheduler.kube import Kube, api_client
from sim.engine import SIM_EPOCH
from sim.sandbox.apiserver import SandboxServer
from sim.sandbox.machinery import Machinery, add_nodes
from tests.scenario import POLICY, PRODUCT, assert_same_decisions, manifest, through_the_simulator, trace


class Clock:
    def __init__(self, t: float):
        self.t = t

    def __call__(self) -> float:
        return self.t


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

