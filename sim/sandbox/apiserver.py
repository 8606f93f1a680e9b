"""An HTTP server on loopback that speaks enough of the Kubernetes REST API for the official
`kubernetes` client and kubectl: discovery, CRUD, list/watch with resourceVersions, selectors,
the status subresource, three patch types, finalizers, garbage collection, CRDs and Status errors.

Traps avoided (shared/notes/infra.md section 3): TCP_NODELAY, or every keep-alive call waits
~40 ms for a delayed ACK; and watches are sent chunked, or the client blocks until the
connection closes.
"""

from __future__ import annotations

import base64
import json
import socket
import ssl
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from pathlib import Path
from typing import Callable
from urllib import error as urllib_error
from urllib import request as urllib_request
from urllib.parse import parse_qs, urlparse

import yaml

from . import admission, patches, tables
from .machinery import container_log
from .resources import ResourceType
from .selectors import SelectorError, field_matcher, label_matcher
from .store import ApiError, Store
from .validation import job_spec_immutable_changes, validate

K8S_VERSION = {"major": "1", "minor": "35", "gitVersion": "v1.35.0-spillway-sandbox", "gitCommit": "sandbox",
               "gitTreeState": "clean", "buildDate": "2026-11-28T00:00:00Z", "goVersion": "go1.25",
               "compiler": "gc", "platform": "linux/amd64"}


