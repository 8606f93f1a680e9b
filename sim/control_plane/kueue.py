"""Kueue on the control plane: its manager as a process, its CRDs, RBAC and webhooks from the
module's own config/ (rendered with `kubectl kustomize`, as config/default does: namespace
kueue-system, names prefixed kueue-).

What a cluster would do with a Deployment and a Service, loopback does here: the manager runs on
this machine under its own ServiceAccount's token, and the webhooks (admission and CRD
conversion) are pointed at its port by URL, with a serving certificate from the plane's CA
(Kueue's own certificate rotator would sign for the Service's DNS name, which nothing resolves
here).
"""

from __future__ import annotations

import base64
import logging
import os
import time
from pathlib import Path

import yaml

from .pki import serving_pair
from .plane import ControlPlane, PlaneError, free_port, kubectl, write_kubeconfig

log = logging.getLogger(__name__)
NAMESPACE = "kueue-system"
SERVICE_ACCOUNT = "kueue-controller-manager"
WEBHOOK_SERVICE = "kueue-webhook-service"


def render(plane: ControlPlane, webhook_port: int) -> list[dict]:
    """Kueue's CRDs, RBAC and webhook configurations, with every webhook pointed at loopback."""
    config = plane.bins["kueue-config"]
    folder = plane.folder / "kueue"
    folder.mkdir(exist_ok=True)
    (folder / "kustomization.yaml").write_text(yaml.safe_dump({
        "namespace": NAMESPACE, "namePrefix": "kueue-",
        "resources": [os.path.relpath(config / "components" / c, folder) for c in ("crd", "rbac", "webhook")]}))
    out = kubectl(plane.kubeconfig, "kustomize", "--load-restrictor=LoadRestrictionsNone", str(folder)).stdout
    assert plane.pki is not None
    ca = base64.b64encode(plane.pki.ca_cert.read_bytes()).decode()
    docs = [d for d in yaml.safe_load_all(out) if d]
    for doc in docs:
        if doc["kind"] in ("MutatingWebhookConfiguration", "ValidatingWebhookConfiguration"):
            for hook in doc.get("webhooks") or []:
                hook["clientConfig"] = _loopback(hook["clientConfig"], webhook_port, ca)
        elif doc["kind"] == "CustomResourceDefinition":
            webhook = ((doc["spec"].get("conversion") or {}).get("webhook") or {})
            if webhook.get("clientConfig"):
                webhook["clientConfig"] = _loopback(webhook["clientConfig"], webhook_port, ca)
        elif doc["kind"] == "Service":
            continue
    return [d for d in docs if d["kind"] != "Service"]


def _loopback(client_config: dict, port: int, ca: str) -> dict:
    service = client_config.get("service") or {}
    if service.get("name") != WEBHOOK_SERVICE:
        raise PlaneError(f"a Kueue webhook calls an unexpected service: {service}")
    return {"url": f"https://127.0.0.1:{port}{service.get('path') or '/convert'}", "caBundle": ca}


