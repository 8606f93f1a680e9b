"""Hyperparameter tuning jobs on the sandbox's SageMaker (moto), with a life cycle as training jobs have.

moto answers CreateHyperParameterTuningJob and DescribeHyperParameterTuningJob, but creates every
tuning job already Completed, with one made-up trial (BestTrainingJob "FakeTrainingJobName"), and
has neither StopHyperParameterTuningJob nor ListTrainingJobsForHyperParameterTuningJob. This
layer (over moto's backend, not a change to moto) makes a tuning job do what SageMaker's tuner
does, closely enough for the controller's tests to mean something:

    InProgress: trials launched as training jobs of moto's backend, MaxParallelTrainingJobs at a
    time, until MaxNumberOfTrainingJobs were launched; each trial then lives the training job life
    cycle of sim.sagemaker_lifecycle (start-up, training, billable seconds, spot) and, on Completed,
    reports its objective. TrainingJobStatusCounters and BestTrainingJob follow the trials.
    -> Completed once every trial ended and one succeeded (Failed if none did)
    StopHyperParameterTuningJob: Stopping (its running trials are stopped) -> Stopped

A trial is named as SageMaker names them (<tuning job>-<NNN>-<8 hex>), runs the definition's
static hyperparameters plus values drawn from the ranges (seeded by the tuning job's name and the
trial's number: the same every run), for the training sandbox's run time (its hyperparameter
sandbox_run_seconds, else half its MaxRuntimeInSeconds). Its objective is a number drawn from its
hyperparameters, so the best trial is the same every run too.
"""

from __future__ import annotations

import copy
import hashlib
import json
import math
import random
from datetime import datetime
from typing import Any, Callable

TUNING_CREATES: dict[str, int] = {}  # CreateHyperParameterTuningJob calls per name, refused ones included (for tests)
ENDED = ("Completed", "Failed", "Stopped")


