"""Run-time estimates: the Job's annotation, else the policy, else similar completed Jobs.

Estimates are often wrong. Two rules keep decisions sane: a running Job past its expected end
is assumed to need a fraction of its elapsed time again (never "it ends now"), and SageMaker
launches carry a runtime cap that bounds what a wrong estimate can cost.
"""

from __future__ import annotations

from statistics import median

from ..model import BurstPolicy, CompletedJob, JobRequest, RunningPod

MIN_REMAINING_SECONDS = 60.0

RuntimeHistory = dict[tuple[str, str], list[float]]  # (namespace, family) -> run times of completed Jobs


def runtime_history(completed: tuple[CompletedJob, ...]) -> RuntimeHistory:
    history: RuntimeHistory = {}
    for c in completed:
        history.setdefault((c.namespace, c.family), []).append(c.duration_seconds)
    return history


def estimate_runtime(job: JobRequest, policy: BurstPolicy, history: RuntimeHistory) -> tuple[float, str]:
    """(seconds, where the figure came from). history: runtime_history() of the snapshot's completed Jobs.
    A sweep's figure is its whole run at its parallelism: a trial's estimate (the annotation's or
    the policy's) times its waves; a finished sweep's own duration already is one."""
    if job.tuning is None:
        return _estimate(job, policy, history)
    seconds, source = _estimate(job, policy, history)
    if source.startswith("median"):
        return seconds, source
    minutes = f"{seconds / 3600:.1f} h" if seconds >= 5400 else f"{seconds / 60:.0f} min"
    return seconds * job.waves, (f"{source}: {minutes} a trial, x {job.waves} wave{'s' if job.waves != 1 else ''} "
                                 f"of {min(job.pods, job.trials)} trials")


def _estimate(job: JobRequest, policy: BurstPolicy, history: RuntimeHistory) -> tuple[float, str]:
    if job.runtime_estimate_seconds is not None:
        return job.runtime_estimate_seconds, "annotation"
    rules = policy.spec.runtime_estimates
    for rule in rules.by_label:
        key, _, value = rule.label.partition("=")
        if job.label(key) == value:
            return float(rule.seconds), f"policy label {rule.label}"
    if job.namespace in rules.by_namespace:
        return float(rules.by_namespace[job.namespace]), f"policy namespace {job.namespace}"
    if rules.use_history:
        similar = history.get((job.namespace, job.family))
        if similar:
            return float(median(similar)), f"median of {len(similar)} completed '{job.family}' Jobs"
    return float(rules.default_seconds), "policy default"


def expected_end(pod: RunningPod, now: float, policy: BurstPolicy, history: RuntimeHistory) -> float:
    """When a running pod is expected to release its GPUs, never in the past."""
    end = pod.expected_end_time
    if end is None:
        namespace, _, name = pod.job.partition("/")
        probe = JobRequest(namespace=namespace, name=name, gpus_per_pod=pod.gpus)
        end = pod.start_time + estimate_runtime(probe, policy, history)[0]
    if end >= now:  # ending right now is on time, not an overrun
        return end
    elapsed = max(now - pod.start_time, 0.0)
    return now + max(MIN_REMAINING_SECONDS, policy.spec.local.overrun_remaining_fraction * elapsed)
