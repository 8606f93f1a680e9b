"""decide(): one Job, one answer, with its reason and the numbers behind it.

A Cycle is the snapshot as it stands with this cycle's earlier decisions assumed on it (Kueue's
"assume, then write"): reserved local GPUs, dollars committed, SageMaker quota held. evaluate()
reads a Cycle and never changes it; assume() records a decision in it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable, NamedTuple

from ..forecast import CapacityTimeline, Derived, INF, LocalSlot
from ..model import (BudgetExhaustedAction, BudgetLimit, BudgetPeriod, BurstPolicy, CapacityType, Catalog, CloudLaunch,
                     Decision, Evidence, JobRequest, Mode, OptionCost, Placement, Reason, SageMakerKind, Snapshot,
                     Spend, Text, WaitCostBasis, default_catalog, format_time, next_utc_midnight,
                     next_utc_month_start, value)
from .cloud import Blocked, burst_target, cloud_options

REQUEUE_MIN_SECONDS = 1.0  # the controller may impose a longer floor; the simulator needs exact timeouts
REQUEUE_MAX_SECONDS = 300.0  # forecasts drift as Jobs end early or late: look again soon
EPSILON = 1e-6


def is_managed(job: JobRequest, policy: BurstPolicy) -> bool:
    """Spillway manages a Job that carries spillway.io/mode, or any GPU Job in an opted-in namespace."""
    return job.opted_in or (job.total_gpus > 0 and job.namespace in policy.spec.managed_jobs.namespaces)


def policy_catalog(policy: BurstPolicy, catalog: Catalog | None = None) -> Catalog:
    base = catalog or default_catalog()
    prices = policy.spec.sage_maker.prices
    if not prices:
        return base
    transform = {k: v.transform_usd_per_hour for k, v in prices.items() if v.transform_usd_per_hour is not None}
    base = base.with_transform_prices(transform) if transform else base
    return base.with_prices({k: (v.on_demand_usd_per_hour, v.spot_usd_per_hour) for k, v in prices.items()})


def local_max_wait(job: JobRequest, policy: BurstPolicy, runtime: float) -> float:
    """How long the Job may wait for local GPUs before it bursts: its own spillway.io/max-wait-seconds
    or the policy's, plus the compute-weighted part (maxWaitPerGpuSecond x GPUs x runtime)."""
    local = policy.spec.local
    fixed = job.local_max_wait_seconds if job.local_max_wait_seconds is not None else local.max_wait_seconds
    return fixed + local.max_wait_per_gpu_second * job.total_gpus * runtime


@dataclass
class Cycle:
    snapshot: Snapshot
    policy: BurstPolicy
    now: float
    catalog: Catalog
    written: CapacityTimeline  # read it as .timeline, which writes the unwritten reservations first
    derived: Derived  # what the core worked out from the snapshot, shared by the cycles of one planning
    assumed_usd: dict[str, float] = field(default_factory=dict)
    assumed_instances: dict[str, int] = field(default_factory=dict)
    not_before: float = -INF  # fifo queueing: no Job starts before one queued ahead of it
    # namespace -> (limit, spend, committed)
    budget_inputs: dict[str, tuple[BudgetLimit, Spend, float]] = field(default_factory=dict)
    instances_in_use: dict[str, int] = field(default_factory=dict)  # instance type -> in the snapshot
    timeline_shared: bool = True  # `timeline` is the snapshot's own: copy it before the first change
    # Reservations assumed on the snapshot's own timeline, written (on a copy) when the timeline is
    # next read: most cycles of a simulation decide one Job and read nothing after it.
    unwritten: list[tuple[LocalSlot, int, float]] = field(default_factory=list)

    @property
    def timeline(self) -> CapacityTimeline:
        if self.unwritten:
            self.written, self.timeline_shared = self.written.copy(), False
            for slot, gpus_per_pod, runtime in self.unwritten:
                self.written.reserve(slot, gpus_per_pod, runtime)
            self.unwritten.clear()
        return self.written

    @timeline.setter
    def timeline(self, timeline: CapacityTimeline) -> None:
        if self.unwritten:
            raise ValueError("the cycle has reservations not yet written to its timeline")
        self.written = timeline

    @classmethod
    def start(cls, snapshot: Snapshot, policy: BurstPolicy, now: float, catalog: Catalog | None = None,
              derived: Derived | None = None) -> "Cycle":
        """A fresh cycle. It reads the snapshot's timeline, and copies it only when it is read after a
        reservation (see `unwritten`). `derived` (made for this snapshot and policy)
        lets several cycles of one planning share what they work out from the snapshot."""
        if derived is None:
            derived = Derived(snapshot, policy)
        elif derived.snapshot is not snapshot or derived.policy is not policy:
            raise ValueError("derived was made for another snapshot or policy")
        return cls(snapshot, policy, now, policy_catalog(policy, catalog), derived.timeline(now), derived)

    def budget_left(self, namespace: str) -> tuple[float, BudgetPeriod | None]:
        """Dollars this namespace may still commit, and which window binds (None: no limit)."""
        known = self.budget_inputs.get(namespace)
        if known is None:  # the snapshot's part is the same for every Job of the namespace this cycle
            known = self.budget_inputs[namespace] = (self.policy.budget_for(namespace),
                                                     self.snapshot.spend_of(namespace),
                                                     self.snapshot.committed_of(namespace))
        limit, spend, committed = known
        return limit.left(spend.today_usd, spend.month_usd, committed + self.assumed_usd.get(namespace, 0.0))

    def quota_left(self, instance_type: str) -> float:
        quota = self.policy.spec.sage_maker.quotas.get(instance_type)
        if quota is None:
            return INF
        in_use = self.instances_in_use.get(instance_type)
        if in_use is None:  # the snapshot's part, the same for every Job this cycle
            in_use = self.instances_in_use[instance_type] = self.snapshot.instances_in_use(instance_type)
        return quota - in_use - self.assumed_instances.get(instance_type, 0)


