"""The sandbox's etcd: objects, one resourceVersion counter, a bounded event history for watches,
optimistic concurrency, finalizers and ownerReference garbage collection."""

from __future__ import annotations

import builtins
import copy
import threading
import uuid
from collections import deque
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Callable

from .resources import BUILTINS, ResourceType, types_from_crd


class ApiError(Exception):
    def __init__(self, code: int, reason: str, message: str, details: dict | None = None):
        super().__init__(message)
        self.code, self.reason, self.message, self.details = code, reason, message, details or {}

    def status(self) -> dict:
        return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                "message": self.message, "reason": self.reason, "details": self.details, "code": self.code}


@dataclass
class Event:
    rv: int
    group: str
    plural: str
    type: str  # ADDED | MODIFIED | DELETED
    obj: dict


def now_rfc3339(clock: Callable[[], float]) -> str:
    return datetime.fromtimestamp(clock(), tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


class Store:
    def __init__(self, clock: Callable[[], float], history: int = 1000):
        self.clock = clock
        self.lock = threading.RLock()
        self.changed = threading.Condition(self.lock)
        self.rv = 0
        self.objects: dict[tuple[str, str], dict[tuple[str, str], dict]] = {}
        self.history: deque[Event] = deque(maxlen=history)
        self.types: dict[tuple[str, str, str], ResourceType] = {}
        for t in BUILTINS:
            self.register(t)
        self.listeners: list[Callable[[Event], None]] = []

    # --- types -----------------------------------------------------------------------------------

    def register(self, t: ResourceType) -> None:
        self.types[(t.group, t.version, t.plural)] = t
        self.objects.setdefault(t.key, {})

    def type_for(self, group: str, version: str, plural: str) -> ResourceType:
        t = self.types.get((group, version, plural))
        if t is None:
            raise ApiError(404, "NotFound", f"the server could not find the requested resource ({plural})")
        return t

    # --- reads -----------------------------------------------------------------------------------

    def get(self, t: ResourceType, ns: str, name: str) -> dict:
        with self.lock:
            obj = self.objects[t.key].get((ns, name))
            if obj is None:
                raise ApiError(404, "NotFound", f'{t.plural}{"." + t.group if t.group else ""} "{name}" not found',
                               {"name": name, "group": t.group, "kind": t.plural})
            return self._view(t, obj)

    def list(self, t: ResourceType, ns: str | None) -> tuple[list[dict], int]:
        with self.lock:
            items = [self._view(t, o) for (o_ns, _), o in sorted(self.objects[t.key].items())
                     if ns is None or o_ns == ns]
            return items, self.rv

    def _view(self, t: ResourceType, obj: dict) -> dict:
        out = copy.deepcopy(obj)
        out["apiVersion"], out["kind"] = t.group_version, t.kind
        return out

    # --- writes ----------------------------------------------------------------------------------

    def _bump(self, t: ResourceType, kind: str, obj: dict) -> None:
        self.rv += 1
        obj["metadata"]["resourceVersion"] = str(self.rv)
        event = Event(self.rv, t.group, t.plural, kind, self._view(t, obj))
        self.history.append(event)
        self.changed.notify_all()
        for listener in self.listeners:
            listener(event)

    def create(self, t: ResourceType, ns: str, obj: dict) -> dict:
        with self.lock:
            meta = obj.setdefault("metadata", {})
            if not meta.get("name") and meta.get("generateName"):
                meta["name"] = meta["generateName"] + uuid.uuid4().hex[:5]
            name = meta.get("name", "")
            if t.namespaced:
                meta["namespace"] = ns
                if ns and ("", "namespaces") in self.objects and ("", ns) not in self.objects[("", "namespaces")] \
                        and t.plural != "namespaces":
                    raise ApiError(404, "NotFound", f'namespaces "{ns}" not found', {"name": ns, "kind": "namespaces"})
            else:
                meta.pop("namespace", None)
            key = (ns if t.namespaced else "", name)
            if key in self.objects[t.key]:
                raise ApiError(409, "AlreadyExists", f'{t.plural} "{name}" already exists',
                               {"name": name, "group": t.group, "kind": t.plural})
            meta["uid"] = str(uuid.uuid4())
            meta["creationTimestamp"] = now_rfc3339(self.clock)
            meta["generation"] = 1
            meta.pop("deletionTimestamp", None)
            obj.pop("apiVersion", None)
            obj.pop("kind", None)
            if t.key == ("batch", "jobs"):
                _select_own_pods(obj)
            if t.plural == "customresourcedefinitions":
                self._register_crd(obj)
            self.objects[t.key][key] = obj
            self._bump(t, "ADDED", obj)
            return self._view(t, obj)

    def _register_crd(self, crd: dict) -> None:
        try:
            for rt in types_from_crd(crd):
                self.register(rt)
        except ValueError as exc:
            raise ApiError(422, "Invalid", f"CustomResourceDefinition is invalid: {exc}") from None
        crd.setdefault("status", {})["conditions"] = [
            {"type": "Established", "status": "True", "reason": "InitialNamesAccepted",
             "lastTransitionTime": now_rfc3339(self.clock), "message": "the initial names have been accepted"}]

    def update(self, t: ResourceType, ns: str, name: str, obj: dict, *, subresource: str | None = None,
               check: Callable[[dict, dict], None] | None = None) -> dict:
        """A replace (PUT). The caller's resourceVersion, when given, must be current (409 otherwise)."""
        with self.lock:
            key = (ns if t.namespaced else "", name)
            current = self.objects[t.key].get(key)
            if current is None:
                raise ApiError(404, "NotFound", f'{t.plural} "{name}" not found', {"name": name, "kind": t.plural})
            meta = obj.setdefault("metadata", {})
            given = meta.get("resourceVersion")
            if given and given != current["metadata"]["resourceVersion"]:
                raise ApiError(409, "Conflict", f'Operation cannot be fulfilled on {t.plural} "{name}": the object '
                               "has been modified; please apply your changes to the latest version and try again",
                               {"name": name, "group": t.group, "kind": t.plural})
            new = copy.deepcopy(current)
            if subresource == "status":
                new["status"] = copy.deepcopy(obj.get("status"))
            else:
                _replace(t, current, new, obj, meta)
                if t.plural == "customresourcedefinitions":
                    self._register_crd(new)
            if check:
                check(current, new)
            if _spec_of(new) != _spec_of(current):
                new["metadata"]["generation"] = current["metadata"].get("generation", 1) + 1
            if new == current:
                return self._view(t, current)  # no-op writes do not bump resourceVersion
            if new["metadata"].get("deletionTimestamp") and not new["metadata"].get("finalizers") \
                    and "deletionGracePeriodSeconds" not in new["metadata"]:
                del self.objects[t.key][key]
                self._bump(t, "DELETED", new)
                self._collect_garbage(new["metadata"]["uid"])
                return self._view(t, new)
            self.objects[t.key][key] = new
            self._bump(t, "MODIFIED", new)
            return self._view(t, new)

    def delete(self, t: ResourceType, ns: str, name: str, *, orphan: bool = False,
               grace_period_seconds: int | None = None) -> dict:
        with self.lock:
            key = (ns if t.namespaced else "", name)
            current = self.objects[t.key].get(key)
            if current is None:
                raise ApiError(404, "NotFound", f'{t.plural} "{name}" not found', {"name": name, "kind": t.plural})
            graceful = self._graceful(t, current, grace_period_seconds)
            if current["metadata"].get("finalizers") or graceful:
                if not current["metadata"].get("deletionTimestamp"):
                    current["metadata"]["deletionTimestamp"] = now_rfc3339(self.clock)
                    if graceful:
                        current["metadata"]["deletionGracePeriodSeconds"] = \
                            30 if grace_period_seconds is None else grace_period_seconds
                    self._bump(t, "MODIFIED", current)
                return self._view(t, current)
            del self.objects[t.key][key]
            self._bump(t, "DELETED", current)
            if not orphan:
                self._collect_garbage(current["metadata"]["uid"])
            if t.plural == "namespaces":
                self._delete_namespace_contents(name)
            return self._view(t, current)

    def _graceful(self, t: ResourceType, obj: dict, grace_period_seconds: int | None) -> bool:
        """A bound pod that has not ended goes away once its kubelet confirms (a delete with grace
        0), as on a real API server. Only a virtual node's pods wait so here: the sandbox's own
        kubelet would confirm at once, and its agent is the one to do it (a pod it forgets hangs
        in Terminating, as it would on a real cluster)."""
        if t.plural != "pods" or grace_period_seconds == 0:
            return False
        node = (obj.get("spec") or {}).get("nodeName")
        if not node or (obj.get("status") or {}).get("phase") in ("Succeeded", "Failed"):
            return False
        found = self.objects[self.type_for("", "v1", "nodes").key].get(("", node))
        return found is not None and (found["metadata"].get("labels") or {}).get("type") == "virtual-kubelet"

    def _collect_garbage(self, owner_uid: str) -> None:
        """Background cascading deletion: dependents whose ownerReferences name the deleted owner."""
        for (group, plural), objs in list(self.objects.items()):
            t = next((rt for rt in self.types.values() if rt.key == (group, plural)), None)
            for (ns, name), obj in list(objs.items()):
                refs = obj["metadata"].get("ownerReferences") or []
                if any(r.get("uid") == owner_uid for r in refs):
                    assert t is not None  # every kind stored has its type
                    remaining = [r for r in refs if r.get("uid") != owner_uid]
                    if remaining and any(r.get("uid") in self._uids() for r in remaining):
                        obj["metadata"]["ownerReferences"] = remaining
                        self._bump(t, "MODIFIED", obj)
                    else:
                        self.delete(t, ns, name)

    def _uids(self) -> set[str]:
        return {o["metadata"]["uid"] for objs in self.objects.values() for o in objs.values()}

    def _delete_namespace_contents(self, ns: str) -> None:
        for (group, plural), objs in list(self.objects.items()):
            t = next(rt for rt in self.types.values() if rt.key == (group, plural))
            if t.namespaced:
                for (o_ns, name) in [k for k in objs if k[0] == ns]:
                    obj = objs.pop((o_ns, name))
                    self._bump(t, "DELETED", obj)

    # --- watch -----------------------------------------------------------------------------------

    def events_since(self, rv: int, group: str, plural: str) -> tuple[builtins.list[Event], int] | None:
        """Events after rv for one resource, and the resourceVersion read up to (a watch resumes
        from there, past other resources' events); None when rv is older than the history kept (410)."""
        with self.lock:
            history = self.history
            oldest = history[0].rv if history else self.rv + 1
            if rv < oldest - 1 and rv < self.rv:
                return None
            # resourceVersions go up by one per event, so the first newer one is at a known index; a
            # watch reads only what is new (indexing a deque near its right end is cheap).
            out = []
            for i in range(max(rv + 1 - oldest, 0), len(history)):
                e = history[i]
                if e.group == group and e.plural == plural:
                    out.append(e)
            return out, max(rv, self.rv)


def _replace(t: ResourceType, current: dict, new: dict, obj: dict, meta: dict) -> None:
    """A replace's body over `new` (a copy of `current`): every field but apiVersion, kind and, behind
    a status subresource, status; the metadata but what the server keeps."""
    for k, v in obj.items():
        if k in ("apiVersion", "kind", "metadata") or (k == "status" and t.status_subresource):
            continue
        new[k] = copy.deepcopy(v)
    for k in list(new):
        if k not in obj and k not in ("metadata", "status"):
            del new[k]
    keep = {"uid", "creationTimestamp", "generation", "resourceVersion", "deletionTimestamp",
            "deletionGracePeriodSeconds", "namespace", "name"}
    new_meta = {k: v for k, v in meta.items() if k not in keep}
    new["metadata"] = {**{k: v for k, v in current["metadata"].items() if k in keep}, **new_meta}


def _spec_of(obj: dict) -> dict:
    return {k: v for k, v in obj.items() if k not in ("metadata", "status", "apiVersion", "kind")}


def _select_own_pods(job: dict) -> None:
    """What kube-apiserver's Job strategy does on create (unless spec.manualSelector): the selector
    batch.kubernetes.io/controller-uid=<its UID>, whose labels go on the pod template with the
    Job's name. kubectl logs job/NAME and kubectl get pods -l find a Job's pods by them."""
    spec = job.setdefault("spec", {})
    if spec.get("manualSelector"):
        return
    uid, name = job["metadata"]["uid"], job["metadata"].get("name", "")
    template = spec.setdefault("template", {})
    template_meta = template.setdefault("metadata", {})
    template_meta["labels"] = {**(template_meta.get("labels") or {}), "batch.kubernetes.io/controller-uid": uid,
                               "controller-uid": uid, "batch.kubernetes.io/job-name": name, "job-name": name}
    spec["selector"] = {"matchLabels": {"batch.kubernetes.io/controller-uid": uid}}
