"""The burst ledger: every burst and every dollar, durable in the cluster.

One ConfigMap (spillway-ledger, in the controller's namespace) holds a JSON document:
- bursts, by Job UID: what was launched (the CloudLaunch, so a restarted controller can send the
  very same request again), under which names, what it commits against the budget, what it
  has cost, and its state: launching -> running -> done.
- spend, by namespace: dollars billed today and this month (UTC), added when a burst ends.

Every write is a compare-and-swap on the ConfigMap's resourceVersion: a 409 means another
writer (an old leader) got there first, so the change is applied again to what is there now.
A burst is written here *before* SageMaker is asked to run it, so a crash at any point leaves
either no burst (nothing was launched) or a burst whose create is repeated under the same name.
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass, field
from typing import Any, Callable

from policies.constants import LEDGER_CONFIGMAP
from policies.decision import CloudLaunch
from policies.snapshot import CloudJob, Spend
from policies.units import format_time

from .kube import Kube, KubeError

log = logging.getLogger(__name__)
DATA_KEY = "ledger.json"
LAUNCHING, RUNNING, DONE = "launching", "running", "done"


@dataclass
class Burst:
    uid: str
    job: str  # namespace/name
    namespace: str
    emit: str  # ack | legacy | api
    launch: dict  # the CloudLaunch, as a dict
    names: list[str]  # training jobs in order: the launch, then the on-demand fallback
    committed_usd: float
    launched_at: float
    placement: str
    reason: str
    runtime_seconds: float
    deadline: float | None = None
    state: str = LAUNCHING
    arns: dict[str, str] = field(default_factory=dict)
    costs: dict[str, float] = field(default_factory=dict)  # per training job, billed so far
    outcome: str = ""  # the last training job's TrainingJobStatus/SecondaryStatus
    fallback: str = ""  # when and why spot gave way
    ended_at: float | None = None

    @property
    def cost_usd(self) -> float:
        return sum(self.costs.values())

    @property
    def current_name(self) -> str:
        return self.names[-1]

    @property
    def cloud_launch(self) -> CloudLaunch:
        return CloudLaunch(**self.launch)

    @property
    def on_demand_now(self) -> bool:
        return len(self.names) > 1 or not self.launch["spot"]


@dataclass
class LedgerState:
    bursts: dict[str, Burst] = field(default_factory=dict)
    spend: dict[str, dict[str, Any]] = field(default_factory=dict)  # ns -> {day, today_usd, month, month_usd}

    def to_json(self) -> str:
        return json.dumps({"bursts": {k: asdict(b) for k, b in sorted(self.bursts.items())},
                           "spend": dict(sorted(self.spend.items()))}, sort_keys=True, separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str) -> "LedgerState":
        data = json.loads(text or "{}")
        return cls({k: Burst(**b) for k, b in (data.get("bursts") or {}).items()}, data.get("spend") or {})

    def charge(self, namespace: str, usd: float, now: float) -> None:
        """Money billed now: it counts against today's and this month's budget."""
        day, month = format_time(now)[:10], format_time(now)[:7]
        row = self.spend.get(namespace) or {}
        today = row.get("today_usd", 0.0) if row.get("day") == day else 0.0
        this_month = row.get("month_usd", 0.0) if row.get("month") == month else 0.0
        self.spend[namespace] = {"day": day, "today_usd": round(today + usd, 6), "month": month,
                                 "month_usd": round(this_month + usd, 6)}

    def snapshot_spend(self, now: float) -> tuple[Spend, ...]:
        day, month = format_time(now)[:10], format_time(now)[:7]
        return tuple(Spend(ns, row["today_usd"] if row.get("day") == day else 0.0,
                           row["month_usd"] if row.get("month") == month else 0.0)
                     for ns, row in sorted(self.spend.items()))

    def in_flight(self) -> tuple[CloudJob, ...]:
        """What bursts still hold: quota (instances) and dollars not yet billed (committed)."""
        return tuple(CloudJob(b.job, b.namespace, b.launch["instance_type"], b.launch["instance_count"],
                              b.committed_usd) for b in self.bursts.values() if b.state != DONE)


class Ledger:
    def __init__(self, kube: Kube, namespace: str, name: str = LEDGER_CONFIGMAP):
        self.kube, self.namespace, self.name = kube, namespace, name
        self.state = LedgerState()
        self.resource_version: str | None = None
        self.writes = 0

    def load(self) -> LedgerState:
        """Read it from the cluster (at start, and after a conflict)."""
        cm = self.kube.get_config_map(self.namespace, self.name)
        if cm is None:
            try:
                cm = self.kube.create_config_map(self.namespace, self.name, {DATA_KEY: LedgerState().to_json()})
            except KubeError as exc:
                if exc.not_found:
                    raise KubeError(404, "NotFound", f"namespace {self.namespace} does not exist: create it (deploy/ "
                                    "does), or pass --namespace with the one the controller runs in") from None
                if not exc.conflict:
                    raise
                cm = self.kube.get_config_map(self.namespace, self.name)
        self.state = LedgerState.from_json((cm.get("data") or {}).get(DATA_KEY, "{}"))
        self.resource_version = cm["metadata"]["resourceVersion"]
        return self.state

    def update(self, change: Callable[[LedgerState], bool | None], *, attempts: int = 10) -> LedgerState:
        """Apply change() and write it with compare-and-swap. change() returns False when there is
        nothing to write (it is then not written). On a conflict, reload and apply it again."""
        if self.resource_version is None:
            self.load()
        for _ in range(attempts):
            draft = LedgerState.from_json(self.state.to_json())
            if change(draft) is False:
                return self.state
            try:
                cm = self.kube.replace_config_map(self.namespace, self.name, {DATA_KEY: draft.to_json()},
                                                  self.resource_version or "")
            except KubeError as exc:
                if not exc.conflict:
                    raise
                log.info("ledger changed under us; applying the change again")
                self.load()
                continue
            self.writes += 1
            self.state, self.resource_version = draft, cm["metadata"]["resourceVersion"]
            return self.state
        raise KubeError(409, "Conflict", f"the ledger kept changing; gave up after {attempts} attempts")