@value
class Evaluated:
    decision: Decision
    slot: LocalSlot
    runtime: float
    committed_usd: float = 0.0
    holds_slot: bool = True  # a Wait keeps its local slot (queueing permitting); see assume()
    usd_cap: float = 0.0  # CloudSide.usd_cap: above this budget left, money did not shape the decision
    # A Wait for money that the wait price triggered: LocalSide.price_lead, so that the decision may
    # change with time alone at price_turns_at(slot.start, price_lead). None for every other decision.
    price_lead: float | None = None


def price_turns_at(start: float, lead: float) -> float:
    """When the wait price stops outweighing a burst, for a local start at `start`: `lead` before it."""
    return start - lead


# evaluate() in four named steps: the local side (when and at what cost the Job starts here), the
# cloud side (what SageMaker offers, or what blocks it), the ordered burst rules (which one, if
# any, sends the Job out), and the resolution (the Decision, with its words and numbers).


class LocalSide(NamedTuple):
    """The Job on local GPUs: when it starts, what waiting for it is worth, and its own limits."""
    slot: LocalSlot
    runtime: float
    runtime_source: str
    start: float  # inf: never fits
    wait: float  # start - now
    waited: float  # since submission
    max_wait: float  # local_max_wait()
    wait_usd_per_hour: float  # for this Job (after per-GPU scaling)
    hot: bool  # GPU utilization over the policy's threshold
    option: OptionCost

    @property
    def never(self) -> bool:
        return self.start == INF

    @property
    def end(self) -> float:
        return self.start + self.runtime

    def price_lead(self, cloud_score: float) -> float:
        """How long before its slot the wait stops being priced above a burst scored cloud_score
        (the burst-cheaper rule holds until then: the wait's price falls as the slot nears).
        -inf: a burst costs less than running here even with no wait."""
        if self.wait_usd_per_hour <= 0:
            return -INF
        return 3600 * (cloud_score + EPSILON - self.option.expected_usd) / self.wait_usd_per_hour


CloudOption = tuple[OptionCost, Callable[[], CloudLaunch]]  # an option, and how to make its launch


class CloudSide(NamedTuple):
    """What SageMaker offers this Job (cheapest type first), or what keeps it out."""
    options: tuple[CloudOption, ...]
    notes: tuple[str, ...]
    blocked: Blocked | None
    budget_left: float
    budget_needed_usd: float | None = None  # when the budget alone blocks the burst
    budget_needed_type: str = ""
    unpaid: tuple[CloudOption, ...] = ()  # when the budget blocks: the options it cannot pay for (so a rule can say so)
    # The least budget left at which this side would be the same (every option of the chosen type
    # affordable); inf when the budget left out an option. 0: money plays no part.
    usd_cap: float = 0.0
    spot_unsafe_for_deadline: bool = False  # a type's spot window cannot keep the deadline (CloudOffer)

    @property
    def costs(self) -> tuple[OptionCost, ...]:
        return tuple(o for o, _ in self.options)

    def best(self, deadline: float | None) -> CloudOption | None:
        return _best_cloud(self.options, deadline)

    def best_if_paid(self, deadline: float | None) -> CloudOption | None:
        """The best option were money no object: what the burst rules weigh, so that a Job that
        would burst but for the budget is told (and counted) as BudgetExhausted."""
        return _best_cloud(self.options or self.unpaid, deadline)


