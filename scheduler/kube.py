"""The Kubernetes adapter: the only module that imports the `kubernetes` client.

It speaks plain JSON dicts (what `job_from_manifest` reads, and what the API returns), so the
rest of the controller never sees the client's model classes. Every call goes over real HTTP;
429 and 5xx answers are retried with exponential back-off by urllib3 (honouring Retry-After),
and what is left comes out as a KubeError with the HTTP status.
"""

from __future__ import annotations

import json
import logging
import threading
from typing import Any, Callable, Iterator

import urllib3
from kubernetes import client, config, watch
from kubernetes.client.rest import ApiException
from kubernetes.leaderelection import electionconfig, leaderelection
from kubernetes.leaderelection.resourcelock.leaselock import LeaseLock

log = logging.getLogger(__name__)
MERGE_PATCH = "application/merge-patch+json"
STRATEGIC_PATCH = "application/strategic-merge-patch+json"
WATCH_SECONDS = 60
LIST_PAGE = 500  # items per page of a list


class KubeError(Exception):
    """An API call failed: status 404 NotFound, 409 Conflict/AlreadyExists, 422 Invalid, ..."""

    def __init__(self, status: int, reason: str, message: str):
        super().__init__(f"{status} {reason}: {message}")
        self.status, self.reason, self.message = status, reason, message

    @property
    def not_found(self) -> bool:
        return self.status == 404

    @property
    def conflict(self) -> bool:
        return self.status == 409


def _error(exc: ApiException) -> KubeError:
    reason, message = exc.reason or "", str(exc.body or "")
    try:
        body = json.loads(exc.body or "{}")
        reason, message = body.get("reason") or reason, body.get("message") or message
    except (ValueError, TypeError):
        pass
    return KubeError(exc.status or 0, reason, message)


def _without_managed_fields(obj: dict) -> dict:
    (obj.get("metadata") or {}).pop("managedFields", None)
    return obj


def _pod_essentials(pod: dict) -> dict:
    meta, spec, status = pod.get("metadata") or {}, pod.get("spec") or {}, pod.get("status") or {}
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {k: meta[k] for k in ("name", "namespace", "uid", "ownerReferences", "creationTimestamp")
                         if k in meta},
            "spec": {"nodeName": spec.get("nodeName"),
                     "containers": [{"name": c.get("name"), "resources": c.get("resources") or {}}
                                    for c in spec.get("containers") or []]},
            "status": {k: status[k] for k in ("phase", "startTime") if k in status}}


def _node_essentials(node: dict) -> dict:
    _without_managed_fields(node)
    (node.get("status") or {}).pop("images", None)
    return node


def unreachable(host: str, exc: Exception) -> KubeError:
    """No answer from the API server: status 0, with the cause in one line (not urllib3's chain)."""
    cause = getattr(exc, "reason", None) or exc
    text = str(cause)
    if "Connection refused" in text:
        text = "connection refused"
    elif "timed out" in text.lower():
        text = "timed out"
    return KubeError(0, "Unreachable", f"no answer from the Kubernetes API at {host} ({text})")


def api_client(kubeconfig: str | None = None, context: str | None = None, *, host: str | None = None,
               retries: int = 5) -> client.ApiClient:
    """A client from a kubeconfig (or, with none and inside a Pod, the in-cluster service account;
    or, with host, that API server with no credentials, as the sandbox serves it)."""
    cfg = client.Configuration()
    if host is not None:
        cfg.host = host
    elif kubeconfig is None and _in_cluster():
        config.load_incluster_config(client_configuration=cfg)
    else:
        config.load_kube_config(config_file=kubeconfig, context=context, client_configuration=cfg)
    cfg.connection_pool_maxsize = 32  # a cycle writes on several threads at once (Settings.workers)
    cfg.retries = urllib3.Retry(total=retries, connect=retries, read=2, backoff_factor=0.2,
                                status_forcelist=(429, 500, 502, 503, 504), allowed_methods=None,
                                respect_retry_after_header=True, raise_on_status=False)
    return client.ApiClient(cfg)


