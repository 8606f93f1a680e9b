"""The controller: one reconcile cycle, the simulator's cycle, against a real cluster.

Each cycle:
1. Reads the cluster (Jobs, Pods, Nodes), the burst ledger, and DCGM utilization.
2. Follows every burst in flight: mirrors its SageMaker status and cost onto the Job, gives a
   spot burst way to on-demand when the core's fallback rule says so, books what a finished
   burst cost, and stops the SageMaker work of a deleted Job.
3. Builds the policies.Snapshot and asks the QueuePlanner for decisions on the managed,
   suspended Jobs: the same plan() the simulator calls.
4. Acts on them as policies.actions reads them: Local -> un-suspend; SageMaker -> launch; Wait
   -> look again at requeue_after_seconds; and cycle again by Plan.review_at.

It is level-based and idempotent: a second cycle over the same world writes nothing. A burst is
written to the ledger before SageMaker is asked to run it, under a name derived from the Job's
UID, so a crash at any point never launches twice and never loses a burst.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from dataclasses import asdict, dataclass, field
from typing import Callable

from policies import BurstPolicy, InputError, Placement, is_managed, job_from_manifest
from policies import constants as C
from policies.actions import cycle_actions
from policies.constants import EmitTarget, EventReason
from policies.decide import policy_catalog
from policies.decision import Decision
from policies.emit import create_training_job_request, training_job_name, training_job_resource
from policies.jobs import JobRequest
from policies.queue_planner import QueuePlanner
from policies.snapshot import Snapshot
from policies.spot import spot_fallback_due
from policies.units import format_time, parse_time

from .kube import Kube, KubeError
from .ledger import DONE, LAUNCHING, RUNNING, Burst, Ledger, LedgerState
from .metrics import ControllerMetrics
from .sagemaker import SageMaker, SageMakerError
from .world import World, annotations, completed_of, format_local_nodes, key_of, nodes_of, running_of

log = logging.getLogger(__name__)
TERMINAL = ("Completed", "Failed", "Stopped")
CR_PLURAL = "trainingjobs"
CR_API_VERSION = {EmitTarget.ACK: "sagemaker.services.k8s.aws/v1alpha1",
                  EmitTarget.LEGACY: "sagemaker.aws.amazon.com/v1"}


@dataclass
class Settings:
    namespace: str = "spillway-system"  # where the ledger lives
    min_requeue_seconds: float = 5.0  # never look again sooner than this
    burst_poll_seconds: float = 30.0  # how often a burst in flight is described
    launch_retry_seconds: float = 60.0  # first back-off after a failed launch (doubles, at most 1 h)
    hot_window_seconds: int | None = None  # None: the policy's local.hotWindowSeconds


@dataclass
class CycleReport:
    decisions: list[Decision] = field(default_factory=list)
    writes: int = 0
    next_cycle_at: float | None = None
    prometheus_ok: bool | None = None


class Controller:
    def __init__(self, kube: Kube, policy: BurstPolicy, *, sagemaker: SageMaker | None = None,
                 utilization=None, settings: Settings | None = None, clock: Callable[[], float] = time.time,
                 metrics: ControllerMetrics | None = None):
        self.kube, self.policy, self.sagemaker, self.utilization = kube, policy, sagemaker, utilization
        self.metrics = metrics or ControllerMetrics()
        self.settings = settings or Settings()
        self.clock = clock
        self.emit = policy.spec.sage_maker.emit
        self.catalog = policy_catalog(policy)
        self.planner = QueuePlanner(policy, self.catalog)
        self.ledger = Ledger(kube, self.settings.namespace)
        self.retry_at: dict[str, tuple[float, float]] = {}  # uid -> (not before, back-off) after a failed launch
        self.changed = threading.Event()
        self.writes = 0

    # --- the loop --------------------------------------------------------------------------------

    def run(self, stop: threading.Event, *, watch: bool = True) -> None:
        """Cycle until stop is set: on every change the watches see, and when a cycle asks."""
        self.ledger.load()
        if watch:
            self.kube.watch_changes(self.changed.set, stop)
        while not stop.is_set():
            self.changed.clear()
            try:
                report = self.cycle()
                wait = (report.next_cycle_at - self.clock()) if report.next_cycle_at else 300.0
            except (KubeError, SageMakerError) as exc:
                kind = f"kube-{exc.status}" if isinstance(exc, KubeError) else f"sagemaker-{exc.code}"
                self.metrics.errors.labels(kind).inc()
                log.warning("cycle failed: %s; trying again", exc)
                wait = self.settings.min_requeue_seconds
            self.changed.wait(timeout=min(max(wait, 0.05), 300.0))

    def cycle(self) -> CycleReport:
        with self.metrics.cycle_seconds.time():
            report = self._cycle()
        self.metrics.beat()
        self.metrics.ready.set()
        return report

    def _cycle(self) -> CycleReport:
        now = self.clock()
        jobs, _ = self.kube.list_jobs()
        world = World(now, jobs, self.kube.list_pods(), self.kube.list_nodes())
        report = CycleReport()
        writes_before = self.writes + self.ledger.writes
        if self.ledger.resource_version is None:
            self.ledger.load()
        self._follow_bursts(world, now)
        pending = self._pending(world, now)
        snapshot = self._snapshot(world, now, report)
        for key in [k for k in self.planner.jobs if k not in pending]:
            self.planner.remove(key)
        for key, job in pending.items():
            if self.planner.jobs.get(key) != job:
                self.planner.add(job)
        plan = self.planner.plan(snapshot, now)
        self._observe(len(pending), now)
        actions = cycle_actions(plan, now)
        by_key = {key_of(j): j for j in world.jobs}
        for d in actions.start_local:
            self._start_local(by_key[d.job], pending[d.job], d, now)
        for d in actions.launch:
            self._launch(by_key[d.job], pending[d.job], d, now)
        for d in actions.keep_queued:
            self.planner.add(pending[d.job])
        for d, _ in actions.requeue:
            self._record(by_key[d.job], d, now)
        report.decisions = list(plan.decisions)
        times = [t for t in (actions.next_cycle_at,) if t is not None]
        times += [t for t, _ in self.retry_at.values()]
        if any(b.state != DONE for b in self.ledger.state.bursts.values()):
            times.append(now + self.settings.burst_poll_seconds)
        report.next_cycle_at = max(min(times), now + self.settings.min_requeue_seconds) if times else None
        report.writes = self.writes + self.ledger.writes - writes_before
        return report

    # --- what to decide --------------------------------------------------------------------------

    def _pending(self, world: World, now: float) -> dict[str, JobRequest]:
        """Managed, suspended Jobs with no burst: the queue. A Job with bad annotations is told so
        once (an Event and an annotation) and left untouched."""
        out = {}
        bursts = self.ledger.state.bursts
        for manifest in world.jobs:
            meta = manifest["metadata"]
            if not (manifest.get("spec") or {}).get("suspend") or meta.get("deletionTimestamp"):
                continue
            if meta.get("uid") in bursts:
                continue
            ann = annotations(manifest)
            if not any(k.startswith(C.ANNOTATION_PREFIX) for k in ann) and \
                    meta.get("namespace") not in self.policy.spec.managed_jobs.namespaces:
                continue
            try:
                job = job_from_manifest(manifest, source=key_of(manifest))
            except InputError as exc:
                self._bad_annotations(manifest, exc, now)
                continue
            if not is_managed(job, self.policy):
                continue
            not_before = self.retry_at.get(job.uid, (0.0, 0.0))[0]
            if now < not_before:
                continue
            if ann.get(C.ANNOTATION_ERROR):
                self._patch(manifest, {C.ANNOTATION_ERROR: None})
            out[job.key] = job
        return out

    def _observe(self, queued: int, now: float) -> None:
        m, state = self.metrics, self.ledger.state
        m.queue.set(queued)
        m.in_flight.set(sum(b.state != DONE for b in state.bursts.values()))
        for spend in state.snapshot_spend(now):
            m.spend.labels(spend.namespace, "today").set(spend.today_usd)
            m.spend.labels(spend.namespace, "month").set(spend.month_usd)
        committed: dict[str, float] = {}
        for job in state.in_flight():
            committed[job.namespace] = committed.get(job.namespace, 0.0) + job.committed_usd
        for namespace in {b.namespace for b in state.bursts.values()} | set(committed):
            m.committed.labels(namespace).set(committed.get(namespace, 0.0))

    def _bad_annotations(self, manifest: dict, exc: InputError, now: float) -> None:
        text = "; ".join(f"{i.path}: {i.problem} (fix: {i.fix})" for i in exc.issues)
        if annotations(manifest).get(C.ANNOTATION_ERROR) == text:
            return  # told already
        if self._patch(manifest, {C.ANNOTATION_ERROR: text}):
            self._event(manifest, EventReason.INVALID_ANNOTATIONS.value, text, now, warning=True)

    def _snapshot(self, world: World, now: float, report: CycleReport) -> Snapshot:
        nodes = nodes_of(world.nodes)
        utilization = None
        if self.utilization is not None:
            window = self.settings.hot_window_seconds or self.policy.spec.local.hot_window_seconds
            utilization = self.utilization.cluster_average(window, {n.name for n in nodes})
            report.prometheus_ok = self.utilization.last_error is None
            self.metrics.prometheus_up.set(1 if report.prometheus_ok else 0)
        state = self.ledger.state
        return Snapshot(now, nodes, running_of(world), state.in_flight(), state.snapshot_spend(now),
                        completed_of(world), gpu_utilization_percent=utilization)

    # --- acting on decisions -----------------------------------------------------------------------

    def _record(self, manifest: dict, d: Decision, now: float) -> bool:
        """Write the decision onto the Job if its placement or reason changed (a Wait re-decided with
        the same reason writes nothing: the numbers in its message move every cycle)."""
        ann = annotations(manifest)
        if ann.get(C.DECISION_PLACEMENT) == d.placement.value and ann.get(C.DECISION_REASON) == d.reason.value:
            return True
        if not self._patch(manifest, self._decision_annotations(d, now)):
            return False
        self._decided(manifest, d, now)
        return True

    def _decided(self, manifest: dict, d: Decision, now: float) -> None:
        self.metrics.decisions.labels(d.placement.value, d.reason.value).inc()
        if d.placement != Placement.WAIT:
            self.metrics.wait.observe(max(d.evidence.waited_seconds, 0.0))
        self._event(manifest, d.reason.value, d.message, now)

    def _decision_annotations(self, d: Decision, now: float) -> dict:
        return {C.DECISION_PLACEMENT: d.placement.value, C.DECISION_REASON: d.reason.value,
                C.DECISION_MESSAGE: d.message[:4000], C.DECIDED_AT: format_time(now)}

    def _start_local(self, manifest: dict, job: JobRequest, d: Decision, now: float) -> None:
        ann = {**self._decision_annotations(d, now), C.LOCAL_NODES: format_local_nodes(d.local_nodes, d.local_pods)}
        if not self._patch(manifest, ann, spec={"suspend": False}):
            self.planner.add(job)  # the Job changed under us: decide it again next cycle
            return
        self._decided(manifest, d, now)
        self._event(manifest, EventReason.UNSUSPENDED.value,
                    f"running on the cluster: {format_local_nodes(d.local_nodes, d.local_pods)}", now)

    def _launch(self, manifest: dict, job: JobRequest, d: Decision, now: float) -> None:
        launch = d.launch
        committed = next(o.committed_usd for o in d.evidence.options if o.placement == d.placement)
        burst = Burst(uid=job.uid, job=job.key, namespace=job.namespace, emit=self.emit.value, launch=asdict(launch),
                      names=[training_job_name(job)], committed_usd=round(committed, 6), launched_at=now,
                      placement=d.placement.value, reason=d.reason.value,
                      runtime_seconds=d.evidence.runtime_estimate_seconds, deadline=job.deadline)

        def add(state: LedgerState) -> bool:
            if job.uid in state.bursts:
                return False  # launched already (by an earlier leader): nothing to add
            state.bursts[job.uid] = burst
            return True

        self.ledger.update(add)  # durable before SageMaker hears of it
        self._create(self.ledger.state.bursts[job.uid], manifest, job, now, decision=d)

    def _create(self, burst: Burst, manifest: dict, job: JobRequest, now: float,
                decision: Decision | None = None) -> None:
        """Create the burst's current training job (again, after a crash: the same name). The Job
        says so first, with the finalizer on the api path, so that its deletion is seen."""
        name, on_demand = burst.current_name, len(burst.names) > 1
        ann = {C.DECISION_PLACEMENT: burst.placement, C.DECISION_REASON: burst.reason,
               C.SAGEMAKER_JOB_NAME: name, C.COMMITTED_USD: f"{burst.committed_usd:.2f}"}
        if decision is not None:
            ann.update(self._decision_annotations(decision, now))
        if not self._patch(manifest, ann, finalizers=[C.FINALIZER] if burst.emit == EmitTarget.API.value else None):
            return  # the Job changed (or went): the burst stays "launching" for the next cycle
        if decision is not None:
            self._decided(manifest, decision, now)
        try:
            if burst.emit == EmitTarget.API.value:
                if self.sagemaker is None:
                    raise SageMakerError("NoClient", "spec.sageMaker.emit is api but no SageMaker client is set up")
                arn = self.sagemaker.create_training_job(
                    create_training_job_request(job, burst.cloud_launch, name, on_demand=on_demand))
            else:
                target = EmitTarget(burst.emit)
                resource = training_job_resource(job, burst.cloud_launch, name, target, on_demand=on_demand)
                try:
                    self.kube.create_custom(resource, CR_PLURAL)
                except KubeError as exc:
                    if not exc.conflict:
                        raise
                arn = ""
        except (SageMakerError, KubeError) as exc:
            if _transient(exc):
                raise  # the burst stays "launching" and the next cycle creates it again
            self._launch_failed(burst, manifest, job, str(exc), now)
            return

        def running(state: LedgerState) -> bool:
            b = state.bursts.get(burst.uid)
            if b is None or (b.state == RUNNING and b.arns.get(name) == arn):
                return False
            first = b.state == LAUNCHING
            b.state = RUNNING
            if arn:
                b.arns[name] = arn
            if first:
                self.metrics.bursts.labels("spot" if burst.launch["spot"] and not on_demand else "on-demand",
                                           burst.emit).inc()
            return True

        self.ledger.update(running)
        self._event(manifest, EventReason.LAUNCHED.value,
                    f"SageMaker training job {name} ({'on-demand' if on_demand or not burst.launch['spot'] else 'managed spot'}"
                    f", {burst.launch['instance_count']} x {burst.launch['instance_type']}, emitted as {burst.emit})", now)
        if arn:
            self._patch(manifest, {C.SAGEMAKER_JOB_ARN: arn})

    def _launch_failed(self, burst: Burst, manifest: dict, job: JobRequest, why: str, now: float) -> None:
        """SageMaker (or the API server) refused the job: release its commitment, say why, and
        decide the Job again after a back-off."""
        def drop(state: LedgerState) -> bool:
            return state.bursts.pop(burst.uid, None) is not None

        self.ledger.update(drop)
        self.metrics.launch_failures.inc()
        _, backoff = self.retry_at.get(burst.uid, (0.0, self.settings.launch_retry_seconds / 2))
        backoff = min(backoff * 2, 3600.0)
        self.retry_at[burst.uid] = (now + backoff, backoff)
        self._patch(manifest, {C.SAGEMAKER_JOB_NAME: None, C.COMMITTED_USD: None,
                               C.DECISION_REASON: EventReason.LAUNCH_FAILED.value},
                    finalizers=[] if burst.emit == EmitTarget.API.value else None)
        self._event(manifest, EventReason.LAUNCH_FAILED.value,
                    f"{why}; deciding again in {backoff:.0f} s", now, warning=True)

    # --- bursts in flight ----------------------------------------------------------------------------

    def _follow_bursts(self, world: World, now: float) -> None:
        for uid, burst in list(self.ledger.state.bursts.items()):
            manifest = world.jobs_by_uid.get(uid)
            if burst.state == DONE:
                if manifest is None:
                    self.ledger.update(lambda s, u=uid: s.bursts.pop(u, None) is not None)  # Job gone: forget it
                elif C.FINALIZER in (manifest["metadata"].get("finalizers") or []) and \
                        manifest["metadata"].get("deletionTimestamp"):
                    self._patch(manifest, {}, finalizers=[])
                continue
            if manifest is None or manifest["metadata"].get("deletionTimestamp"):
                self._stop_deleted(burst, manifest, now)
                continue
            try:
                job = job_from_manifest(manifest, source=key_of(manifest))
            except InputError:
                job = None
            if burst.state == LAUNCHING:
                if job is not None:
                    self._create(burst, manifest, job, now)
                continue
            self._mirror(burst, manifest, job, now)

    def _describe(self, burst: Burst, name: str) -> dict | None:
        """What SageMaker says of a training job (DescribeTrainingJob), or, without a SageMaker
        client, what the custom resource's status says (no billing figures there)."""
        if self.sagemaker is not None:
            return self.sagemaker.describe(name)
        cr = self.kube.get_custom(CR_API_VERSION[EmitTarget(burst.emit)], CR_PLURAL, burst.namespace, name)
        status = (cr or {}).get("status") or {}
        if not status.get("trainingJobStatus"):
            return None
        return {"TrainingJobStatus": status["trainingJobStatus"], "SecondaryStatus": status.get("secondaryStatus"),
                "FailureReason": status.get("failureReason"),
                "TrainingJobArn": (status.get("ackResourceMetadata") or {}).get("arn")}

    def _cost(self, burst: Burst, name: str, described: dict, now: float) -> float:
        """BillableTimeInSeconds x InstanceCount x the on-demand price (spot's discount is in the
        billable seconds, as SageMaker reports them); while it runs, the time trained so far at
        the rate of its capacity; with no figures at all, what the burst committed."""
        launch = burst.launch
        itype = self.catalog.get(launch["instance_type"], launch["region"])
        if itype is None:
            return burst.committed_usd
        count = launch["instance_count"]
        spot = launch["spot"] and name == burst.names[0]
        if described.get("BillableTimeInSeconds") is not None:
            return described["BillableTimeInSeconds"] * count * itype.on_demand_usd_per_hour / 3600
        start = described.get("TrainingStartTime")
        if start is None:
            return 0.0 if described.get("TrainingJobStatus") == "InProgress" else burst.costs.get(name, 0.0)
        started = start.timestamp() if hasattr(start, "timestamp") else parse_time(str(start))
        end = described.get("TrainingEndTime")
        ended = end.timestamp() if hasattr(end, "timestamp") else now
        rate = itype.spot_usd_per_hour if spot else itype.on_demand_usd_per_hour
        return max(ended - started, 0.0) * count * rate / 3600

    def _mirror(self, burst: Burst, manifest: dict, job: JobRequest | None, now: float) -> None:
        name = burst.current_name
        described = self._describe(burst, name)
        if described is None:
            return
        status = f"{described.get('TrainingJobStatus')}/{described.get('SecondaryStatus')}"
        cost = self._cost(burst, name, described, now)
        terminal = described.get("TrainingJobStatus") in TERMINAL
        if not terminal and job is not None and self._fallback_due(burst, job, described, now):
            self._fall_back(burst, manifest, job, now, "the spot fallback rule (spot.fallback: "
                            f"{self.policy.spec.spot.fallback}) says on-demand must start now to keep the deadline")
            return
        if terminal and burst.launch["spot"] and len(burst.names) == 1 and job is not None and \
                described.get("SecondaryStatus") == "MaxWaitTimeExceeded" and burst.deadline is not None:
            self._set_cost(burst, name, cost, status)
            self._fall_back(burst, manifest, job, now, "spot reached its MaxWaitTimeInSeconds before finishing")
            return
        if terminal:
            self._finish(burst, manifest, name, cost, status, described, now)
            return
        # Cost so far is written when the status moves, or when it has grown by a dollar or 5 % of
        # what the burst committed: a running burst must not rewrite its Job every cycle.
        if status != burst.outcome or cost - burst.costs.get(name, 0.0) >= max(1.0, 0.05 * burst.committed_usd):
            self._set_cost(burst, name, cost, status)
            self._patch(manifest, {C.SAGEMAKER_STATUS: status, C.COST_USD: f"{self.ledger.state.bursts[burst.uid].cost_usd:.2f}",
                                   **({C.SAGEMAKER_JOB_ARN: described["TrainingJobArn"]}
                                      if described.get("TrainingJobArn") else {})})

    def _set_cost(self, burst: Burst, name: str, cost: float, status: str) -> None:
        def change(state: LedgerState) -> bool:
            b = state.bursts.get(burst.uid)
            if b is None or (b.outcome == status and b.costs.get(name) == round(cost, 6)):
                return False
            b.costs[name], b.outcome = round(cost, 6), status
            return True

        self.ledger.update(change)

    def _finish(self, burst: Burst, manifest: dict | None, name: str, cost: float, status: str,
                described: dict, now: float) -> None:
        """The burst ended: book its cost against the budget, release its commitment, tell the Job."""
        def done(state: LedgerState) -> bool:
            b = state.bursts.get(burst.uid)
            if b is None or b.state == DONE:
                return False
            b.costs[name], b.outcome, b.state, b.ended_at = round(cost, 6), status, DONE, now
            state.charge(b.namespace, b.cost_usd, now)
            return True

        self.ledger.update(done)
        if manifest is None:
            return
        total = self.ledger.state.bursts[burst.uid].cost_usd
        outcome = described.get("TrainingJobStatus")
        reason = {"Completed": EventReason.COMPLETED, "Failed": EventReason.FAILED}.get(outcome, EventReason.STOPPED)
        why = f": {described['FailureReason']}" if described.get("FailureReason") else ""
        self._patch(manifest, {C.SAGEMAKER_STATUS: status, C.COST_USD: f"{total:.2f}"},
                    finalizers=[] if burst.emit == EmitTarget.API.value else None)
        self._event(manifest, reason.value, f"SageMaker training job {name} is {outcome}{why}; it cost "
                    f"${total:.2f} (committed ${burst.committed_usd:.2f})", now, warning=outcome != "Completed")

    def _fallback_due(self, burst: Burst, job: JobRequest, described: dict, now: float) -> bool:
        if not burst.launch["spot"] or len(burst.names) > 1 or burst.deadline is None:
            return False
        progress = _trained_seconds(described, now) if job.checkpointable else 0.0
        return spot_fallback_due(
            now=now, launch_time=burst.launched_at, deadline=burst.deadline,
            fallback_time=burst.launch["fallback_time"] or math.inf, runtime_seconds=burst.runtime_seconds,
            # Idle, for the rule, is what the engine calls waiting: capacity taken back (Interrupted).
            # Starting and Downloading hold instances; they are the launch's start-up, not idleness.
            progress_seconds=progress, running_on_spot=described.get("SecondaryStatus") != "Interrupted",
            restart_overhead_seconds=self.policy.spec.spot.restart_overhead_seconds,
            fallback_mode=self.policy.spec.spot.fallback)

    def _fall_back(self, burst: Burst, manifest: dict, job: JobRequest, now: float, why: str) -> None:
        """Stop the spot job and relaunch on on-demand from its checkpoint, under the second name
        (once: the ledger records the second name before anything is stopped or created)."""
        od_name = training_job_name(job, 1)
        text = f"{format_time(now)}: {why}; relaunched on on-demand as {od_name}"

        def add(state: LedgerState) -> bool:
            b = state.bursts.get(burst.uid)
            if b is None or od_name in b.names:
                return False
            b.names.append(od_name)
            b.fallback, b.state = text, LAUNCHING
            return True

        self.ledger.update(add)
        self.metrics.fallbacks.inc()
        self._stop(burst, burst.names[0])
        self._patch(manifest, {C.FALLBACK: text, C.SAGEMAKER_JOB_NAME: od_name})
        self._event(manifest, EventReason.FELL_BACK.value, text, now, warning=True)
        self._create(self.ledger.state.bursts[burst.uid], manifest, job, now)

    def _stop(self, burst: Burst, name: str) -> None:
        if burst.emit == EmitTarget.API.value:
            if self.sagemaker is not None:
                self.sagemaker.stop(name)
        else:  # the SageMaker controller's finalizer stops the training job
            self.kube.delete_custom(CR_API_VERSION[EmitTarget(burst.emit)], CR_PLURAL, burst.namespace, name)

    def _stop_deleted(self, burst: Burst, manifest: dict | None, now: float) -> None:
        """The Job was deleted: stop its SageMaker work, book what it cost, let the Job go."""
        for name in burst.names:
            self._stop(burst, name)
        described = self._describe(burst, burst.current_name) if self.sagemaker is not None else None
        cost = self._cost(burst, burst.current_name, described, now) if described else burst.cost_usd
        self._finish(burst, None, burst.current_name, cost, "Stopped/JobDeleted", {}, now)
        if manifest is not None and C.FINALIZER in (manifest["metadata"].get("finalizers") or []):
            self._patch(manifest, {}, finalizers=[])
        log.info("%s was deleted: stopped %s", burst.job, ", ".join(burst.names))

    # --- writes ----------------------------------------------------------------------------------------

    def _patch(self, manifest: dict, ann: dict, *, spec: dict | None = None,
               finalizers: list[str] | None = None) -> bool:
        """One merge patch of the Job, guarded by its resourceVersion. False on a conflict (the
        Job changed since this cycle read it; the next cycle sees the new version)."""
        meta = manifest["metadata"]
        current = annotations(manifest)
        changed = {k: v for k, v in ann.items() if current.get(k) != v}
        body: dict = {"metadata": {"resourceVersion": meta["resourceVersion"]}}
        if changed:
            body["metadata"]["annotations"] = changed
        if spec:
            body["spec"] = spec
        if finalizers is not None:
            have = meta.get("finalizers") or []
            want = [f for f in have if f != C.FINALIZER] + list(finalizers)
            if want != have:
                body["metadata"]["finalizers"] = want
        if len(body["metadata"]) == 1 and not spec:
            return True
        try:
            updated = self.kube.patch_job(meta["namespace"], meta["name"], body)
        except KubeError as exc:
            if exc.conflict or exc.not_found:
                log.info("%s changed while we decided (%s); next cycle", key_of(manifest), exc.reason)
                return False
            raise
        self.writes += 1
        manifest["metadata"] = updated["metadata"]  # later writes this cycle build on this version
        return True

    def _event(self, manifest: dict, reason: str, message: str, now: float, *, warning: bool = False) -> None:
        try:
            self.kube.event(manifest, reason, message, warning=warning, now=format_time(now))
            self.writes += 1
        except KubeError as exc:  # an Event is history, not state: never fail a cycle for one
            log.warning("could not record event %s on %s: %s", reason, key_of(manifest), exc)


def _transient(exc: SageMakerError | KubeError) -> bool:
    """Worth trying again as it is (after the clients' own retries gave up)."""
    if isinstance(exc, KubeError):
        return exc.status in (0, 429) or exc.status >= 500
    return exc.code in ("ThrottlingException", "InternalFailure", "ServiceUnavailable") or \
        exc.code.endswith("Error") and not exc.code.startswith("Validation")


def _trained_seconds(described: dict, now: float) -> float:
    """Seconds spent in the Training secondary status (checkpointed progress, for spot)."""
    total = 0.0
    for t in described.get("SecondaryStatusTransitions") or []:
        if t.get("Status") != "Training":
            continue
        start, end = t.get("StartTime"), t.get("EndTime")
        started = start.timestamp() if hasattr(start, "timestamp") else None
        ended = end.timestamp() if hasattr(end, "timestamp") else now
        if started is not None:
            total += max(ended - started, 0.0)
    return total