def local_side(job: JobRequest, cycle: Cycle, slot: LocalSlot | None) -> LocalSide:
    policy, now, spec = cycle.policy, cycle.now, cycle.policy.spec
    runtime, runtime_source = cycle.derived.runtime(job)
    if slot is None:
        slot = cycle.timeline.earliest_start(job.gpus_per_pod, job.pods, job.gpu_product, runtime,
                                             max(now, cycle.not_before))
    start = slot.start
    wait_rate = _wait_rate(job, policy)
    utilization = cycle.snapshot.utilization_over(spec.local.hot_window_seconds, now)
    usd = spec.local.gpu_hour_usd * job.total_gpus * runtime / 3600
    option = OptionCost(Placement.LOCAL, usd, 0.0, start, start + runtime,
                        usd + wait_rate * max(start - now, 0) / 3600 if start != INF else INF)
    return LocalSide(slot, runtime, runtime_source, start, start - now, _waited(job, now),
                     local_max_wait(job, policy, runtime), wait_rate,
                     utilization is not None and utilization >= spec.local.hot_utilization_percent, option)


def _waited(job: JobRequest, now: float) -> float:
    """Seconds since the Job was submitted (0 if its submission time is unknown)."""
    return max(now - job.submit_time, 0.0) if job.submit_time else 0.0


def _wait_rate(job: JobRequest, policy: BurstPolicy) -> float:
    """What an hour of this Job's wait is worth (tradeoff.waitUsdPerHour, or the Job's own)."""
    tradeoff = policy.spec.tradeoff
    rate = job.wait_usd_per_hour if job.wait_usd_per_hour is not None else tradeoff.wait_usd_per_hour
    return rate * max(job.total_gpus, 1) if tradeoff.per == WaitCostBasis.GPU else rate


def beyond_planning_depth(job: JobRequest, policy: BurstPolicy, derived: Derived, now: float) -> Decision:
    """The Wait of a Job queued behind the first local.planningDepth Jobs. It is not planned: it
    holds no GPUs, dollars or quota, never bursts, and its local start is not worked out (inf).
    Nothing is asked of the cloud side either, so nothing here reads the budget. (It may still
    start now: backfill_beyond_depth.)"""
    runtime, source = derived.runtime(job)
    ev = Evidence(now=now, runtime_estimate_seconds=runtime, runtime_source=source, local_start_time=INF,
                  local_wait_seconds=INF, waited_seconds=_waited(job, now),
                  local_max_wait_seconds=local_max_wait(job, policy, runtime),
                  wait_usd_per_hour=_wait_rate(job, policy), deadline=job.deadline)
    depth = policy.spec.local.planning_depth
    return Decision(job.key, Placement.WAIT, Reason.QUEUED_BEYOND_PLANNING_DEPTH,
                    f"queued behind the first {depth} Jobs, the most that are planned (local.planningDepth); "
                    "it waits unplanned until Jobs ahead leave, unless it is a single pod that fits in the "
                    "GPUs free now for its whole run", ev)


def may_backfill_beyond_depth(job: JobRequest, policy: BurstPolicy) -> bool:
    """Whether backfill_beyond_depth() may ever start this Job: a single pod (or none) that may run here."""
    return (job.pods == 1 or not job.total_gpus) and (job.mode or policy.spec.managed_jobs.default_mode) != Mode.CLOUD


def backfill_beyond_depth(job: JobRequest, cycle: Cycle) -> Evaluated | None:
    """A Job queued behind the first local.planningDepth Jobs, looked at after them: it starts here
    if it is a single pod (or needs no GPUs) that fits now, for its whole run, in the GPUs the Jobs
    ahead leave, and evaluate() would start it; it is assumed. None: it waits unplanned. It never
    bursts: only planned Jobs do. Slurm's backfill tests the jobs behind its main pass the same way."""
    if not may_backfill_beyond_depth(job, cycle.policy) or cycle.not_before > cycle.now:
        return None
    timeline = cycle.timeline
    if timeline.max_free_now(job.gpu_product) < job.gpus_per_pod:
        return None
    slot = timeline.earliest_start(job.gpus_per_pod, 1, job.gpu_product, cycle.derived.runtime(job)[0], cycle.now)
    if slot.start > cycle.now:
        return None
    result = evaluate(job, cycle, slot)
    if result.decision.placement != Placement.LOCAL:
        return None
    assume(result, job, cycle)
    return result


