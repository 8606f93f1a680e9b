"""A Bayesian sweep end to end on the sandbox cluster, with the controller and the admission
webhook: it runs on the cluster, each trial's pod is asked of Optuna given the trials finished
before it, and the Job records every trial's values and the objective its log shows."""

from __future__ import annotations

import base64
import json
import threading

import pytest
import yaml
from kubernetes import client

from policies import constants as C
from policies.model import read_trial_results, read_tuning_spec
from scheduler.bayesian_trials import suggest_trial
from scheduler.controller import Controller, Settings
from scheduler.kube import Kube, api_client
from scheduler.run_cli import webhook_reads
from scheduler.webhook import WebhookServer
from sim.control_plane.pki import make_pki, serving_pair
from sim.sandbox.apiserver import SandboxServer
from sim.sandbox.machinery import LOG, RUN_SECONDS, Machinery, add_nodes
from tests.builders import policy, webhook_configs
from tests.sandboxes import PRODUCT
from tests.waiting import wait_for

SPEC = """\
objective: {metric: validation:loss, regex: 'val_loss=([0-9.eE+-]+)', type: Minimize}
strategy: Bayesian
seed: 11
parameters:
  learning_rate: {type: continuous, min: 1.0e-5, max: 0.1, scaling: Logarithmic}
  batch_size: {type: integer, min: 16, max: 256}
  optimizer: {type: categorical, values: [sgd, adamw]}
static: {epochs: 2}
"""
TRIALS, AT_ONCE = 6, 2


@pytest.fixture
def sandbox(tmp_path):
    """The sandbox cluster (one node of 8 GPUs), Spillway's webhooks reading it as `spillway run`
    wires them, and the controller running on it."""
    server = SandboxServer().start()
    store = server.store
    add_nodes(store, f"1x8:{PRODUCT}")
    for ns in ("ml", "spillway-system"):
        store.create(store.type_for("", "v1", "namespaces"), "", {"metadata": {"name": ns}})
    machinery = Machinery(store, time_scale=600).start()
    kube = Kube(api_client(host=server.url))
    pki = make_pki(tmp_path / "pki")
    cert, key = serving_pair(pki, "webhook", ("127.0.0.1",))
    webhook = WebhookServer(policy(), str(cert), str(key), host="127.0.0.1", port=0, **webhook_reads(kube)).start()
    ca = base64.b64encode(pki.ca_cert.read_bytes()).decode()
    for config in webhook_configs(f"https://127.0.0.1:{webhook.port}", ca):
        store.create(store.type_for("admissionregistration.k8s.io", "v1", config["kind"].lower() + "s"), "", config)
    controller = Controller(kube, policy(sageMaker={"burstAs": "suspendedJob"}),
                            settings=Settings(burst_poll_seconds=0, min_requeue_seconds=0.2))
    stop = threading.Event()
    thread = threading.Thread(target=controller.run, args=(stop,), daemon=True)
    thread.start()
    yield server, machinery
    stop.set()
    thread.join(timeout=10)
    webhook.shutdown()
    machinery.stop()
    server.stop()


def sweep() -> dict:
    container = {"name": "trial", "image": "123456789012.dkr.ecr.us-east-1.amazonaws.com/train:1",
                 "resources": {"limits": {C.GPU_RESOURCE: "1"}}}
    return {"apiVersion": "batch/v1", "kind": "Job",
            "metadata": {"name": "sweep", "namespace": "ml", "annotations": {
                C.MODE: "auto", C.SAGEMAKER_KIND: "tuning", C.RUNTIME_ESTIMATE: "10m", C.TUNING_SPEC: SPEC}},
            "spec": {"completionMode": "Indexed", "completions": TRIALS, "parallelism": AT_ONCE, "backoffLimit": 0,
                     "template": {
                         # The sandbox's kubelet prints this as the trial's log, $(VAR) from its env: the
                         # objective is the trial's learning rate, so each record can be checked.
                         "metadata": {"annotations": {RUN_SECONDS: "60",
                                                      LOG: "epoch 1 val_loss=9.5\nepoch 2 val_loss=$(SM_HP_LEARNING_RATE)\n"}},
                         "spec": {"restartPolicy": "Never", "nodeSelector": {C.GPU_PRODUCT_LABEL: PRODUCT},
                                  "containers": [container]}}}}


def test_a_bayesian_sweep_runs_on_the_cluster_each_trial_asked_given_the_ones_finished_before_it(sandbox):
    server, machinery = sandbox
    api = api_client(host=server.url)
    client.BatchV1Api(api).create_namespaced_job("ml", sweep())
    kube = Kube(api)

    def results():
        return read_trial_results((kube.get_job("ml", "sweep")["metadata"].get("annotations") or {}).get(C.TRIAL_RESULTS))

    def complete() -> bool:
        status = kube.get_job("ml", "sweep").get("status") or {}  # none until the Job controller's first pass
        return any(c["type"] == "Complete" for c in status.get("conditions") or [])

    wait_for(complete, timeout=90, what="the sweep's Job complete")
    wait_for(lambda: len(results()) == TRIALS, timeout=30, what="every trial's objective recorded on the Job")
    assert kube.get_job("ml", "sweep")["metadata"]["annotations"][C.DECISION_PLACEMENT] == "Local"
    spec = read_tuning_spec(yaml.safe_load(SPEC), "spec", TRIALS, lambda *problem: None)
    pods = {int(p["metadata"]["annotations"]["batch.kubernetes.io/job-completion-index"]): p
            for p in kube.list_pods_selected("job-name=sweep", namespace="ml")}
    assert sorted(pods) == list(range(TRIALS)) and all(p["status"]["phase"] == "Succeeded" for p in pods.values())
    recorded = {r.index: r for r in results()}
    for index, pod in pods.items():
        ann = pod["metadata"]["annotations"]
        values = json.loads(ann[C.TRIAL_HYPERPARAMETERS])
        assert recorded[index].values == values and recorded[index].pod == pod["metadata"]["name"]
        assert 1e-5 <= float(values["learning_rate"]) <= 0.1 and 16 <= int(values["batch_size"]) <= 256
        assert values["optimizer"] in ("sgd", "adamw") and values["epochs"] == "2"
        assert recorded[index].objective == float(values["learning_rate"]), "the last match in its log"
        taught = [int(i) for i in ann[C.TRIAL_ASKED_WITH].split(",") if i]
        # At most AT_ONCE trials run at once: when index i was made, at least i - 1 had finished,
        # and the webhook waited until each one's objective was on the Job.
        assert all(i < index for i in taught) and len(taught) >= index - (AT_ONCE - 1), (index, taught)
        history = [recorded[i] for i in taught]
        assert suggest_trial(spec, index, history) == values, "asked of Optuna given exactly those trials"
    assert all("waits for the objective of finished trial" in why for why in machinery.refusals), machinery.refusals
