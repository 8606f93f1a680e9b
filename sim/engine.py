"""The discrete-event simulator: a virtual cluster and cloud, driven by policies.plan().

At every controller cycle (a tick, or every event with tick=0) the engine builds the same
Snapshot the controller builds from the Kubernetes API and calls policies.plan(); it then does
what the controller would do with each Decision. There is no decision logic here: the world
only moves (Jobs arrive, run, finish; spot capacity comes and goes; money is spent).

Deterministic: an event heap ordered by (time, kind, sequence), and one seeded numpy Generator
per burst, so the same inputs and seed give the same report, byte for byte.
"""

from __future__ import annotations

import heapq
import math
import sys
from dataclasses import dataclass, field
from typing import Any, Callable, Literal

import numpy as np

from policies import BurstPolicy, Decision, InputError, InputIssue, Placement, Plan, Reason
from policies.queue import QueuePlanner, cycle_actions
from policies.decide import policy_catalog
from policies.model import CloudJob, JobRequest, Node, RunningPod, Snapshot, Spend
from policies.forecast import CapacityTimeline, Derived
from policies.spot import (MOVING_FALLBACK, BlindSpotPlan, SpotBelief, planned_switch, policy_burst_plan, spot_fallback_due,
                           spot_fallback_time)

from .cloud import CloudModel, PoissonInterruptions, availability
from .kind_requests import kind_request_fields
from .sweep_burst import SweepOutcome, SweepShape, run_sweep
from .traces import TraceJob

# A queue this long, planned whole at every cycle, makes a run crawl; the progress bar says how to bound it.
LONG_QUEUE = 10_000
SIM_EPOCH = 1767571200.0  # 2026-01-05T00:00:00Z: a Monday; budgets reset at UTC midnights from here
INF = math.inf
# Event kinds, in the order they are handled at equal times: ends free GPUs before anyone decides.
# (Arrivals are read from the sorted trace, not the heap.)
LOCAL_END, CLOUD_EVENT, WAKE, TICK, REVIEW, PLAN_TICK = range(6)


NOT_ALLOWED = (Reason.BURST_NOT_ALLOWED, Reason.NO_INSTANCE_TYPE)
# Why a Job may not burst that no later event in a simulation can change (budgets reset, quota frees up).
NEVER_UNBLOCKED = (*NOT_ALLOWED, Reason.NOT_TRANSLATABLE, Reason.FORCED_LOCAL)


def _checkpoint_uri(job: TraceJob, policy: BurstPolicy) -> str | None:
    """Where a checkpointable trace Job keeps its checkpoints: under the first S3 prefix the policy
    allows for its namespace, as a user would set spillway.io/checkpoint-s3-uri. A URI the policy
    refuses would keep the Job from bursting for a reason no real Job would have."""
    allow = policy.allowlist_for(job.namespace) if job.checkpointable else None
    if allow is None or not allow.s3_prefixes:
        return None
    return f"{allow.s3_prefixes[0].rstrip('/')}/{job.namespace}/{job.name or f'job-{job.id}'}/checkpoints/"


@dataclass
class JobRecord:
    trace: TraceJob
    request: JobRequest
    placement: str = ""
    reason: str = ""
    start: float | None = None  # when the Job stopped waiting: local start or SageMaker launch
    finish: float | None = None
    spot_usd: float = 0.0
    on_demand_usd: float = 0.0
    wasted_usd: float = 0.0
    preemptions: int = 0
    fell_back: bool = False
    back_to_spot: int = 0  # spot.fallback planned: relaunches from on-demand back on managed spot
    budget_blocked: bool = False
    budget_blocked_at: float | None = None  # first decided BudgetExhausted: it waited for money from then
    quota_blocked: bool = False
    unplanned: bool = False  # it waited behind the first local.planningDepth Jobs (QueuedBeyondPlanningDepth)
    not_allowed: str = ""  # why the policy let this Job not burst (allowlists, allowed types), if it did not
    instance_type: str = ""

    @property
    def cloud_usd(self) -> float:
        return self.spot_usd + self.on_demand_usd


def _estimate(req: JobRequest) -> float:
    """The run-time estimate of a simulated Job's request (the engine gives every one), as the core
    reckons it: a sweep's is a trial's times its waves (policies.forecast.estimate_runtime)."""
    assert req.runtime_estimate_seconds is not None
    return req.runtime_estimate_seconds * req.waves if req.is_tuning else req.runtime_estimate_seconds


