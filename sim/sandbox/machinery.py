"""The simulated cluster behind the sandbox API: a Job controller, a GPU-aware scheduler and a
kubelet, in real time scaled by a factor. They act on the store as the real controllers act on
the API server, so every change they make is seen by list and watch.

- Job controller: pods for un-suspended Jobs (up to parallelism, until completions), Indexed
  completion indexes, status (active/succeeded/failed, startTime, completionTime) and the Complete
  or Failed condition, backoffLimit; a suspended Job loses its active pods; a Job whose
  spec.managedBy names another controller is left alone (Kubernetes 1.35). Its pods go through
  the admission webhooks that match them, as the real Job controller's creates go through
  kube-apiserver's: outside the store's lock (a webhook may read the API), and a refused pod is
  made again once the Job changed, or after RETRY_REFUSED_SECONDS.
- Scheduler: binds pending pods to a schedulable node with enough free nvidia.com/gpu, honouring
  nodeSelector and required node affinity; best fit (fewest free GPUs left).
- Kubelet: runs a bound pod for the duration in its annotation sandbox.spillway.io/run-seconds
  (default 60 virtual seconds), then marks it Succeeded (or Failed with sandbox.spillway.io/fail).
  It leaves alone the pods of a virtual node (label type=virtual-kubelet): its agent runs them.
  It runs no container, so a pod has a log only if it says what it is: the text of its
  annotation sandbox.spillway.io/log, with each $(VAR) replaced by the value of the variable
  VAR of its first container's env, as Kubernetes expands a container's args (a sweep's trial
  prints its objective from its SM_HP_ values, say: `val_loss=$(SM_HP_LR)`). A variable it does
  not set stays as written, as Kubernetes leaves it.
"""

from __future__ import annotations

import re
import time
import uuid
from datetime import datetime, timezone

from policies.model import pod_spec_gpus

from ..cluster_spec import node_groups
from . import admission
from .loop import ReconcileLoop
from .selectors import node_fits
from .store import ApiError, Store

RUN_SECONDS = "sandbox.spillway.io/run-seconds"
FAIL = "sandbox.spillway.io/fail"
LOG = "sandbox.spillway.io/log"
RETRY_REFUSED_SECONDS = 0.5  # real seconds before a refused pod is made again, unless its Job changed
GPU = "nvidia.com/gpu"
JOB_CONTROLLER = "kubernetes.io/job-controller"


