"""The controller: one reconcile cycle, the simulator's cycle, against a real cluster.

Each cycle:
1. Reads the cluster (Jobs, Pods, Nodes), the burst ledger, and DCGM utilization.
2. Follows every burst in flight: (re)creates one whose launch a crash interrupted, mirrors its
   SageMaker status and cost onto the Job, gives a spot burst way to on-demand when the core's
   fallback rule says so, books what a finished burst cost, and stops the SageMaker work of a
   deleted Job.
3. Builds the policies.Snapshot and asks the QueuePlanner for decisions on the managed,
   suspended Jobs: the same plan() the simulator calls.
4. Acts on them as policies.queue.actions reads them: Local -> un-suspend; SageMaker -> launch; Wait
   -> look again at requeue_after_seconds; and cycle again by Plan.review_at.

It is level-based and idempotent: a second cycle over the same world writes nothing. A burst is
written to the ledger before SageMaker is asked to run it, under a name derived from the Job's
UID, so a crash at any point never launches twice and never loses a burst. The writes of one
cycle go out on a few threads (each Job's writes in order on one of them): the API server and
SageMaker answer in milliseconds, and a cycle that places thousands of Jobs waits on them.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Callable

from policies import BurstPolicy, InputError, Placement, is_managed, job_from_manifest
from policies import constants as C
from policies.queue import QueuePlanner, cycle_actions
from policies.model import (BurstAs, Decision, EmitTarget, EventReason, JobRequest, PodReason, SageMakerKind, Snapshot,
                            format_time, parse_time)
from policies.decide import create_training_job_request, policy_catalog, training_job_name, training_job_resource
from policies.spot import (BlindSpotPlan, SpotBelief, planned_switch, policy_burst_plan, spot_fallback_due,
                           spot_seen_in_status)

from .kube import Kube, KubeError
from .kubelet_api import BurstJobs
from .kueue import KueueChecks, PendingCheck, queued_by_kueue
from .ledger import DONE, LAUNCHING, RUNNING, Burst, Ledger
from .metrics import ControllerMetrics
from .node_agent import gang_bound, live, owner_uid, pod_status, refused, shown, template_patch
from .placement import pin_to_nodes
from .burst_kind import API_VERSIONS, KindSteps
from .sagemaker import SageMaker, SageMakerError
from .transform_burst import TransformSteps
from .trial_history import UnreadableLog, harvested, index_of, owner_job, unrecorded
from .trial_pods import bayesian_sweep_on_cluster, tuning_config_maps
from .tuning_burst import TuningSteps
from .virtual_node import VirtualNode
from .world import World, annotations_of, completed_of, format_local_nodes, key_of, nodes_of, running_of

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
    workers: int = 8  # threads that write a cycle's actions
    clock_rate: float = 1.0  # clock seconds per real second (a sandbox on a faster virtual clock)


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
        self._described: dict[str, float] = {}  # uid -> when its training job was last described
        self._resources: dict[tuple[str, str, str], dict] = {}  # this cycle's TrainingJob resources
        # The kinds beyond training, each with its own steps; and this cycle's resources of each.
        self._kinds: dict[SageMakerKind, KindSteps] = {s.kind: s for s in (TransformSteps(), TuningSteps())}
        self._kind_resources: dict[SageMakerKind, dict[tuple[str, str, str], dict]] = {}
        self.changed = threading.Event()
        self._writes = 0
        self._events: list[tuple] = []  # queued by this cycle's actions, sent at its end
        self._count = threading.Lock()
        self._pool = ThreadPoolExecutor(self.settings.workers, thread_name_prefix="spillway-act")
        self._plans: OrderedDict[str, BlindSpotPlan | None] = OrderedDict()  # uid -> its spot plan, the latest few
        self.burst_as = policy.spec.sage_maker.burst_as
        self.virtual_node = VirtualNode(kube)
        self._node_kept = False  # the virtual node was made (or checked) by this process
        self._vpods: dict[str, list[dict]] = {}  # this cycle's pods on the virtual node, by their Job's UID
        self._last_described: dict[str, tuple[str, dict]] = {}  # uid -> (training job, what SageMaker said)
        self.kueue = KueueChecks(kube)
        self._checks: dict[str, PendingCheck] = {}  # this cycle's Kueue checks waiting on Spillway, by Job UID
        self._log_tries: dict[str, int] = {}  # namespace/pod -> failed reads of a finished trial's log

    @property
    def writes(self) -> int:
        return self._writes + self.ledger.writes

    # --- the loop --------------------------------------------------------------------------------

    def run(self, stop: threading.Event, *, watch: bool = True) -> None:
        """Cycle until stop is set: on every change the watches see, and when a cycle asks."""
        if watch:
            self.kube.watch_changes(self.changed.set, stop)
        # A stop wakes the loop at once, wherever it waits (a quiet cluster waits up to 5 minutes).
        threading.Thread(target=_wake_on, args=(stop, self.changed), name="stop-wakes-loop", daemon=True).start()
        if self.burst_as == BurstAs.VIRTUAL_NODE:
            self._node_kept = True  # the keeper makes the node, and renews its Lease and Ready condition
            self.virtual_node.start(stop)
        failures = 0
        while not stop.is_set():
            self.changed.clear()
            try:
                report = self.cycle()
                wait = (report.next_cycle_at - self.clock()) if report.next_cycle_at else 300.0
                failures = 0
            except (KubeError, SageMakerError) as exc:
                kind = f"kube-{exc.status}" if isinstance(exc, KubeError) else f"sagemaker-{exc.code}"
                self.metrics.errors.labels(kind).inc()
                failures += 1
                # Back off while it lasts (an API server restarting, SageMaker throttling): 5 s, 10 s,
                # ... at most a minute; a watch event does not cut a back-off short.
                wait = min(self.settings.min_requeue_seconds * 2 ** (failures - 1), 60.0) or 1.0
                log.warning("cycle failed: %s; trying again in %.0f s", exc, wait)
                stop.wait(wait / self.settings.clock_rate)
                continue
            self.changed.wait(timeout=min(max(wait / self.settings.clock_rate, 0.05), 300.0))

    def cycle(self) -> CycleReport:
        before = self.writes
        with self.metrics.cycle_seconds.time():
            try:
                report = self._cycle()
            finally:
                self._send_events()  # what happened is told, even when a cycle fails part-way
            report.writes = self.writes - before
        self.metrics.beat()
        self.metrics.ready.set()
        return report

    def _cycle(self) -> CycleReport:
        now = self.clock()
        world = World(now, self.kube.list_jobs_for_controller(), self.kube.list_pods_holding_resources(),
                      self.kube.list_nodes_for_controller())
        self.ledger.load()  # what is durable, whoever wrote it: the budget is charged from here
        report = CycleReport()
        active = [b for b in self.ledger.bursts.values() if b.state != DONE]
        self._resources = self._list_resources({b.emit for b in active if self._steps(b) is None})
        self._kind_resources = {kind: steps.list_resources(self.kube, {EmitTarget(b.emit) for b in active
                                                                       if b.launch.kind == kind})
                                for kind, steps in self._kinds.items()}
        self._vpods = self._virtual_node_pods()
        self._each(self._follow, list(self.ledger.bursts.values()), world, now)
        self._each(self._tend, list(self._vpods.items()), world, now)
        logs_unread = self._record_trials(world)
        self._checks = self.kueue.pending(now)
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
        queued = {key_of(world.jobs_by_uid[uid]) for uid in self._checks if uid in world.jobs_by_uid}
        work = [(self._start_local, d) for d in actions.start_local if d.job not in queued] + \
            [(self._launch, d) for d in actions.launch] + [(self._record, d) for d in actions.wait] + \
            [(self._answer_kueue, d) for d in actions.start_local + actions.keep_queued + actions.wait
             if d.job in queued]
        retry = self._each(lambda item, now: item[0](by_key[item[1].job], pending[item[1].job], item[1], now),
                           work, now)
        for (_, d), again in zip(work, retry):
            if again:
                self.planner.add(pending[d.job])  # the Job changed under us: decide it again next cycle
        for d in actions.keep_queued:
            if d.job not in queued:
                self.planner.add(pending[d.job])
        report.decisions = list(plan.decisions)
        times = [t for t in (actions.next_cycle_at,) if t is not None]
        times += [t for t, _ in self.retry_at.values() if t > now]  # a failed launch's back-off ends
        if any(b.state != DONE for b in self.ledger.bursts.values()):
            times.append(now + self.settings.burst_poll_seconds)
        if logs_unread:  # a finished trial's log could not be read yet; its next trial waits for it
            times.append(now + LOG_RETRY_SECONDS)
        times += [b.launch.fallback_time for b in self.ledger.bursts.values()  # the spot safety net
                  if b.state != DONE and b.launch.spot and b.deadline is not None and len(b.names) == 1
                  and b.launch.fallback_time and b.launch.fallback_time > now]
        report.next_cycle_at = max(min(times), now + self.settings.min_requeue_seconds) if times else None
        return report

    def _each(self, fn: Callable, items: list, *args) -> list:
        """fn(item, *args) for every item, on the worker threads; their results, in order. The
        first exception (a transient API error, say) is raised once all have finished."""
        futures = [self._pool.submit(fn, item, *args) for item in items]
        results, error = [], None
        for f in futures:
            try:
                results.append(f.result())
            except BaseException as exc:  # noqa: BLE001 - re-raised below, after the others finish
                error = error or exc
                results.append(None)
        if error is not None:
            raise error
        return results

    # --- a local Bayesian sweep's finished trials ------------------------------------------------

    def _record_trials(self, world: World) -> bool:
        """Each finished trial of a Bayesian sweep on the cluster: its values and the objective
        its log shows, written on its Job, where the pod webhook asks Optuna from them
        (trial_history.py). One list of pods a cycle, and only while such a sweep has trials.
        True if a log could not be read yet: that sweep is recorded on a later cycle, and the
        cycle goes on (a node whose kubelet is down must not stop every decision)."""
        sweeps = {j["metadata"].get("uid"): (j, spec) for j in world.jobs
                  if (spec := bayesian_sweep_on_cluster(j)) is not None}
        if not sweeps:
            return False
        unread = False
        pods: dict[str, list[dict]] = {}
        for pod in self.kube.list_pods_selected(f"{C.TRIAL_LABEL}=true", "status.phase=Succeeded"):
            owner = owner_job(pod)
            if owner is not None and owner[1] in sweeps:
                pods.setdefault(owner[1], []).append(pod)
        for uid, succeeded in pods.items():
            manifest, spec = sweeps[uid]
            fresh = unrecorded(manifest, succeeded)
            try:
                text = harvested(manifest, spec, fresh, self._trial_log)
            except KubeError as exc:
                log.warning("%s: a finished trial's log cannot be read yet (%s); trying again", key_of(manifest), exc)
                unread = True
                continue
            if text is not None and self._patch(manifest, {C.TRIAL_RESULTS: text}):
                log.info("%s: recorded the result of trial %s from its log", key_of(manifest),
                         ", ".join(str(index_of(p)) for p in fresh))
        return unread

    def _trial_log(self, namespace: str, name: str) -> str:
        """A finished trial's log. A transient failure is raised LOG_ATTEMPTS - 1 times (tried
        again on later cycles); then, or at once for a lasting one (404, 400), the log is
        unreadable and the trial is recorded without an objective, so its sweep goes on. An API
        server answers 500 when the pod's kubelet is gone for good: without a limit, the sweep
        would wait forever. The count is in memory: a restart only tries again longer."""
        key = f"{namespace}/{name}"
        try:
            text = self.kube.read_pod_log(namespace, name)
        except KubeError as exc:
            tries = self._log_tries[key] = self._log_tries.get(key, 0) + 1
            if _transient(exc) and tries < LOG_ATTEMPTS:
                raise
            del self._log_tries[key]
            raise UnreadableLog(exc.message or str(exc)) from None
        self._log_tries.pop(key, None)
        return text

    # --- what to decide --------------------------------------------------------------------------

    def _pending(self, world: World, now: float) -> dict[str, JobRequest]:
        """Managed, suspended Jobs with no burst: the queue. A Job with bad annotations is told so
        once (an Event and an annotation) and left untouched."""
        out = {}
        bursts = self.ledger.bursts
        for manifest in world.jobs:
            meta = manifest["metadata"]
            if not (manifest.get("spec") or {}).get("suspend") or meta.get("deletionTimestamp"):
                continue
            if meta.get("uid") in bursts:
                if meta.get("uid") in self._checks:  # a crash came between the ledger and Kueue's check
                    self.kueue.ready(self._checks[meta["uid"]], bursts[meta["uid"]].message, now)
                continue
            checked = meta.get("uid") in self._checks  # Kueue reserved quota on a flavor Spillway guards
            if queued_by_kueue(manifest) and not checked:
                continue  # Kueue owns its suspend; Spillway decides it only when its check asks
            ann = annotations_of(manifest)
            if not checked and not any(k.startswith(C.ANNOTATION_PREFIX) for k in ann) and \
                    meta.get("namespace") not in self.policy.spec.managed_jobs.namespaces:
                continue
            try:
                job = self._job_of(manifest)
            except InputError as exc:
                self._bad_annotations(manifest, exc, now)
                continue
            if not checked and not is_managed(job, self.policy):
                continue
            if now < self.retry_at.get(job.uid, (0.0, 0.0))[0]:
                continue
            if ann.get(C.ANNOTATION_ERROR):
                self._patch(manifest, {C.ANNOTATION_ERROR: None})
            out[job.key] = job
        return out

    def _job_of(self, manifest: dict):
        """The Job as the core reads it, with the ConfigMap a sweep's tuning spec is in, if any."""
        maps = tuning_config_maps(manifest, manifest["metadata"].get("namespace") or "default",
                                  self.kube.get_config_map)
        return job_from_manifest(manifest, source=key_of(manifest), config_maps=maps)

    def _bad_annotations(self, manifest: dict, exc: InputError, now: float) -> None:
        text = "; ".join(f"{i.path}: {i.problem} (fix: {i.fix})" for i in exc.issues)
        if annotations_of(manifest).get(C.ANNOTATION_ERROR) == text:
            return  # told already
        if self._patch(manifest, {C.ANNOTATION_ERROR: text}):
            self._event(manifest, EventReason.INVALID_ANNOTATIONS.value, text, now, warning=True)

    def _snapshot(self, world: World, now: float, report: CycleReport) -> Snapshot:
        nodes = nodes_of(world.nodes)
        utilization = None
        if self.utilization is not None:
            utilization = self.utilization.cluster_average(self.policy.spec.local.hot_window_seconds,
                                                           {n.name for n in nodes})
            report.prometheus_ok = self.utilization.last_error is None
            self.metrics.prometheus_up.set(1 if report.prometheus_ok else 0)
        return Snapshot(now, nodes, running_of(world), self.ledger.in_flight(), self.ledger.spend(now),
                        completed_of(world), gpu_utilization_percent=utilization)

    def _observe(self, queued: int, now: float) -> None:
        m = self.metrics
        m.queue.set(queued)
        m.in_flight.set(sum(b.state != DONE for b in self.ledger.bursts.values()))
        for spend in self.ledger.spend(now):
            m.spend.labels(spend.namespace, "today").set(spend.today_usd)
            m.spend.labels(spend.namespace, "month").set(spend.month_usd)
        committed: dict[str, float] = {}
        for job in self.ledger.in_flight():
            committed[job.namespace] = committed.get(job.namespace, 0.0) + job.committed_usd
        for namespace in {b.namespace for b in self.ledger.bursts.values()} | set(committed):
            m.committed.labels(namespace).set(committed.get(namespace, 0.0))

    # --- acting on decisions (each returns True when the Job must be decided again) ----------------

    def _record(self, manifest: dict, job: JobRequest, d: Decision, now: float) -> bool:
        """Write a Wait onto the Job if its placement or reason changed (one re-decided with the same
        reason writes nothing: the numbers in its message move every cycle)."""
        ann = annotations_of(manifest)
        if ann.get(C.DECISION_PLACEMENT) == d.placement.value and ann.get(C.DECISION_REASON) == d.reason.value:
            return False
        if self._patch(manifest, self._decision_annotations(d, now)):
            self._decided(manifest, d, d.message, now)
        return False

    def _decided(self, manifest: dict, d: Decision, message: str, now: float) -> None:
        """One Event per decision, with its Reason: what kubectl describe job shows."""
        self.metrics.decisions.labels(d.placement.value, d.reason.value).inc()
        if d.placement != Placement.WAIT:
            self.metrics.wait.observe(max(d.evidence.waited_seconds, 0.0))
        self._event(manifest, d.reason.value, message, now)

    def _decision_annotations(self, d: Decision, now: float) -> dict:
        return {C.DECISION_PLACEMENT: d.placement.value, C.DECISION_REASON: d.reason.value,
                C.DECISION_MESSAGE: d.message[:4000], C.DECIDED_AT: _stamp(now)}

    def _start_local(self, manifest: dict, job: JobRequest, d: Decision, now: float) -> bool:
        nodes = format_local_nodes(d.local_nodes, d.local_pods)
        spec: dict = {"suspend": False}
        # The pods bind where the core placed them, not where kube-scheduler would. Kubernetes takes
        # a template change only on a Job that never started; one that did keeps its template.
        if d.local_nodes and not (manifest.get("status") or {}).get("startTime"):
            template_spec = ((manifest.get("spec") or {}).get("template") or {}).get("spec") or {}
            spec["template"] = {"spec": pin_to_nodes(template_spec, d.local_nodes)}
        if not self._patch(manifest, {**self._decision_annotations(d, now), C.LOCAL_NODES: nodes}, spec=spec):
            return True
        self._decided(manifest, d, f"{d.message}; un-suspended on {nodes}", now)
        return False

    def _launch(self, manifest: dict, job: JobRequest, d: Decision, now: float) -> bool:
        launch = d.launch
        assert launch is not None  # a burst decision carries its launch
        check = self._checks.get(job.uid)
        if check is not None and self.burst_as != BurstAs.VIRTUAL_NODE:
            self.kueue.reject(check, "spec.sageMaker.burstAs is suspendedJob: a Job Kueue admits runs, so a "
                              "burst through Kueue needs burstAs: virtualNode", now)
            return False
        committed = next(o.committed_usd for o in d.evidence.options if o.placement == d.placement)
        burst = self.ledger.add(Burst(  # durable before SageMaker hears of it
            uid=job.uid, job=job.key, namespace=job.namespace, emit=self.emit.value, launch=launch,
            names=[self._job_name(job, launch.kind)], committed_usd=round(committed, 6), launched_at=now,
            placement=d.placement.value, reason=d.reason.value, message=d.message[:4000], decided_at=_stamp(now),
            runtime_seconds=d.evidence.runtime_estimate_seconds, deadline=job.deadline, via=self.burst_as.value,
            attempt_usd=round(committed, 6), kueue=f"{check.namespace}/{check.workload}" if check else ""))
        self._create(burst, manifest, job, now, decision=d)
        if check is not None:
            self.kueue.ready(check, d.message, now)  # Kueue admits it onto the sagemaker flavor
        return False

    def _answer_kueue(self, manifest: dict, job: JobRequest, d: Decision, now: float) -> bool:
        """A Kueue Workload's check, for a decision that is not a burst: Retry (or Rejected)."""
        self._record(manifest, job, d, now)
        self.kueue.answer(self._checks[job.uid], d, now)
        return False

    def _create(self, burst: Burst, manifest: dict, job: JobRequest, now: float,
                decision: Decision | None = None) -> None:
        """Create the burst's current training job (again, after a crash: the same name). The Job
        says so first, with the finalizer on the api path, so that its deletion is seen."""
        name, on_demand = burst.current_name, not _on_spot(burst, len(burst.names) - 1)
        ann = {C.DECISION_PLACEMENT: burst.placement, C.DECISION_REASON: burst.reason,
               C.DECISION_MESSAGE: burst.message, C.DECIDED_AT: burst.decided_at,
               C.SAGEMAKER_JOB_NAME: name, C.COMMITTED_USD: f"{burst.committed_usd:.2f}"}
        virtual = burst.via == BurstAs.VIRTUAL_NODE.value
        mine = virtual and not burst.kueue  # Kueue's Jobs are un-suspended, onto the virtual node, by Kueue
        if not self._patch(manifest, ann, finalizers=[C.FINALIZER] if burst.emit == EmitTarget.API.value else None,
                           spec=_to_virtual_node(manifest) if mine else None):
            return  # the Job changed (or went): the burst stays "launching" for the next cycle
        if virtual:
            if decision is not None:
                self._decided(manifest, decision, f"{decision.message}; its pods go to the virtual node "
                              f"{C.VIRTUAL_NODE_NAME}, and SageMaker {_job_words(burst)} {name} starts once they "
                              "are bound", now)
                decision = None
            pods = [p for p in self._vpods.get(burst.uid, []) if live(p)]
            if not gang_bound(manifest, pods):
                return  # the next cycle looks again, once the scheduler has bound them
            ran = [p["metadata"]["uid"] for p in pods]
            if any(uid not in burst.pods for uid in ran):
                burst = self.ledger.change(burst.uid, lambda b: _ran_for(b, ran)) or burst
        try:
            arn = self._send(burst, job, name, on_demand)
        except (SageMakerError, KubeError) as exc:
            if _transient(exc):
                raise  # the burst stays "launching": the next cycle creates it again
            self._launch_failed(burst, manifest, str(exc), now)
            return
        capacity = "on-demand" if on_demand or not burst.launch.spot else "managed spot"
        self.metrics.bursts.labels("spot" if capacity == "managed spot" else "on-demand", burst.emit).inc()
        words = (f"SageMaker {_job_words(burst)} {name} ({capacity}, {burst.launch.instance_count} x "
                 f"{burst.launch.instance_type}, emitted as {burst.emit})")
        if decision is not None:
            self._decided(manifest, decision, f"{decision.message}; launched {words}", now)
        else:
            self._event(manifest, EventReason.LAUNCHED.value, f"launched {words}", now)
        if arn:
            self.ledger.change(burst.uid, lambda b: _mark_running(b, name, arn))

    def _send(self, burst: Burst, job: JobRequest, name: str, on_demand: bool) -> str:
        """Create the training job, or its custom resource; the ARN when SageMaker gave one."""
        steps = self._steps(burst)
        if steps is not None:
            return steps.send(self.kube, self.sagemaker, job, burst.cloud_launch, name, EmitTarget(burst.emit))
        if burst.emit == EmitTarget.API.value:
            if self.sagemaker is None:
                raise SageMakerError("NoClient", "spec.sageMaker.emit is api, but the controller runs with "
                                     "--no-sagemaker; drop that flag, or emit ack")
            return self.sagemaker.create_training_job(
                create_training_job_request(job, burst.cloud_launch, name, on_demand=on_demand))
        resource = training_job_resource(job, burst.cloud_launch, name, EmitTarget(burst.emit), on_demand=on_demand)
        try:
            self.kube.create_custom(resource, CR_PLURAL)
        except KubeError as exc:
            if not exc.conflict:
                raise
        return ""

    def _launch_failed(self, burst: Burst, manifest: dict, why: str, now: float) -> None:
        """SageMaker (or the API server) refused the job: release its commitment, say why, and
        decide the Job again after a back-off. A Job whose pods are on the virtual node has run:
        its pods fail with SageMaker's answer, and backoffLimit says whether it tries again."""
        if burst.via == BurstAs.VIRTUAL_NODE.value and not (manifest.get("spec") or {}).get("suspend"):
            self.metrics.launch_failures.inc()
            self.ledger.change(burst.uid, lambda b: _ended(b, f"LaunchFailed/{why}", now))
            self._event(manifest, EventReason.LAUNCH_FAILED.value, why, now, warning=True)
            return
        self.ledger.remove(burst.uid)
        self.metrics.launch_failures.inc()
        _, backoff = self.retry_at.get(burst.uid, (0.0, self.settings.launch_retry_seconds / 2))
        backoff = min(backoff * 2, 3600.0)
        self.retry_at[burst.uid] = (now + backoff, backoff)
        self._patch(manifest, {C.SAGEMAKER_JOB_NAME: None, C.COMMITTED_USD: None,
                               C.DECISION_REASON: EventReason.LAUNCH_FAILED.value},
                    finalizers=[] if burst.emit == EmitTarget.API.value else None)
        self._event(manifest, EventReason.LAUNCH_FAILED.value, f"{why}; deciding again in {backoff:.0f} s", now,
                    warning=True)

    # --- bursts in flight ----------------------------------------------------------------------------

    def _follow(self, burst: Burst, world: World, now: float) -> None:
        manifest = world.jobs_by_uid.get(burst.uid)
        if burst.state == DONE:
            if manifest is None:
                if format_time(burst.ended_at or now)[:7] != format_time(now)[:7]:
                    self.ledger.remove(burst.uid)  # its month is over and its Job is gone
            elif manifest["metadata"].get("deletionTimestamp"):
                self._patch(manifest, {}, finalizers=[])
            return
        if manifest is None or manifest["metadata"].get("deletionTimestamp"):
            self._stop_deleted(burst, manifest, now)
            return
        fallback = burst.launch.fallback_time if burst.launch.spot and len(burst.names) == 1 else None
        if burst.state == RUNNING and now - self._described.get(burst.uid, -math.inf) < \
                self.settings.burst_poll_seconds and not (fallback and now >= fallback) \
                and not self._plan_tick_due(burst, now):
            return  # described lately: a cycle for another reason need not ask SageMaker again
        try:
            job = self._job_of(manifest)
        except InputError:
            job = None
        described = self._describe(burst, burst.current_name)
        self._described[burst.uid] = now
        if described is not None:
            self._last_described[burst.uid] = (burst.current_name, described)
        if described is None:
            if burst.state == LAUNCHING and job is not None:
                self._create(burst, manifest, job, now)  # a crash came between the ledger and the create
            return
        if described.get("_pending"):
            return
        self._mirror(burst, manifest, job, described, now)

    def _describe(self, burst: Burst, name: str) -> dict | None:
        """What SageMaker says of a training job (DescribeTrainingJob); None while it does not exist.
        A custom resource that exists counts as launched: its SageMaker controller creates the job,
        and until SageMaker knows it (or without a SageMaker client) its status says what it can
        (no billing figures there)."""
        steps = self._steps(burst)
        if steps is not None:
            return self._describe_kind(steps, burst, name)
        if burst.emit == EmitTarget.API.value:
            return self.sagemaker.describe(name) if self.sagemaker is not None else None
        cr = self._resources.get((CR_API_VERSION[EmitTarget(burst.emit)], burst.namespace, name))
        if cr is None:
            return None
        if self.sagemaker is not None:
            described = self.sagemaker.describe(name)
            if described is not None:
                return described
        status = cr.get("status") or {}
        if not status.get("trainingJobStatus"):
            return {"_pending": True}  # created, not yet picked up by its SageMaker controller: nothing to say
        return {"TrainingJobStatus": status["trainingJobStatus"], "SecondaryStatus": status.get("secondaryStatus"),
                "FailureReason": status.get("failureReason"),
                "TrainingJobArn": (status.get("ackResourceMetadata") or {}).get("arn"), "_resource": True}

    def _describe_kind(self, steps: KindSteps, burst: Burst, name: str) -> dict | None:
        """_describe() for a burst of another kind, in the same terms (its KindSteps.described)."""
        if burst.emit != EmitTarget.API.value:
            api_version = API_VERSIONS[EmitTarget(burst.emit)]
            cr = self._kind_resources.get(steps.kind, {}).get((api_version, burst.namespace, name))
            if cr is None:
                return None
            if self.sagemaker is None:
                return steps.followed_resource(cr)
        if self.sagemaker is None:
            return None
        described = steps.described(self.sagemaker, name)
        return described if described is not None else (
            None if burst.emit == EmitTarget.API.value else {"_pending": True})

    def _steps(self, burst: Burst) -> KindSteps | None:
        """The steps of the burst's kind; None for a training burst (this module's own)."""
        return self._kinds.get(SageMakerKind(burst.launch.kind))

    def _job_name(self, job: JobRequest, kind: SageMakerKind) -> str:
        steps = self._kinds.get(SageMakerKind(kind))
        return steps.job_name(job) if steps is not None else training_job_name(job)

    def _described_by_sagemaker(self, burst: Burst, name: str) -> dict | None:
        """What SageMaker itself says of the burst's job (None without a client, or before it exists)."""
        if self.sagemaker is None:
            return None
        steps = self._steps(burst)
        return steps.described(self.sagemaker, name) if steps is not None else self.sagemaker.describe(name)

    def _list_resources(self, emits: set[str]) -> dict[tuple[str, str, str], dict]:
        """The TrainingJob resources of the emit targets in use: one list call each per cycle."""
        out = {}
        for emit in emits - {EmitTarget.API.value}:
            api_version = CR_API_VERSION[EmitTarget(emit)]
            for cr in self.kube.list_custom(api_version, CR_PLURAL):
                out[(api_version, cr["metadata"]["namespace"], cr["metadata"]["name"])] = cr
        return out

    def _cost(self, burst: Burst, name: str, described: dict, now: float) -> float:
        """BillableTimeInSeconds x InstanceCount x the on-demand price (spot's discount is in the
        billable seconds, as SageMaker reports them); while it runs, the time trained so far at
        the rate of its capacity; with no figures at all (a custom resource's status), the
        committed figure once it ended, so the budget is never charged less than it may owe."""
        launch = burst.launch
        itype = self.catalog.get(launch.instance_type, launch.region)
        terminal = described.get("TrainingJobStatus") in TERMINAL
        if described.get("_resource"):
            return burst.committed_usd if terminal else burst.costs.get(name, 0.0)
        if itype is None:
            return burst.committed_usd
        steps = self._steps(burst)
        if steps is not None:
            billed = steps.cost(launch, itype, described, now)
            return burst.costs.get(name, 0.0) if billed is None else billed
        count = launch.instance_count
        if described.get("BillableTimeInSeconds") is not None:
            return described["BillableTimeInSeconds"] * count * itype.on_demand_usd_per_hour / 3600
        start = described.get("TrainingStartTime")
        if start is None:
            return burst.costs.get(name, 0.0)
        end = described.get("TrainingEndTime")
        ended = _seconds(end) if end is not None else now
        spot = _on_spot(burst, burst.names.index(name)) if name in burst.names else False
        rate = itype.spot_usd_per_hour if spot else itype.on_demand_usd_per_hour
        return max(ended - _seconds(start), 0.0) * count * rate / 3600

    def _mirror(self, burst: Burst, manifest: dict, job: JobRequest | None, described: dict, now: float) -> None:
        name = burst.current_name
        status = f"{described.get('TrainingJobStatus')}/{described.get('SecondaryStatus')}"
        cost = self._cost(burst, name, described, now)
        arn = described.get("TrainingJobArn") or ""
        terminal = described.get("TrainingJobStatus") in TERMINAL
        planned = self._planned(burst, job)
        attempt = len(burst.names) - 1
        if job is not None and burst.deadline is not None and _on_spot(burst, attempt) and (attempt == 0 or planned):
            if terminal and described.get("SecondaryStatus") == "MaxWaitTimeExceeded":
                self._switch(burst, manifest, job, described, cost, status, now,
                             "spot reached its MaxWaitTimeInSeconds before finishing")
                return
            if not terminal and self._fallback_due(burst, job, described, now):
                self._switch(burst, manifest, job, described, cost, status, now, "the spot fallback rule (spot."
                             f"fallback: {self.policy.spec.spot.fallback}) says on-demand must start now to keep "
                             "the deadline")
                return
        if planned and job is not None and not terminal and self._plan_says_switch(burst, job, described, now):
            self._switch(burst, manifest, job, described, cost, status, now, "the spot plan (spot.fallback: planned) "
                         + ("expects on-demand to cost less from here, spot being out" if _on_spot(burst, attempt)
                            else "expects managed spot to be back"))
            return
        if terminal:
            self._finish(burst, manifest, name, cost, status, described, now)
            return
        steps = self._steps(burst)
        if steps is not None and steps.past_runtime_cap(burst.launch, described, now):
            # A transform job has no MaxRuntimeInSeconds: its cap (what it committed) is kept here.
            self._stop_burst(burst, manifest, now, "Stopped/MaxRuntimeExceeded")
            return
        # Cost so far is written when the status moves, or when it has grown by a dollar or 5 % of
        # what the burst committed: a running burst must not rewrite its Job every cycle.
        moved = cost - burst.costs.get(name, 0.0) >= max(1.0, 0.05 * burst.committed_usd)
        if status == burst.outcome and not moved and burst.state == RUNNING:
            return
        updated = self.ledger.change(burst.uid, lambda b: _mark_running(b, name, arn, cost, status))
        total = (updated or burst).cost_usd
        self._patch(manifest, {C.SAGEMAKER_STATUS: status, C.COST_USD: f"{total:.2f}",
                               **({C.SAGEMAKER_JOB_ARN: arn} if arn else {})})

    def _finish(self, burst: Burst, manifest: dict | None, name: str, cost: float, status: str,
                described: dict, now: float) -> None:
        """The burst ended: its cost counts against today's budget from now on (one write, so a
        crash can book it neither twice nor not at all), its commitment is released, the Job is told."""
        def done(b: Burst) -> bool:
            if b.state == DONE:
                return False
            b.costs[name], b.outcome, b.state, b.ended_at = round(cost, 6), status, DONE, now
            return True

        updated = self.ledger.change(burst.uid, done) or burst
        steps = self._steps(burst)
        if steps is not None:
            steps.ended(self.sagemaker, name, EmitTarget(burst.emit))
        if manifest is None:
            return
        outcome = described.get("TrainingJobStatus")
        reason = (EventReason.COMPLETED if outcome == "Completed" else EventReason.FAILED if outcome == "Failed"
                  else EventReason.STOPPED)
        why = f": {described['FailureReason']}" if described.get("FailureReason") else ""
        outcome_ann = steps.outcome_annotations(described) if steps is not None else {}
        if self._patch(manifest, {C.SAGEMAKER_STATUS: status, C.COST_USD: f"{updated.cost_usd:.2f}", **outcome_ann},
                       finalizers=[] if burst.emit == EmitTarget.API.value else None):
            self._event(manifest, reason.value, f"SageMaker {_job_words(burst)} {name} is {outcome}{why}; it cost "
                        f"${updated.cost_usd:.2f} (committed ${burst.committed_usd:.2f})", now,
                        warning=outcome != "Completed")

    def _progress(self, burst: Burst, job: JobRequest, described: dict, now: float) -> float:
        """Checkpointed progress over all the burst's training jobs. Each relaunch's restore counts
        as training to SageMaker, so the restart overhead is taken off every job after the first."""
        if not job.checkpointable:
            return 0.0
        overhead = self.policy.spec.spot.restart_overhead_seconds
        current = _trained_seconds(described, now) - (overhead if len(burst.names) > 1 else 0.0)
        return sum(burst.trained.values()) + max(current, 0.0)

    def _fallback_due(self, burst: Burst, job: JobRequest, described: dict, now: float) -> bool:
        progress = self._progress(burst, job, described, now)
        return spot_fallback_due(
            now=now, launch_time=burst.launched_at, deadline=burst.deadline,
            fallback_time=burst.launch.fallback_time or math.inf, runtime_seconds=burst.runtime_seconds,
            # Idle, for the rule, is what the engine calls waiting: capacity taken back (Interrupted).
            # Starting and Downloading hold instances; they are the launch's start-up, not idleness.
            progress_seconds=progress, running_on_spot=described.get("SecondaryStatus") != "Interrupted",
            restart_overhead_seconds=self.policy.spec.spot.restart_overhead_seconds,
            fallback_mode=self.policy.spec.spot.fallback)

    def _switch(self, burst: Burst, manifest: dict, job: JobRequest, described: dict, cost: float, status: str,
                now: float, why: str) -> None:
        """Stop the current training job and relaunch the burst from its checkpoint on the other
        capacity (spot -> on-demand, or, spot.fallback planned, back), under the next name. Once:
        the ledger records the next name before anything is stopped or created."""
        attempt = len(burst.names)
        old_name, new_name = burst.names[-1], training_job_name(job, attempt)
        to_spot = _on_spot(burst, attempt)
        text = f"{format_time(now)}: {why}; relaunched on {'managed spot' if to_spot else 'on-demand'} as {new_name}"
        trained = max(_trained_seconds(described, now) - (self.policy.spec.spot.restart_overhead_seconds
                                                          if attempt > 1 else 0.0), 0.0)

        def add(b: Burst) -> bool:
            if len(b.names) != attempt:
                return False  # another writer switched first
            b.costs[old_name], b.outcome = round(cost, 6), status
            b.trained[old_name] = round(trained, 3) if job.checkpointable else 0.0
            b.names.append(new_name)
            b.started[new_name] = now
            b.fallback, b.state = text, LAUNCHING
            return True

        updated = self.ledger.change(burst.uid, add)
        if updated is None:
            return
        (self.metrics.spot_returns if to_spot else self.metrics.fallbacks).inc()
        self._stop(burst, old_name)
        self._patch(manifest, {C.FALLBACK: text})
        self._event(manifest, (EventReason.BACK_TO_SPOT if to_spot else EventReason.FELL_BACK).value, text, now,
                    warning=not to_spot)
        self._create(updated, manifest, job, now)

    # --- spot.fallback: planned ------------------------------------------------------------------------

    def _planned(self, burst: Burst, job: JobRequest | None) -> bool:
        return (job is not None and job.checkpointable and burst.launch.spot and burst.deadline is not None
                and self.policy.spec.spot.fallback == "planned")

    def _tick_of(self, burst: Burst, now: float) -> int:
        return int((now - burst.launched_at) // self.policy.spec.spot.plan_tick_seconds)

    def _plan_tick_due(self, burst: Burst, now: float) -> bool:
        return (self.policy.spec.spot.fallback == "planned" and burst.launch.spot and burst.deadline is not None
                and bool(burst.launch.checkpoint_s3_uri) and self._tick_of(burst, now) > burst.plan_tick)

    def _plan_of(self, burst: Burst) -> BlindSpotPlan | None:
        """The burst's plan, made from its launch and the prior model, so a restarted controller
        makes the same one. The last few are kept: a plan holds up to 64 MiB (PLAN_BYTES_MAX)."""
        if burst.uid in self._plans:
            self._plans.move_to_end(burst.uid)
            return self._plans[burst.uid]
        launch = burst.launch
        itype = self.catalog.get(launch.instance_type, launch.region)
        plan = None if itype is None or burst.deadline is None else policy_burst_plan(
            self.policy, work_seconds=burst.runtime_seconds, deadline=burst.deadline, launched_at=burst.launched_at,
            spot_usd_per_hour=itype.spot_usd_per_hour * launch.instance_count,
            on_demand_usd_per_hour=itype.on_demand_usd_per_hour * launch.instance_count)
        self._plans[burst.uid] = plan
        while len(self._plans) > PLANS_KEPT:
            self._plans.popitem(last=False)
        return plan

    def _plan_says_switch(self, burst: Burst, job: JobRequest, described: dict, now: float) -> bool:
        """Once a plan tick: what the current training job shows of spot updates the belief, and
        the plan says whether to change capacity. The tick and the belief go to the ledger first,
        so a restarted controller neither acts twice in a tick nor forgets what it saw."""
        tick = self._tick_of(burst, now)
        if tick <= burst.plan_tick:
            return False
        plan = self._plan_of(burst)
        belief = SpotBelief(*burst.belief) if burst.belief else SpotBelief()
        on_spot = _on_spot(burst, len(burst.names) - 1)
        switch = False
        if plan is not None:
            created = burst.started.get(burst.current_name, burst.launched_at)
            seen = spot_seen_in_status(described.get("SecondaryStatus"), now - created,
                                       self.policy.spec.sage_maker.startup_seconds)
            switch, belief = planned_switch(plan, belief, tick=tick, on_spot=on_spot, seen=seen,
                                            progress_seconds=self._progress(burst, job, described, now))

        def record(b: Burst) -> bool:
            if b.plan_tick >= tick:
                return False
            b.plan_tick, b.belief = tick, list(belief) if belief.available is not None else None
            return True

        return self.ledger.change(burst.uid, record) is not None and switch

    def _stop(self, burst: Burst, name: str) -> None:
        steps = self._steps(burst)
        if steps is not None:
            steps.stop(self.kube, self.sagemaker, burst.namespace, name, EmitTarget(burst.emit))
            return
        if burst.emit == EmitTarget.API.value:
            if self.sagemaker is not None:
                self.sagemaker.stop(name)
        else:  # the SageMaker controller's finalizer stops the training job
            self.kube.delete_custom(CR_API_VERSION[EmitTarget(burst.emit)], CR_PLURAL, burst.namespace, name)

    def _stop_deleted(self, burst: Burst, manifest: dict | None, now: float) -> None:
        """The Job was deleted: stop its SageMaker work, book what it cost, let the Job go."""
        self._stop_burst(burst, None, now, "Stopped/JobDeleted")
        if manifest is not None and C.FINALIZER in (manifest["metadata"].get("finalizers") or []):
            self._patch(manifest, {}, finalizers=[])
        log.info("%s was deleted: stopped %s", burst.job, ", ".join(burst.names))

    def _stop_burst(self, burst: Burst, manifest: dict | None, now: float, status: str) -> None:
        """Stop the burst's SageMaker work and book what it cost; manifest, if given, is told."""
        for name in burst.names:
            self._stop(burst, name)
        described = self._described_by_sagemaker(burst, burst.current_name)
        cost = self._cost(burst, burst.current_name, described, now) if described else burst.committed_usd
        self._finish(burst, manifest, burst.current_name, cost, status, {"TrainingJobStatus": "Stopped"}, now)

    # --- the virtual node's pods (spec.sageMaker.burstAs: virtualNode; see scheduler.node_agent) -------

    def _virtual_node_pods(self) -> dict[str, list[dict]]:
        """The pods bound to the virtual node, by the UID of the Job that owns them. The node is made
        first (a controller that acts once, or before its keeper's first beat, needs it too)."""
        if self.burst_as != BurstAs.VIRTUAL_NODE and \
                not any(b.via == BurstAs.VIRTUAL_NODE.value for b in self.ledger.bursts.values()):
            return {}
        if not self._node_kept and self.burst_as == BurstAs.VIRTUAL_NODE:
            self.virtual_node.ensure()
            self.virtual_node.heartbeat()
            self._node_kept = True
        out: dict[str, list[dict]] = {}
        for pod in self.kube.list_pods(field_selector=f"spec.nodeName={self.virtual_node.name}"):
            out.setdefault(owner_uid(pod), []).append(pod)
        return out

    def jobs_of(self, namespace: str, pod: str) -> BurstJobs | None:
        """The training (or transform) jobs a pod on the virtual node stands for, in order (its
        kubelet API serves their logs); None if it is no burst's pod."""
        found = next((p for pods in list(self._vpods.values()) for p in pods
                      if (p["metadata"]["namespace"], p["metadata"]["name"]) == (namespace, pod)), None)
        if found is None:
            try:
                found = self.kube.get_pod(namespace, pod)
            except KubeError:
                return None
        burst = self.ledger.bursts.get(owner_uid(found))
        if burst is None or (found.get("spec") or {}).get("nodeName") != self.virtual_node.name:
            return None
        steps = self._steps(burst)
        return BurstJobs(*steps.logged(self.sagemaker, burst.names)) if steps is not None else \
            BurstJobs(list(burst.names), _job_words(burst))

    def _tend(self, item: tuple[str, list[dict]], world: World, now: float) -> None:
        """What a kubelet does for its pods, for the pods of one Job: each shows its training job;
        one being deleted stops it and is removed; one that is no burst's is failed, never run."""
        uid, pods = item
        burst = self.ledger.bursts.get(uid)
        manifest = world.jobs_by_uid.get(uid)
        for pod in pods:
            meta = pod["metadata"]
            if meta.get("deletionTimestamp"):
                if burst is not None and burst.state != DONE and manifest is not None \
                        and not manifest["metadata"].get("deletionTimestamp"):
                    self._stop_burst(burst, manifest, now, "Stopped/PodDeleted")
                self.kube.delete_pod(meta["namespace"], meta["name"], grace_period_seconds=0)
                continue
            if burst is None or burst.via != BurstAs.VIRTUAL_NODE.value or manifest is None:
                self._pod_status(pod, refused(pod, now, PodReason.NOT_A_BURST, (
                    f"only the pods of Jobs that Spillway bursts run on {C.VIRTUAL_NODE_NAME}; "
                    "this pod was not placed there by Spillway")))
                continue
            steps = self._steps(burst)
            if live(pod) and meta["uid"] not in burst.pods and burst.state == DONE \
                    and not burst.outcome.startswith("Completed") and (steps is None or steps.retried_by_backoff_limit):
                burst = self._retry(burst, manifest, pod, now)
                continue
            name, described = self._last_described.get(uid, ("", None))
            described = described if name == burst.current_name else None
            show = shown(done=burst.state == DONE, described=described, outcome=burst.outcome,
                         name=burst.current_name, what=_job_words(burst))
            if steps is not None:
                show = steps.pod_shown(show, pod, described)
            self._pod_status(pod, pod_status(pod, show, now))

    def _retry(self, burst: Burst, manifest: dict, pod: dict, now: float) -> Burst:
        """A new pod of a Job whose training job failed: backoffLimit asks for another try. It is
        a new training job, committed against the budget like the first, and never past it."""
        each = burst.attempt_usd or burst.committed_usd
        spend = next((s for s in self.ledger.spend(now) if s.namespace == burst.namespace), None)
        committed = sum(c.committed_usd for c in self.ledger.in_flight() if c.namespace == burst.namespace)
        left, which = self.policy.budget_for(burst.namespace).left(
            spend.today_usd if spend else 0.0, spend.month_usd if spend else 0.0, committed)
        try:
            job = self._job_of(manifest)
        except InputError as exc:
            job, left, why = None, -1.0, str(exc)
        else:
            why = (f"backoffLimit asks for another SageMaker training job (${each:.2f} committed), but the "
                   f"{which} budget of namespace {burst.namespace} has ${max(left, 0.0):.2f} left")
        if job is None or left < each:
            self._pod_status(pod, refused(pod, now, PodReason.OVER_BUDGET, why))
            self._event(manifest, EventReason.RETRY_REFUSED.value, why, now, warning=True)
            return burst
        attempt = len(burst.names)
        updated = self.ledger.change(burst.uid, lambda b: _again(b, training_job_name(job, attempt), each, now))
        if updated is None:
            return burst
        self._event(manifest, EventReason.LAUNCHED.value, f"training job {burst.current_name} ended "
                    f"{burst.outcome}; backoffLimit retries it as {updated.current_name}", now)
        self._create(updated, manifest, job, now)
        return self.ledger.bursts.get(burst.uid, updated)

    def _pod_status(self, pod: dict, status: dict | None) -> None:
        if status is None:
            return
        meta = pod["metadata"]
        try:
            self.kube.patch_pod_status(meta["namespace"], meta["name"], {"status": status})
        except KubeError as exc:
            if not exc.not_found:
                raise
            return
        self._wrote()

    # --- writes ----------------------------------------------------------------------------------------

    def _patch(self, manifest: dict, ann: dict, *, spec: dict | None = None,
               finalizers: list[str] | None = None, retry: bool = True) -> bool:
        """One merge patch of the Job, guarded by its resourceVersion. On a conflict, the Job is
        read again: if only its status moved (its Job controller writes that), the patch goes
        again on the new version; if its spec or annotations changed, False (the next cycle
        decides on what the Job says now)."""
        meta = manifest["metadata"]
        current = annotations_of(manifest)
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
            if exc.conflict and retry:
                try:
                    fresh = self.kube.get_job(meta["namespace"], meta["name"])
                except KubeError as again:
                    if again.not_found:
                        return False
                    raise
                if fresh["metadata"].get("generation") == meta.get("generation") and \
                        annotations_of(fresh) == current and fresh["metadata"].get("finalizers") == meta.get("finalizers"):
                    manifest["metadata"] = fresh["metadata"]
                    return self._patch(manifest, ann, spec=spec, finalizers=finalizers, retry=False)
            if exc.conflict or exc.not_found:
                log.info("%s changed while we decided (%s); next cycle", key_of(manifest), exc.reason)
                return False
            raise
        self._wrote()
        manifest["metadata"] = updated["metadata"]  # later writes this cycle build on this version
        return True

    def _event(self, manifest: dict, reason: str, message: str, now: float, *, warning: bool = False) -> None:
        """Queue an Event; the cycle sends its Events after all its state writes (state first,
        history second: a Job is placed as soon as it can be). The log says it too, as it happens."""
        log.log(logging.WARNING if warning else logging.INFO, "%s: %s: %s", key_of(manifest), reason, message)
        with self._count:
            self._events.append((manifest, reason, message, now, warning))

    def _send_events(self) -> None:
        with self._count:
            queued, self._events = self._events, []
        self._each(self._send_event, queued)

    def _send_event(self, item: tuple) -> None:
        manifest, reason, message, now, warning = item
        try:
            self.kube.event(manifest, reason, message, warning=warning, now=format_time(now))
            self._wrote()
        except KubeError as exc:  # an Event is history, not state: never fail a cycle for one
            log.warning("could not record event %s on %s: %s", reason, key_of(manifest), exc)

    def _wrote(self) -> None:
        with self._count:
            self._writes += 1


PLANS_KEPT = 8
LOG_ATTEMPTS = 5  # reads of a finished trial's log before it is recorded as unreadable
LOG_RETRY_SECONDS = 10.0  # between them: about 40 s before its sweep goes on without it


def _on_spot(burst: Burst, attempt: int) -> bool:
    """Whether a burst's attempt-th training job runs on managed spot: a spot launch's relaunches
    alternate between on-demand and spot."""
    return burst.launch.spot and attempt % 2 == 0


def _job_words(burst: Burst) -> str:
    """How messages name the burst's SageMaker job: training job, or transform job."""
    return SageMakerKind(burst.launch.kind).job_words


def _mark_running(b: Burst, name: str, arn: str, cost: float | None = None, status: str | None = None) -> bool:
    before = (b.state, b.arns.get(name), b.costs.get(name), b.outcome)
    if b.state == LAUNCHING:
        b.state = RUNNING
    if arn:
        b.arns[name] = arn
    if cost is not None:
        b.costs[name] = round(cost, 6)
    if status is not None:
        b.outcome = status
    return (b.state, b.arns.get(name), b.costs.get(name), b.outcome) != before


def _wake_on(stop: threading.Event, changed: threading.Event) -> None:
    stop.wait()
    changed.set()


def _to_virtual_node(manifest: dict) -> dict | None:
    """The spec patch that runs a burst's Job on the virtual node: its template's scheduling
    directives (allowed on a suspended Job that never started), and suspend: false."""
    spec = manifest.get("spec") or {}
    out: dict = {}
    patch = template_patch((spec.get("template") or {}).get("spec") or {})
    if patch is not None:
        out["template"] = {"spec": patch}
    if spec.get("suspend") or out:
        out["suspend"] = False
    return out or None


def _ran_for(b: Burst, uids: list[str]) -> bool:
    new = [u for u in uids if u not in b.pods]
    b.pods.extend(new)
    return bool(new)


def _ended(b: Burst, outcome: str, now: float) -> bool:
    if b.state == DONE:
        return False
    b.outcome, b.state, b.ended_at = outcome, DONE, now
    return True


def _again(b: Burst, name: str, each: float, now: float) -> bool:
    """A backoffLimit retry: the next training job, committed again on top of what the burst cost."""
    if b.state != DONE or name in b.names:
        return False
    b.names.append(name)
    b.started[name] = now
    b.committed_usd = round(b.cost_usd + each, 6)
    b.state, b.outcome, b.ended_at = LAUNCHING, "", None
    return True


def _stamp(t: float) -> str:
    """RFC 3339 to the millisecond: when a decision was made, precisely enough to measure by."""
    return f"{format_time(t)[:-1]}.{int(round(t % 1, 3) * 1000) % 1000:03d}Z"


def _seconds(t) -> float:
    return t.timestamp() if hasattr(t, "timestamp") else parse_time(str(t))


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
        if t.get("Status") != "Training" or t.get("StartTime") is None:
            continue
        end = t.get("EndTime")
        total += max((_seconds(end) if end is not None else now) - _seconds(t["StartTime"]), 0.0)
    return total
