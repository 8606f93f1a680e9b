"""The API resources the sandbox serves: built-ins, plus whatever CustomResourceDefinitions add."""

from __future__ import annotations

from dataclasses import dataclass, field

VERBS = ["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"]


@dataclass
class ResourceType:
    group: str  # "" for the core group
    version: str
    plural: str
    kind: str
    namespaced: bool
    status_subresource: bool = False
    short_names: list[str] = field(default_factory=list)
    schema: dict | None = None  # openAPIV3Schema of a custom resource

    @property
    def group_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def singular(self) -> str:
        return self.kind.lower()

    @property
    def key(self) -> tuple[str, str]:
        return self.group, self.plural

    def discovery(self) -> list[dict]:
        out = [{"name": self.plural, "singularName": self.singular, "namespaced": self.namespaced,
                "kind": self.kind, "verbs": VERBS, **({"shortNames": self.short_names} if self.short_names else {})}]
        if self.status_subresource:
            out.append({"name": f"{self.plural}/status", "singularName": "", "namespaced": self.namespaced,
                        "kind": self.kind, "verbs": ["get", "patch", "update"]})
        return out


BUILTINS = [
    ResourceType("", "v1", "namespaces", "Namespace", False, True, ["ns"]),
    ResourceType("", "v1", "nodes", "Node", False, True, ["no"]),
    ResourceType("", "v1", "pods", "Pod", True, True, ["po"]),
    ResourceType("", "v1", "events", "Event", True, False, ["ev"]),
    ResourceType("", "v1", "configmaps", "ConfigMap", True, False, ["cm"]),
    ResourceType("", "v1", "serviceaccounts", "ServiceAccount", True, False, ["sa"]),
    ResourceType("batch", "v1", "jobs", "Job", True, True),
    ResourceType("coordination.k8s.io", "v1", "leases", "Lease", True, False),
    ResourceType("events.k8s.io", "v1", "events", "Event", True, False, ["ev"]),
    ResourceType("admissionregistration.k8s.io", "v1", "mutatingwebhookconfigurations",
                 "MutatingWebhookConfiguration", False, False),
    ResourceType("admissionregistration.k8s.io", "v1", "validatingwebhookconfigurations",
                 "ValidatingWebhookConfiguration", False, False),
    ResourceType("apiextensions.k8s.io", "v1", "customresourcedefinitions", "CustomResourceDefinition", False,
                 True, ["crd", "crds"]),
]


def types_from_crd(crd: dict) -> list[ResourceType]:
    """The served versions of a CustomResourceDefinition (apiextensions v1, or v1beta1's layout)."""
    spec = crd.get("spec") or {}
    names = spec.get("names") or {}
    group, plural, kind = spec.get("group"), names.get("plural"), names.get("kind")
    if not (group and plural and kind):
        raise ValueError("spec.group, spec.names.plural and spec.names.kind are required")
    namespaced = spec.get("scope", "Namespaced") == "Namespaced"
    versions = spec.get("versions") or [{"name": spec.get("version"), "served": True}]
    out = []
    for v in versions:
        if not v.get("served", True) or not v.get("name"):
            continue
        schema = ((v.get("schema") or spec.get("validation") or {}).get("openAPIV3Schema"))
        status = bool((v.get("subresources") or spec.get("subresources") or {}).get("status") is not None)
        out.append(ResourceType(group, v["name"], plural, kind, namespaced, status,
                                list(names.get("shortNames") or []), schema))
    if not out:
        raise ValueError("the CRD serves no version")
    return out
