"""A burst that runs as a SageMaker hyperparameter tuning job, for the controller: how it is sent,
read back, stopped and priced, and what its end writes on the Job. The controller follows it
through the same ledger and cycle as a training burst; only these steps differ.

- Sent: one tuning job (CreateHyperParameterTuningJob, the ACK HyperParameterTuningJob or the
  legacy HyperparameterTuningJob) under the name derived from the Job's UID (tuning_job_name: 32
  characters at most). Sent again after a crash, it is created once: SageMaker, or the API server
  for a resource, refuses a second one under its name.
- Read back: DescribeHyperParameterTuningJob, with its trials
  (ListTrainingJobsForHyperParameterTuningJob), is put in the terms the controller follows every
  burst by, DescribeTrainingJob's (`followed`); SecondaryStatus is Tuning once a trial started.
- Stopped: StopHyperParameterTuningJob, or deleting the resource (its controller stops the job).
  SageMaker itself keeps the commitment: each trial has its MaxRuntimeInSeconds and the tuning
  job launches MaxNumberOfTrainingJobs trials at most.
- Priced: the sum over its trials of what each is billed. An ended trial's BillableTimeInSeconds
  (DescribeTrainingJob, asked once per trial and remembered) at the on-demand price (managed
  spot's discount is in the billable seconds, as for training); a running trial's time so far at
  the rate of its capacity. From a resource's status alone (no SageMaker client), the committed
  figure once it ends.
- Its end: the best trial goes on the Job (TUNING_BEST_TRIAL, TUNING_BEST_OBJECTIVE as
  metric=value, TUNING_BEST_HYPERPARAMETERS as JSON), from BestTrainingJob.
- Its pods on the virtual node (the Indexed Job's, one per trial): the pod of completion index i
  succeeds once i + 1 trials completed; all succeed when the tuning job completes, and those not
  ended fail when it fails or is stopped. A trial's training job is not tied to a pod index (the
  tuner launches and retries trials its own way), so the count of completed trials is what a pod
  follows, and the Job completes when the tuning job does.
"""

from __future__ import annotations

import json
import threading
from datetime import datetime
from typing import Any

from policies import constants as C
from policies.decide import TUNING_PLURAL, create_tuning_job_request, tuning_job_name, tuning_job_resource
from policies.model import CloudLaunch, EmitTarget, InstanceType, JobRequest, SageMakerKind, parse_time

from .burst_kind import API_VERSIONS, KindSteps, create_once
from .kube import Kube
from .node_agent import Shown
from .sagemaker import SageMaker, SageMakerError
from .trial_pods import COMPLETION_INDEX

TERMINAL = ("Completed", "Failed", "Stopped")
STARTING, TUNING = "Starting", "Tuning"  # its SecondaryStatus in the controller's terms: Tuning once a trial started