class _Answered(Exception):
    """The request was answered already (an injected watch error)."""


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: "SandboxServer"

    def setup(self) -> None:
        super().setup()
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def log_message(self, fmt, *args) -> None:  # quiet; the server keeps its own access log if asked
        if self.server.verbose:
            super().log_message(fmt, *args)

    # --- plumbing --------------------------------------------------------------------------------

    def _send(self, code: int, body: dict) -> None:
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        for warning in getattr(self, "warnings", []):  # what admission webhooks said; kubectl prints them
            self.send_header("Warning", f'299 - "{warning}"')
        if code == 429:
            self.send_header("Retry-After", "0")
        self.send_header("Content-Length", str(len(data)))
        # Headers and body in one write: one send per response, not two (half the syscalls, and
        # no small segment waiting for the next).
        self._headers_buffer.append(b"\r\n" + data)  # type: ignore[attr-defined]  # private to http.server, unstubbed
        self.flush_headers()

    def _body(self):
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        if not raw:
            return None
        try:
            if "yaml" in (self.headers.get("Content-Type") or ""):
                return yaml.safe_load(raw)
            return json.loads(raw)
        except (ValueError, yaml.YAMLError) as exc:
            raise ApiError(400, "BadRequest", f"the body of the request was in an unknown format: {exc}") from None

    def _route(self, method: str) -> None:
        self.warnings: list[str] = []
        try:
            url = urlparse(self.path)
            query = {k: v[-1] for k, v in parse_qs(url.query).items()}
            parts = [p for p in url.path.split("/") if p]
            if self._discovery(parts):
                return
            self._resource(method, parts, query)
        except ApiError as exc:
            self._send(exc.code, exc.status())
        except (BrokenPipeError, ConnectionResetError, _Answered):
            pass

    do_GET = lambda self: self._route("GET")  # noqa: E731
    do_POST = lambda self: self._route("POST")  # noqa: E731
    do_PUT = lambda self: self._route("PUT")  # noqa: E731
    do_PATCH = lambda self: self._route("PATCH")  # noqa: E731
    do_DELETE = lambda self: self._route("DELETE")  # noqa: E731

    # --- discovery -------------------------------------------------------------------------------

    def _discovery(self, parts: list[str]) -> bool:
        """The GETs that are no resource: version, metrics, OpenAPI and API discovery. False: not one."""
        if self.command != "GET":
            return False
        if self._fixed_document(parts):
            return True
        groups: dict[str, list[str]] = {}
        for (g, v, _), _t in sorted(self.server.store.types.items()):
            if g:
                groups.setdefault(g, [])
                if v not in groups[g]:
                    groups[g].append(v)
        if parts == ["apis"]:
            self._send(200, {"kind": "APIGroupList", "apiVersion": "v1", "groups": [
                {"name": g, "versions": [{"groupVersion": f"{g}/{v}", "version": v} for v in vs],
                 "preferredVersion": {"groupVersion": f"{g}/{vs[0]}", "version": vs[0]}} for g, vs in groups.items()]})
            return True
        if len(parts) == 2 and parts[0] == "apis" and parts[1] in groups:
            vs = groups[parts[1]]
            self._send(200, {"kind": "APIGroup", "apiVersion": "v1", "name": parts[1],
                             "versions": [{"groupVersion": f"{parts[1]}/{v}", "version": v} for v in vs],
                             "preferredVersion": {"groupVersion": f"{parts[1]}/{vs[0]}", "version": vs[0]}})
            return True
        return self._resource_list(parts)

    def _fixed_document(self, parts: list[str]) -> bool:
        """/version, /metrics, /openapi/v3 and /api; False for any other path."""
        if parts in (["version"], ["version", ""]):
            self._send(200, K8S_VERSION)
            return True
        if parts == ["metrics"]:
            from .metrics import render

            data = render(self.server.store, self.server.metric_style).encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
            return True
        if parts[:2] == ["openapi", "v3"]:
            self._openapi_v3(parts[2:])
            return True
        if parts == ["api"]:
            self._send(200, {"kind": "APIVersions", "versions": ["v1"], "serverAddressByClientCIDRs": [
                {"clientCIDR": "0.0.0.0/0", "serverAddress": f"127.0.0.1:{self.server.server_port}"}]})
            return True
        return False

    def _resource_list(self, parts: list[str]) -> bool:
        """/api/v1 and /apis/GROUP/VERSION: the resources of one group version."""
        gv = None
        if parts == ["api", "v1"]:
            gv = ("", "v1")
        elif len(parts) == 3 and parts[0] == "apis":
            gv = (parts[1], parts[2])
        if gv is None:
            return False
        listed = [t for (g, v, _), t in sorted(self.server.store.types.items()) if (g, v) == gv]
        if not listed:
            raise ApiError(404, "NotFound", f"the server could not find the requested resource {'/'.join(parts)}")
        self._send(200, {"kind": "APIResourceList", "apiVersion": "v1",
                         "groupVersion": f"{gv[0]}/{gv[1]}" if gv[0] else gv[1],
                         "resources": [r for t in listed for r in t.discovery()]})
        return True

    def _openapi_v3(self, rest: list[str]) -> None:
        """Just enough OpenAPI v3 for kubectl to see that the server validates fields itself
        (fieldValidation on PATCH), so `kubectl apply` works without --validate=false."""
        store = self.server.store
        gvs = sorted({(g, v) for (g, v, _) in store.types})
        path_of = lambda g, v: f"apis/{g}/{v}" if g else f"api/{v}"  # noqa: E731
        if not rest:
            self._send(200, {"paths": {path_of(g, v): {"serverRelativeURL": f"/openapi/v3/{path_of(g, v)}?hash=0"}
                                       for g, v in gvs}})
            return
        wanted = "/".join(rest)
        paths = {}
        for (g, v, plural), t in store.types.items():
            if path_of(g, v) != wanted:
                continue
            scope = "namespaces/{namespace}/" if t.namespaced else ""
            gvk = {"group": g, "version": v, "kind": t.kind}
            op = {"x-kubernetes-group-version-kind": gvk, "responses": {"200": {"description": "OK"}},
                  "parameters": [{"name": "fieldValidation", "in": "query", "schema": {"type": "string"}},
                                 {"name": "dryRun", "in": "query", "schema": {"type": "string"}}]}
            paths[f"/{wanted}/{scope}{plural}/{{name}}"] = {"get": op, "put": op, "patch": op, "delete": op}
            paths[f"/{wanted}/{scope}{plural}"] = {"get": op, "post": op}
        if not paths:
            raise ApiError(404, "NotFound", f"no OpenAPI document for {wanted}")
        self._send(200, {"openapi": "3.0.0", "info": {"title": "Kubernetes (Spillway sandbox)", "version": "v1.35.0"},
                         "paths": paths, "components": {"schemas": {}}})

    # --- resources -------------------------------------------------------------------------------

    def _resource(self, method: str, parts: list[str], query: dict) -> None:
        """A request on a resource: where it points (type, namespace, name, subresource), then the
        method's handler."""
        t, ns, name, sub = self._locate(parts)
        self._fault(method, name, query, t.plural)
        if t.plural == "pods" and sub == "log" and method == "GET" and name is not None:
            return self._pod_log(ns or "", name, query)
        if sub not in (None, "status"):
            raise ApiError(404, "NotFound", f"subresource {sub!r} is not served")
        if t.namespaced and ns is None and method not in ("GET",) and name is None and method != "POST":
            raise ApiError(405, "MethodNotAllowed", "a namespace is required")
        if not t.namespaced:
            ns = ""
        if method == "GET":
            return self._get(t, ns, name, query)
        if method == "POST":
            return self._post(t, ns, name, query)
        if name is None:
            raise ApiError(405, "MethodNotAllowed", f"{method} needs a resource name")
        if method == "PUT":
            obj = self._object(t, self._body(), ns)
            if (obj.get("metadata") or {}).get("name") not in (None, name):
                raise ApiError(400, "BadRequest", "the name of the object does not match the name in the URL")
            obj.setdefault("metadata", {})["name"] = name
            return self._send(200, self._write(t, ns or "", name, obj, sub, query))
        if method == "PATCH":
            return self._patch(t, ns, name, sub, query)
        if method == "DELETE":
            body = self._body() or {}
            orphan = (body.get("propagationPolicy") or query.get("propagationPolicy")) == "Orphan"
            grace = body.get("gracePeriodSeconds", query.get("gracePeriodSeconds"))
            obj = self.server.store.delete(t, ns or "", name, orphan=orphan,
                                           grace_period_seconds=None if grace is None else int(grace))
            return self._send(200, obj)
        raise ApiError(405, "MethodNotAllowed", method)

    def _locate(self, parts: list[str]) -> tuple[ResourceType, str | None, str | None, str | None]:
        """/api/v1/... or /apis/GROUP/VERSION/..., [namespaces/NS/], PLURAL[/NAME[/SUBRESOURCE]]."""
        if parts[:2] == ["api", "v1"]:
            group, version, rest = "", "v1", parts[2:]
        elif len(parts) >= 3 and parts[0] == "apis":
            group, version, rest = parts[1], parts[2], parts[3:]
        else:
            raise ApiError(404, "NotFound", f"the server could not find the requested resource {self.path}")
        ns = None
        if len(rest) >= 3 and rest[0] == "namespaces":
            ns, rest = rest[1], rest[2:]
        if not rest:
            raise ApiError(404, "NotFound", "no resource named")
        t = self.server.store.type_for(group, version, rest[0])
        name = rest[1] if len(rest) > 1 else None
        sub = rest[2] if len(rest) > 2 else None
        return t, ns, name, sub

    def _get(self, t: ResourceType, ns: str | None, name: str | None, query: dict) -> None:
        if name is None:
            if query.get("watch") in ("1", "true"):
                return self._watch(t, ns if t.namespaced else None, query)
            return self._list(t, ns if t.namespaced else None, query)
        obj = self.server.store.get(t, ns or "", name)
        if tables.wants_table(self.headers.get("Accept")):
            return self._send(200, tables.table(t, [obj], obj["metadata"].get("resourceVersion", "")))
        return self._send(200, obj)

    def _post(self, t: ResourceType, ns: str | None, name: str | None, query: dict) -> None:
        if name is not None:
            raise ApiError(405, "MethodNotAllowed", "POST to a named resource")
        obj = self._object(t, self._body(), ns)
        if t.status_subresource and t.kind != "Node":
            # Status is the controllers' to write, through its subresource: a create's is dropped
            # (a Pod starts Pending). Nodes keep theirs: a kubelet registers one with its status.
            obj = {**obj, "status": {"phase": "Pending"} if t.kind == "Pod" and not t.group else {}}
        obj = self._admit(t, "CREATE", obj, None, ns or "")
        self._check(t, obj, query)
        self._validate_admission(t, "CREATE", obj, None, ns or "")
        if query.get("dryRun") == "All":
            return self._send(201, obj)
        return self._send(201, self.server.store.create(t, ns or "", obj))

    def _patch(self, t: ResourceType, ns: str | None, name: str, sub: str | None, query: dict) -> None:
        body = self._body()
        current = self.server.store.get(t, ns or "", name)
        try:
            patched = patches.apply(self.headers.get("Content-Type") or "", current, body)
        except patches.PatchError as exc:
            code = 415 if "unsupported" in str(exc) or "not supported" in str(exc) else 422
            raise ApiError(code, "UnsupportedMediaType" if code == 415 else "Invalid", str(exc)) from None
        if not isinstance(patched, dict):
            raise ApiError(422, "Invalid", "the patch did not produce an object")
        return self._send(200, self._write(t, ns or "", name, patched, sub, query))

    def _pod_log(self, ns: str, name: str, query: dict) -> None:
        """pods/log, as kube-apiserver serves it: from the kubelet of the pod's node, at the node's
        InternalIP and status.daemonEndpoints.kubeletEndpoint.Port, over TLS (not verified, as
        kube-apiserver without --kubelet-certificate-authority). The sandbox's own kubelet runs no
        container: it serves a pod's annotation sandbox.spillway.io/log as its log, if it has
        one (machinery.container_log); a virtual node's agent may serve its pods' logs."""
        store = self.server.store
        pod = store.get(store.type_for("", "v1", "pods"), ns, name)
        node_name = (pod.get("spec") or {}).get("nodeName")
        if not node_name:
            raise ApiError(400, "BadRequest", f'pod "{name}" is not bound to a node yet: no logs')
        node = store.get(store.type_for("", "v1", "nodes"), "", node_name)
        status = node.get("status") or {}
        port = ((status.get("daemonEndpoints") or {}).get("kubeletEndpoint") or {}).get("Port")
        address = next((a["address"] for a in status.get("addresses") or [] if a.get("type") == "InternalIP"), None)
        virtual = (node["metadata"].get("labels") or {}).get("type") == "virtual-kubelet"
        served = None if virtual else container_log(pod)
        if served is not None:
            return self._send_text(served.encode())
        if not port or not address:
            if virtual:
                raise ApiError(400, "BadRequest", f"node {node_name} reports no kubelet endpoint: its agent serves no "
                               "logs (spillway run serves them given --kubelet-cert-dir with a certificate)")
            raise ApiError(400, "BadRequest", f"node {node_name} serves no container logs (the sandbox's kubelet "
                           "keeps none)")
        containers = (pod.get("spec") or {}).get("containers") or [{}]
        container = query.get("container") or containers[0].get("name", "")
        url = f"https://{address}:{port}/containerLogs/{ns}/{name}/{container}"
        if query.get("tailLines"):
            url += f"?tailLines={query['tailLines']}"
        try:
            with urllib_request.urlopen(url, context=ssl._create_unverified_context(), timeout=30) as answer:
                text = answer.read()
        except urllib_error.HTTPError as exc:
            raise ApiError(exc.code if exc.code < 500 else 500, "InternalError" if exc.code >= 500 else "NotFound",
                           exc.read().decode(errors="replace").strip()) from None
        except OSError as exc:
            raise ApiError(500, "InternalError", f'Get "{url}": {exc}') from None
        self._send_text(text)

    def _send_text(self, text: bytes) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(text)))
        self.end_headers()
        self.wfile.write(text)

    def _fault(self, method: str, name: str | None, query: dict, plural: str) -> None:
        """Answer with an injected fault (sandbox.faults), if one matches this request."""
        if name is not None:
            verb = {"GET": "GET", "PUT": "UPDATE", "PATCH": "PATCH", "DELETE": "DELETE"}.get(method, method)
        elif method == "GET":
            verb = "WATCH" if query.get("watch") in ("1", "true") else "LIST"
        else:
            verb = "CREATE" if method == "POST" else method
        code = self.server.faults.take(verb, plural)
        if code is None:
            return
        self.rfile.read(int(self.headers.get("Content-Length") or 0))  # keep the connection usable
        if verb == "WATCH" and code == 410:  # as a real server does: a 200 stream with one ERROR event
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            line = (json.dumps({"type": "ERROR", "object": {
                "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure", "code": 410,
                "reason": "Expired", "message": "too old resource version (injected)"}}) + "\n").encode()
            self.wfile.write(f"{len(line):x}\r\n".encode() + line + b"\r\n0\r\n\r\n")
            self.wfile.flush()
            raise _Answered()
        from .faults import REASONS

        raise ApiError(code, REASONS.get(code, "InternalError"), f"injected fault {code} on {verb} {plural}")

    def _object(self, t: ResourceType, body, ns) -> dict:
        if not isinstance(body, dict):
            raise ApiError(400, "BadRequest", "the request body must be a JSON object")
        if body.get("kind") not in (None, t.kind):
            raise ApiError(400, "BadRequest", f"the kind {body.get('kind')!r} does not match {t.kind}")
        meta = body.get("metadata")
        if meta is not None and not isinstance(meta, dict):
            raise ApiError(400, "BadRequest", "metadata must be an object")
        if t.namespaced and meta and meta.get("namespace") not in (None, ns):
            raise ApiError(400, "BadRequest", "the namespace of the object does not match the namespace on the URL")
        return body

    def _check(self, t: ResourceType, obj: dict, query: dict) -> None:
        probe = obj
        if not (obj.get("metadata") or {}).get("name") and (obj.get("metadata") or {}).get("generateName"):
            probe = {**obj, "metadata": {**obj["metadata"], "name": obj["metadata"]["generateName"] + "x"}}
        causes = validate(t, probe, strict=query.get("fieldValidation") == "Strict")
        if causes:
            name = (obj.get("metadata") or {}).get("name", "")
            raise ApiError(422, "Invalid", f'{t.kind}.{t.group or "core"} "{name}" is invalid: ' +
                           ", ".join(f"{c['field']}: {c['message']}" for c in causes),
                           {"name": name, "group": t.group, "kind": t.kind, "causes": causes})

    def _admit(self, t: ResourceType, operation: str, obj: dict, old: dict | None, ns: str) -> dict:
        if t.group == "admissionregistration.k8s.io":
            return obj  # webhook configurations are not sent to webhooks, as in Kubernetes
        return admission.admit(self.server.store, t, operation, obj, old, ns, self.warnings)

    def _validate_admission(self, t: ResourceType, operation: str, obj: dict, old: dict | None, ns: str) -> None:
        if t.group != "admissionregistration.k8s.io":
            admission.check(self.server.store, t, operation, obj, old, ns, self.warnings)

    def _write(self, t, ns, name, obj, sub, query) -> dict:
        store = self.server.store
        if sub is None:
            old = store.get(t, ns, name)
            obj = self._admit(t, "UPDATE", obj, old, ns)
            self._check(t, obj, query)
            self._validate_admission(t, "UPDATE", obj, old, ns)

        def immutable(old, new):
            if t.group == "batch" and t.kind == "Job" and sub is None:
                causes = job_spec_immutable_changes(old, new)
                if causes:
                    raise ApiError(422, "Invalid", f'Job.batch "{name}" is invalid: ' +
                                   ", ".join(f"{c['field']}: {c['message']}" for c in causes),
                                   {"name": name, "group": "batch", "kind": "Job", "causes": causes})

        if query.get("dryRun") == "All":
            return obj
        return store.update(t, ns, name, obj, subresource=sub, check=immutable)

    def _list(self, t: ResourceType, ns, query) -> None:
        store = self.server.store
        try:
            labels, fields = label_matcher(query.get("labelSelector")), field_matcher(query.get("fieldSelector"))
        except SelectorError as exc:
            raise ApiError(400, "BadRequest", str(exc)) from None
        items, rv = store.list(t, ns)
        items = [o for o in items if labels(o["metadata"].get("labels") or {}) and fields(o)]
        meta: dict[str, str | int] = {"resourceVersion": str(rv)}
        start = 0
        if query.get("continue"):
            try:
                start = int(base64.urlsafe_b64decode(query["continue"]).decode())
            except ValueError:
                raise ApiError(400, "BadRequest", "invalid continue token") from None
        limit = int(query.get("limit") or 0)
        page = items[start:start + limit] if limit else items[start:]
        if limit and start + limit < len(items):
            meta["continue"] = base64.urlsafe_b64encode(str(start + limit).encode()).decode()
            meta["remainingItemCount"] = len(items) - start - limit
        if tables.wants_table(self.headers.get("Accept")):
            return self._send(200, {**tables.table(t, page, str(rv)), "metadata": meta})
        if t.schema is None:  # a built-in list's items carry no apiVersion or kind, as a real server sends them
            page = [{k: v for k, v in o.items() if k not in ("apiVersion", "kind")} for o in page]
        self._send(200, {"kind": f"{t.kind}List", "apiVersion": t.group_version, "metadata": meta, "items": page})

    def _watch(self, t: ResourceType, ns, query) -> None:
        """A watch: a chunked stream of events, from where it starts (_watch_from) on (_stream)."""
        labels, fields = label_matcher(query.get("labelSelector")), field_matcher(query.get("fieldSelector"))
        timeout = float(query.get("timeoutSeconds") or 1800)
        deadline = time.monotonic() + timeout
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()

        def emit(kind: str, obj: dict) -> None:
            line = (json.dumps({"type": kind, "object": obj}) + "\n").encode()
            self.wfile.write(f"{len(line):x}\r\n".encode() + line + b"\r\n")
            self.wfile.flush()

        def visible(obj: dict) -> bool:
            return (ns is None or obj["metadata"].get("namespace") == ns) and \
                labels(obj["metadata"].get("labels") or {}) and fields(obj)

        rv = self._watch_from(t, ns, query, emit, visible)
        try:
            self._stream(t, query, rv, emit, visible, deadline)
            self.wfile.write(b"0\r\n\r\n")
            self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError):
            pass

    def _watch_from(self, t: ResourceType, ns, query, emit, visible) -> int:
        """Where a watch starts: the list's state as ADDED events (and, for WatchList, a bookmark
        where it ends), or the resourceVersion given."""
        rv_text = query.get("resourceVersion") or ""
        initial_events = query.get("sendInitialEvents") in ("1", "true")
        if rv_text in ("", "0") or initial_events:
            items, rv = self.server.store.list(t, ns)
            for obj in items:
                if visible(obj):
                    emit("ADDED", obj)
            if initial_events:  # WatchList (kubectl 1.35+ informers): say where the initial state ends
                emit("BOOKMARK", {"kind": t.kind, "apiVersion": t.group_version, "metadata": {
                    "resourceVersion": str(rv), "annotations": {"k8s.io/initial-events-end": "true"}}})
            return rv
        try:
            return int(rv_text)
        except ValueError:
            raise ApiError(400, "BadRequest", f"invalid resourceVersion {rv_text!r}") from None

    def _stream(self, t: ResourceType, query, rv: int, emit, visible, deadline: float) -> None:
        """The events after rv as they happen, with bookmarks if asked, until the deadline."""
        store = self.server.store
        bookmarks = query.get("allowWatchBookmarks") in ("1", "true")
        last_bookmark = time.monotonic()
        while not self.server.stopping.is_set():
            found = store.events_since(rv, t.group, t.plural)
            if found is None:
                emit("ERROR", {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                               "message": f"too old resource version: {rv} ({store.history[0].rv - 1})",
                               "reason": "Expired", "code": 410})
                break
            events, read_up_to = found
            for e in events:
                if visible(e.obj):
                    emit(e.type, e.obj)
            rv = read_up_to
            now = time.monotonic()
            if now >= deadline:
                break
            if bookmarks and now - last_bookmark >= self.server.bookmark_seconds:
                emit("BOOKMARK", {"kind": t.kind, "apiVersion": t.group_version,
                                  "metadata": {"resourceVersion": str(max(rv, store.rv))}})
                last_bookmark = now
            with store.changed:
                if store.rv == rv:  # nothing happened since: sleep until something does
                    store.changed.wait(timeout=min(0.5, max(deadline - now, 0.01)))


class SandboxServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, port: int = 0, *, clock: Callable[[], float] = time.time, history: int = 1000,
                 verbose: bool = False, bookmark_seconds: float = 30.0):
        super().__init__(("127.0.0.1", port), Handler)
        self.store = Store(clock, history)
        self.verbose = verbose
        self.bookmark_seconds = bookmark_seconds
        from .metrics import MetricStyle

        self.metric_style = MetricStyle()
        from .faults import Faults

        self.faults = Faults()
        self.stopping = threading.Event()
        self.thread: threading.Thread | None = None
        # The namespaces a real API server makes for itself (node Leases live in kube-node-lease).
        for ns in ("default", "kube-system", "kube-public", "kube-node-lease"):
            self.store.create(self.store.type_for("", "v1", "namespaces"), "", {"metadata": {"name": ns}})
        for crd in bundled_crds():
            self.store.create(self.store.type_for("apiextensions.k8s.io", "v1", "customresourcedefinitions"), "", crd)

    def handle_error(self, request, client_address) -> None:
        """A client that hung up (a killed controller, a closed watch) is not a server error."""
        import sys

        if isinstance(sys.exc_info()[1], (ConnectionError, TimeoutError)):
            return
        super().handle_error(request, client_address)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_port}"

    def start(self) -> "SandboxServer":
        self.thread = threading.Thread(target=self.serve_forever, name="sandbox-apiserver", daemon=True)
        self.thread.start()
        return self

    def stop(self) -> None:
        self.stopping.set()
        with self.store.changed:
            self.store.changed.notify_all()
        self.shutdown()
        self.server_close()

    def kubeconfig(self, path: Path) -> Path:
        path.write_text(yaml.safe_dump({
            "apiVersion": "v1", "kind": "Config", "current-context": "spillway-sandbox",
            "clusters": [{"name": "spillway-sandbox", "cluster": {"server": self.url}}],
            "users": [{"name": "sandbox-admin", "user": {"token": "sandbox"}}],
            "contexts": [{"name": "spillway-sandbox", "context": {"cluster": "spillway-sandbox",
                                                                  "user": "sandbox-admin", "namespace": "default"}}],
        }, sort_keys=False))
        return path


def bundled_crds() -> list[dict]:
    """The ACK CRDs, then the legacy operator's (v1beta1 layout, read as such)."""
    out = []
    for folder in (resources.files("sim").joinpath("sandbox/crds"), resources.files("sim").joinpath("sandbox/crds/legacy")):
        for f in sorted(folder.iterdir(), key=lambda f: f.name):
            if f.name.endswith(".yaml"):
                crd = yaml.safe_load(f.read_text())
                crd["apiVersion"] = "apiextensions.k8s.io/v1"
                out.append(crd)
    return out

