"""Admission webhooks, as the sandbox's API server calls them: the MutatingWebhookConfiguration and
ValidatingWebhookConfiguration objects stored in it are read at each write, and each webhook whose
rules and namespaceSelector match is sent an AdmissionReview v1 over HTTPS (clientConfig.url,
trusting clientConfig.caBundle), as kube-apiserver sends it:

- mutating webhooks first, in name order, each seeing the previous one's JSONPatch applied;
- then schema validation (the caller's), then validating webhooks; a denial is the write's answer,
  `admission webhook "NAME" denied the request: MESSAGE`, with the webhook's status code;
- a webhook that cannot be called fails the write under failurePolicy Fail (the default), and
  is skipped under Ignore;
- the webhooks' warnings come back as Warning headers, which kubectl prints.

A clientConfig that names a Service is not served here (nothing resolves a Service on loopback):
it is reported as a failure to call the webhook.
"""

from __future__ import annotations

import base64
import json
import ssl
import tempfile
import urllib.error
import urllib.request
import uuid

import jsonpatch

from .resources import ResourceType
from .selectors import requirement_holds
from .store import ApiError, Store

MUTATING = ("admissionregistration.k8s.io", "v1", "mutatingwebhookconfigurations")
VALIDATING = ("admissionregistration.k8s.io", "v1", "validatingwebhookconfigurations")


def _selector_matches(selector: dict | None, labels: dict) -> bool:
    if not selector:
        return True
    if any(labels.get(k) != v for k, v in (selector.get("matchLabels") or {}).items()):
        return False
    return all(requirement_holds(r, labels) for r in selector.get("matchExpressions") or [])


def _rule_matches(rule: dict, t: ResourceType, operation: str) -> bool:
    def has(values, value):
        values = values or []
        return "*" in values or value in values

    return (has(rule.get("apiGroups"), t.group) and has(rule.get("apiVersions"), t.version)
            and has(rule.get("resources"), t.plural) and has(rule.get("operations"), operation))


def webhooks_for(store: Store, kind: tuple[str, str, str], t: ResourceType, operation: str, namespace: str,
              obj: dict | None = None):
    try:
        configs, _ = store.list(store.type_for(*kind), None)
    except ApiError:
        return []
    ns_labels: dict = {}
    if namespace:
        try:
            ns = store.get(store.type_for("", "v1", "namespaces"), "", namespace)
            ns_labels = {"kubernetes.io/metadata.name": namespace, **(ns["metadata"].get("labels") or {})}
        except ApiError:
            ns_labels = {"kubernetes.io/metadata.name": namespace}
    out = []
    for config in sorted(configs, key=lambda c: c["metadata"]["name"]):
        for hook in config.get("webhooks") or []:
            if not any(_rule_matches(r, t, operation) for r in hook.get("rules") or []):
                continue
            if namespace and not _selector_matches(hook.get("namespaceSelector"), ns_labels):
                continue
            if obj is not None and not _selector_matches(hook.get("objectSelector"),
                                                         (obj.get("metadata") or {}).get("labels") or {}):
                continue  # as kube-apiserver: only objects whose labels the objectSelector matches
            out.append(hook)
    return out


def _call(hook: dict, review: dict) -> dict:
    config = hook.get("clientConfig") or {}
    url = config.get("url")
    if not url:
        raise OSError(f"clientConfig.service {config.get('service')} cannot be reached from the sandbox; use url")
    context = ssl.create_default_context()
    if config.get("caBundle"):
        with tempfile.NamedTemporaryFile("wb", suffix=".crt") as ca:
            ca.write(base64.b64decode(config["caBundle"]))
            ca.flush()
            context = ssl.create_default_context(cafile=ca.name)
    request = urllib.request.Request(url, data=json.dumps(review).encode(), method="POST",
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=float(hook.get("timeoutSeconds") or 10), context=context) as r:
        return (json.loads(r.read()) or {}).get("response") or {}


def admit(store: Store, t: ResourceType, operation: str, obj: dict, old: dict | None, namespace: str,
          warnings: list[str]) -> dict:
    """Run the mutating webhooks over obj (CREATE or UPDATE); the object they leave."""
    for hook in webhooks_for(store, MUTATING, t, operation, namespace, obj):
        response = _review(hook, t, operation, obj, old, namespace, warnings)
        if response is None:
            continue
        if response.get("patch"):
            try:
                obj = jsonpatch.apply_patch(obj, json.loads(base64.b64decode(response["patch"])))
            except (ValueError, jsonpatch.JsonPatchException) as exc:
                raise ApiError(500, "InternalError", f'admission webhook "{hook["name"]}" sent a patch that does '
                                                     f"not apply: {exc}") from None
    return obj


def check(store: Store, t: ResourceType, operation: str, obj: dict, old: dict | None, namespace: str,
          warnings: list[str]) -> None:
    """Run the validating webhooks; the first denial is raised as the write's answer."""
    for hook in webhooks_for(store, VALIDATING, t, operation, namespace, obj):
        _review(hook, t, operation, obj, old, namespace, warnings)


def _review(hook: dict, t: ResourceType, operation: str, obj: dict, old: dict | None, namespace: str,
            warnings: list[str]) -> dict | None:
    uid = str(uuid.uuid4())
    meta = obj.get("metadata") or {}
    review = {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": {
        "uid": uid, "kind": {"group": t.group, "version": t.version, "kind": t.kind},
        "resource": {"group": t.group, "version": t.version, "resource": t.plural},
        "name": meta.get("name", ""), "namespace": namespace, "operation": operation,
        "userInfo": {"username": "sandbox-admin", "groups": ["system:masters", "system:authenticated"]},
        "object": obj, "oldObject": old, "dryRun": False}}
    try:
        response = _call(hook, review)
    except (OSError, urllib.error.URLError, ValueError) as exc:
        if hook.get("failurePolicy", "Fail") == "Ignore":
            return None
        raise ApiError(500, "InternalError", f'Internal error occurred: failed calling webhook "{hook["name"]}": '
                                             f"{exc}") from None
    warnings.extend(response.get("warnings") or [])
    if not response.get("allowed"):
        status = response.get("status") or {}
        raise ApiError(int(status.get("code") or 403), status.get("reason") or "Forbidden",
                       f'admission webhook "{hook["name"]}" denied the request: {status.get("message") or ""}')
    return response