class TuningSteps(KindSteps):
    kind = SageMakerKind.TUNING
    plurals = {EmitTarget.ACK: TUNING_PLURAL, EmitTarget.LEGACY: TUNING_PLURAL}
    retried_by_backoff_limit = False

    def __init__(self) -> None:
        self._billed: dict[str, float | None] = {}  # ended trial -> its BillableTimeInSeconds (never changes)
        self._lock = threading.Lock()

    def job_name(self, job: JobRequest) -> str:
        return tuning_job_name(job)

    def send(self, kube: Kube, sagemaker: SageMaker | None, job: JobRequest, launch: CloudLaunch, name: str,
             target: EmitTarget) -> str:
        if target == EmitTarget.API:
            if sagemaker is None:
                raise SageMakerError("NoClient", "spec.sageMaker.emit is api, but the controller runs with "
                                     "--no-sagemaker; drop that flag, or emit ack")
            return sagemaker.create_tuning_job(create_tuning_job_request(job, launch, name))
        create_once(kube, tuning_job_resource(job, launch, name, target), TUNING_PLURAL)
        return ""

    def stop(self, kube: Kube, sagemaker: SageMaker | None, namespace: str, name: str, target: EmitTarget) -> None:
        if target == EmitTarget.API:
            if sagemaker is not None:
                sagemaker.stop_tuning_job(name)
            return
        kube.delete_custom(API_VERSIONS[target], TUNING_PLURAL, namespace, name)

    def described(self, sagemaker: SageMaker, name: str) -> dict[str, Any] | None:
        found = sagemaker.describe_tuning_job(name)
        if found is None:
            return None
        trials = sagemaker.tuning_trials(name)
        for trial in trials:
            trial_name = trial["TrainingJobName"]
            with self._lock:
                known = trial_name in self._billed
            if trial.get("TrainingJobStatus") in TERMINAL and not known:
                one = sagemaker.describe(trial_name) or {}
                with self._lock:
                    self._billed[trial_name] = one.get("BillableTimeInSeconds")
        with self._lock:
            billed = {t["TrainingJobName"]: self._billed.get(t["TrainingJobName"]) for t in trials}
        return followed(found, trials, billed)

    def followed_resource(self, cr: dict[str, Any]) -> dict[str, Any]:
        return followed_resource(cr)

    def cost(self, launch: CloudLaunch, itype: InstanceType, described: dict[str, Any], now: float) -> float | None:
        return cost(launch, itype, described, now)

    def ended(self, sagemaker: SageMaker | None, name: str, target: EmitTarget) -> None:
        """Its trials' billed seconds are booked in the ledger now: forget them (trials are named
        <tuning job>-NNN-<8 hex>), so a long-lived controller keeps only its sweeps in flight."""
        with self._lock:
            for trial in [t for t in self._billed if t.startswith(f"{name}-")]:
                del self._billed[trial]

    def outcome_annotations(self, described: dict[str, Any]) -> dict[str, str]:
        if described.get("TrainingJobStatus") != "Completed":
            return {}
        return best_trial_annotations(described.get("_best"))

    def pod_shown(self, show: Shown, pod: dict[str, Any], described: dict[str, Any] | None) -> Shown:
        return trial_pod_shown(show, pod, described)

    def logged(self, sagemaker: SageMaker | None, names: list[str]) -> tuple[list[str], str]:
        """A tuning job writes no log of its own: its trials do, each as a training job. Every pod of
        the sweep shows them all, in launch order (a pod stands for the sweep, not for one trial)."""
        if sagemaker is None:
            return list(names), self.kind.job_words
        return sorted(t["TrainingJobName"] for name in names for t in sagemaker.tuning_trials(name)), "training job"


def followed(described: dict[str, Any], trials: list[dict[str, Any]],
             billed: dict[str, float | None]) -> dict[str, Any]:
    """DescribeHyperParameterTuningJob's answer and its trials in DescribeTrainingJob's terms, with
    the trials' times (_trials: start, end, billable seconds), the count of completed trials
    (_completed) and the best trial (_best)."""
    status = described.get("HyperParameterTuningJobStatus")
    starts = [t["TrainingStartTime"] for t in trials if t.get("TrainingStartTime") is not None]
    if status in TERMINAL or status == "Stopping":
        secondary = status
    else:
        secondary = TUNING if starts else STARTING
    counters = described.get("TrainingJobStatusCounters") or {}
    completed = counters.get("Completed")
    if completed is None:
        completed = sum(t.get("TrainingJobStatus") == "Completed" for t in trials)
    return {"TrainingJobStatus": status, "SecondaryStatus": secondary,
            "FailureReason": described.get("FailureReason") or None,
            "TrainingJobArn": described.get("HyperParameterTuningJobArn"),
            "TrainingStartTime": min(starts, key=_seconds) if starts else None,
            "TrainingEndTime": described.get("HyperParameterTuningEndTime"),
            "_trials": [(t.get("TrainingStartTime"), t.get("TrainingEndTime"), billed.get(t["TrainingJobName"]))
                        for t in trials],
            "_completed": int(completed), "_best": described.get("BestTrainingJob")}


