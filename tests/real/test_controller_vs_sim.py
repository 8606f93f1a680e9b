"""What you simulate is what you run, judged on the real control plane: the scenario of
tests/test_controller_vs_sim.py, its times divided by 60, through `sim`'s engine and through
the controller against real kube-apiserver, Job controller and scheduler, gives every Job the
same placement, reason and start.

The controller and the stand-in kubelet run on a virtual clock that the harness moves from
event to event, as in the sandbox version. What the real components do in real time (the Job
controller makes pods, the scheduler binds them, a Job is marked Complete) the harness waits
for before it moves on. One thing cannot be virtual: the API server stamps creationTimestamp
(a Job's submit time) with its own clock, to the second. So each Job is created in the second
of its arrival, wall-clock: the scenario at 1/60 of its times runs in about 40 s.
"""

from __future__ import annotations

import math
import time

import pytest

from policies import BurstPolicy
from policies import constants as C
from policies.model.units import parse_time
from scheduler.controller import Controller, Settings
from sim.control_plane.kubelet import StandInKubelet
from tests.real.conftest import condition, wait_for
from tests.scenario import POLICY, assert_same_decisions, manifest, through_the_simulator, trace

SCALE = 60.0
# Decisions are what is compared: bursts stay suspended Jobs, as the harness steps no virtual node.
_SPEC = POLICY.model_dump(by_alias=True, exclude_unset=True)["spec"]
FAST_POLICY = BurstPolicy.model_validate({"spec": {
    **_SPEC, "local": {"maxWaitSeconds": 900 / SCALE},
    "sageMaker": {**_SPEC.get("sageMaker", {}), "burstAs": "suspendedJob"}}})


class Clock:
    def __init__(self, t: float):
        self.t = t

    def __call__(self) -> float:
        return self.t


def catch_up(plane, kubelet: StandInKubelet, namespaces: set[str], now: float) -> None:
    """Let the real plane reach virtual time `now`: every un-suspended, unfinished Job has all its
    pods bound and started, and every Job whose pods all ended is marked Complete."""
    def settled() -> bool:
        kubelet.step(now)
        jobs = [j for j in plane.kube.list_jobs() if j["metadata"]["namespace"] in namespaces]
        pods = [p for p in plane.kube.list_pods() if p["metadata"]["namespace"] in namespaces]
        for job in jobs:
            if job["spec"].get("suspend") or condition(job, "Complete") or condition(job, "Failed"):
                continue
            mine = [p for p in pods if p["metadata"].get("labels", {}).get("job-name") == job["metadata"]["name"]
                    and p["metadata"]["namespace"] == job["metadata"]["namespace"]]
            if len(mine) < job["spec"].get("parallelism", 1):
                return False  # the Job controller has not made them all yet
            phases = {(p.get("status") or {}).get("phase") for p in mine}
            if any(not p["spec"].get("nodeName") for p in mine) or "Pending" in phases:
                return False  # not bound yet, or bound and not yet started by the kubelet
            if phases <= {"Succeeded"}:
                return False  # ended: the Job controller is about to mark it Complete
        return True

    wait_for(settled, timeout=30, step=0.05, what=f"the plane to catch up with t={now}")


def through_the_real_control_plane(plane, namespaces: set[str]) -> dict[str, tuple]:
    jobs = sorted(trace(SCALE), key=lambda j: j.arrival_s)
    epoch = float(math.ceil(time.time()) + 1)  # a whole second: creationTimestamps are whole seconds
    clock = Clock(epoch)
    kubelet = StandInKubelet(plane.kube, plane.kubelet.nodes, clock=clock)  # stepped by hand below
    ctl = Controller(plane.kube, FAST_POLICY, clock=clock,
                     settings=Settings(min_requeue_seconds=0.0, burst_poll_seconds=1e9, workers=1))
    ends: set[float] = set()
    placed: dict[str, tuple] = {}
    next_cycle = None
    created = 0
    while len(placed) < len(jobs):
        candidates = [epoch + j.arrival_s for j in jobs[created:]] + [e for e in ends if e > clock.t]
        if next_cycle is not None and next_cycle > clock.t:
            candidates.append(next_cycle)
        if clock.t == epoch and not placed and created == 0:
            candidates.append(epoch)
        assert candidates, f"stuck at {clock.t - epoch} s with {len(placed)} placed"
        clock.t = min(candidates)
        while created < len(jobs) and epoch + jobs[created].arrival_s == clock.t:
            while time.time() < clock.t + 0.02:  # its creationTimestamp must be this very second
                time.sleep(0.01)
            assert time.time() < clock.t + 0.9, "the harness fell behind the arrival's second"
            j = jobs[created]
            plane.kube.batch.create_namespaced_job(j.namespace, manifest(j))
            created += 1
        catch_up(plane, kubelet, namespaces, clock.t)  # pods that end now free their GPUs
        report = ctl.cycle()
        catch_up(plane, kubelet, namespaces, clock.t)  # pods of Jobs un-suspended now start now
        next_cycle = report.next_cycle_at
        for d in report.decisions:
            if d.placement.value != "Wait" and d.job not in placed:
                ann = plane.kube.get_job(*d.job.split("/"))["metadata"]["annotations"]
                placed[d.job] = (d.placement.value, d.reason.value, parse_time(ann[C.DECIDED_AT]) - epoch)
                if d.placement.value == "Local":
                    ends.add(clock.t + next(j.duration_s for j in jobs if f"{j.namespace}/{j.name}" == d.job))
    return placed


@pytest.fixture
def scenario_namespaces(plane):
    names = {j.namespace for j in trace()}
    for name in names:
        plane.kube.core.create_namespace({"metadata": {"name": name}})
    yield names
    for name in names:
        plane.kube.core.delete_namespace(name)
    wait_for(lambda: not names & {n.metadata.name for n in plane.kube.core.list_namespace().items}, timeout=120,
             what="the scenario's namespaces to be deleted")


def test_the_controller_on_the_real_control_plane_decides_as_the_simulator_does(plane, scenario_namespaces):
    simulated = through_the_simulator(trace(SCALE), FAST_POLICY)
    plane.kubelet.paused.set()  # the pods run on the harness's virtual clock, not the wall clock
    try:
        controlled = through_the_real_control_plane(plane, scenario_namespaces)
    finally:
        plane.kubelet.paused.clear()
    assert_same_decisions(simulated, controlled)
