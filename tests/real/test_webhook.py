"""Spillway's admission webhook, called by the real API server: an opted-in Job applied without
`suspend` is created suspended, a wrong spillway.io/ annotation is refused at `kubectl apply`
(and at `kubectl annotate`) with the message `spillway explain` gives, and the trial pods the
real Job controller creates for a sweep get their hyperparameters (a Bayesian sweep's asked of
Optuna given its finished trials, read under deploy/'s RBAC)."""

from __future__ import annotations

import base64
import json

import pytest
import yaml

from policies import constants as C
from policies import job_from_manifest
from policies.model import TrialResult, read_tuning_spec, trial_hyperparameters, trial_results_text
from scheduler.bayesian_trials import suggest_trial
from scheduler.run_cli import webhook_reads
from scheduler.trial_pods import COMPLETION_INDEX, TRIAL_LABEL
from scheduler.webhook import MUTATE_PATH, MUTATE_POD_PATH, VALIDATE_PATH, WebhookServer
from sim.control_plane.pki import serving_pair
from sim.control_plane.plane import kubectl
from tests.builders import policy
from tests.real.conftest import job_manifest, wait_for


@pytest.fixture
def webhook(plane, namespace, controller_kube):
    """The webhook on loopback, registered for this test's namespace only (as a namespaceSelector
    keeps it off kube-system and Spillway's own namespace in deploy/), reading the cluster as the
    controller's ServiceAccount, as `spillway run` serves it."""
    cert, key = serving_pair(plane.plane.pki, "spillway-webhook", ("127.0.0.1",))
    server = WebhookServer(policy(), str(cert), str(key), host="127.0.0.1", port=0,
                           **webhook_reads(controller_kube)).start()
    ca = base64.b64encode(plane.plane.pki.ca_cert.read_bytes()).decode()
    kubectl(plane.plane.kubeconfig, "label", "namespace", namespace, f"webhook-test={namespace}")

    def hook(name: str, path: str, operations: list[str]) -> dict:
        return {"name": f"{name}.spillway.io", "admissionReviewVersions": ["v1"], "sideEffects": "None",
                "failurePolicy": "Fail", "timeoutSeconds": 10,
                "clientConfig": {"url": f"https://127.0.0.1:{server.port}{path}", "caBundle": ca},
                "namespaceSelector": {"matchLabels": {"webhook-test": namespace}},
                "rules": [{"apiGroups": ["batch"], "apiVersions": ["v1"], "resources": ["jobs"],
                           "operations": operations}]}

    trials = {**hook("trials.pods", MUTATE_POD_PATH, ["CREATE"]), "objectSelector": {"matchLabels": {TRIAL_LABEL: "true"}},
              "rules": [{"apiGroups": [""], "apiVersions": ["v1"], "resources": ["pods"], "operations": ["CREATE"]}]}
    configs = [
        {"apiVersion": "admissionregistration.k8s.io/v1", "kind": "MutatingWebhookConfiguration",
         "metadata": {"name": f"spillway-{namespace}"},
         "webhooks": [hook("suspend", MUTATE_PATH, ["CREATE"]), trials]},
        {"apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingWebhookConfiguration",
         "metadata": {"name": f"spillway-{namespace}"},
         "webhooks": [hook("annotations", VALIDATE_PATH, ["CREATE", "UPDATE"])]}]
    kubectl(plane.plane.kubeconfig, "apply", "-f", "-", stdin=yaml.safe_dump_all(configs))
    yield server
    for kind in ("mutatingwebhookconfiguration", "validatingwebhookconfiguration"):
        kubectl(plane.plane.kubeconfig, "delete", kind, f"spillway-{namespace}", check=False)
    server.shutdown()


def apply(plane, manifest: dict):
    return kubectl(plane.plane.kubeconfig, "apply", "-f", "-", stdin=yaml.safe_dump(manifest), check=False)


def test_an_opted_in_job_applied_without_suspend_is_created_suspended(plane, namespace, webhook):
    job = job_manifest("unsuspended", namespace, **{C.MODE: "cloud"})
    del job["spec"]["suspend"]
    done = apply(plane, job)
    assert done.returncode == 0, done.stderr
    assert "created suspended" in done.stderr  # the webhook's warning, which kubectl shows
    assert plane.kube.get_job(namespace, "unsuspended")["spec"]["suspend"] is True
    other = job_manifest("not-ours", namespace)
    other["metadata"]["annotations"] = {}
    del other["spec"]["suspend"]
    assert apply(plane, other).returncode == 0
    assert plane.kube.get_job(namespace, "not-ours")["spec"].get("suspend") is not True, "left alone"


def test_a_wrong_annotation_is_refused_at_apply_and_at_annotate(plane, namespace, webhook):
    done = apply(plane, job_manifest("soon", namespace, **{C.RUNTIME_ESTIMATE: "soon"}))
    assert done.returncode != 0
    assert "admission webhook" in done.stderr and "spillway.io/runtime-estimate" in done.stderr, done.stderr
    assert "fix:" in done.stderr
    assert apply(plane, job_manifest("fine", namespace)).returncode == 0
    refused = kubectl(plane.plane.kubeconfig, "annotate", "job", "fine", "-n", namespace,
                      f"{C.CAPACITY_TYPE}=cheap", check=False)
    assert refused.returncode != 0 and "spillway.io/capacity-type" in refused.stderr, refused.stderr
    # Spillway's own writes (its outputs) are not a user's input: they go through.
    ok = kubectl(plane.plane.kubeconfig, "annotate", "job", "fine", "-n", namespace, f"{C.DECISION_REASON}=x",
                 check=False)
    assert ok.returncode == 0, ok.stderr