def start_kueue(plane: ControlPlane, timeout: float = 120.0) -> None:
    """Install Kueue's manifests, start its manager, wait until its webhooks answer."""
    assert plane.pki is not None
    webhook_port, health_port = free_port(), free_port()
    docs = render(plane, webhook_port)
    manifest = plane.folder / "kueue" / "kueue.yaml"
    manifest.write_text(yaml.safe_dump_all(docs, sort_keys=False))
    kubectl(plane.kubeconfig, "create", "namespace", NAMESPACE, check=False)
    # Server-side apply: Kueue's CRDs are too large for the annotation a client-side apply writes.
    kubectl(plane.kubeconfig, "apply", "--server-side", "--force-conflicts", "-f", str(manifest))
    kubectl(plane.kubeconfig, "wait", "--for=condition=Established", "--timeout=60s",
            *[f"crd/{d['metadata']['name']}" for d in docs if d["kind"] == "CustomResourceDefinition"])
    token = kubectl(plane.kubeconfig, "create", "token", SERVICE_ACCOUNT, "-n", NAMESPACE,
                    "--duration=24h").stdout.strip()
    kubeconfig = write_kubeconfig(plane.folder / "kueue" / "manager.kubeconfig", plane.url, plane.pki.ca_cert, token,
                                  user=SERVICE_ACCOUNT, namespace=NAMESPACE)
    certs = plane.folder / "kueue" / "certs"
    certs.mkdir(exist_ok=True)
    cert, key = serving_pair(plane.pki, "kueue-webhook", ("127.0.0.1", "localhost"))
    (certs / "tls.crt").write_bytes(cert.read_bytes())
    (certs / "tls.key").write_bytes(key.read_bytes())
    _metrics_certs(plane)
    config = plane.folder / "kueue" / "config.yaml"
    config.write_text(yaml.safe_dump({
        "apiVersion": "config.kueue.x-k8s.io/v1beta2", "kind": "Configuration", "namespace": NAMESPACE,
        "health": {"healthProbeBindAddress": f"127.0.0.1:{health_port}"},
        "metrics": {"bindAddress": "0"},
        "webhook": {"port": webhook_port, "host": "127.0.0.1", "certDir": str(certs)},
        "leaderElection": {"leaderElect": False},
        "internalCertManagement": {"enable": False},
        "integrations": {"frameworks": ["batch/job"]},
    }, sort_keys=False))
    plane.start_process("kueue", [str(plane.bins["kueue"]), f"--config={config}", f"--kubeconfig={kubeconfig}",
                           f"--visibility-server-port={free_port()}", "--zap-log-level=info",
                           # the on-demand visibility API server reads a certificate from /visibility only
                           "--feature-gates=VisibilityOnDemand=false"])
    plane.wait_http("kueue", f"http://127.0.0.1:{health_port}/readyz", timeout)
    # Ready once the webhook answers: a dry-run ResourceFlavor goes through Kueue's own webhook.
    probe = yaml.safe_dump({"apiVersion": "kueue.x-k8s.io/v1beta2", "kind": "ResourceFlavor",
                            "metadata": {"name": "spillway-probe"}})
    deadline_tries = int(timeout / 0.5)
    for _ in range(deadline_tries):
        done = kubectl(plane.kubeconfig, "create", "--dry-run=server", "-f", "-", stdin=probe, check=False)
        if done.returncode == 0:
            return
        time.sleep(0.5)
    raise PlaneError(f"Kueue's webhook did not answer within {timeout:.0f} s: {done.stderr.strip()}; "
                     f"the end of {plane.processes['kueue'].log_path}:\n{plane.processes['kueue'].tail()}")


def _metrics_certs(plane: ControlPlane) -> None:
    """Without its internal certificate rotator, Kueue v0.17 reads its metrics server's pair from a
    fixed path (where its Deployment mounts a Secret), and exits if it is not there. It is written
    there once, from the plane's CA; a pair already in place is left alone."""
    assert plane.pki is not None
    folder = METRICS_CERTS
    if (folder / "tls.crt").exists() and (folder / "tls.key").exists():
        return
    try:
        folder.mkdir(parents=True, exist_ok=True)
        cert, key = serving_pair(plane.pki, "kueue-metrics", ("127.0.0.1", "localhost"))
        (folder / "tls.crt").write_bytes(cert.read_bytes())
        (folder / "tls.key").write_bytes(key.read_bytes())
        (folder / "tls.key").chmod(0o600)
    except PermissionError:
        raise PlaneError(f"Kueue v0.17 reads its metrics certificate from {folder}, which this user cannot "
                         f"write: create it once as root (any self-signed tls.crt and tls.key), then "
                         "start again") from None


METRICS_CERTS = Path("/etc/kueue/metrics/certs")
