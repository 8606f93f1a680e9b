"""A controller that dies at any point of a hyperparameter tuning burst never creates a second
tuning job and never commits past the budget. It is killed at a write, before the request goes
out or after it went out with the answer lost, and a fresh controller takes over
(tests/test_transform_crash.py does the same for batch transform bursts)."""

from __future__ import annotations

import time

import pytest

from policies import constants as C
from scheduler.controller import Controller, Settings
from scheduler.kube import Kube, api_client
from scheduler.sagemaker import SageMaker
from sim.sandbox.apiserver import SandboxServer
from sim.sandbox.machinery import Machinery, add_nodes
from sim.tuning_lifecycle import TUNING_CREATES
from tests.builders import BUCKET, policy
from tests.crashing import Crash, Dies
from tests.sandboxes import PRODUCT, create

BUDGET = 60.0  # dollars a day: one of the two sweeps below ($40.47 committed each: 2 trials of 20 h at most, and start-up)
SPEC = """\
objective: {metric: loss, regex: 'loss=([0-9.]+)', type: Minimize}
strategy: Random
parameters:
  lr: {type: continuous, min: 0.001, max: 0.1}
"""


def sweep(name: str) -> dict:
    """Two trials, both at once, each estimated at 10 h on on-demand (no checkpoint: no spot)."""
    return {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": name, "namespace": "ml", "annotations": {
        C.MODE: "cloud", C.SAGEMAKER_KIND: "tuning", C.RUNTIME_ESTIMATE: "10h", C.TUNING_SPEC: SPEC,
        C.INPUT_S3_URI: f"{BUCKET}in/", C.OUTPUT_S3_URI: f"{BUCKET}out/{name}/"}},
        "spec": {"suspend": True, "completionMode": "Indexed", "completions": 2, "parallelism": 2, "template": {"spec": {
            "restartPolicy": "Never",
            "containers": [{"name": "trial", "image": "trial:1", "resources": {"limits": {C.GPU_RESOURCE: "1"}}}]}}}}


def new_controller(server, sm_client, counter, at=None, after=False, written=None) -> Controller:
    kube = Dies(Kube(api_client(host=server.url)), counter, at, after, written)
    sm = Dies(SageMaker("us-east-1", client=sm_client), counter, at, after, written)
    p = policy(sageMaker={"emit": "api", "allowedInstanceTypes": ["ml.g6.*"]},
               budgets={"default": {"dailyUsd": BUDGET, "monthlyUsd": 10 * BUDGET}})
    return Controller(kube, p, sagemaker=sm, clock=time.time, settings=Settings(workers=1))  # one order of writes


def run_world(sagemaker, at: int | None, after: bool, tag: str, written: list[str] | None = None) -> int:
    """Two sweeps; a controller killed at write `at` (None: never), then a fresh one: the number of
    writes the first made. The world is checked after."""
    server = SandboxServer().start()
    try:
        add_nodes(server.store, f"1x8:{PRODUCT}")
        for ns in ("ml", "spillway-system"):
            server.store.create(server.store.type_for("", "v1", "namespaces"), "", {"metadata": {"name": ns}})
        for i in range(2):
            create(server, sweep(f"s{i}-{tag}"))
        machinery = Machinery(server.store, time_scale=1.0)

        def cycle(ctl: Controller):
            ctl.cycle()
            machinery.reconcile()  # the Job controller and scheduler: pods made, bound to the virtual node

        counter = [0, False]
        if at is None:
            survivor = new_controller(server, sagemaker.client(), counter, written=written)
        else:
            with pytest.raises(Crash):
                for _ in range(4):
                    cycle(new_controller(server, sagemaker.client(), counter, at, after))
            survivor = new_controller(server, sagemaker.client(), [0, False])
        for _ in range(3):
            cycle(survivor)
        check(server, sagemaker, survivor, tag)
        return counter[0]
    finally:
        server.stop()


def check(server, sagemaker, ctl, tag: str) -> None:
    jobs = server.store.list(server.store.type_for("batch", "v1", "jobs"), "ml")[0]
    created = [s["HyperParameterTuningJobName"] for s in sagemaker.client().list_hyper_parameter_tuning_jobs(
        NameContains=tag, MaxResults=100)["HyperParameterTuningJobSummaries"]]
    launched = []
    for job in jobs:
        name, uid = job["metadata"]["name"], job["metadata"]["uid"]
        found = [n for n in created if n.startswith(f"{name}-")]
        assert len(found) <= 1, f"{name} was launched {len(found)} times"
        assert (len(found) == 1) == (uid in ctl.ledger.bursts), f"{name}: SageMaker and the ledger disagree"
        if found:
            launched.append(found[0])
            assert ctl.ledger.bursts[uid].names == found
            assert job["metadata"]["annotations"][C.SAGEMAKER_JOB_NAME] == found[0]
    committed = sum(c.committed_usd for c in ctl.ledger.in_flight())
    assert 0 < committed <= BUDGET + 1e-6, f"committed ${committed:.2f} against a ${BUDGET:.0f} budget"
    assert len(launched) == 1, "one sweep fits the budget; the other waits for it"


@pytest.mark.parametrize("after", [False, True], ids=["before", "after"])
def test_a_crash_at_the_create_of_a_tuning_job_creates_it_once(sagemaker, after):
    written: list[str] = []
    run_world(sagemaker, None, False, f"clean{int(after)}", written)
    at = written.index("create_tuning_job")
    tag = f"cr{'a' if after else 'b'}"
    run_world(sagemaker, at, after, tag)
    [name] = [n for n in TUNING_CREATES if n.startswith(("s0-" + tag, "s1-" + tag))]
    # before: the request never went out, and the survivor sends it; after: it went out, and the
    # survivor finds the tuning job (DescribeHyperParameterTuningJob) and follows it, sending nothing.
    assert TUNING_CREATES[name] == 1


@pytest.mark.slow
def test_a_controller_killed_at_any_write_of_a_tuning_burst_recovers_exactly(sagemaker):
    writes = run_world(sagemaker, None, False, "clean")
    assert writes >= 8
    for at in range(writes):
        for after in (False, True):
            run_world(sagemaker, at, after, f"x{at}{'a' if after else 'b'}")
