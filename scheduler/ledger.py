"""The burst ledger: every burst and every dollar, durable in the cluster.

One ConfigMap per burst, `spillway-burst-<Job UID>` in the controller's namespace (label
spillway.io/ledger=burst), holding what was launched (the CloudLaunch, so a restarted controller
sends the very same request again), under which names, what it commits against the budget,
what it has cost, and its state: launching -> running -> done.

- Creating the ConfigMap is the burst's intent, written before SageMaker hears of it: it either
  exists (then the burst may have been launched, under a name derived from the Job's UID) or
  not (then nothing was). A second leader that decides the same Job finds it there (409
  AlreadyExists) and adopts it.
- Every later write is a compare-and-swap on that ConfigMap's resourceVersion; a 409 means
  another writer got there first, so the change is applied again to what is there now.
- Spend is derived, not kept twice: what the bursts that ended today (this month, UTC) cost. A
  burst's record stays until its month is over and its Job is gone, so deleting or TTL-ing a
  Job never gives its money back to the budget. Ending a burst is one write (its state, cost and
  end time together), so no crash can book it twice or not at all.
"""

from __future__ import annotations

import json
import logging
import threading
from dataclasses import dataclass, field, fields, replace
from typing import Any, Callable

from policies.model import CloudJob, CloudLaunch, SageMakerKind, Spend, format_time

from .kube import Kube, KubeError

log = logging.getLogger(__name__)
DATA_KEY = "burst.json"
LABEL = "spillway.io/ledger"
LAUNCHING, RUNNING, DONE = "launching", "running", "done"


def launch_to_dict(launch: CloudLaunch) -> dict[str, Any]:
    """A launch as the ledger stores it: a JSON object of the CloudLaunch's fields, so a restarted
    controller sends the very same request again."""
    return {f.name: getattr(launch, f.name) for f in fields(launch)}


def launch_from_dict(data: dict[str, Any]) -> CloudLaunch:
    """The stored form read back. The spot-only fields and the checkpoint may be absent (None);
    keys this version does not know are left out, so an older controller reads a newer record."""
    optional = {"checkpoint_s3_uri", "sagemaker_max_wait_seconds", "fallback_time"}
    missing = [f.name for f in fields(CloudLaunch) if f.name not in data and f.name not in optional | {"kind"}]
    if missing:
        raise ValueError(f"the launch record has no {', '.join(missing)}")
    values: dict[str, Any] = {f.name: data.get(f.name) for f in fields(CloudLaunch)}
    # A record from before batch transform has no kind: it launched a training job.
    values["kind"] = SageMakerKind(data.get("kind") or SageMakerKind.TRAINING.value)
    return CloudLaunch(**values)


@dataclass
class Burst:
    uid: str
    job: str  # namespace/name
    namespace: str
    emit: str  # ack | legacy | api
    launch: CloudLaunch  # what was launched (each relaunch sends it again)
    names: list[str]  # training jobs in order: the launch, then each relaunch (spot and on-demand alternate)
    committed_usd: float
    launched_at: float
    placement: str
    reason: str
    runtime_seconds: float
    message: str = ""  # the decision's, so a launch finished after a crash still tells why
    decided_at: str = ""
    deadline: float | None = None
    state: str = LAUNCHING
    arns: dict[str, str] = field(default_factory=dict)
    costs: dict[str, float] = field(default_factory=dict)  # per training job, billed so far
    outcome: str = ""  # the last training job's TrainingJobStatus/SecondaryStatus
    fallback: str = ""  # when and why spot gave way (or, spot.fallback planned, came back)
    ended_at: float | None = None
    started: dict[str, float] = field(default_factory=dict)  # per training job after the first: when it was named
    trained: dict[str, float] = field(default_factory=dict)  # per ended training job: its checkpointed progress
    plan_tick: int = -1  # spot.fallback planned: the last plan tick acted on
    belief: list | None = None  # ... and what it knew of spot then (policies.spot.SpotBelief)
    via: str = "suspendedJob"  # spec.sageMaker.burstAs when it launched (entries older than it: suspendedJob)
    pods: list[str] = field(default_factory=list)  # virtualNode: UIDs of the pods its training jobs ran for
    attempt_usd: float = 0.0  # what one training job commits (a backoffLimit retry commits it again)
    kueue: str = ""  # the Kueue Workload whose admission check let it burst (Kueue then owns suspend)

    @property
    def cost_usd(self) -> float:
        return sum(self.costs.values())

    @property
    def current_name(self) -> str:
        return self.names[-1]

    @property
    def cloud_launch(self) -> CloudLaunch:
        return self.launch

    def to_json(self) -> str:
        data = {f.name: getattr(self, f.name) for f in fields(self)}
        data["launch"] = launch_to_dict(self.launch)
        return json.dumps(data, sort_keys=True, separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str) -> "Burst":
        data = json.loads(text)
        if not isinstance(data, dict) or not isinstance(data.get("launch"), dict):
            raise ValueError("a burst record is a JSON object with a launch object")
        return cls(**{**data, "launch": launch_from_dict(data["launch"])})

    def copy(self) -> "Burst":
        return replace(self, names=list(self.names), arns=dict(self.arns),
                       costs=dict(self.costs), started=dict(self.started), trained=dict(self.trained),
                       pods=list(self.pods),
                       belief=None if self.belief is None else list(self.belief))


def config_map_name(uid: str) -> str:
    return f"spillway-burst-{uid}"


