"""A controller that dies at any point of a batch transform burst never creates a second transform
job and never commits past the budget. A transform burst writes one thing more than a training
burst (its Model, before the transform job), so it is killed at every write here too, before the
request goes out and after it went out with the answer lost, and a fresh controller takes over
(tests/test_controller_crash.py does the same for training bursts)."""

from __future__ import annotations

import time

import pytest

from policies import constants as C
from scheduler.controller import Controller, Settings
from scheduler.kube import Kube, api_client
from scheduler.sagemaker import SageMaker
from sim.sandbox.apiserver import SandboxServer
from sim.sandbox.machinery import Machinery, add_nodes
from tests.builders import BUCKET, policy
from tests.crashing import Crash, Dies
from tests.sandboxes import PRODUCT, create

BUDGET = 20.0  # dollars a day: one of the two transform bursts below (about $14.81 committed each)


def transform(name: str) -> dict:
    return {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": name, "namespace": "ml", "annotations": {
        C.MODE: "cloud", C.SAGEMAKER_KIND: "transform", C.RUNTIME_ESTIMATE: "10h",
        C.INPUT_S3_URI: f"{BUCKET}in/", C.OUTPUT_S3_URI: f"{BUCKET}out/{name}/"}},
        "spec": {"suspend": True, "backoffLimit": 0, "template": {"spec": {
            "restartPolicy": "Never", "nodeSelector": {C.GPU_PRODUCT_LABEL: "Tesla-T4"},
            "containers": [{"name": "scorer", "image": "score:1", "resources": {"limits": {C.GPU_RESOURCE: "1"}}}]}}}}


def new_controller(server, sm_client, counter, at=None, after=False) -> Controller:
    kube = Dies(Kube(api_client(host=server.url)), counter, at, after)
    sm = Dies(SageMaker("us-east-1", client=sm_client), counter, at, after)
    p = policy(sageMaker={"emit": "api", "allowedInstanceTypes": ["ml.g4dn.*"]},
               budgets={"default": {"dailyUsd": BUDGET, "monthlyUsd": 10 * BUDGET}})
    return Controller(kube, p, sagemaker=sm, clock=time.time, settings=Settings(workers=1))  # one order of writes


def run_world(sagemaker, at: int | None, after: bool, tag: str) -> tuple[int, dict[str, str]]:
    server = SandboxServer().start()
    try:
        add_nodes(server.store, f"1x8:{PRODUCT}")
        for ns in ("ml", "spillway-system"):
            server.store.create(server.store.type_for("", "v1", "namespaces"), "", {"metadata": {"name": ns}})
        for i in range(2):
            create(server, transform(f"t{i}-{tag}"))
        machinery = Machinery(server.store, time_scale=1.0)

        def cycle(ctl: Controller):
            report = ctl.cycle()
            machinery.reconcile()  # the Job controller and scheduler: pods made, bound to the virtual node
            return report

        counter = [0, False]
        if at is None:
            survivor = new_controller(server, sagemaker.client(), counter)
        else:
            with pytest.raises(Crash):
                for _ in range(4):
                    cycle(new_controller(server, sagemaker.client(), counter, at, after))
            survivor = new_controller(server, sagemaker.client(), [0, False])
        for _ in range(3):
            cycle(survivor)
        return counter[0], check(server, sagemaker, survivor, tag)
    finally:
        server.stop()


def check(server, sagemaker, ctl, tag: str) -> dict[str, str]:
    jobs = server.store.list(server.store.type_for("batch", "v1", "jobs"), "ml")[0]
    created = [s["TransformJobName"] for s in
               sagemaker.client().list_transform_jobs(NameContains=tag, MaxResults=100)["TransformJobSummaries"]]
    launched = {}
    for job in jobs:
        name, uid = job["metadata"]["name"], job["metadata"]["uid"]
        found = [n for n in created if n.startswith(f"{name}-")]
        assert len(found) <= 1, f"{name} was launched {len(found)} times"
        assert (len(found) == 1) == (uid in ctl.ledger.bursts), f"{name}: SageMaker and the ledger disagree"
        if found:
            launched[name] = found[0]
            assert ctl.ledger.bursts[uid].names == found
            assert job["metadata"]["annotations"][C.SAGEMAKER_JOB_NAME] == found[0]
            model = sagemaker.client().describe_model(ModelName=found[0])
            assert model["ModelName"] == found[0], "its Model was made first"
    committed = sum(c.committed_usd for c in ctl.ledger.in_flight())
    assert 0 < committed <= BUDGET + 1e-6, f"committed ${committed:.2f} against a ${BUDGET:.0f} budget"
    assert len(launched) == 1, "one burst fits the budget; the other waits for it"
    return launched


@pytest.mark.slow
def test_a_controller_killed_at_any_write_of_a_transform_burst_recovers_exactly(sagemaker):
    writes, clean = run_world(sagemaker, None, False, "clean")
    assert len(clean) == 1 and writes >= 10
    for at in range(writes):
        for after in (False, True):
            run_world(sagemaker, at, after, f"x{at}{'a' if after else 'b'}")