def _in_cluster() -> bool:
    import os

    return bool(os.environ.get("KUBERNETES_SERVICE_HOST")) and os.path.exists(
        "/var/run/secrets/kubernetes.io/serviceaccount/token")


class Kube:
    def __init__(self, api: client.ApiClient):
        self.api = api
        self.batch = client.BatchV1Api(api)
        self.core = client.CoreV1Api(api)
        self.custom = client.CustomObjectsApi(api)

    def _call(self, fn: Callable, *args, **kwargs) -> dict:
        try:
            response = fn(*args, _preload_content=False, **kwargs)
        except ApiException as exc:
            raise _error(exc) from None
        except (urllib3.exceptions.HTTPError, OSError) as exc:  # refused, reset, timed out, after retries
            raise unreachable(self.api.configuration.host, exc) from None
        return json.loads(response.data or b"{}")

    # --- reads ---------------------------------------------------------------------------------

    def _items(self, fn: Callable, api_version: str, kind: str, keep: Callable[[dict], dict] = lambda o: o,
               **kwargs) -> list[dict]:
        """A list's items, read LIST_PAGE at a time, each with its apiVersion and kind (an API server
        sends them without: they are the list's, and what reads a Job checks that it is one), and
        each cut down by keep() before the next page is read: the whole answer is never in memory
        as JSON text and as dicts at once."""
        out: list[dict] = []
        token = None
        while True:
            page = self._call(fn, limit=LIST_PAGE, **({"_continue": token} if token else {}), **kwargs)
            for item in page.get("items") or []:
                item.setdefault("apiVersion", api_version)
                item.setdefault("kind", kind)
                out.append(keep(item))
            token = (page.get("metadata") or {}).get("continue")
            if not token:
                return out

    def list_jobs(self) -> list[dict]:
        return self._items(self.batch.list_job_for_all_namespaces, "batch/v1", "Job")

    def list_jobs_for_controller(self) -> list[dict]:
        """Every Job, paged, without managedFields (on a real server, often half of an object)."""
        return self._items(self.batch.list_job_for_all_namespaces, "batch/v1", "Job", _without_managed_fields)

    def list_pods_holding_resources(self) -> list[dict]:
        """Pods not yet finished, paged, each cut to what says where it runs, since when, for
        whom and with how many GPUs: on a cluster of 10,000 pods the full objects would be
        most of the controller's memory."""
        return self._items(self.core.list_pod_for_all_namespaces, "v1", "Pod", _pod_essentials,
                           field_selector="status.phase!=Succeeded,status.phase!=Failed")

    def list_nodes_for_controller(self) -> list[dict]:
        """Every Node, paged, without managedFields and the image list its kubelet reports."""
        return self._items(self.core.list_node, "v1", "Node", _node_essentials)

    def list_pods(self, field_selector: str | None = None) -> list[dict]:
        kwargs: dict[str, Any] = {"field_selector": field_selector} if field_selector else {}
        return self._items(self.core.list_pod_for_all_namespaces, "v1", "Pod", **kwargs)

    def list_nodes(self) -> list[dict]:
        return self._items(self.core.list_node, "v1", "Node")

    def get_job(self, namespace: str, name: str) -> dict:
        return self._call(self.batch.read_namespaced_job, name, namespace)

    def read_job(self, namespace: str, name: str) -> dict | None:
        """The Job, or None if there is none."""
        try:
            return self.get_job(namespace, name)
        except KubeError as exc:
            if exc.not_found:
                return None
            raise

    def list_pods_selected(self, label_selector: str, field_selector: str = "",
                           namespace: str | None = None) -> list[dict]:
        """The pods with these labels (and fields), in one namespace or all."""
        kwargs: dict[str, Any] = {"label_selector": label_selector}
        if field_selector:
            kwargs["field_selector"] = field_selector
        if namespace is None:
            return self._items(self.core.list_pod_for_all_namespaces, "v1", "Pod", **kwargs)
        return self._items(self.core.list_namespaced_pod, "v1", "Pod", namespace=namespace, **kwargs)

    def read_pod_log(self, namespace: str, name: str) -> str:
        """The pod's log (its first container's), as kubectl logs prints it."""
        try:
            response: Any = self.core.read_namespaced_pod_log(name, namespace, _preload_content=False)
        except ApiException as exc:
            raise _error(exc) from None
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            raise unreachable(self.api.configuration.host, exc) from None
        return (response.data or b"").decode(errors="replace")

    # --- Jobs ----------------------------------------------------------------------------------

    def patch_job(self, namespace: str, name: str, patch: dict) -> dict:
        """A JSON merge patch; with metadata.resourceVersion in it, a 409 if the Job changed since."""
        return self._call(self.batch.patch_namespaced_job, name, namespace, patch, _content_type=MERGE_PATCH)

    def event(self, job: dict, reason: str, message: str, *, warning: bool = False, now: str) -> None:
        """A core/v1 Event on the Job, which `kubectl describe job` lists."""
        meta = job["metadata"]
        body = {"metadata": {"generateName": f"{meta['name']}.", "namespace": meta["namespace"]},
                "involvedObject": {"apiVersion": "batch/v1", "kind": "Job", "name": meta["name"],
                                   "namespace": meta["namespace"], "uid": meta.get("uid")},
                "reason": reason, "message": message[:1024], "type": "Warning" if warning else "Normal",
                "source": {"component": "spillway"}, "reportingComponent": "spillway.io/controller",
                "firstTimestamp": now, "lastTimestamp": now, "count": 1}
        self._call(self.core.create_namespaced_event, meta["namespace"], body)

    # --- nodes and pods, as a kubelet writes them (the virtual node; the test plane's GPU nodes) ------

    def create_node(self, body: dict) -> dict:
        return self._call(self.core.create_node, body)

    def get_node(self, name: str) -> dict:
        return self._call(self.core.read_node, name)

    def patch_node(self, name: str, patch: dict) -> dict:
        """A JSON merge patch of the Node (labels, taints)."""
        return self._call(self.core.patch_node, name, patch, _content_type=MERGE_PATCH)

    def patch_node_status(self, name: str, patch: dict) -> dict:
        """A strategic merge patch: conditions merge by type, as a kubelet's heartbeat needs."""
        return self._call(self.core.patch_node_status, name, patch, _content_type=STRATEGIC_PATCH)

    def get_pod(self, namespace: str, name: str) -> dict:
        return self._call(self.core.read_namespaced_pod, name, namespace)

    def patch_pod_status(self, namespace: str, name: str, patch: dict) -> dict:
        return self._call(self.core.patch_namespaced_pod_status, name, namespace, patch,
                          _content_type=STRATEGIC_PATCH)

    def delete_pod(self, namespace: str, name: str, *, grace_period_seconds: int | None = None) -> None:
        kwargs = {} if grace_period_seconds is None else {"grace_period_seconds": grace_period_seconds}
        try:
            self._call(self.core.delete_namespaced_pod, name, namespace, **kwargs)
        except KubeError as exc:
            if not exc.not_found:
                raise

    def renew_lease(self, namespace: str, name: str, holder: str, seconds: int, now: str,
                    owner: dict | None = None) -> None:
        """Create the Lease, or move its renewTime to now (a node's heartbeat)."""
        coordination = client.CoordinationV1Api(self.api)
        try:
            self._call(coordination.patch_namespaced_lease, name, namespace, {"spec": {"renewTime": now}},
                       _content_type=MERGE_PATCH)
        except KubeError as exc:
            if not exc.not_found:
                raise
            meta: dict = {"name": name, "namespace": namespace}
            if owner:
                meta["ownerReferences"] = [owner]
            try:
                self._call(coordination.create_namespaced_lease, namespace, {
                    "metadata": meta, "spec": {"holderIdentity": holder, "leaseDurationSeconds": seconds,
                                               "renewTime": now}})
            except KubeError as again:
                if not again.conflict:
                    raise
                self.renew_lease(namespace, name, holder, seconds, now, owner)  # made meanwhile: renew it

    # --- custom resources (the SageMaker TrainingJobs) ------------------------------------------

    def create_custom(self, resource: dict, plural: str) -> dict:
        group, version = resource["apiVersion"].split("/")
        return self._call(self.custom.create_namespaced_custom_object, group, version,
                          resource["metadata"]["namespace"], plural, resource, field_validation="Strict")

    def list_custom(self, api_version: str, plural: str) -> list[dict]:
        group, version = api_version.split("/")
        return self._call(self.custom.list_cluster_custom_object, group, version, plural).get("items") or []

    def get_custom(self, api_version: str, plural: str, namespace: str, name: str) -> dict:
        group, version = api_version.split("/")
        return self._call(self.custom.get_namespaced_custom_object, group, version, namespace, plural, name)

    def patch_custom_status(self, api_version: str, plural: str, namespace: str, name: str, patch: dict) -> dict:
        """A JSON merge patch of a custom resource's status (namespace "": cluster-scoped); with
        metadata.resourceVersion in it, a 409 if the object changed since."""
        group, version = api_version.split("/")
        if namespace:
            return self._call(self.custom.patch_namespaced_custom_object_status, group, version, namespace, plural,
                              name, patch, _content_type=MERGE_PATCH)
        return self._call(self.custom.patch_cluster_custom_object_status, group, version, plural, name, patch,
                          _content_type=MERGE_PATCH)

    def delete_custom(self, api_version: str, plural: str, namespace: str, name: str) -> None:
        group, version = api_version.split("/")
        try:
            self._call(self.custom.delete_namespaced_custom_object, group, version, namespace, plural, name)
        except KubeError as exc:
            if not exc.not_found:
                raise

    # --- ConfigMaps (the ledger) ----------------------------------------------------------------

    def list_config_maps(self, namespace: str, label_selector: str) -> list[dict]:
        return self._call(self.core.list_namespaced_config_map, namespace,
                          label_selector=label_selector).get("items") or []

    def get_config_map(self, namespace: str, name: str) -> dict | None:
        try:
            return self._call(self.core.read_namespaced_config_map, name, namespace)
        except KubeError as exc:
            if exc.not_found:
                return None
            raise

    def create_config_map(self, namespace: str, name: str, data: dict[str, str], *,
                          labels: dict[str, str] | None = None) -> dict:
        """A 409 AlreadyExists if it is there already."""
        return self._call(self.core.create_namespaced_config_map, namespace,
                          {"metadata": {"name": name, "namespace": namespace, "labels": labels or {}}, "data": data})

    def replace_config_map(self, namespace: str, name: str, data: dict[str, str], resource_version: str, *,
                           labels: dict[str, str] | None = None) -> dict:
        """Compare-and-swap: a 409 if anyone wrote it since resource_version."""
        return self._call(self.core.replace_namespaced_config_map, name, namespace,
                          {"metadata": {"name": name, "namespace": namespace, "labels": labels or {},
                                        "resourceVersion": resource_version}, "data": data})

    def delete_config_map(self, namespace: str, name: str) -> None:
        try:
            self._call(self.core.delete_namespaced_config_map, name, namespace)
        except KubeError as exc:
            if not exc.not_found:
                raise

    # --- leader election ------------------------------------------------------------------------

    def lead(self, namespace: str, name: str, identity: str, *, on_started: Callable[[], None],
             on_stopped: Callable[[], None], lease_seconds: int = 15, renew_deadline_seconds: int = 10,
             retry_seconds: int = 2) -> threading.Thread:
        """Run for leadership of the Lease namespace/name (the client's leaderelection module).
        on_started runs, on its own thread, once this replica holds the Lease; on_stopped when it
        lost it. Returns the election's thread."""
        lock = LeaseLock(name, namespace, identity)
        lock.api_instance = client.CoordinationV1Api(self.api)  # this client, not the global default
        election = leaderelection.LeaderElection(electionconfig.Config(
            lock, lease_seconds, renew_deadline_seconds, retry_seconds, on_started, on_stopped))
        thread = threading.Thread(target=election.run, name="leader-election", daemon=True)
        thread.start()
        return thread

    # --- change notifications -------------------------------------------------------------------

    def watch_changes(self, on_change: Callable[[], None], stop: threading.Event) -> list[threading.Thread]:
        """Call on_change() whenever a Job or Pod changes (the controller then runs a cycle). A
        watch that expires (410 Gone) or drops starts again from a fresh list."""
        return [self._watch(fn, on_change, stop)
                for fn in (self.batch.list_job_for_all_namespaces, self.core.list_pod_for_all_namespaces)]

    def watch_pods(self, on_change: Callable[[], None], stop: threading.Event) -> threading.Thread:
        """Call on_change() whenever a Pod changes (a kubelet then looks at its pods)."""
        return self._watch(self.core.list_pod_for_all_namespaces, on_change, stop)

    def _watch(self, fn: Callable, on_change: Callable[[], None], stop: threading.Event) -> threading.Thread:
        t = threading.Thread(target=self._watch_loop, args=(fn, on_change, stop), daemon=True,
                             name=f"watch-{fn.__name__}")
        t.start()
        return t

    def _watch_loop(self, fn: Callable, on_change: Callable[[], None], stop: threading.Event) -> None:
        """Follow one resource until stop is set, resuming from the last resourceVersion seen (a
        bookmark's too, so a quiet watch does not fall behind etcd's compaction). A 410 Gone (the
        version was compacted, say across an API server restart) lists again, by a cycle. Whatever
        else goes wrong is logged and retried: a watch thread that died would leave the controller
        deaf until its next timed cycle."""
        resource_version = ""
        while not stop.is_set():
            w = watch.Watch()
            try:
                for event in self._stream(w, fn, resource_version):
                    if stop.is_set():
                        break
                    resource_version = ((event.get("raw_object") or {}).get("metadata") or {}).get(
                        "resourceVersion", resource_version)
                    if event.get("type") != "BOOKMARK":
                        on_change()
            except ApiException as exc:
                if exc.status == 410:
                    log.info("watch of %s expired; listing again", fn.__name__)
                    resource_version = ""
                    on_change()
                else:
                    log.warning("watch of %s failed (%s); retrying", fn.__name__, exc.status)
                    stop.wait(1.0)
            except (urllib3.exceptions.HTTPError, OSError) as exc:
                if stop.is_set():
                    return  # dropped because everything is stopping: nothing to say
                log.warning("watch of %s dropped (%s); retrying", fn.__name__, exc)
                stop.wait(1.0)
            except Exception:  # noqa: BLE001 - see the docstring
                log.exception("watch of %s failed unexpectedly; retrying", fn.__name__)
                stop.wait(1.0)
            finally:
                w.stop()

    @staticmethod
    def _stream(w: watch.Watch, fn: Callable, resource_version: str) -> Iterator[dict[str, Any]]:
        # The server ends each watch after WATCH_SECONDS; a read timeout a little longer ends one
        # whose connection went half-open (no FIN: a dead NAT entry, a frozen load balancer).
        kwargs = {"timeout_seconds": WATCH_SECONDS, "allow_watch_bookmarks": True,
                  "_request_timeout": (10, WATCH_SECONDS + 30)}
        if resource_version:
            kwargs["resource_version"] = resource_version
        return w.stream(fn, **kwargs)
