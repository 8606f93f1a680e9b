"""A controller that dies at any point never launches twice, never loses a burst, and never
commits more than the budget.

The controller is killed at every write it makes in a burst storm, once just before the request
goes out and once just after (the request was sent, the answer lost), and a fresh controller
with no memory takes over. Then the world is checked: one SageMaker training job per burst
decision, the ledger lists exactly those, the Local Job runs, and the money committed fits the
budget. (`bench/bench_controller_kill.py` does the same with SIGKILL at random times.)
"""

from __future__ import annotations

import time

import pytest

from policies import constants as C
from scheduler.controller import Controller, Settings
from scheduler.kube import Kube, api_client
from scheduler.ledger import DONE
from scheduler.sagemaker import SageMaker
from sim.sandbox.apiserver import SandboxServer
from sim.sandbox.machinery import Machinery, add_nodes
from tests.builders import policy
from tests.crashing import Crash, Dies
from tests.sandboxes import PRODUCT, create, manifest

BUDGET = 70.0  # dollars a day: room for two of the five bursts below, at their committed figure


def storm(server, tag: str) -> None:
    create(server, manifest(f"local-{tag}", gpus=4, **{C.MODE: "local"}))
    for i in range(5):
        create(server, manifest(f"burst{i}-{tag}", gpus=1, **{
            C.MODE: "cloud", C.CAPACITY_TYPE: "on-demand", C.RUNTIME_ESTIMATE: "10h", C.INSTANCE_TYPE: "ml.g5.xlarge"}))


def new_controller(server, sm_client, counter, at=None, after=False, burst_as="suspendedJob") -> Controller:
    kube = Dies(Kube(api_client(host=server.url)), counter, at, after)
    sm = Dies(SageMaker("us-east-1", client=sm_client), counter, at, after)  # the sandbox's client: fast, no retry
    p = policy(sageMaker={"emit": "api", "burstAs": burst_as},
               budgets={"default": {"dailyUsd": BUDGET, "monthlyUsd": 10 * BUDGET}})
    # One worker: the writes go out in one order, so "the k-th write" is the same point every run.
    return Controller(kube, p, sagemaker=sm, clock=time.time, settings=Settings(workers=1))


def run_world(sagemaker, at: int | None, after: bool, tag: str, burst_as: str = "suspendedJob") -> tuple[int, dict]:
    """The storm under a controller that dies at its at-th write (None: never), then a fresh one.
    With the virtual node, the sandbox's Job controller and scheduler take one pass between
    cycles (stepped here, not on a thread: the k-th write is then the same point every run)."""
    server = SandboxServer().start()
    try:
        add_nodes(server.store, f"1x8:{PRODUCT}")
        for ns in ("ml", "spillway-system"):
            server.store.create(server.store.type_for("", "v1", "namespaces"), "", {"metadata": {"name": ns}})
        storm(server, tag)
        machinery = Machinery(server.store, time_scale=1.0)
        cycles = 3 if burst_as == "suspendedJob" else 4

        def cycle(ctl: Controller):
            report = ctl.cycle()
            machinery.reconcile()  # pods for the Jobs un-suspended, bound where they go
            return report

        counter = [0, False]
        if at is None:
            survivor = new_controller(server, sagemaker.client(), counter, burst_as=burst_as)
        else:
            with pytest.raises(Crash):
                for _ in range(cycles):
                    cycle(new_controller(server, sagemaker.client(), counter, at, after, burst_as))
            survivor = new_controller(server, sagemaker.client(), [0, False], burst_as=burst_as)
        for _ in range(cycles - 1):
            final = cycle(survivor)
        return counter[0], check(server, sagemaker, survivor, final, tag, burst_as)
    finally:
        server.stop()


def check(server, sagemaker, ctl, final, tag: str, burst_as: str) -> dict:
    jobs = {j["metadata"]["name"]: j for j in server.store.list(server.store.type_for("batch", "v1", "jobs"), "ml")[0]}
    assert jobs[f"local-{tag}"]["spec"]["suspend"] is False, "the Local Job was un-suspended"
    state = ctl.ledger
    launched = {}
    pages = sagemaker.client().get_paginator("list_training_jobs").paginate(NameContains=tag)
    everything = [s for page in pages for s in page["TrainingJobSummaries"]]
    for name, job in jobs.items():
        if not name.startswith("burst"):
            continue
        found = [s for s in everything if s["TrainingJobName"].startswith(f"{name}-")]
        assert len(found) <= 1, f"{name} was launched {len(found)} times"
        uid = job["metadata"]["uid"]
        assert (len(found) == 1) == (uid in state.bursts), f"{name}: SageMaker and the ledger disagree"
        if found:
            launched[name] = found[0]["TrainingJobName"]
            assert state.bursts[uid].names == [found[0]["TrainingJobName"]]
            assert job["metadata"]["annotations"][C.SAGEMAKER_JOB_NAME] == found[0]["TrainingJobName"]
    committed = sum(c.committed_usd for c in state.in_flight())
    assert 0 < committed <= BUDGET + 1e-6, f"committed ${committed:.2f} against a ${BUDGET:.0f} budget"
    assert all(b.state != DONE for b in state.bursts.values())
    assert len(launched) == len(state.bursts)
    waiting = [d for d in final.decisions if d.reason.value == "BudgetExhausted"]
    assert len(launched) + len(waiting) == 5, "every burst Job either runs or waits for the budget"
    if burst_as == "virtualNode":
        pods = server.store.list(server.store.type_for("", "v1", "pods"), "ml")[0]
        on_node = {p["metadata"]["labels"]["job-name"] for p in pods if p["spec"].get("nodeName") == C.VIRTUAL_NODE_NAME}
        assert on_node == set(launched), "each launched burst's pod is on the virtual node, and no other"
        assert not [p for p in pods if p["status"].get("phase") == "Failed"], "no pod of ours was refused"
    return launched


@pytest.mark.slow
@pytest.mark.parametrize("burst_as", ["suspendedJob", "virtualNode"])
def test_a_controller_killed_at_any_write_recovers_exactly(sagemaker, burst_as):
    short = burst_as[0]
    writes, clean = run_world(sagemaker, None, False, f"clean{short}", burst_as)
    assert len(clean) == 2 and writes >= 20
    for at in range(writes):
        for after in (False, True):
            run_world(sagemaker, at, after, f"{at}{'a' if after else 'b'}{short}", burst_as)