class Ledger:
    """The bursts, cached in memory and reloaded from the cluster at the start of every cycle
    (one list call), so the snapshot is built from what is durable, whoever wrote it."""

    def __init__(self, kube: Kube, namespace: str):
        self.kube, self.namespace = kube, namespace
        self.bursts: dict[str, Burst] = {}
        self._versions: dict[str, str] = {}  # uid -> resourceVersion of its ConfigMap
        self._lock = threading.Lock()  # a cycle acts on several Jobs at once
        self.writes = 0
        self.loaded = False

    # --- reading ---------------------------------------------------------------------------------

    def load(self) -> dict[str, Burst]:
        items = self.kube.list_config_maps(self.namespace, f"{LABEL}=burst")
        bursts, versions = {}, {}
        for cm in items:
            rv = cm["metadata"]["resourceVersion"]
            uid = (cm["metadata"].get("labels") or {}).get("spillway.io/job-uid", "")
            known = self.bursts.get(uid)
            if known is not None and self._versions.get(uid) == rv:
                bursts[uid], versions[uid] = known, rv  # unchanged since we read it: no parse
                continue
            try:
                bursts[uid] = Burst.from_json((cm.get("data") or {}).get(DATA_KEY, ""))
                versions[uid] = rv
            except (ValueError, TypeError) as exc:
                log.error("ledger entry %s is unreadable (%s); it counts as nothing", cm["metadata"]["name"], exc)
        with self._lock:
            self.bursts, self._versions = bursts, versions
        self.loaded = True
        return bursts

    def in_flight(self) -> tuple[CloudJob, ...]:
        """What bursts still hold: quota (instances) and dollars not yet billed (committed)."""
        return tuple(CloudJob(b.job, b.namespace, b.launch.instance_type, b.launch.instance_count,
                              b.committed_usd) for b in list(self.bursts.values()) if b.state != DONE)

    def spend(self, now: float) -> tuple[Spend, ...]:
        """Dollars billed per namespace today and this month (UTC): the bursts that ended then."""
        day, month = format_time(now)[:10], format_time(now)[:7]
        today: dict[str, float] = {}
        this_month: dict[str, float] = {}
        for b in list(self.bursts.values()):
            if b.state != DONE or b.ended_at is None:
                continue
            ended = format_time(b.ended_at)
            if ended[:7] == month:
                this_month[b.namespace] = this_month.get(b.namespace, 0.0) + b.cost_usd
                if ended[:10] == day:
                    today[b.namespace] = today.get(b.namespace, 0.0) + b.cost_usd
        return tuple(Spend(ns, today.get(ns, 0.0), usd) for ns, usd in sorted(this_month.items()))

    # --- writing ---------------------------------------------------------------------------------

    def add(self, burst: Burst) -> Burst:
        """Record a burst before it is launched; the one already there, if another writer won."""
        body = self._body(burst)
        try:
            cm = self.kube.create_config_map(self.namespace, config_map_name(burst.uid), body["data"],
                                             labels=body["labels"])
        except KubeError as exc:
            if exc.not_found:
                raise KubeError(404, "NotFound", f"namespace {self.namespace} does not exist, and the burst ledger "
                                "lives there: create it (deploy/ does), or pass --namespace with the controller's "
                                "own") from None
            if not exc.conflict:
                raise
            return self._reload(burst.uid) or burst
        self.writes += 1
        self._remember(burst, cm)
        return burst

    def change(self, uid: str, change: Callable[[Burst], bool | None], *, attempts: int = 10) -> Burst | None:
        """Apply change() to a copy of the burst and write it with compare-and-swap. change()
        returns False when there is nothing to write. On a conflict, reload it and apply again."""
        for _ in range(attempts):
            current = self.bursts.get(uid)
            if current is None:
                return None
            draft = current.copy()
            if change(draft) is False:
                return current
            body = self._body(draft)
            try:
                cm = self.kube.replace_config_map(self.namespace, config_map_name(uid), body["data"],
                                                  self._versions.get(uid, ""), labels=body["labels"])
            except KubeError as exc:
                if exc.not_found:
                    with self._lock:
                        self.bursts.pop(uid, None)
                    return None
                if not exc.conflict:
                    raise
                log.info("ledger entry of %s changed under us; applying the change again", current.job)
                self._reload(uid)
                continue
            self.writes += 1
            self._remember(draft, cm)
            return draft
        raise KubeError(409, "Conflict", f"the ledger entry of {uid} kept changing; gave up")

    def remove(self, uid: str) -> None:
        """Forget a burst (its launch failed, or it ended in an earlier month and its Job is gone)."""
        self.kube.delete_config_map(self.namespace, config_map_name(uid))
        self.writes += 1
        with self._lock:
            self.bursts.pop(uid, None)
            self._versions.pop(uid, None)

    def _body(self, burst: Burst) -> dict:
        return {"data": {DATA_KEY: burst.to_json()},
                "labels": {LABEL: "burst", "spillway.io/job-uid": burst.uid, "spillway.io/state": burst.state}}

    def _remember(self, burst: Burst, cm: dict) -> None:
        with self._lock:
            self.bursts[burst.uid] = burst
            self._versions[burst.uid] = cm["metadata"]["resourceVersion"]

    def _reload(self, uid: str) -> Burst | None:
        cm = self.kube.get_config_map(self.namespace, config_map_name(uid))
        if cm is None:
            with self._lock:
                self.bursts.pop(uid, None)
            return None
        burst = Burst.from_json((cm.get("data") or {}).get(DATA_KEY, ""))
        self._remember(burst, cm)
        return burst
