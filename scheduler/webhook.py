"""The admission webhook for batch/v1 Jobs: what a user gets wrong is stopped at `kubectl apply`.

- Mutating (`/mutate-batch-v1-job`, CREATE): a Job that opts in (a spillway.io/ annotation, or
  a namespace of spec.managedJobs.namespaces) is created suspended, so users never write
  `suspend: true`, and the Job never starts on the cluster before Spillway decided it. A Job
  queued by Kueue (`kueue.x-k8s.io/queue-name`) is Kueue's to suspend and is left alone.
- Validating (`/validate-batch-v1-job`, CREATE, and UPDATE when a spillway.io/ input changed): a
  Job whose spillway.io/ annotations do not parse is refused with the message `spillway explain`
  gives, field by field with its fix.

The answers are AdmissionReview v1 responses, made by pure functions (`mutate`, `validate`); the
server around them is the standard library's, over TLS.
"""

from __future__ import annotations

import base64
import json
import logging
from http.server import BaseHTTPRequestHandler

from policies import BurstPolicy, InputError, job_from_manifest
from policies import constants as C

from .tls_server import TlsServer
from .trial_history import ReadJob, SucceededPods
from .trial_pods import ReadConfigMap, sweep_template_patch, trial_pod_patch, tuning_config_maps

log = logging.getLogger(__name__)
MUTATE_PATH = "/mutate-batch-v1-job"
VALIDATE_PATH = "/validate-batch-v1-job"
MUTATE_POD_PATH = "/mutate-v1-pod"  # a sweep's trial pods (label spillway.io/trial): their hyperparameters


def _inputs(obj: dict) -> dict[str, str]:
    ann = (obj.get("metadata") or {}).get("annotations") or {}
    # Spillway's own outputs (C.WRITTEN_ANNOTATIONS) are not a user's input: changing them is not validated.
    return {k: v for k, v in ann.items() if k.startswith(C.ANNOTATION_PREFIX) and k not in C.WRITTEN_ANNOTATIONS}


def _opted_in(obj: dict, namespace: str, policy: BurstPolicy) -> bool:
    return bool(_inputs(obj)) or namespace in policy.spec.managed_jobs.namespaces


def _allowed(uid: str, **extra) -> dict:
    return {"uid": uid, "allowed": True, **extra}


def mutate(request: dict, policy: BurstPolicy, read_config_map: ReadConfigMap | None = None) -> dict:
    """The AdmissionReview response to a Job's CREATE: suspended if it opts in; a sweep's pod
    template readied for its trials (trial_pods.py)."""
    uid, obj = request.get("uid", ""), request.get("object") or {}
    if request.get("operation") != "CREATE":
        return _allowed(uid)
    namespace = request.get("namespace") or (obj.get("metadata") or {}).get("namespace") or ""
    labels = (obj.get("metadata") or {}).get("labels") or {}
    patch, warnings = [], []
    if C.KUEUE_QUEUE_LABEL not in labels and _opted_in(obj, namespace, policy) and \
            (obj.get("spec") or {}).get("suspend") is not True:
        patch.append({"op": "add", "path": "/spec/suspend", "value": True})
        warnings.append("spillway: created suspended; Spillway decides where it runs (spillway.io/placement says, "
                        "once decided)")
    patch += sweep_template_patch(obj, namespace, read_config_map)
    if not patch:
        return _allowed(uid)
    extra = {"warnings": warnings} if warnings else {}
    return _allowed(uid, patchType="JSONPatch", patch=base64.b64encode(json.dumps(patch).encode()).decode(), **extra)