def _ts(t: float) -> str:
    return datetime.fromtimestamp(t, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _parse_ts(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def pod_gpus(pod: dict) -> int:
    return pod_spec_gpus(pod.get("spec") or {})


class Machinery(ReconcileLoop):
    name = "sandbox-machinery"

    def __init__(self, store: Store, *, time_scale: float = 60.0, default_run_seconds: float = 60.0,
                 period: float = 0.05):
        super().__init__(period)
        self.store, self.scale, self.default_run = store, time_scale, default_run_seconds
        t = store.type_for
        self.jobs, self.pods, self.nodes = t("batch", "v1", "jobs"), t("", "v1", "pods"), t("", "v1", "nodes")
        self._quiet_at: int | None = None  # the resourceVersion at the start of a pass that wrote nothing
        self._next_end = float("inf")  # when the first running pod is due to end (by the store's clock)
        self._to_admit: list[tuple[str, str, dict]] = []  # (namespace, Job UID, pod): made after this pass's lock
        self._refused: dict[str, tuple[str, float]] = {}  # Job UID -> (its resourceVersion, when to try again)
        self.refusals: list[str] = []  # what the webhooks said, in order (a real Job controller's FailedCreate)

    # --- one pass ----------------------------------------------------------------------------------

    def reconcile(self) -> None:
        """One pass. The store's lock is held for one Job at a time, then for the scheduler and the
        kubelet, never for the whole pass: API requests interleave with a pass over 5,000 Jobs. A
        pass is skipped when nothing was written since a pass that changed nothing and no running
        pod is due to end: a quiet cluster costs no CPU."""
        now = self.store.clock()
        if self._quiet_at == self.store.rv and now < self._next_end:
            return
        rv_before = self.store.rv
        with self.store.lock:
            jobs = list(self.store.objects[self.jobs.key].items())
            by_owner = self._pods_by_owner()
        for (ns, name), job in jobs:
            with self.store.lock:
                current = self.store.objects[self.jobs.key].get((ns, name))
                if current is None:
                    continue
                try:
                    self._job(ns, name, current, now, by_owner.get(current["metadata"]["uid"], []))
                except ApiError:
                    pass  # a conflicting write from a client; the next pass sees the new state
        waiting = self._admit_pods()
        for step in (self._schedule, lambda: self._kubelet(now)):
            with self.store.lock:
                try:
                    step()
                except ApiError:
                    pass
        self._quiet_at = rv_before if self.store.rv == rv_before and not waiting else None

    def _pods_by_owner(self) -> dict[str, list[dict]]:
        """Pods by the UID of the Job that owns them: one scan a pass, not one per Job."""
        out: dict[str, list[dict]] = {}
        for pod in self.store.objects[self.pods.key].values():
            for ref in pod["metadata"].get("ownerReferences") or []:
                out.setdefault(ref.get("uid"), []).append(pod)
        return out

    def _job(self, ns: str, name: str, job: dict, now: float, pods: list[dict]) -> None:
        """The Job controller's pass over one Job: its pods made or deleted, then its status."""
        spec, status = job.get("spec") or {}, job.get("status") or {}
        if _at_rest(spec, status, pods):
            return
        # The pass's index may hold a pod deleted since (by a client): read each one's current state.
        current = self.store.objects[self.pods.key]
        pods = [current[(ns, p["metadata"]["name"])] for p in pods if (ns, p["metadata"]["name"]) in current]
        active = [p for p in pods if _phase(p) in ("Pending", "Running")]
        succeeded = sum(_phase(p) == "Succeeded" for p in pods)
        failed = sum(_phase(p) == "Failed" for p in pods)
        parallelism: int = spec["parallelism"] if spec.get("parallelism") is not None else 1
        completions: int = spec["completions"] if spec.get("completions") is not None else parallelism
        if spec.get("suspend"):
            for p in active:
                self.store.delete(self.pods, ns, p["metadata"]["name"])
            active = []
        else:
            self._start_pods(ns, job, pods, active, min(parallelism, max(completions - succeeded, 0)) - len(active),
                             completions)
        new_status = dict(status)
        new_status.update({"active": len(active), "succeeded": succeeded, "failed": failed})
        if not spec.get("suspend"):
            new_status.setdefault("startTime", _ts(now))
        for key in ("active", "succeeded", "failed"):
            if not new_status[key]:
                new_status.pop(key)
        conditions = self._conditions(ns, spec, status, now, active, succeeded, failed, completions, new_status)
        if conditions:
            new_status["conditions"] = conditions
        else:
            new_status.pop("conditions", None)
        if new_status != status:
            self.store.update(self.jobs, ns, name, {**job, "status": new_status,
                                                     "metadata": {**job["metadata"], "resourceVersion": None}},
                              subresource="status")

    def _start_pods(self, ns: str, job: dict, pods: list[dict], active: list[dict], want: int,
                    completions: int) -> None:
        """`want` more pods (added to `active`); an Indexed Job's each with a completion index no
        pending, running or succeeded pod holds. Pods that webhooks must admit are made after the
        pass (`_admit_pods`), and not again while a refusal of this Job's stands."""
        uid = job["metadata"]["uid"]
        refused = self._refused.get(uid)
        if refused is not None and refused[0] == job["metadata"].get("resourceVersion") and time.monotonic() < refused[1]:
            return
        if any(u == uid for _, u, _ in self._to_admit):
            return
        indexed = (job.get("spec") or {}).get("completionMode") == "Indexed"
        used = {(p["metadata"].get("annotations") or {}).get("batch.kubernetes.io/job-completion-index")
                for p in pods if _phase(p) in ("Pending", "Running", "Succeeded")}
        for _ in range(max(want, 0)):
            index = next((str(i) for i in range(completions) if str(i) not in used), None) if indexed else None
            if indexed and index is None:
                break
            used.add(index)
            pod = self._pod(job, index)
            if self._admitted_by_webhooks(ns, pod):
                self._to_admit.append((ns, uid, pod))
            else:
                active.append(self.store.create(self.pods, ns, pod))

    def _conditions(self, ns: str, spec: dict, status: dict, now: float, active: list[dict], succeeded: int,
                    failed: int, completions: int, new_status: dict) -> list[dict]:
        """The Job's conditions after this pass: Suspended, or Complete, or Failed past its backoff
        limit (whose pods are deleted)."""
        conditions = [c for c in status.get("conditions") or [] if c.get("type") not in ("Suspended",)]
        if spec.get("suspend"):
            # A condition changes only on a transition: rewriting its time every pass would flood
            # watches and turn every held-resourceVersion write into a 409.
            was = next((c for c in status.get("conditions") or [] if c.get("type") == "Suspended"
                        and c.get("status") == "True"), None)
            conditions.append(was or {"type": "Suspended", "status": "True", "reason": "JobSuspended",
                                      "message": "Job suspended", "lastTransitionTime": _ts(now)})
        if succeeded >= completions and completions > 0:
            conditions += [{"type": t, "status": "True", "reason": r, "message": m, "lastTransitionTime": _ts(now)}
                           for t, r, m in (("SuccessCriteriaMet", "CompletionsReached", "Reached expected number "
                                            "of succeeded pods"), ("Complete", "CompletionsReached",
                                                                   "Reached expected number of succeeded pods"))]
            new_status["completionTime"] = _ts(now)
        elif failed > spec.get("backoffLimit", 6):
            conditions += [{"type": t, "status": "True", "reason": "BackoffLimitExceeded",
                            "message": "Job has reached the specified backoff limit", "lastTransitionTime": _ts(now)}
                           for t in ("FailureTarget", "Failed")]
            for p in active:
                self.store.delete(self.pods, ns, p["metadata"]["name"])
        return conditions

    def _admitted_by_webhooks(self, ns: str, pod: dict) -> bool:
        return any(admission.webhooks_for(self.store, kind, self.pods, "CREATE", ns, pod)
                   for kind in (admission.MUTATING, admission.VALIDATING))

    def _admit_pods(self) -> bool:
        """Make the pods that webhooks admit, calling them with no lock held; True if one was
        refused (the pass then is not a quiet one: it is tried again)."""
        queued, self._to_admit = self._to_admit, []
        refused = False
        for ns, uid, pod in queued:
            try:
                admitted = admission.admit(self.store, self.pods, "CREATE", pod, None, ns, [])
                admission.check(self.store, self.pods, "CREATE", admitted, None, ns, [])
            except ApiError as exc:
                refused = True
                job = self._job_by_uid(ns, uid)
                self._refused[uid] = ((job or {}).get("metadata", {}).get("resourceVersion"),
                                      time.monotonic() + RETRY_REFUSED_SECONDS)
                self.refusals.append(f"{pod['metadata']['name']}: {exc.message}")
                continue
            with self.store.lock:
                job = self._job_by_uid(ns, uid)
                if job is None or (job.get("spec") or {}).get("suspend"):
                    continue  # deleted or suspended while its webhooks answered
                self._refused.pop(uid, None)
                try:
                    self.store.create(self.pods, ns, admitted)
                except ApiError:
                    pass  # the next pass sees what is there
        return refused

    def _job_by_uid(self, ns: str, uid: str) -> dict | None:
        return next((j for (n, _), j in self.store.objects[self.jobs.key].items()
                     if n == ns and j["metadata"].get("uid") == uid), None)

    def _pod(self, job: dict, index: str | None) -> dict:
        template = job["spec"].get("template") or {}
        meta = template.get("metadata") or {}
        name = job["metadata"]["name"]
        labels = {**(meta.get("labels") or {}), "job-name": name, "batch.kubernetes.io/job-name": name,
                  "controller-uid": job["metadata"]["uid"], "batch.kubernetes.io/controller-uid": job["metadata"]["uid"]}
        annotations = dict(meta.get("annotations") or {})  # the template's, not the Job's: as Kubernetes does
        if index is not None:
            annotations["batch.kubernetes.io/job-completion-index"] = index
        pod = {"metadata": {"name": f"{name}-{index + '-' if index is not None else ''}{uuid.uuid4().hex[:5]}",
                            "labels": labels, "annotations": annotations,
                            "ownerReferences": [{"apiVersion": "batch/v1", "kind": "Job", "name": name,
                                                 "uid": job["metadata"]["uid"], "controller": True,
                                                 "blockOwnerDeletion": True}]},
               "spec": dict(template.get("spec") or {}), "status": {"phase": "Pending"}}
        return pod

    def _free_gpus(self) -> dict[str, int]:
        free = {}
        for (_, name), node in self.store.objects[self.nodes.key].items():
            if (node.get("spec") or {}).get("unschedulable"):
                continue
            try:
                free[name] = int(((node.get("status") or {}).get("allocatable") or {}).get(GPU, 0))
            except (TypeError, ValueError):
                free[name] = 0
        for pod in self.store.objects[self.pods.key].values():
            node_name = (pod.get("spec") or {}).get("nodeName")
            if node_name in free and (pod.get("status") or {}).get("phase", "Pending") in ("Pending", "Running"):
                free[node_name] -= pod_gpus(pod)
        return free

    def _schedule(self) -> None:
        """Bind pending pods, best fit. The pods of an Indexed Job are a gang: all bind, or none."""
        free = self._free_gpus()
        nodes = self.store.objects[self.nodes.key]
        groups: dict[tuple, list] = {}
        for (ns, n), p in sorted(self.store.objects[self.pods.key].items()):
            if (p.get("spec") or {}).get("nodeName") or (p.get("status") or {}).get("phase", "Pending") != "Pending":
                continue
            gang = "batch.kubernetes.io/job-completion-index" in (p["metadata"].get("annotations") or {})
            key = (ns, p["metadata"]["labels"].get("controller-uid")) if gang else (ns, n)
            groups.setdefault(key, []).append(((ns, n), p))
        for members in groups.values():
            trial = dict(free)
            placed: list[tuple[str, str, dict, str]] = []
            for (ns, name), pod in members:
                need = pod_gpus(pod)
                spec = pod.get("spec") or {}
                fits = [(trial[n] - need, n) for n in sorted(trial) if trial[n] >= need and node_fits(spec, nodes[("", n)])]
                if not fits:  # a gang binds all or nothing
                    placed.clear()
                    break
                _, node = min(fits)
                trial[node] -= need
                placed.append((ns, name, pod, node))
            if not placed:
                continue
            free = trial
            for ns, name, pod, node in placed:
                self.store.update(self.pods, ns, name, {**pod, "spec": {**pod["spec"], "nodeName": node},
                                                        "metadata": {**pod["metadata"], "resourceVersion": None}})

    def _kubelet(self, now: float) -> None:
        """Runs the pods of the cluster's own nodes; a virtual node's pods are its agent's (a
        virtual-kubelet provider's: Spillway's runs them on SageMaker)."""
        next_end = float("inf")
        virtual = virtual_nodes(self.store)
        for (ns, name), pod in list(self.store.objects[self.pods.key].items()):
            if (pod.get("spec") or {}).get("nodeName") in virtual:
                continue
            new, end = pod_status_at(pod, now, default_run=self.default_run, scale=self.scale)
            next_end = min(next_end, end)
            if new is None:
                continue
            self.store.update(self.pods, ns, name, {**pod, "status": new,
                                                    "metadata": {**pod["metadata"], "resourceVersion": None}},
                              subresource="status")
        self._next_end = next_end


def virtual_nodes(store: Store) -> set[str]:
    """Nodes labelled type=virtual-kubelet, as every virtual-kubelet provider labels its own."""
    return {name for (_, name), node in store.objects[store.type_for("", "v1", "nodes").key].items()
            if (node["metadata"].get("labels") or {}).get("type") == "virtual-kubelet"}


def pod_status_at(pod: dict, now: float, *, default_run: float, scale: float) -> tuple[dict | None, float]:
    """What a kubelet writes for a bound pod now, and when it next has something to write.

    A bound Pending pod starts (Running, startTime now); a Running one ends once its run time
    (RUN_SECONDS of its annotations, virtual seconds, divided by scale) has passed: Succeeded
    with exit code 0, or Failed with 1 under FAIL. Returns (the new status or None, the time
    it ends or inf). The sandbox's kubelet and the real control plane's stand-in both use it.
    """
    status = pod.get("status") or {}
    phase = status.get("phase", "Pending")
    if not (pod.get("spec") or {}).get("nodeName") or phase not in ("Pending", "Running"):
        return None, float("inf")
    containers = [c.get("name", "main") for c in (pod.get("spec") or {}).get("containers") or []]
    if phase == "Pending":
        ready = [{"type": t, "status": "True", "lastTransitionTime": _ts(now)}
                 for t in ("PodReadyToStartContainers", "Initialized", "Ready", "ContainersReady")]
        return {**status, "phase": "Running", "startTime": _ts(now), "conditions": _merge_conditions(status, ready),
                "containerStatuses": [{"name": c, "ready": True, "started": True, "restartCount": 0, "image": "",
                                       "imageID": "", "state": {"running": {"startedAt": _ts(now)}}}
                                      for c in containers]}, now  # then look again at once: a 0 s run ends now
    annotations = pod["metadata"].get("annotations") or {}
    try:
        run = float(annotations.get(RUN_SECONDS, default_run))
    except ValueError:
        run = default_run
    end = _parse_ts(status["startTime"]) + run / scale
    if now < end:
        return None, end
    failed = annotations.get(FAIL) in ("true", "1")
    done = [{"type": t, "status": "False", "reason": "PodCompleted", "lastTransitionTime": _ts(now)}
            for t in ("Ready", "ContainersReady")]
    started = status["startTime"]
    return {**status, "phase": "Failed" if failed else "Succeeded", "conditions": _merge_conditions(status, done),
            "containerStatuses": [{"name": c, "ready": False, "started": False, "restartCount": 0, "image": "",
                                   "imageID": "", "state": {"terminated": {
                                       "exitCode": 1 if failed else 0, "reason": "Error" if failed else "Completed",
                                       "startedAt": started, "finishedAt": _ts(now)}}} for c in containers]}, float("inf")


def container_log(pod: dict) -> str | None:
    """What the sandbox's kubelet serves as the pod's log: its annotation LOG, with $(VAR)
    expanded from its first container's env; None if it has none (see the module's doc)."""
    text = (pod["metadata"].get("annotations") or {}).get(LOG)
    if text is None:
        return None
    containers = (pod.get("spec") or {}).get("containers") or [{}]
    env = {e.get("name"): e.get("value") for e in containers[0].get("env") or [] if e.get("value") is not None}
    return re.sub(r"\$\(([A-Za-z_][A-Za-z0-9_]*)\)", lambda m: env.get(m.group(1), m.group(0)), text)


def _merge_conditions(status: dict, new: list[dict]) -> list[dict]:
    """Conditions by type, as a kubelet keeps them (the scheduler's PodScheduled stays)."""
    kept = [c for c in status.get("conditions") or [] if c.get("type") not in {n["type"] for n in new}]
    return kept + new


def _phase(pod: dict) -> str:
    return (pod.get("status") or {}).get("phase", "Pending")


def _at_rest(spec: dict, status: dict, pods: list[dict]) -> bool:
    """Nothing for the Job controller to do: another controller manages the Job, it is finished,
    or it is suspended and its status says so already (most of a queue)."""
    if spec.get("managedBy") not in (None, JOB_CONTROLLER):
        return True
    if any(c.get("type") in ("Complete", "Failed") and c.get("status") == "True"
           for c in status.get("conditions") or []):
        return True
    return bool(spec.get("suspend") and not pods and not status.get("active") and any(
        c.get("type") == "Suspended" and c.get("status") == "True" for c in status.get("conditions") or []))


def add_nodes(store: Store, spec: str) -> list[str]:
    """'4x8:NVIDIA-A100-SXM4-80GB,2x4:NVIDIA-A10G' -> Node objects with GPUs and the GFD product label."""
    names: list[str] = []
    nodes = store.type_for("", "v1", "nodes")
    for n, g, product in node_groups(spec):
        for _ in range(n):
            name = f"gpu-node-{len(names):03d}"
            labels = {"kubernetes.io/hostname": name, "kubernetes.io/os": "linux"}
            if product:
                labels["nvidia.com/gpu.product"] = product
                labels["nvidia.com/gpu.count"] = str(g)
            store.create(nodes, "", {"metadata": {"name": name, "labels": labels},
                                     "status": {"capacity": {GPU: str(g), "cpu": "96", "memory": "1Ti"},
                                                "allocatable": {GPU: str(g), "cpu": "96", "memory": "1Ti"},
                                                "conditions": [{"type": "Ready", "status": "True"}]}})
            names.append(name)
    return names
