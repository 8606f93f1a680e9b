"""The sandbox's API server calls admission webhooks as kube-apiserver does
(tests/real/test_webhook.py is the same story against the real one): Spillway's webhook suspends
an opted-in Job and refuses a wrong annotation at `kubectl apply`."""

from __future__ import annotations

import base64
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from policies import constants as C
from scheduler.webhook import WebhookServer
from sim.control_plane.pki import make_pki, serving_pair
from sim.sandbox.apiserver import SandboxServer
from tests.builders import policy, webhook_configs

KUBECTL = Path(sys.executable).parent / "kubectl"


@pytest.fixture
def sandbox(tmp_path):
    server = SandboxServer().start()
    server.store.create(server.store.type_for("", "v1", "namespaces"), "", {"metadata": {"name": "ml"}})
    yield server
    server.stop()


def job(name: str, **ann: str) -> dict:
    return {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": name, "namespace": "ml", "annotations": ann},
            "spec": {"template": {"spec": {"restartPolicy": "Never", "containers": [
                {"name": "t", "image": "t:1", "resources": {"limits": {C.GPU_RESOURCE: "1"}}}]}}}}


def kubectl(config: Path, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([str(KUBECTL), "--kubeconfig", str(config), *args], input=stdin, capture_output=True,
                          text=True, timeout=60)


def test_kubectl_apply_goes_through_spillways_webhook_on_the_sandbox(sandbox, tmp_path):
    pki = make_pki(tmp_path / "pki")
    cert, key = serving_pair(pki, "webhook", ("127.0.0.1",))
    webhook = WebhookServer(policy(), str(cert), str(key), host="127.0.0.1", port=0).start()
    try:
        config = sandbox.kubeconfig(tmp_path / "kubeconfig")
        ca = base64.b64encode(pki.ca_cert.read_bytes()).decode()
        done = kubectl(config, "apply", "-f", "-",
                       stdin=yaml.safe_dump_all(webhook_configs(f"https://127.0.0.1:{webhook.port}", ca)))
        assert done.returncode == 0, done.stderr
        done = kubectl(config, "apply", "-f", "-", stdin=yaml.safe_dump(job("burst", **{C.MODE: "cloud"})))
        assert done.returncode == 0 and "Warning: spillway: created suspended" in done.stderr, done.stderr
        jobs = sandbox.store.type_for("batch", "v1", "jobs")
        assert sandbox.store.get(jobs, "ml", "burst")["spec"]["suspend"] is True
        refused = kubectl(config, "apply", "-f", "-", stdin=yaml.safe_dump(job("soon", **{C.RUNTIME_ESTIMATE: "soon"})))
        assert refused.returncode != 0
        assert 'admission webhook "annotations.spillway.io" denied the request: ml/soon: error: ' \
               f'metadata.annotations["{C.RUNTIME_ESTIMATE}"]: expected a duration' in refused.stderr, refused.stderr
        with pytest.raises(Exception):
            sandbox.store.get(jobs, "ml", "soon")
    finally:
        webhook.shutdown()


@pytest.mark.parametrize("failure_policy, created", [("Fail", False), ("Ignore", True)])
def test_a_webhook_that_does_not_answer_fails_the_write_or_is_skipped_by_its_policy(sandbox, tmp_path,
                                                                                     failure_policy, created):
    config = sandbox.kubeconfig(tmp_path / "kubeconfig")
    dead = webhook_configs("https://127.0.0.1:9", "", failure_policy)
    assert kubectl(config, "apply", "-f", "-", stdin=yaml.safe_dump_all(dead)).returncode == 0
    done = kubectl(config, "apply", "-f", "-", stdin=yaml.safe_dump(job("train", **{C.MODE: "auto"})))
    assert (done.returncode == 0) == created, done.stderr
    if not created:
        assert 'failed calling webhook "suspend.spillway.io"' in done.stderr