def cloud_side(job: JobRequest, cycle: Cycle, local: LocalSide, mode: Mode, capacity: CapacityType) -> CloudSide:
    """The first allowed instance type with quota whose options the budget can pay for."""
    budget_left, budget_window = cycle.budget_left(job.namespace)
    if mode == Mode.LOCAL:
        return CloudSide((), (), Blocked(Reason.FORCED_LOCAL, "the Job's mode is local"), budget_left)
    target = burst_target(job, cycle.policy, cycle.catalog)
    if isinstance(target, Blocked):
        return CloudSide((), (), target, budget_left)
    notes: list[str] = []
    unsafe = False
    quota_short, budget_short = [], []
    for itype in target.types:
        if cycle.quota_left(itype.name) < job.pods:
            quota_short.append(itype.name)
            continue
        opts, type_notes, type_unsafe = cloud_options(
            job, itype, cycle.policy, now=cycle.now, runtime=local.runtime, wait_usd_per_hour=local.wait_usd_per_hour,
            capacity=capacity, role_arn=target.role_arn, output_s3_uri=target.output_s3_uri)
        notes.extend(n for n in type_notes if n not in notes)
        unsafe = unsafe or type_unsafe
        affordable = [o for o in opts if o[0].committed_usd <= budget_left + EPSILON]
        if affordable:
            cap = max(o[0].committed_usd for o in opts) if len(affordable) == len(opts) else INF
            return CloudSide(tuple(affordable), tuple(notes), None, budget_left, usd_cap=cap,
                             spot_unsafe_for_deadline=unsafe)
        if opts:
            # The preferred type is the cheapest that fits; a budget that cannot pay for it is not
            # stretched onto a bigger one.
            budget_short.append((itype.name, min(o[0].committed_usd for o in opts), tuple(opts)))
            break
    if budget_short:
        name, need, unpaid = budget_short[0]
        blocked = Blocked(Reason.BUDGET_EXHAUSTED,
                          f"the {budget_window} budget of {job.namespace} has ${max(budget_left, 0):.2f} "
                          f"left; a burst on {name} may cost up to ${need:.2f}", budget_window)
        return CloudSide((), tuple(notes), blocked, budget_left, None if quota_short else need, name, unpaid, INF,
                         spot_unsafe_for_deadline=unsafe)
    if quota_short:
        blocked = Blocked(Reason.QUOTA_EXHAUSTED, f"no SageMaker quota left for {job.pods} x {', '.join(quota_short[:3])}")
    else:
        blocked = Blocked(Reason.BURST_NOT_ALLOWED,
                          f"capacity-type {capacity.value}: {'; '.join(notes) or 'no capacity type is possible'}")
    return CloudSide((), tuple(notes), blocked, budget_left, spot_unsafe_for_deadline=unsafe)


KEEP_LOCAL = "keep-local"  # a burst rule's verdict that ends the list without a burst


def _never_fits(job: JobRequest, policy: BurstPolicy, local: LocalSide, best: CloudOption | None,
                prefer: Placement | None) -> bool:
    return local.never


def _misses_deadline(job: JobRequest, policy: BurstPolicy, local: LocalSide, best: CloudOption | None,
                     prefer: Placement | None) -> bool:
    return job.deadline is not None and local.end > job.deadline


def _waited_too_long(job: JobRequest, policy: BurstPolicy, local: LocalSide, best: CloudOption | None,
                     prefer: Placement | None) -> bool:
    if policy.spec.local.burst_timing == "atMaxWait":
        return local.waited >= local.max_wait
    return local.waited + local.wait > local.max_wait


def _optimizer_says_burst(job: JobRequest, policy: BurstPolicy, local: LocalSide, best: CloudOption | None,
                          prefer: Placement | None) -> bool:
    return prefer is not None and prefer.is_cloud and best is not None


def _optimizer_says_local(job: JobRequest, policy: BurstPolicy, local: LocalSide, best: CloudOption | None,
                          prefer: Placement | None) -> bool:
    return prefer == Placement.LOCAL  # the optimizer weighed dollars against waiting for the whole queue


def _cluster_hot(job: JobRequest, policy: BurstPolicy, local: LocalSide, best: CloudOption | None,
                 prefer: Placement | None) -> bool:
    return local.hot


def _burst_cheaper(job: JobRequest, policy: BurstPolicy, local: LocalSide, best: CloudOption | None,
                   prefer: Placement | None) -> bool:
    return best is not None and best[0].score < local.option.score - EPSILON


# The burst rules for a Job that cannot start locally now, in order: the first that holds decides.
BurstRule = Callable[[JobRequest, BurstPolicy, LocalSide, 'CloudOption | None', 'Placement | None'], bool]
BURST_RULES: tuple[tuple[Reason | str, BurstRule], ...] = (
    (Reason.NEVER_FITS_LOCALLY, _never_fits),
    (Reason.DEADLINE_REQUIRES_BURST, _misses_deadline),
    (Reason.MAX_WAIT_EXCEEDED, _waited_too_long),
    (Reason.OPTIMIZER_BURST, _optimizer_says_burst),
    (KEEP_LOCAL, _optimizer_says_local),
    (Reason.CLUSTER_HOT, _cluster_hot),
    (Reason.BURST_CHEAPER_THAN_WAITING, _burst_cheaper),
)


def burst_trigger(job: JobRequest, policy: BurstPolicy, local: LocalSide, best: CloudOption | None,
                  prefer: Placement | None) -> Reason | None:
    """The first burst rule that holds, or None: the Job waits for local GPUs."""
    for verdict, holds in BURST_RULES:
        if holds(job, policy, local, best, prefer):
            return verdict if isinstance(verdict, Reason) else None  # KEEP_LOCAL
    return None