class TuningLives:
    """Steps every tuning job of one moto backend; its trials are stepped by the training life cycle.
    What a tuning job launched is kept on moto's object (trial_names), so the listing answers from it."""

    def __init__(self, wall: Callable[[float], datetime]):
        self.wall = wall  # virtual seconds -> the time SageMaker reports

    def step(self, backend: Any, now: float) -> None:
        for tuning in list(backend.hyper_parameter_tuning_jobs.values()):
            if tuning.hyper_parameter_tuning_job_status in ENDED:
                continue
            trials = trials_of(backend, tuning)
            self._score(tuning, trials)
            if tuning.hyper_parameter_tuning_job_status == "Stopping":
                self._stop(tuning, trials, now)
                continue
            limits = tuning.hyper_parameter_tuning_job_config["ResourceLimits"]
            running = sum(t.training_job_status not in ENDED for t in trials)
            while len(tuning.trial_names) < int(limits["MaxNumberOfTrainingJobs"]) and \
                    running < int(limits["MaxParallelTrainingJobs"]):
                trials.append(self._launch(backend, tuning))
                running += 1
            if running == 0:
                self._end(tuning, now, trials)
            self._count(tuning, trials)

    def _launch(self, backend: Any, tuning: Any) -> Any:
        definition = tuning.training_job_definition
        number = len(tuning.trial_names) + 1
        name = tuning.hyper_parameter_tuning_job_name
        trial = f"{name}-{number:03d}-{hashlib.sha256(f'{name}/{number}'.encode()).hexdigest()[:8]}"
        tuned = _draw(tuning.hyper_parameter_tuning_job_config, f"{name}/{number}")
        job = backend.create_training_job(
            training_job_name=trial, hyper_parameters={**(definition.get("StaticHyperParameters") or {}), **tuned},
            algorithm_specification=copy.deepcopy(definition["AlgorithmSpecification"]),
            role_arn=definition["RoleArn"], input_data_config=copy.deepcopy(definition.get("InputDataConfig") or []),
            output_data_config=dict(definition["OutputDataConfig"]),
            resource_config=dict(definition["ResourceConfig"]), vpc_config=None,
            stopping_condition=dict(definition["StoppingCondition"]),
            tags=[{"Key": "sagemaker:tuning-job-name", "Value": name}], enable_network_isolation=False,
            enable_inter_container_traffic_encryption=False,
            enable_managed_spot_training=bool(definition.get("EnableManagedSpotTraining")),
            checkpoint_config=definition.get("CheckpointConfig"), debug_hook_config=None,
            debug_rule_configurations=None, tensor_board_output_config=None, experiment_config=None)
        job.tuned_hyper_parameters = tuned
        tuning.trial_names.append(trial)
        return job

    @staticmethod
    def _score(tuning: Any, trials: list[Any]) -> None:
        """A trial that completed reports its objective, and the best so far is the tuning job's."""
        objective = tuning.hyper_parameter_tuning_job_config["HyperParameterTuningJobObjective"]
        values = {}
        for trial in trials:
            if trial.training_job_status != "Completed":
                continue
            values[trial.training_job_name] = value = _objective(trial)
            trial.final_metric_data_list = [{"MetricName": objective["MetricName"], "Value": value,
                                             "Timestamp": trial.training_end_time}]
        if not values:
            return
        pick = max if objective["Type"] == "Maximize" else min
        best = pick(values, key=lambda n: values[n])
        job = next(t for t in trials if t.training_job_name == best)
        tuning.best_training_job = tuning.OverallBestTrainingJob = {
            **_summary(job, tuning.hyper_parameter_tuning_job_name),
            "FinalHyperParameterTuningJobObjectiveMetric": {"Type": objective["Type"],
                                                            "MetricName": objective["MetricName"],
                                                            "Value": values[best]},
            "ObjectiveStatus": "Succeeded"}

    def _stop(self, tuning: Any, trials: list[Any], now: float) -> None:
        for trial in trials:
            if trial.training_job_status == "InProgress":
                trial.training_job_status = trial.secondary_status = "Stopping"  # the training life cycle stops it
        if all(t.training_job_status in ENDED for t in trials):
            tuning.hyper_parameter_tuning_job_status = "Stopped"
            tuning.hyper_parameter_tuning_end_time = tuning.last_modified_time = self.wall(now)
        self._count(tuning, trials)

    def _end(self, tuning: Any, now: float, trials: list[Any]) -> None:
        succeeded = any(t.training_job_status == "Completed" for t in trials)
        tuning.hyper_parameter_tuning_job_status = "Completed" if succeeded else "Failed"
        if not succeeded:
            tuning.failure_reason = "All training jobs failed"
        tuning.hyper_parameter_tuning_end_time = tuning.last_modified_time = self.wall(now)

    @staticmethod
    def _count(tuning: Any, trials: list[Any]) -> None:
        states = [t.training_job_status for t in trials]
        failed = states.count("Failed")
        tuning.training_job_status_counters = {
            "Completed": states.count("Completed"), "InProgress": len(states) - failed - states.count("Completed")
            - states.count("Stopped"), "RetryableError": 0, "NonRetryableError": failed, "Stopped": states.count("Stopped")}
        tuning.objective_status_counters = {"Succeeded": states.count("Completed"), "Pending": 0, "Failed": failed}


def trials_of(backend: Any, tuning: Any) -> list[Any]:
    """The training jobs a tuning job launched, in order."""
    return [backend.training_jobs[t] for t in getattr(tuning, "trial_names", []) if t in backend.training_jobs]


def _objective(trial: Any) -> float:
    """A completed trial's objective: drawn from its hyperparameters, so the same trial scores the same."""
    return round(0.5 + 0.45 * _unit(json.dumps(trial.tuned_hyper_parameters, sort_keys=True)), 4)


def _summary(job: Any, tuning_name: str) -> dict[str, Any]:
    """A trial as SageMaker lists it (HyperParameterTrainingJobSummary)."""
    out = {"TrainingJobName": job.training_job_name, "TrainingJobArn": job.arn, "TuningJobName": tuning_name,
           "CreationTime": job.creation_time, "TrainingJobStatus": job.training_job_status,
           "TunedHyperParameters": dict(getattr(job, "tuned_hyper_parameters", {}))}
    for key, value in (("TrainingStartTime", job.training_start_time), ("TrainingEndTime", job.training_end_time),
                       ("FailureReason", getattr(job, "failure_reason", None))):
        if value:
            out[key] = value
    return out


def _unit(text: str) -> float:
    return int(hashlib.sha256(text.encode()).hexdigest()[:12], 16) / 16 ** 12