@dataclass
class _CloudRun:
    record: JobRecord
    spot: bool
    launched: float
    od_rate: float  # USD per second, all instances
    spot_rate: float
    committed: float
    work_left: float
    max_wait_end: float = INF
    fallback_time: float = INF
    deadline: float | None = None
    state: str = "starting"  # starting | running | waiting | done
    phase_start: float = 0.0
    avail: Any = None  # a spot burst's sim.cloud.availability(): Always, Poisson or Trace (duck-typed)
    version: int = 0
    progress: float = 0.0
    instance_type: str = ""
    count: int = 1
    pending_overhead: float = 0.0  # wall time to pay before progress resumes (start-up, restore)
    segment_overhead: float = 0.0
    plan: BlindSpotPlan | None = None  # spot.fallback planned: the burst's BlindSpotPlan, its belief, its last tick
    belief: SpotBelief = SpotBelief()
    sweep: SweepOutcome | None = None  # a tuning burst: its trials, worked out at launch (sim.sweep_burst)


@dataclass
class SimConfig:
    nodes: tuple[Node, ...]
    policy: BurstPolicy
    cloud: CloudModel = field(default_factory=CloudModel)
    tick_seconds: float = 60.0  # 0: decide at every event (exact reproductions)
    seed: int = 0
    optimizer: Literal["greedy", "cpsat"] = "greedy"
    estimate_error: float = 0.0  # runtime estimates = truth x lognormal(0, this)
    progress: bool = False
    skip_waiting: bool = True  # let the QueuePlanner skip Jobs whose decision cannot have changed


def on_grid(t: float) -> float:
    """Round a simulation time to what the absolute clock (SIM_EPOCH + t) can tell apart.

    The core sees absolute times, where a double resolves about 0.2 us; two instants it cannot
    tell apart must be one instant here too, or a pod could end "after" a decision the core
    already saw it end for. SIM_EPOCH + t, minus SIM_EPOCH, is exact (Sterbenz)."""
    return (SIM_EPOCH + t) - SIM_EPOCH if t != INF else t