class _Case:
    """One Job's two sides, and the ways to turn them into an Evaluated."""
    __slots__ = ("job", "cycle", "local", "cloud")

    def __init__(self, job: JobRequest, cycle: Cycle, local: LocalSide, cloud: CloudSide):
        self.job, self.cycle, self.local, self.cloud = job, cycle, local, cloud

    def where(self) -> str:  # the local half of most messages; only worked out when a message is read
        return _local_words(self.job, self.local.slot, self.cycle, self.local.wait)

    def evidence(self, options: tuple[OptionCost, ...] = (), deadline_end: float | None = None,
                 trigger: str = "") -> Evidence:
        job, local, cloud = self.job, self.local, self.cloud
        blocked = cloud.blocked
        return Evidence(
            now=self.cycle.now, runtime_estimate_seconds=local.runtime, runtime_source=local.runtime_source,
            local_start_time=local.start, local_wait_seconds=local.wait, waited_seconds=local.waited,
            local_max_wait_seconds=local.max_wait, wait_usd_per_hour=local.wait_usd_per_hour, deadline=job.deadline,
            deadline_slack_seconds=(job.deadline - deadline_end) if job.deadline and deadline_end is not None else None,
            cluster_hot=local.hot, options=(local.option, *options),
            budget_remaining_usd=None if cloud.budget_left == INF else cloud.budget_left,
            trigger=trigger, blocked=blocked.message if blocked else "",
            blocked_reason=blocked.reason if blocked else None,
            budget_needed_usd=cloud.budget_needed_usd, budget_needed_type=cloud.budget_needed_type,
        )

    def done(self, placement: Placement, reason: Reason, message: Text, ev: Evidence, requeue: float | None = None,
             launch: CloudLaunch | None = None, committed: float = 0.0, holds_slot: bool = True,
             price_lead: float | None = None) -> Evaluated:
        """message: the text, or a function that writes it when it is first read (most are never read
        in a simulation, and writing them was a fifth of a long queue's cycle)."""
        slot, on_nodes = self.local.slot, placement == Placement.LOCAL
        nodes = tuple(self.cycle.timeline.nodes[i].name for i, _ in slot.nodes) if on_nodes else ()
        pods = tuple(count for _, count in slot.nodes) if on_nodes else ()
        return Evaluated(Decision(self.job.key, placement, reason, message, ev, requeue, launch, nodes, pods),
                         slot, self.local.runtime, committed, holds_slot, self.cloud.usd_cap, price_lead)

    def start_locally(self, reason: Reason, message: Text, trigger: str = "") -> Evaluated:
        return self.done(Placement.LOCAL, reason, message, self.evidence(self.cloud.costs, self.local.end, trigger))

    def go_cloud(self, reason: Reason, trigger: str) -> Evaluated:
        job, local, spec = self.job, self.local, self.cycle.policy.spec
        chosen = self.cloud.best(job.deadline)
        assert chosen is not None  # called only with options to choose from
        opt, make_launch = chosen
        launch = make_launch()
        if job.deadline is not None and reason not in (Reason.FORCED_CLOUD, Reason.DEADLINE_UNREACHABLE):
            trigger = trigger or reason.value
            if opt.placement == Placement.SAGEMAKER_SPOT:
                reason = Reason.SPOT_SAFE_WITHIN_DEADLINE
            elif self.cloud.spot_unsafe_for_deadline:
                reason = Reason.DEADLINE_REQUIRES_ON_DEMAND
        said = trigger or reason.value

        def msg() -> str:
            kind = "managed spot" if launch.spot else "on-demand"
            where = f"{kind} on {launch.instance_count} x {launch.instance_type}"
            if launch.kind == SageMakerKind.TRANSFORM:
                where = f"batch transform, on-demand (transform has no managed spot), on {launch.instance_count} x " \
                        f"{launch.instance_type}"
            elif launch.kind == SageMakerKind.TUNING:
                where = (f"hyperparameter tuning: {job.trials} {kind} trials, {min(job.pods, job.trials)} at once, "
                         f"each on 1 x {launch.instance_type}")
            trigger_words = _trigger_words(said, local.wait, local.waited, local.max_wait)
            if job.tuning is not None:  # the sweep as a whole: what it would take locally
                trigger_words += f" (locally: {self.where()})"
            text = (f"{trigger_words}; bursting to SageMaker {where}, expected ${opt.expected_usd:.2f} "
                    f"(at most ${opt.committed_usd:.2f})")
            if launch.spot and launch.fallback_time is not None and job.deadline is not None:
                text += f"; falls back to on-demand at {format_time(launch.fallback_time)} to keep the deadline"
                if spec.spot.fallback == "progress":
                    text += " (later by each second of checkpointed progress)"
                elif spec.spot.fallback == "planned":
                    text += (" (later by each second of checkpointed progress; meanwhile it follows a spot plan "
                             f"every {spec.spot.plan_tick_seconds / 60:g} min)")
            return text

        return self.done(opt.placement, reason, msg, self.evidence(self.cloud.costs, opt.end_time, trigger),
                         launch=launch, committed=opt.committed_usd)

    def wait(self, reason: Reason, message: Text, until: float | None = None, holds_slot: bool = True,
             price_lead: float | None = None) -> Evaluated:
        now, local = self.cycle.now, self.local
        target = min(until if until is not None else INF, local.start,
                     INF if price_lead is None else price_turns_at(local.start, price_lead))
        requeue = min(max(target - now, REQUEUE_MIN_SECONDS), REQUEUE_MAX_SECONDS)
        ev = self.evidence(self.cloud.costs, None if local.never else local.end)
        return self.done(Placement.WAIT, reason, message, ev, requeue, holds_slot=holds_slot, price_lead=price_lead)