def mutate_trial_pod(request: dict, policy: BurstPolicy, read_job: ReadJob | None = None,
                     succeeded_pods: SucceededPods | None = None) -> dict:
    """The AdmissionReview response to a sweep's trial pod's CREATE: its trial's hyperparameters,
    or a refusal that says why it cannot have them. A Bayesian trial's are asked of Optuna given
    its Job's finished trials, which read_job and succeeded_pods read."""
    uid, obj = request.get("uid", ""), request.get("object") or {}
    if request.get("operation") != "CREATE":
        return _allowed(uid)
    namespace = request.get("namespace") or (obj.get("metadata") or {}).get("namespace") or ""
    patch = trial_pod_patch(obj, namespace, read_job, succeeded_pods)
    if isinstance(patch, str):
        return {"uid": uid, "allowed": False, "status": {"code": 422, "reason": "Invalid", "message": patch}}
    if not patch:
        return _allowed(uid)
    return _allowed(uid, patchType="JSONPatch", patch=base64.b64encode(json.dumps(patch).encode()).decode())


def validate(request: dict, policy: BurstPolicy, read_config_map: ReadConfigMap | None = None) -> dict:
    """The AdmissionReview response to a Job's CREATE or UPDATE: refused if its spillway.io/
    annotations do not parse, with every problem and its fix."""
    uid, obj = request.get("uid", ""), request.get("object") or {}
    operation = request.get("operation")
    if operation not in ("CREATE", "UPDATE") or not _inputs(obj):
        return _allowed(uid)
    if operation == "UPDATE" and _inputs(request.get("oldObject") or {}) == _inputs(obj):
        return _allowed(uid)  # nothing of the user's changed: Spillway's own writes go through
    meta = obj.get("metadata") or {}
    namespace = request.get("namespace") or meta.get("namespace") or ""
    manifest = {**obj, "metadata": {**meta, "namespace": namespace}}
    try:
        job_from_manifest(manifest, source=f"{namespace}/{meta.get('name') or meta.get('generateName') or 'job'}",
                          config_maps=tuning_config_maps(manifest, namespace, read_config_map))
    except InputError as exc:
        message = "; ".join(issue.render() for issue in exc.issues)
        return {"uid": uid, "allowed": False, "status": {"code": 422, "reason": "Invalid", "message": message}}
    return _allowed(uid)


class _Handler(BaseHTTPRequestHandler):
    server: "WebhookServer"

    def log_message(self, fmt, *args) -> None:
        log.debug("webhook: " + fmt, *args)

    def do_POST(self) -> None:  # noqa: N802 - the http.server protocol
        server = self.server
        answer = {MUTATE_PATH: lambda r: mutate(r, server.policy, server.read_config_map),
                  VALIDATE_PATH: lambda r: validate(r, server.policy, server.read_config_map),
                  MUTATE_POD_PATH: lambda r: mutate_trial_pod(r, server.policy, server.read_job, server.succeeded_pods),
                  }.get(self.path.split("?")[0])
        try:
            review = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)) or b"{}")
            request = review["request"]
        except (ValueError, KeyError, TypeError):
            self._send(400, {"error": "expected an AdmissionReview with a request"})
            return
        if answer is None:
            self._send(404, {"error": f"no webhook at {self.path}; {MUTATE_PATH}, {VALIDATE_PATH} or "
                                      f"{MUTATE_POD_PATH}"})
            return
        response = answer(request)
        self._send(200, {"apiVersion": review.get("apiVersion", "admission.k8s.io/v1"), "kind": "AdmissionReview",
                         "response": response})

    def _send(self, code: int, body: dict) -> None:
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


class WebhookServer(TlsServer):
    """The webhook over TLS on (host, port); port 0 picks a free one (see .port)."""

    def __init__(self, policy: BurstPolicy, cert_file: str, key_file: str, host: str = "0.0.0.0", port: int = 9443,
                 read_config_map: ReadConfigMap | None = None, read_job: ReadJob | None = None,
                 succeeded_pods: SucceededPods | None = None):
        super().__init__(_Handler, cert_file, key_file, host, port)
        self.policy = policy
        self.read_config_map = read_config_map  # a sweep's tuning spec may be in a ConfigMap
        # A Bayesian sweep's trial is chosen from its Job's finished trials (trial_history.py).
        self.read_job, self.succeeded_pods = read_job, succeeded_pods