class Simulation:
    def __init__(self, jobs: list[TraceJob], config: SimConfig):
        self.cfg = config
        self.policy = config.policy
        self.catalog = policy_catalog(config.policy)
        self.heap: list = []
        self.seq = 0
        self.now = 0.0
        self.free = {n.name: (n.allocatable_gpus if n.schedulable else 0) for n in config.nodes}
        self.total_gpus = sum(self.free.values())
        self.busy_gpus = 0
        self.busy_gpu_seconds = 0.0
        self.busy_at_last_arrival = 0.0  # busy GPU-seconds up to the last arrival (utilization window)
        self.last_t = 0.0
        self.pending: dict[int, JobRecord] = {}
        self.pending_namespaces: dict[str, int] = {}
        self.planner = QueuePlanner(config.policy, optimizer=config.optimizer, skip_waiting=config.skip_waiting)
        self.review_time = INF
        self._months: dict[int, int] = {}
        self._progress_fallback = config.policy.spec.spot.fallback in MOVING_FALLBACK
        self.local: dict[int, tuple[list[tuple[str, int]], float, float]] = {}
        self.cloud: dict[int, _CloudRun] = {}
        self.spot_with_deadline: dict[int, _CloudRun] = {}  # what the safety net watches each cycle
        self.records: list[JobRecord] = []
        self.spend_day: dict[tuple[str, int], float] = {}
        self.spend_month: dict[tuple[str, int], float] = {}
        self.decision_points = 0
        self._long_queue_told = False  # the progress bar named local.planningDepth once
        self.events = 0
        self.samples: list[tuple[float, int, int, float]] = []  # (t, queue, busy GPUs, cloud $ so far)
        self._cloud_usd = 0.0
        self._by_key: dict[str, JobRecord] = {}
        self.inflight: dict[tuple[str, str], list] = {}  # (namespace, type) -> [instances, committed USD]
        self.money_version = 0  # bumped when inflight, spend or the namespaces with a queue change
        self._money_cache: tuple = (None, (), ())  # ((version, day), cloud, spend) for _snapshot
        self.wake_at: dict[int, float] = {}
        self.next_arrival = 0
        self.finished = 0
        self.dirty = False
        self.ticks_pending: set[float] = set()
        if any(b.arrival_s < a.arrival_s for a, b in zip(jobs, jobs[1:])):
            raise ValueError("trace jobs must be sorted by arrival")
        # With exact estimates, every pod frees its GPUs at its expected end, so one capacity timeline
        # kept up to date at each start and end gives the core what it would rebuild from the pods.
        self.capacity = (CapacityTimeline.from_nodes(SIM_EPOCH, config.nodes, [])
                         if config.estimate_error == 0 else None)
        est_rng = np.random.default_rng([config.seed, 1])
        for index, job in enumerate(jobs):
            factor = float(np.exp(est_rng.normal(0, config.estimate_error))) if config.estimate_error else 1.0
            request = JobRequest(
                namespace=job.namespace, name=job.name or f"job-{job.id}", gpus_per_pod=job.gpus_per_pod,
                pods=job.pods, gpu_product=job.gpu_product, submit_time=SIM_EPOCH + job.arrival_s,
                uid=str(index), runtime_estimate_seconds=max(job.duration_s * factor, 1.0),
                deadline=None if job.deadline_s is None else SIM_EPOCH + job.deadline_s,
                checkpoint_s3_uri=_checkpoint_uri(job, config.policy),
                image="trace", opted_in=True, **kind_request_fields(job))
            record = JobRecord(job, request)
            self.records.append(record)
            if request.key in self._by_key:
                raise ValueError(f"two trace jobs are both named {request.key}; names must be unique")
            self._by_key[request.key] = record

    # --- the loop -----------------------------------------------------------------------------------

    def run(self) -> list[JobRecord]:
        """Advance until every Job has finished. A cycle runs only when something changed that a
        decision may read (a Job arrived or ended; a burst ended under a budget, or of a type with a
        quota, or while spot Jobs with deadlines run), the planner's review time came, or a Wait's
        requeue came that the planner says may change it; with a tick, at the first tick at or
        after that moment. The controller runs a cycle at other changes too; there it changes
        nothing."""
        total = len(self.records)
        report_every = max(total // 1000, 1)
        next_report = report_every
        bar = self._progress_bar(total) if self.cfg.progress else None
        handlers = (self._on_local_end, self._on_cloud_event, self._on_wake, self._on_tick, self._on_review,
                    self._on_plan_tick)  # by kind: LOCAL_END, CLOUD_EVENT, WAKE, TICK, REVIEW, PLAN_TICK
        while self.finished < total:
            t = self._next_time(total)
            self._advance(t)
            self._arrivals_at(t, total)
            cycle = self._events_at(t, handlers)
            if self.cfg.tick_seconds == 0 and self.dirty:
                cycle = True
            if cycle:
                self.dirty = False
                self._cycle()
            if bar is not None and self.finished >= next_report:
                next_report += report_every
                self._report_progress(bar, t)
        if bar is not None:
            self._report_progress(bar, self.now)
            bar.close()
        self._sample()
        return self.records

    def _next_time(self, total: int) -> float:
        """The next time anything happens: the first event on the heap, or the next arrival."""
        t_heap = self.heap[0][0] if self.heap else INF
        t_arrival = on_grid(self.records[self.next_arrival].trace.arrival_s) if self.next_arrival < total else INF
        t = min(t_heap, t_arrival)
        if t == INF:
            raise RuntimeError(f"{total - self.finished} Jobs can never run: {self._stuck_message()}")
        return t

    def _arrivals_at(self, t: float, total: int) -> None:
        """The Jobs that arrive at t join the queue."""
        while self.next_arrival < total and on_grid(self.records[self.next_arrival].trace.arrival_s) == t:
            record = self.pending[self.next_arrival] = self.records[self.next_arrival]
            self.planner.add(record.request)
            ns = record.request.namespace
            self.pending_namespaces[ns] = self.pending_namespaces.get(ns, 0) + 1
            self.money_version += self.pending_namespaces[ns] == 1
            self.next_arrival += 1
            self.events += 1
            self.busy_at_last_arrival = self.busy_gpu_seconds
            self._changed()

    def _events_at(self, t: float, handlers: tuple[Callable[[Any, float], bool], ...]) -> bool:
        """The events due at t, in heap order, each to its kind's handler; True when a controller
        tick is among them."""
        cycle = False
        while self.heap and self.heap[0][0] == t:
            _, kind, _, payload = heapq.heappop(self.heap)
            self.events += 1
            if handlers[kind](payload, t):
                cycle = True
        return cycle

    def _on_local_end(self, job_id: int, t: float) -> bool:
        self._end_local(job_id)
        self._changed()
        return False

    def _on_cloud_event(self, payload: tuple[int, int], t: float) -> bool:
        job_id, version = payload
        run = self.cloud.get(job_id)
        if run is not None and run.version == version:
            if self._cloud_step(run) and self._spend_matters(run.instance_type):
                self._changed()
        return False

    def _on_wake(self, payload: tuple[int, float], t: float) -> bool:
        job_id, wake = payload
        if self.wake_at.get(job_id) == wake:
            del self.wake_at[job_id]
            if job_id in self.pending:
                self._request_cycle(t)
        return False

    def _on_tick(self, payload: None, t: float) -> bool:
        self.ticks_pending.discard(t)
        return True

    def _on_review(self, payload: None, t: float) -> bool:
        if self.review_time == t:
            self.review_time = INF
            self._request_cycle(t)
        return False

    def _on_plan_tick(self, payload: tuple[int, int], t: float) -> bool:
        job_id, tick = payload
        run = self.cloud.get(job_id)
        if run is not None and run.plan is not None:
            self._plan_tick(run, tick)
        return False

    def _progress_bar(self, total: int):
        from tqdm import tqdm  # the sim extra

        return tqdm(total=total, desc="simulating", unit="job", file=sys.stderr, mininterval=0.5,
                    bar_format="{desc}: {percentage:3.0f}%|{bar:20}| {n_fmt}/{total_fmt} Jobs "
                               "[{elapsed}<{remaining}{postfix}]")

    def _report_progress(self, bar, t: float) -> None:
        bar.update(self.finished - bar.n)
        queued = len(self.pending)
        bar.set_postfix_str(f"simulated day {t / 86400:.1f}, {queued:,} queued", refresh=False)
        if queued >= LONG_QUEUE and not self._long_queue_told and self.policy.spec.local.planning_depth is None:
            self._long_queue_told = True
            bar.write(f"{queued:,} Jobs are queued (a budget or a full cluster holds them back), and every cycle "
                      "plans them all, which slows the run; local.planningDepth bounds that work (see "
                      "`spillway sim --help`).", file=sys.stderr)

    def _changed(self) -> None:
        self.dirty = True
        if self.cfg.tick_seconds > 0:
            self._request_cycle(self.now)

    def _spend_matters(self, instance_type: str) -> bool:
        """Whether the controller's cycle on a burst (of this type) ending could do anything: the
        planner says whether a decision may change, and the spot safety net runs in every cycle."""
        return self.planner.spend_matters(instance_type) or bool(self.spot_with_deadline)

    def _request_cycle(self, t: float) -> None:
        """Ask for a controller cycle at t (event mode) or at the first tick at or after t."""
        if self.cfg.tick_seconds == 0:
            self.dirty = True
            return
        at = self._next_tick(t)
        if at not in self.ticks_pending:
            self.ticks_pending.add(at)
            self._push(at, TICK, None)

    def _stuck_message(self) -> str:
        stuck = list(self.pending.values())[:3]
        return "; ".join(f"{r.request.key} ({r.reason or 'undecided'})" for r in stuck)

    def _next_tick(self, t: float) -> float:
        tick = self.cfg.tick_seconds
        return math.ceil(t / tick) * tick

    def _push(self, t: float, kind: int, payload) -> None:
        self.seq += 1
        heapq.heappush(self.heap, (on_grid(t), kind, self.seq, payload))

    def _advance(self, t: float) -> None:
        self.busy_gpu_seconds += self.busy_gpus * (t - self.last_t)
        self.last_t = self.now = t

    # --- one controller cycle -----------------------------------------------------------------------

    def _cycle(self) -> None:
        self._spot_safety_net()
        if not self.pending:
            return
        self.decision_points += 1
        now_abs = SIM_EPOCH + self.now
        snapshot = self._snapshot(now_abs)
        # the timeline kept as pods start and end rides along, so the core need not rebuild it
        result = self.planner.plan(snapshot, now_abs, Derived(snapshot, self.policy, capacity=self.capacity))
        if result.review_at is not None and on_grid(result.review_at - SIM_EPOCH) != self.review_time:
            self.review_time = on_grid(result.review_at - SIM_EPOCH)
            self._push(self.review_time, REVIEW, None)
        for decision in result.decisions:
            self._record(decision)
        self._act(result, now_abs)
        self._sample()

    def _record(self, decision: Decision) -> None:
        """What a decision says of its Job's record: its reason, and what held it back."""
        record = self._by_key[decision.job]
        record.reason = decision.reason.value
        if decision.reason == Reason.BUDGET_EXHAUSTED:
            record.budget_blocked = True
            if record.budget_blocked_at is None:
                record.budget_blocked_at = self.now
        elif decision.reason == Reason.QUOTA_EXHAUSTED:
            record.quota_blocked = True
        elif decision.reason == Reason.QUEUED_BEYOND_PLANNING_DEPTH:
            record.unplanned = True
        if decision.evidence.blocked_reason in NOT_ALLOWED:  # whatever the placement: a Local
            record.not_allowed = decision.evidence.blocked  # start hides it from the reason
        if (decision.placement == Placement.WAIT and decision.evidence.local_start_time == INF
                and decision.evidence.blocked_reason in NEVER_UNBLOCKED):
            # The controller would keep it waiting for a node that fits; here the nodes never
            # change, so it would wait (and the simulation run) forever.
            raise InputError([InputIssue("trace", decision.job, f"can never run: {decision.message}",
                                         "give the cluster nodes it fits on, or a policy that lets it burst")])

    def _act(self, result: Plan, now_abs: float) -> None:
        """What to do with the decisions is the controller's reading too (policies.queue.actions);
        times stay relative to the simulation clock, where they are exact."""
        actions = cycle_actions(result, now_abs)
        for decision in actions.start_local:
            self._start_local(self._by_key[decision.job], decision)
        for decision in actions.launch:
            self._launch(self._by_key[decision.job], decision)
        for decision in actions.keep_queued:
            record = self._by_key[decision.job]
            self.planner.add(record.request)
            if math.isfinite(decision.evidence.local_wait_seconds):
                self._wake(int(record.request.uid), self.now + decision.evidence.local_wait_seconds)
        for decision, _ in actions.requeue:
            if decision.placement == Placement.WAIT and self.planner.decides_on_requeue(decision.job):
                assert decision.requeue_after_seconds is not None  # a Wait says when to look again
                self._wake(int(self._by_key[decision.job].request.uid), self.now + decision.requeue_after_seconds)

    def _sample(self) -> None:
        """A point of the timeline plots, taken whenever the queue, the busy GPUs or the spend may
        have changed (cycles, Job ends, bills), so the plots hold no value longer than it held."""
        self.samples.append((self.now, len(self.pending), self.busy_gpus, self._cloud_usd))

    def _unqueue(self, job_id: int) -> None:
        """The Job left the queue (the planner dropped it when it placed it)."""
        record = self.pending.pop(job_id)
        self.pending_namespaces[record.request.namespace] -= 1
        self.money_version += self.pending_namespaces[record.request.namespace] == 0

    def _wake(self, job_id: int, t: float) -> None:
        """A Wait's RequeueAfter. One live wake-up per Job: a newer decision replaces the older."""
        if self.wake_at.get(job_id) != t:
            self.wake_at[job_id] = t
            self._push(t, WAKE, (job_id, t))

    def _snapshot(self, now_abs: float) -> Snapshot:
        if self.capacity is not None:
            self.capacity.advance(now_abs)
        running = []
        for job_id, (nodes, start, _end) in ([] if self.capacity is not None else self.local.items()):
            req = self.records[job_id].request
            expected = (SIM_EPOCH + start) + _estimate(req)  # as _start_local reckons it
            for node, gpus in nodes:
                running.append(RunningPod(req.key, node, gpus, SIM_EPOCH + start, expected))
        day, month = self._day_month(now_abs)
        key, cloud, spend = self._money_cache
        if key != (self.money_version, day):
            # In-flight bursts, summed per (namespace, type): all the core reads of them is quota and budget.
            cloud = tuple(CloudJob(f"{ns}/*", ns, itype, count, committed)
                          for (ns, itype), (count, committed) in sorted(self.inflight.items()) if count)
            spend = tuple(Spend(ns, self.spend_day.get((ns, day), 0.0), self.spend_month.get((ns, month), 0.0))
                          for ns, count in sorted(self.pending_namespaces.items()) if count)
            self._money_cache = ((self.money_version, day), cloud, spend)
        return Snapshot(now_abs, self.cfg.nodes, tuple(running), cloud, spend)

    def _day_month(self, abs_time: float) -> tuple[int, int]:
        """(UTC day number, month number) of an absolute time; months are looked up once per day."""
        day = int(abs_time // 86400)
        month = self._months.get(day)
        if month is None:
            from datetime import datetime, timezone

            dt = datetime.fromtimestamp(day * 86400, tz=timezone.utc)
            month = self._months[day] = dt.year * 12 + dt.month
        return day, month

    # --- local ---------------------------------------------------------------------------------------

    def _start_local(self, record: JobRecord, decision) -> None:
        req = record.request
        nodes = []
        for name, pods in zip(decision.local_nodes, decision.local_pods):
            gpus = req.gpus_per_pod * pods
            if self.free[name] < gpus:
                raise RuntimeError(f"plan() placed {req.key} on {name} with {self.free[name]} GPUs free; "
                                   f"it needs {gpus}")
            self.free[name] -= gpus
            nodes.append((name, gpus))
        self.busy_gpus += req.total_gpus
        job_id = int(req.uid)
        # Absolute times as the core computes them (its reservation of this start ends at
        # now + estimate), so the timeline kept here equals the one the QueuePlanner assumed;
        # the end, relative again, is exact (Sterbenz) and on the grid.
        now_abs = SIM_EPOCH + self.now
        end = (now_abs + record.trace.run_seconds) - SIM_EPOCH
        if self.capacity is not None:
            self.capacity.advance(now_abs)
            for name, gpus in nodes:
                self.capacity.occupy(name, gpus, now_abs + _estimate(req))
        self.local[job_id] = (nodes, self.now, end)
        self._unqueue(job_id)
        record.placement, record.start = Placement.LOCAL.value, self.now
        self._push(end, LOCAL_END, job_id)

    def _end_local(self, job_id: int) -> None:
        nodes, start, end = self.local.pop(job_id)
        expected = (SIM_EPOCH + start) + _estimate(self.records[job_id].request)
        for name, gpus in nodes:
            self.free[name] += gpus
            self.busy_gpus -= gpus
            if self.capacity is not None and expected != SIM_EPOCH + end:
                self.capacity.advance(SIM_EPOCH + end)
                self.capacity.release(name, gpus, expected)
        self.records[job_id].finish = end
        self.finished += 1
        self._sample()

    # --- cloud ---------------------------------------------------------------------------------------

    def _launch(self, record: JobRecord, decision) -> None:
        launch = decision.launch
        itype = self.catalog.get(launch.instance_type, launch.region)
        assert itype is not None  # the core launched it from this catalog
        job_id = int(record.request.uid)
        self._unqueue(job_id)
        committed = next(o.committed_usd for o in decision.evidence.options if o.placement == decision.placement)
        # A transform burst is on-demand only, at the transform price (the core launched it on a type with one).
        od_per_hour = itype.transform_usd_per_hour if record.request.is_transform else itype.on_demand_usd_per_hour
        assert od_per_hour is not None
        run = _CloudRun(record, launch.spot, self.now, od_per_hour * launch.instance_count / 3600,
                        itype.spot_usd_per_hour * launch.instance_count / 3600, committed, record.trace.duration_s,
                        instance_type=launch.instance_type, count=launch.instance_count,
                        deadline=None if record.request.deadline is None else record.request.deadline - SIM_EPOCH)
        record.placement, record.start, record.instance_type = decision.placement.value, self.now, launch.instance_type
        self.cloud[job_id] = run
        agg = self.inflight.setdefault((record.request.namespace, launch.instance_type), [0, 0.0])
        self.money_version += 1
        agg[0] += launch.instance_count
        agg[1] += committed
        if record.request.is_tuning:
            self._launch_sweep(run, itype.interruptions_per_hour)
        elif launch.spot:
            rng = np.random.default_rng([self.cfg.seed, 2, job_id])
            rate = itype.interruptions_per_hour * launch.instance_count
            run.avail = availability(self.cfg.cloud, rate, rng)
            run.max_wait_end = self.now + (launch.sagemaker_max_wait_seconds or INF)
            run.fallback_time = (launch.fallback_time - SIM_EPOCH) if launch.fallback_time else INF
            if run.deadline is not None:
                self.spot_with_deadline[job_id] = run
                self._plan_burst(run, record, decision)
            self._spot_begin(run, overhead=self.cfg.cloud.startup_seconds)
        else:
            self._phase(run, "running", self.now + self.startup_for(record.request) + run.work_left)

    def startup_for(self, req: JobRequest) -> float:
        """SageMaker's start-up in this world for the Job's kind: a transform job has its own."""
        return self.cfg.cloud.transform_startup_seconds if req.is_transform else self.cfg.cloud.startup_seconds

    def _launch_sweep(self, run: _CloudRun, interruptions_per_hour: float) -> None:
        """A tuning burst: its trials, one instance each, worked out now; it ends when the last does."""
        rec = run.record
        trace, job_id = rec.trace, int(rec.request.uid)
        shape = SweepShape(trace.trials, min(trace.pods, trace.trials), trace.duration_s, self.cfg.cloud.startup_seconds,
                           (run.spot_rate if run.spot else run.od_rate) / run.count, run.spot, rec.request.checkpointable,
                           self.cfg.cloud.restart_overhead_seconds)
        run.sweep = run_sweep(shape, self.now, lambda trial: availability(
            self.cfg.cloud, interruptions_per_hour, np.random.default_rng([self.cfg.seed, 3, job_id, trial])))
        self._phase(run, "running", run.sweep.end)

    def _phase(self, run: _CloudRun, state: str, end: float) -> None:
        if on_grid(end) <= self.now:
            end = self.now + 1e-3  # a trace boundary a hair away: step past it, never loop at one instant
        run.state, run.phase_start = state, self.now
        run.version += 1
        job_id = int(run.record.request.uid)
        self._push(end, CLOUD_EVENT, (job_id, run.version))

    def _spot_stop_time(self, run: _CloudRun) -> float:
        """When spot must give way: MaxWait, or the fallback time (spot.fallback: progress moves
        it later by the checkpointed progress)."""
        return min(run.max_wait_end, spot_fallback_time(run.fallback_time, run.progress, self.policy.spec.spot.fallback))

    def _spot_begin(self, run: _CloudRun, overhead: float) -> None:
        """Spot capacity is asked for now: wait for it, then pay `overhead` before progress resumes."""
        stop = self._spot_stop_time(run)
        avail = run.avail
        if not avail.available(self.now):
            self._phase(run, "waiting", min(avail.next_change(self.now), stop))
            return
        run.state = "running"
        run.pending_overhead = overhead
        self._spot_segment(run)

    def _spot_segment(self, run: _CloudRun) -> None:
        overhead = run.pending_overhead
        stop = self._spot_stop_time(run)
        if self._progress_fallback and stop >= self.now + overhead:
            # Once the overhead is paid, progress moves the fallback time along with the clock.
            stop = run.max_wait_end
        finish = self.now + overhead + run.work_left
        if isinstance(run.avail, PoissonInterruptions):
            interrupt = run.avail.next_interruption(self.now)
        else:
            interrupt = run.avail.next_change(self.now)
        self._phase(run, "running", min(finish, interrupt, stop))
        run.segment_overhead = overhead

    def _cloud_step(self, run: _CloudRun) -> int:
        """Handle the end of a cloud phase; returns 1 when the Job finished."""
        elapsed = self.now - run.phase_start
        rec = run.record
        if run.sweep is not None:
            if run.spot:
                rec.spot_usd += run.sweep.usd
            else:
                rec.on_demand_usd += run.sweep.usd
            rec.wasted_usd += run.sweep.wasted_usd
            rec.preemptions += run.sweep.preemptions
            return self._cloud_done(run)
        if not run.spot:
            rec.on_demand_usd += run.od_rate * elapsed
            return self._cloud_done(run)
        if run.state == "waiting":
            if self.now >= self._spot_stop_time(run):
                return self._fall_back(run)
            self._spot_begin(run, overhead=self.cfg.cloud.restart_overhead_seconds)
            return 0
        # running on spot
        overhead = run.segment_overhead
        rec.spot_usd += run.spot_rate * elapsed
        useful = max(elapsed - overhead, 0.0)
        rec.wasted_usd += run.spot_rate * min(elapsed, overhead)
        if useful >= run.work_left - 1e-9:
            run.work_left = 0.0
            return self._cloud_done(run)
        if rec.request.checkpointable:
            run.work_left -= useful
            run.progress += useful
        else:
            rec.wasted_usd += run.spot_rate * useful  # no checkpoint: the work is lost
        if self.now >= self._spot_stop_time(run):
            return self._fall_back(run)
        rec.preemptions += 1
        self._spot_begin(run, overhead=self.cfg.cloud.restart_overhead_seconds)
        return 0

    def _fall_back(self, run: _CloudRun) -> int:
        """The controller's safety net: stop spot, relaunch on-demand from the last checkpoint."""
        rec = run.record
        rec.fell_back = True
        rec.placement = "SageMakerSpot->OnDemand"
        run.spot = False
        self.spot_with_deadline.pop(int(rec.request.uid), None)
        restart = self.cfg.cloud.startup_seconds + (self.cfg.cloud.restart_overhead_seconds if run.progress else 0.0)
        run.segment_overhead = restart
        self._phase(run, "running", self.now + restart + run.work_left)
        return 0

    # --- spot.fallback planned: the controller's plan, once a plan tick ----------------------------------

    def _plan_burst(self, run: _CloudRun, record: JobRecord, decision) -> None:
        """The plan the controller makes for this burst (scheduler/controller.py: _plan_of), and its
        first tick."""
        spot = self.policy.spec.spot
        if spot.fallback != "planned" or not record.request.checkpointable or run.deadline is None:
            return  # (_launch plans only a burst with a deadline)
        run.plan = policy_burst_plan(self.policy, work_seconds=decision.evidence.runtime_estimate_seconds,
                                     deadline=run.deadline, launched_at=self.now, spot_usd_per_hour=run.spot_rate * 3600,
                                     on_demand_usd_per_hour=run.od_rate * 3600)
        if run.plan is not None:
            self._push(self.now + spot.plan_tick_seconds, PLAN_TICK, (int(record.request.uid), 1))

    def _plan_tick(self, run: _CloudRun, tick: int) -> None:
        """What the controller does at a plan tick: on spot, see whether it has capacity, and
        leave for on-demand if the plan says so; on on-demand, go back to managed spot if it says so."""
        self._push(run.launched + (tick + 1) * self.policy.spec.spot.plan_tick_seconds, PLAN_TICK,
                   (int(run.record.request.uid), tick + 1))
        self._settle(run)
        seen = run.spot and run.state != "waiting" and run.avail.available(self.now)
        assert run.plan is not None  # a plan tick is pushed only for a burst with a plan
        switch, run.belief = planned_switch(run.plan, run.belief, tick=tick, progress_seconds=run.progress,
                                            on_spot=run.spot, seen=seen)
        if not switch:
            self._resume(run)
        elif run.spot:
            self._fall_back(run)
        else:
            run.spot = True
            run.record.back_to_spot += 1
            self.spot_with_deadline[int(run.record.request.uid)] = run
            self._spot_begin(run, overhead=self.cfg.cloud.startup_seconds + self.cfg.cloud.restart_overhead_seconds)

    def _settle(self, run: _CloudRun) -> None:
        """Book the current phase up to now (cost, progress) and start a new one here: a plan tick
        may change what the burst runs on in the middle of a phase."""
        elapsed = self.now - run.phase_start
        if run.state == "waiting" or elapsed <= 0:
            run.phase_start = self.now
            return
        rec, overhead = run.record, run.segment_overhead
        useful = max(elapsed - overhead, 0.0)
        if run.spot:
            rec.spot_usd += run.spot_rate * elapsed
            rec.wasted_usd += run.spot_rate * min(elapsed, overhead)
        else:
            rec.on_demand_usd += run.od_rate * elapsed
        run.work_left = max(run.work_left - useful, 0.0)
        run.progress += useful
        run.segment_overhead = max(overhead - elapsed, 0.0)
        run.phase_start = self.now

    def _resume(self, run: _CloudRun) -> None:
        """Carry on as before after _settle: the same phase, with its end event again."""
        if run.state == "waiting":
            self._phase(run, "waiting", min(run.avail.next_change(self.now), self._spot_stop_time(run)))
        elif run.spot:
            run.pending_overhead = run.segment_overhead
            self._spot_segment(run)
        else:
            self._phase(run, "running", self.now + run.segment_overhead + run.work_left)

    def _spot_safety_net(self) -> None:
        for run in list(self.spot_with_deadline.values()):
            if not run.spot or run.state != "waiting":
                continue
            if spot_fallback_due(now=self.now, launch_time=run.launched, deadline=run.deadline,
                                 fallback_time=run.fallback_time, runtime_seconds=run.record.trace.duration_s,
                                 progress_seconds=run.progress, running_on_spot=False,
                                 # the rule's inputs come from the policy, as in the controller
                                 restart_overhead_seconds=self.policy.spec.spot.restart_overhead_seconds,
                                 fallback_mode=self.policy.spec.spot.fallback):
                self._fall_back(run)

    def _cloud_done(self, run: _CloudRun) -> int:
        rec = run.record
        job_id = int(rec.request.uid)
        del self.cloud[job_id]
        self.spot_with_deadline.pop(job_id, None)
        agg = self.inflight[(rec.request.namespace, run.instance_type)]
        self.money_version += 1
        agg[0] -= run.count
        agg[1] -= run.committed
        rec.finish = self.now
        self.finished += 1
        cost = rec.cloud_usd
        self._cloud_usd += cost  # billed when the training job ends, as SageMaker reports it
        self._sample()
        day, month = self._day_month(SIM_EPOCH + self.now)
        ns = rec.request.namespace
        self.spend_day[(ns, day)] = self.spend_day.get((ns, day), 0.0) + cost
        self.spend_month[(ns, month)] = self.spend_month.get((ns, month), 0.0) + cost
        return 1


def simulate(jobs: list[TraceJob], config: SimConfig):
    sim = Simulation(jobs, config)
    records = sim.run()
    return sim, records