def evaluate(job: JobRequest, cycle: Cycle, slot: LocalSlot | None = None,
             prefer: Placement | None = None) -> Evaluated:
    """Decide one Job against the cycle. `prefer` (from the optimizer) tips the choice between
    local and cloud when the policy leaves it open; it never overrides a hard rule."""
    spec = cycle.policy.spec
    mode = job.mode or spec.managed_jobs.default_mode
    if job.tuning is not None and not job.tuning.strategy.runs_locally and mode == Mode.AUTO:
        mode = Mode.CLOUD  # its tuner stops trials early: only SageMaker's runs one (the reason says so)
    local = local_side(job, cycle, slot)
    if job.total_gpus == 0:
        case = _Case(job, cycle, local, CloudSide((), (), None, cycle.budget_left(job.namespace)[0]))
        return case.done(Placement.LOCAL, Reason.NOT_A_GPU_JOB, "requests no GPUs; nothing to decide, runs locally",
                         case.evidence(deadline_end=cycle.now + local.runtime))
    cloud = cloud_side(job, cycle, local, mode, job.capacity_type or spec.managed_jobs.default_capacity_type)
    case = _Case(job, cycle, local, cloud)
    if mode == Mode.CLOUD:
        return _resolve_cloud_mode(case)
    if mode == Mode.LOCAL:
        return _resolve_local_mode(case)
    best = cloud.best(job.deadline)
    if local.start <= cycle.now:  # exact: a slot a microsecond away is not free now
        return _resolve_fits_now(case, best, prefer)
    # The rules weigh the burst as if paid for: one that would fire but for the budget makes the
    # Job wait for money (BudgetExhausted), not for local GPUs.
    weighed = best if best is not None else cloud.best_if_paid(job.deadline)
    return _resolve(case, burst_trigger(job, cycle.policy, local, weighed, prefer), best, prefer)


def _resolve_cloud_mode(case: _Case) -> Evaluated:
    why = _cloud_only_words(case.job)
    if case.cloud.options:
        return case.go_cloud(Reason.FORCED_CLOUD, why if why != "mode is cloud" else "")
    blocked = case.cloud.blocked
    assert blocked is not None  # no options: something blocks them
    # It never runs locally, so it holds no local slot while it waits for the cloud.
    return case.wait(blocked.reason, lambda: f"{why}, but {blocked.message}", _reset_time(blocked, case.cycle.now),
                     holds_slot=False)


def _cloud_only_words(job: JobRequest) -> str:
    """Why a Job runs only on SageMaker: its mode, or a sweep whose strategy only SageMaker runs."""
    if job.mode != Mode.CLOUD and job.tuning is not None and not job.tuning.strategy.runs_locally:
        return (f"a {job.tuning.strategy.value} sweep runs only on SageMaker (its tuner stops trials early; "
                "Spillway runs Random, Grid and Bayesian sweeps on the cluster)")
    return "mode is cloud"


def _resolve_local_mode(case: _Case) -> Evaluated:
    if case.local.start <= case.cycle.now:
        return case.done(Placement.LOCAL, Reason.FORCED_LOCAL, lambda: f"mode is local; {case.where()}",
                         case.evidence(deadline_end=case.local.end))
    if case.local.never:
        return case.wait(Reason.NEVER_FITS_LOCALLY, lambda: f"mode is local, but {case.where()}")
    return case.wait(Reason.WAITING_FOR_LOCAL_CAPACITY, lambda: f"mode is local; {case.where()}")


def _resolve_fits_now(case: _Case, best: CloudOption | None, prefer: Placement | None) -> Evaluated:
    if best is not None and prefer is not None and prefer.is_cloud:
        return case.go_cloud(Reason.OPTIMIZER_BURST, Reason.OPTIMIZER_BURST.value)
    if best is not None and best[0].score < case.local.option.score - EPSILON and prefer != Placement.LOCAL:
        return case.go_cloud(Reason.BURST_CHEAPER_THAN_WAITING, "")
    return case.start_locally(Reason.LOCAL_CAPACITY_AVAILABLE, case.where)