def followed_resource(cr: dict[str, Any]) -> dict[str, Any]:
    """A tuning job resource's status in the same terms (ACK's, or the legacy operator's with its
    trial counters), when SageMaker cannot be asked."""
    status = cr.get("status") or {}
    state = status.get("hyperParameterTuningJobStatus")
    if not state:
        return {"_pending": True}  # created, not yet picked up by its SageMaker controller
    counters = status.get("trainingJobStatusCounters") or {}
    return {"TrainingJobStatus": state, "SecondaryStatus": state if state in TERMINAL else TUNING,
            "FailureReason": status.get("failureReason") or status.get("additional"),
            "TrainingJobArn": (status.get("ackResourceMetadata") or {}).get("arn"), "_resource": True,
            "_completed": int(counters.get("completed") or 0), "_best": _api_spelling(status.get("bestTrainingJob"))}


def cost(launch: CloudLaunch, itype: InstanceType, described: dict[str, Any], now: float) -> float | None:
    """Dollars billed so far over the trials (see the module's docstring); None before any started."""
    trials = described.get("_trials") or []
    if not any(start is not None for start, _, _ in trials):
        return None
    rate = itype.spot_usd_per_hour if launch.spot else itype.on_demand_usd_per_hour
    total = 0.0
    for start, end, billable in trials:
        if billable is not None:
            total += billable * itype.on_demand_usd_per_hour / 3600
        elif start is not None:
            total += max((_seconds(end) if end is not None else now) - _seconds(start), 0.0) * rate / 3600
    return total


def best_trial_annotations(best: dict[str, Any] | None) -> dict[str, str]:
    """The best trial, for the Job: its training job, its objective as metric=value, its tuned values as JSON."""
    if not best or not best.get("TrainingJobName"):
        return {}
    out = {C.TUNING_BEST_TRIAL: best["TrainingJobName"],
           C.TUNING_BEST_HYPERPARAMETERS: json.dumps(best.get("TunedHyperParameters") or {}, sort_keys=True)}
    metric = best.get("FinalHyperParameterTuningJobObjectiveMetric") or {}
    if metric.get("MetricName") and metric.get("Value") is not None:
        out[C.TUNING_BEST_OBJECTIVE] = f"{metric['MetricName']}={metric['Value']}"
    return out


def trial_pod_shown(show: Shown, pod: dict[str, Any], described: dict[str, Any] | None) -> Shown:
    """The pod of completion index i succeeds once i + 1 trials completed (the module's docstring)."""
    index = (pod["metadata"].get("annotations") or {}).get(COMPLETION_INDEX)
    if show.phase not in ("Pending", "Running") or not described or index is None or not index.isdigit():
        return show
    completed = described.get("_completed") or 0
    if int(index) < completed:
        return Shown("Succeeded", "Completed", f"{completed} trials of the SageMaker hyperparameter tuning job "
                     "completed")
    return show


def _api_spelling(best: dict[str, Any] | None) -> dict[str, Any] | None:
    """A resource status's bestTrainingJob in the API's spelling: the keys this module reads."""
    if not best:
        return None
    metric = best.get("finalHyperParameterTuningJobObjectiveMetric") or {}
    tuned = best.get("tunedHyperParameters") or {}
    if isinstance(tuned, list):  # the legacy operator's: [{name, value}]
        tuned = {p.get("name"): p.get("value") for p in tuned}
    return {"TrainingJobName": best.get("trainingJobName"), "TunedHyperParameters": tuned,
            "FinalHyperParameterTuningJobObjectiveMetric": {"MetricName": metric.get("metricName"),
                                                            "Value": metric.get("value")}}


def _seconds(t: Any) -> float:
    return t.timestamp() if isinstance(t, datetime) else parse_time(str(t))