def test_the_webhook_overlays_configurations_are_accepted_by_the_real_api_server(plane):
    """deploy/overlays/webhook's two webhook configurations, as the real API server validates them
    (a server-side dry run: nothing is registered)."""
    from tests.real.conftest import ROOT

    rendered = kubectl(plane.plane.kubeconfig, "kustomize", str(ROOT / "deploy/overlays/webhook")).stdout
    configs = [d for d in yaml.safe_load_all(rendered) if d and d["kind"].endswith("WebhookConfiguration")]
    assert len(configs) == 2
    done = kubectl(plane.plane.kubeconfig, "apply", "--dry-run=server", "-f", "-", stdin=yaml.safe_dump_all(configs),
                   check=False)
    assert done.returncode == 0, done.stderr
    assert "mutatingwebhookconfiguration.admissionregistration.k8s.io/spillway created (server dry run)" in done.stdout


SWEEP_SPEC = """\
objective: {metric: validation:loss, regex: 'val_loss=([0-9.]+)', type: Minimize}
strategy: Random
seed: 3
parameters:
  lr: {type: continuous, min: 0.0001, max: 0.1, scaling: Logarithmic}
  depth: {type: integer, min: 2, max: 12}
"""


def test_the_real_job_controllers_trial_pods_get_their_trials_hyperparameters(plane, namespace, webhook):
    job = job_manifest("sweep", namespace, gpus=1, parallelism=2,
                       **{C.SAGEMAKER_KIND: "tuning", C.TUNING_SPEC: SWEEP_SPEC, C.MODE: "local"})
    job["spec"]["completions"] = 4
    del job["spec"]["suspend"]
    done = apply(plane, job)
    assert done.returncode == 0, done.stderr
    created = plane.kube.get_job(namespace, "sweep")
    assert created["spec"]["template"]["metadata"]["labels"][TRIAL_LABEL] == "true"
    # As the controller's Local decision does: un-suspend it; kube-controller-manager makes the pods.
    kubectl(plane.plane.kubeconfig, "patch", "job", "sweep", "-n", namespace, "--type=merge",
            "-p", '{"spec":{"suspend":false}}')
    pods = wait_for(lambda: [p for p in plane.kube.list_pods() if p["metadata"]["namespace"] == namespace
                             and (p["metadata"].get("labels") or {}).get("batch.kubernetes.io/job-name") == "sweep"]
                    or None, what="the sweep's first trial pods")
    spec = job_from_manifest(job).tuning
    for pod in pods:
        index = int(pod["metadata"]["annotations"][COMPLETION_INDEX])
        values = trial_hyperparameters(spec, index)
        env = {e["name"]: e.get("value") for e in pod["spec"]["containers"][0].get("env") or []}
        assert env["SM_HP_LR"] == values["lr"] and env["SM_HP_DEPTH"] == values["depth"], (index, env)
        assert pod["metadata"]["annotations"][C.TRIAL_HYPERPARAMETERS] == json.dumps(values, sort_keys=True)
        mounts = pod["spec"]["containers"][0]["volumeMounts"]
        assert any(m["mountPath"] == "/opt/ml/input/config" for m in mounts)


def test_the_real_job_controllers_bayesian_trial_waits_for_the_finished_ones_then_is_asked_with_them(
        plane, namespace, webhook):
    spec_text = SWEEP_SPEC.replace("strategy: Random", "strategy: Bayesian")
    job = job_manifest("bayes", namespace, gpus=1, parallelism=2, run_seconds=30,
                       **{C.SAGEMAKER_KIND: "tuning", C.TUNING_SPEC: spec_text, C.MODE: "local"})
    job["spec"]["completions"] = 4
    del job["spec"]["suspend"]
    assert apply(plane, job).returncode == 0
    # As the controller's Local decision does: placed, and un-suspended; the Job controller makes the pods.
    plane.kube.patch_job(namespace, "bayes", {"metadata": {"annotations": {C.DECISION_PLACEMENT: "Local"}},
                                              "spec": {"suspend": False}})

    def trial_pods() -> dict[int, dict]:
        return {int(p["metadata"]["annotations"][COMPLETION_INDEX]): p for p in plane.kube.list_pods()
                if p["metadata"]["namespace"] == namespace
                and (p["metadata"].get("labels") or {}).get("batch.kubernetes.io/job-name") == "bayes"}

    first = wait_for(lambda: (pods := trial_pods()) and len(pods) == 2 and pods, what="the first two trials")
    assert {i: p["metadata"]["annotations"][C.TRIAL_ASKED_WITH] for i, p in first.items()} == {0: "", 1: ""}
    # Both finish; with no controller to read their logs, the next trial waits, and says so.
    wait_for(lambda: any("waits for the objective of finished trial" in (e.message or "")
                         for e in plane.kube.core.list_namespaced_event(namespace).items),
             what="the Job controller's FailedCreate: trial 2 waits for the finished trials")
    assert sorted(trial_pods()) == [0, 1]
    results = [TrialResult(i, p["metadata"]["name"], json.loads(p["metadata"]["annotations"][C.TRIAL_HYPERPARAMETERS]),
                           0.5 - 0.1 * i) for i, p in sorted(first.items())]
    plane.kube.patch_job(namespace, "bayes", {"metadata": {"annotations": {C.TRIAL_RESULTS: trial_results_text(results)}}})
    later = wait_for(lambda: (pods := trial_pods()) and len(pods) == 4 and pods, what="trials 2 and 3")
    spec = read_tuning_spec(yaml.safe_load(spec_text), "spec", 4, lambda *problem: None)
    for index in (2, 3):
        ann = later[index]["metadata"]["annotations"]
        assert ann[C.TRIAL_ASKED_WITH] == "0,1"
        assert json.loads(ann[C.TRIAL_HYPERPARAMETERS]) == suggest_trial(spec, index, results)