def _resolve(case: _Case, trigger: Reason | None, best: CloudOption | None, prefer: Placement | None) -> Evaluated:
    """An auto-mode Job that cannot start locally now: burst, wait for local GPUs, or wait for the
    cloud, as the trigger and the cloud side allow."""
    job, local, cloud, spec, now = case.job, case.local, case.cloud, case.cycle.policy.spec, case.cycle.now
    blocked = cloud.blocked
    if (trigger == Reason.DEADLINE_REQUIRES_BURST and job.deadline is not None
            and (best is None or best[0].end_time > job.deadline)):
        # Nothing meets the deadline: finish as early as possible, and say so.
        late = f"the deadline {format_time(job.deadline)} cannot be met locally or on SageMaker"
        if best is not None and best[0].end_time < local.end:
            return case.go_cloud(Reason.DEADLINE_UNREACHABLE, f"{late}; SageMaker finishes first")
        if blocked is None or blocked.reason in (Reason.FORCED_LOCAL,):
            return case.wait(Reason.DEADLINE_UNREACHABLE, lambda: f"{late}; {case.where()}, which is the earliest finish")
    if trigger is not None and best is not None:
        return case.go_cloud(trigger, trigger.value)
    if trigger is not None and blocked is not None:
        if (blocked.reason == Reason.BUDGET_EXHAUSTED and not local.never
                and spec.budgets.when_exhausted == BudgetExhaustedAction.LOCAL_ONLY):
            return case.start_locally(
                Reason.BUDGET_EXHAUSTED,
                lambda: f"{blocked.message}; handed to the local queue (budgets.whenExhausted: localOnly); "
                        f"{case.where()}", trigger.value)
        said = trigger.value
        # Triggered by the wait price, the Wait may end by itself once the price falls below the
        # burst's: it is looked at again then, not at the next requeue.
        lead = None
        if trigger == Reason.BURST_CHEAPER_THAN_WAITING and cloud.unpaid:
            paid = cloud.best_if_paid(job.deadline)
            assert paid is not None  # unpaid options are there to weigh
            lead = local.price_lead(paid[0].score)
        # Waiting for money (budgets.whenExhausted: wait), the Job holds no local slot: it will likely
        # burst at the reset, and a slot held for it blocks the backfill of Jobs that would run. It
        # still starts locally if GPUs are free when it is decided. Holding the slot only when it
        # comes before the reset measured no better than always holding it (README, "How it decides").
        return case.wait(blocked.reason, lambda: f"{_trigger_words(said, local.wait, local.waited, local.max_wait)}, "
                         f"but {blocked.message}; {case.where()}", _reset_time(blocked, now),
                         holds_slot=blocked.reason != Reason.BUDGET_EXHAUSTED, price_lead=lead)
    reason = Reason.OPTIMIZER_KEEP_LOCAL if prefer == Placement.LOCAL else Reason.WAITING_FOR_LOCAL_CAPACITY
    patient = spec.local.burst_timing == "atMaxWait"
    # At its max wait the Job bursts, or (the budget short) stops holding its slot: look again then.
    timeout = job.submit_time + local.max_wait if patient and (best is not None or cloud.unpaid) else None

    def waiting_words() -> str:
        extra = f" (a burst would cost ${best[0].expected_usd:.2f})" if best is not None else (
            f" ({blocked.message})" if blocked is not None and blocked.reason != Reason.FORCED_LOCAL else "")
        return f"{case.where()}{extra}"

    return case.wait(reason, waiting_words, timeout)


def reserves(evaluated: Evaluated, job: JobRequest, queueing: str) -> bool:
    """Whether assume() takes the decision's local GPUs in the cycle's timeline: a local start, or
    a Wait that holds its slot (backfill or fifo queueing)."""
    d = evaluated.decision
    if d.placement.is_cloud or (d.placement == Placement.WAIT and (not evaluated.holds_slot or queueing == "outOfOrder")):
        return False
    return evaluated.slot.feasible and job.total_gpus > 0