def _draw(config: dict[str, Any], seed: str) -> dict[str, str]:
    """One trial's values from the parameter ranges (a seeded draw, as the Random strategy makes)."""
    rng = random.Random(seed)
    ranges = config.get("ParameterRanges") or {}
    out: dict[str, str] = {}
    for r in ranges.get("CategoricalParameterRanges") or []:
        out[r["Name"]] = rng.choice(list(r["Values"]))
    for r in ranges.get("IntegerParameterRanges") or []:
        out[r["Name"]] = str(rng.randint(int(r["MinValue"]), int(r["MaxValue"])))
    for r in ranges.get("ContinuousParameterRanges") or []:
        low, high = float(r["MinValue"]), float(r["MaxValue"])
        if r.get("ScalingType") in ("Logarithmic", "ReverseLogarithmic") and low > 0:
            out[r["Name"]] = repr(math.exp(rng.uniform(math.log(low), math.log(high))))
        else:
            out[r["Name"]] = repr(rng.uniform(low, high))
    return out


_INSTALLED = False


def install_tuning_jobs() -> None:
    """Teach moto's SageMaker what real SageMaker does with tuning jobs (the module's docstring)."""
    global _INSTALLED
    if _INSTALLED:
        return
    from moto.core.responses import ActionResult
    from moto.sagemaker.exceptions import ResourceInUseException, ValidationError
    from moto.sagemaker.models import HyperParameterTuningJob, SageMakerModelBackend
    from moto.sagemaker.responses import SageMakerResponse

    born_completed = HyperParameterTuningJob.__init__

    def born_in_progress(self, *args, **kwargs):  # a new tuning job launches its trials; none ran yet
        born_completed(self, *args, **kwargs)
        self.hyper_parameter_tuning_job_status = "InProgress"
        self.hyper_parameter_tuning_end_time = None
        self.best_training_job = self.OverallBestTrainingJob = None
        self.tuning_job_completion_details = self.consumed_resources = None
        self.trial_names = []  # the training jobs it launched, in order (TuningLives launches them)
        TuningLives._count(self, [])

    HyperParameterTuningJob.__init__ = born_in_progress  # type: ignore[method-assign]  # patching moto

    create = SageMakerModelBackend.create_hyper_parameter_tuning_job

    def create_counted(self, hyper_parameter_tuning_job_name: str, *args, **kwargs):
        TUNING_CREATES[hyper_parameter_tuning_job_name] = TUNING_CREATES.get(hyper_parameter_tuning_job_name, 0) + 1
        if hyper_parameter_tuning_job_name in self.hyper_parameter_tuning_jobs:  # moto refuses it too, later
            raise ResourceInUseException(message=f"Resource Already Exists: Hyper Parameter Tuning Job with name "
                                                 f"{hyper_parameter_tuning_job_name} already exists")
        return create(self, hyper_parameter_tuning_job_name, *args, **kwargs)

    SageMakerModelBackend.create_hyper_parameter_tuning_job = create_counted  # type: ignore[method-assign]

    def stop_hyper_parameter_tuning_job(self):
        name = self._get_param("HyperParameterTuningJobName")
        jobs = self.sagemaker_backend.hyper_parameter_tuning_jobs
        if name not in jobs:
            raise ValidationError(message=f"Could not find hyper parameter tuning job '{name}'.")
        if jobs[name].hyper_parameter_tuning_job_status == "InProgress":
            jobs[name].hyper_parameter_tuning_job_status = "Stopping"
        return "{}"

    def list_training_jobs_for_hyper_parameter_tuning_job(self):
        name = self._get_param("HyperParameterTuningJobName")
        backend = self.sagemaker_backend
        if name not in backend.hyper_parameter_tuning_jobs:
            raise ValidationError(message=f"Could not find hyper parameter tuning job '{name}'.")
        trials = trials_of(backend, backend.hyper_parameter_tuning_jobs[name])
        start = int(self._get_param("NextToken") or 0)
        size = int(self._get_param("MaxResults") or 10)
        page = trials[start:start + size]
        out = {"TrainingJobSummaries": [_summary(t, name) for t in page]}
        if start + size < len(trials):
            out["NextToken"] = str(start + size)
        return ActionResult(out)

    SageMakerResponse.stop_hyper_parameter_tuning_job = stop_hyper_parameter_tuning_job  # type: ignore[attr-defined]
    SageMakerResponse.list_training_jobs_for_hyper_parameter_tuning_job = (  # type: ignore[attr-defined]
        list_training_jobs_for_hyper_parameter_tuning_job)
    _INSTALLED = True