def assume(evaluated: Evaluated, job: JobRequest, cycle: Cycle) -> None:
    """Record a decision in the cycle, so later Jobs see its GPUs, dollars and quota as taken."""
    d = evaluated.decision
    if d.placement == Placement.WAIT and not evaluated.holds_slot:
        return  # it waits for the cloud, not for local GPUs (evaluate() says why)
    queueing = cycle.policy.spec.local.queueing
    if d.placement == Placement.WAIT and queueing == "fifo" and evaluated.slot.feasible and job.total_gpus:
        cycle.not_before = max(cycle.not_before, evaluated.slot.start)
    if d.placement.is_cloud:
        cycle.assumed_usd[job.namespace] = cycle.assumed_usd.get(job.namespace, 0.0) + evaluated.committed_usd
        launch = d.launch
        assert launch is not None  # a burst carries its launch
        name = launch.instance_type
        cycle.assumed_instances[name] = cycle.assumed_instances.get(name, 0) + launch.instance_count
    elif reserves(evaluated, job, queueing):
        # a waiting Job holds no future GPUs under outOfOrder: whatever fits may start before it
        if cycle.timeline_shared:
            cycle.unwritten.append((evaluated.slot, job.gpus_per_pod, evaluated.runtime))
        else:
            cycle.written.reserve(evaluated.slot, job.gpus_per_pod, evaluated.runtime)


def _best_cloud(options: tuple[CloudOption, ...], deadline: float | None) -> CloudOption | None:
    if not options:
        return None
    if deadline is not None:
        meeting = tuple(o for o in options if o[0].end_time <= deadline)
        if meeting:
            options = meeting
        else:
            return min(options, key=lambda o: (o[0].end_time, o[0].score))
    return min(options, key=lambda o: (o[0].score, o[0].placement.value))


def _reset_time(blocked: Blocked | None, now: float) -> float | None:
    if blocked is None or blocked.reason != Reason.BUDGET_EXHAUSTED:
        return None
    return next_utc_month_start(now) if blocked.budget_period == "monthly" else next_utc_midnight(now)


def _local_words(job: JobRequest, slot: LocalSlot, cycle: Cycle, wait: float) -> str:
    shape = f"{job.pods} x {job.gpus_per_pod} GPUs" if job.pods > 1 else f"{job.gpus_per_pod} GPU" + (
        "s" if job.gpus_per_pod != 1 else "")
    if job.tuning is not None:  # the sweep as a whole: its GPU-hours, and its waves at the parallelism allowed
        runtime = cycle.derived.runtime(job)[0]
        gpu_hours = job.trials * job.gpus_per_pod * runtime / job.waves / 3600
        shape = (f"sweep of {job.trials} trials ({gpu_hours:.1f} GPU-hours) in {job.waves} "
                 f"wave{'s' if job.waves != 1 else ''} of {_minutes(runtime / job.waves)} on {shape}")
    product = f" of {job.gpu_product}" if job.gpu_product else ""
    if slot.start == INF:
        return f"{shape}{product} never fit on this cluster's nodes"
    nodes = ", ".join(sorted({cycle.timeline.nodes[i].name for i, _ in slot.nodes}))
    if wait <= EPSILON:
        return f"{shape}{product} free now on {nodes}"
    return f"{shape}{product} expected free in {_minutes(wait)} (at {format_time(slot.start)}) on {nodes}"


def _trigger_words(trigger: str, local_wait: float, waited: float, max_wait: float) -> str:
    if trigger == Reason.MAX_WAIT_EXCEEDED.value:
        return (f"waited {_minutes(waited)} and local GPUs are {_minutes(local_wait)} away "
                f"(max wait {_minutes(max_wait)})")
    if trigger == Reason.BURST_CHEAPER_THAN_WAITING.value:
        return f"waiting {_minutes(local_wait)} is worth more than the burst costs"
    return _TRIGGER_WORDS.get(trigger, trigger)


_TRIGGER_WORDS = {
    Reason.NEVER_FITS_LOCALLY.value: "the Job never fits on a local node",
    Reason.DEADLINE_REQUIRES_BURST.value: "running locally would miss the deadline",
    Reason.CLUSTER_HOT.value: "the cluster is hot (GPU utilization over the policy threshold)",
    Reason.OPTIMIZER_BURST.value: "the queue optimizer sends this Job out so the rest fit locally",
    Reason.FORCED_CLOUD.value: "mode is cloud",
}


def _minutes(seconds: float) -> str:
    if seconds == INF or not math.isfinite(seconds):
        return "forever"
    seconds = max(seconds, 0)
    if seconds < 3600:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def decide(job: JobRequest, snapshot: Snapshot, policy: BurstPolicy, now: float | None = None,
           catalog: Catalog | None = None, derived: Derived | None = None) -> Decision:
    """Decide one Job. Pending Jobs in the snapshot that are queued ahead of it are assumed to
    stay local (plan() knows better: it decides them first). To decide many Jobs against one
    snapshot, pass one Derived(snapshot, policy): the queue forecast is then worked out once."""
    now = snapshot.time if now is None else now
    cycle = Cycle.start(snapshot, policy, now, catalog, derived)
    slots, queued = cycle.derived.queue_forecast(now)
    if job.key in slots:
        return evaluate(job, cycle, slots[job.key]).decision
    runtime = cycle.derived.runtime(job)[0]
    slot = queued.earliest_start(job.gpus_per_pod, job.pods, job.gpu_product, runtime)
    return evaluate(job, cycle, slot).decision
