"""A SageMaker that behaves like one, on moto's backend, over real HTTP.

moto creates every training job already Completed and has no StopTrainingJob. This adapter
serves moto's SageMaker on loopback (ThreadedMotoServer, in-process, so its backend objects are
reachable) and drives each job through a life cycle in real time scaled by a factor:

    InProgress/Starting -> InProgress/Downloading -> InProgress/Training -> Completed
    managed spot: ... Training -> Interrupted -> Starting -> Training ... ; Stopped/MaxWaitTimeExceeded
    spot capacity taken away (set_spot_capacity): Training -> Interrupted -> Starting until it is back
    StopTrainingJob: Stopping -> Stopped
    MaxRuntimeInSeconds exceeded: Stopped/MaxRuntimeExceeded

with TrainingStartTime/EndTime, TrainingTimeInSeconds and BillableTimeInSeconds (for spot, the
billable seconds carry the catalog's spot discount, as SageMaker reports them). A job runs for
the seconds in its hyperparameter `sandbox_run_seconds` (default: half its MaxRuntimeInSeconds,
which is the runtime estimate of a Spillway launch; 60 virtual seconds without one) and is
interrupted `sandbox_interruptions` times when on spot. Both direct boto3 callers and the ACK
stand-in use it. Batch transform jobs get a life cycle too (sim.transform_lifecycle), and
hyperparameter tuning jobs launch their trials as training jobs (sim.tuning_lifecycle). This is the
only module in sim/ that imports boto3.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Callable

import boto3

from policies import default_catalog

from .transform_lifecycle import TransformLives, install_transform_jobs, wall_clock
from .tuning_lifecycle import TuningLives, install_tuning_jobs

ACCOUNT = "123456789012"
LOG_GROUP = "/aws/sagemaker/TrainingJobs"
TRANSFORM_LOG_GROUP = "/aws/sagemaker/TransformJobs"


@dataclass
class _Life:
    created: float  # virtual seconds
    run_seconds: float
    interruptions_left: int
    spot: bool
    max_runtime: float
    max_wait: float
    fail_reason: str = ""  # the job fails at its next step, as an algorithm error would end it
    phase: str = "Starting"
    phase_start: float = 0.0
    trained: float = 0.0


class SageMakerSandbox:
    def __init__(self, region: str = "us-east-1", *, time_scale: float = 60.0, startup_seconds: float = 120.0,
                 restart_seconds: float = 60.0, clock: Callable[[], float] = time.time, period: float = 0.05):
        self.region, self.scale, self.startup, self.restart = region, time_scale, startup_seconds, restart_seconds
        self.clock, self.period = clock, period
        self.lives: dict[str, _Life] = {}
        self.stopping = threading.Event()
        self.lock = threading.Lock()
        self._origin = clock()
        self.spot_capacity = True  # False: managed spot jobs are interrupted and wait for capacity
        self.transforms = TransformLives(wall_clock(self._origin, time_scale), startup_seconds,  # batch transform
                                         log=lambda name, wall, line: self._log(name, wall, line, TRANSFORM_LOG_GROUP))
        self.tunings = TuningLives(wall_clock(self._origin, time_scale))  # hyperparameter tuning: trials

    # --- serving ---------------------------------------------------------------------------------

    def start(self) -> "SageMakerSandbox":
        import logging

        from moto.server import ThreadedMotoServer

        logging.getLogger("werkzeug").setLevel(logging.ERROR)
        _install_stop_training_job()
        install_transform_jobs()
        install_tuning_jobs()
        self.server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        self.server.start()
        host, port = self.server.get_host_and_port()
        self.endpoint_url = f"http://{host}:{port}"
        self.thread = threading.Thread(target=self._loop, name="sagemaker-lifecycle", daemon=True)
        self.thread.start()
        return self

    def stop(self) -> None:
        self.stopping.set()
        self.thread.join(timeout=5)
        self.server.stop()

    def client(self):
        return boto3.client("sagemaker", region_name=self.region, endpoint_url=self.endpoint_url,
                            aws_access_key_id="sandbox", aws_secret_access_key="sandbox")

    def _backend(self):
        from moto.sagemaker.models import sagemaker_backends

        return sagemaker_backends[ACCOUNT][self.region]

    def _virtual_now(self) -> float:
        return (self.clock() - self._origin) * self.scale

    # --- the life cycle ------------------------------------------------------------------------------

    def _loop(self) -> None:
        while not self.stopping.is_set():
            self.step()
            self.stopping.wait(self.period)

    def step(self) -> None:
        now = self._virtual_now()
        with self.lock:
            for name, job in list(self._backend().training_jobs.items()):
                life = self.lives.get(name)
                if life is None:
                    life = self._adopt(name, job, now)
                self._advance(job, life, now)
            self.transforms.step(self._backend(), now)
            self.tunings.step(self._backend(), now)  # its new trials start on the next step

    def fail(self, name: str, reason: str = "AlgorithmError: the training script exited with code 1") -> None:
        """Make a training job fail (Failed, with this FailureReason) at its next step. A sandbox
        job also fails by itself when its hyperparameter sandbox_fail is "true"."""
        with self.lock:
            life = self.lives.get(name)
            if life is None:
                life = self._adopt(name, self._backend().training_jobs[name], self._virtual_now())
            life.fail_reason = reason

    def trained_seconds(self, name: str) -> float:
        """Virtual seconds the training job has spent in Training so far (0 before SageMaker starts it)."""
        with self.lock:
            life = self.lives.get(name)
            if life is None:
                return 0.0
            running = self._virtual_now() - life.phase_start if life.phase == "Training" else 0.0
            return life.trained + running

    def set_spot_capacity(self, available: bool) -> None:
        """Take spot capacity away (training spot jobs are interrupted, new ones wait in Starting)
        or give it back, as an outage of the instance type would."""
        with self.lock:
            self.spot_capacity = available

    def _adopt(self, name: str, job, now: float) -> _Life:
        hp = job.hyper_parameters or {}
        stop = job.stopping_condition or {}
        # Without a hint, a job trains for half its MaxRuntimeInSeconds: the runtime estimate that
        # Spillway's launches carry (their cap is twice it).
        run = hp.get("sandbox_run_seconds") or (float(stop["MaxRuntimeInSeconds"]) / 2
                                                if stop.get("MaxRuntimeInSeconds") else 60)
        life = _Life(now, float(run), int(hp.get("sandbox_interruptions", 0)),
                     bool(job.enable_managed_spot_training), float(stop.get("MaxRuntimeInSeconds", 86400)),
                     float(stop.get("MaxWaitTimeInSeconds", 0) or 0), phase_start=now,
                     fail_reason="AlgorithmError: sandbox_fail was set" if hp.get("sandbox_fail") == "true" else "")
        self.lives[name] = life
        job.secondary_status_transitions = []
        self._transition(job, life, "Starting", "Preparing the instances for training", now)
        return life

    def _transition(self, job, life: _Life, status: str, message: str, now: float) -> None:
        wall = datetime.fromtimestamp(self._origin + now / self.scale, tz=timezone.utc)
        if job.secondary_status_transitions:
            job.secondary_status_transitions[-1]["EndTime"] = wall
        job.secondary_status_transitions.append({"Status": status, "StartTime": wall, "StatusMessage": message})
        job.secondary_status = status
        job.last_modified_time = wall
        life.phase, life.phase_start = status, now
        self._log(job.training_job_name, wall, f"{status}: {message}" if message else status)

    def _log(self, name: str, wall: datetime, line: str, group: str = LOG_GROUP) -> None:
        """One line of the job's CloudWatch stream, where SageMaker writes its containers' output:
        /aws/sagemaker/TrainingJobs (or TransformJobs), stream <job>/algo-1-<created>. Here, its
        status changes."""
        from moto.logs.models import logs_backends

        logs = logs_backends[ACCOUNT][self.region]
        if group not in logs.groups:
            logs.create_log_group(group, {})
        stream = f"{name}/algo-1-{int(self._origin)}"
        if stream not in logs.groups[group].streams:
            logs.create_log_stream(group, stream)
        logs.put_log_events(group, stream, [{"timestamp": int(wall.timestamp() * 1000),
                                                 "message": f"[sandbox] {line}"}])

    def _advance(self, job, life: _Life, now: float) -> None:
        """One step of the job's life: an end it must come to now, spot taken away or given back,
        or the next phase."""
        if job.training_job_status in ("Completed", "Failed", "Stopped") and life.phase in (
                "Completed", "Failed", "Stopped", "MaxWaitTimeExceeded", "MaxRuntimeExceeded"):
            return
        elapsed = now - life.phase_start
        if self._ended(job, life, now, elapsed):
            return
        if life.spot and not self.spot_capacity:
            if life.phase in ("Downloading", "Training"):
                life.trained += elapsed if life.phase == "Training" else 0.0
                self._transition(job, life, "Interrupted", "Job interrupted: spot capacity was reclaimed", now)
            elif life.phase == "Interrupted":
                self._transition(job, life, "Starting", "Waiting for spot capacity", now)
            return
        if life.phase == "Starting" and elapsed >= (self.startup if not life.trained else self.restart):
            self._transition(job, life, "Downloading", "Downloading the training image", now)
        elif life.phase == "Downloading" and elapsed >= 0:
            job.training_start_time = job.training_start_time or datetime.fromtimestamp(
                self._origin + now / self.scale, tz=timezone.utc)
            self._transition(job, life, "Training", "Training image download completed. Training in progress.", now)
        elif life.phase == "Training":
            self._train(job, life, now, elapsed)
        elif life.phase == "Interrupted" and elapsed >= 0:
            self._transition(job, life, "Starting", "Restarting on new spot capacity", now)

    def _ended(self, job, life: _Life, now: float, elapsed: float) -> bool:
        """The ends that come whatever the phase: a failure, a stop asked for, the spot MaxWait."""
        if life.fail_reason:
            life.trained += elapsed if life.phase == "Training" else 0.0
            self._finish(job, life, now, "Failed", "Failed", life.fail_reason)
            return True
        if job.training_job_status == "Stopping":
            life.trained += elapsed if life.phase == "Training" else 0.0
            self._finish(job, life, now, "Stopped", "Stopped", "")
            return True
        if life.spot and life.max_wait and now - life.created >= life.max_wait:
            life.trained += elapsed if life.phase == "Training" else 0.0
            self._finish(job, life, now, "Stopped", "MaxWaitTimeExceeded",
                         "The job reached its MaxWaitTimeInSeconds before finishing")
            return True
        return False

    def _train(self, job, life: _Life, now: float, elapsed: float) -> None:
        """Training: an interruption due (spot), the MaxRuntime reached, or the work done."""
        progress = life.trained + elapsed
        interrupt_at = life.run_seconds * (1 - life.interruptions_left / (life.interruptions_left + 1))
        if life.spot and life.interruptions_left and progress >= interrupt_at:
            life.trained = progress
            life.interruptions_left -= 1
            self._transition(job, life, "Interrupted", "Job interrupted: spot capacity was reclaimed", now)
        elif progress >= life.max_runtime:
            life.trained = progress
            self._finish(job, life, now, "Stopped", "MaxRuntimeExceeded",
                         "The job reached its MaxRuntimeInSeconds")
        elif progress >= life.run_seconds:
            life.trained = life.run_seconds
            self._finish(job, life, now, "Completed", "Completed", "")

    def _finish(self, job, life: _Life, now: float, status: str, secondary: str, reason: str) -> None:
        """End the job; life.trained already holds every second of training."""
        self._transition(job, life, secondary, reason or f"Training job {status.lower()}", now)
        job.training_job_status = status
        if reason and status != "Completed":
            job.failure_reason = reason
        job.training_end_time = datetime.fromtimestamp(self._origin + now / self.scale, tz=timezone.utc)
        seconds = int(round(life.trained))
        job.training_time_in_seconds = seconds
        discount = 0.0
        if life.spot:
            itype = default_catalog().get(job.resource_config.get("InstanceType", ""), self.region)
            if itype is not None and itype.on_demand_usd_per_hour:
                discount = 1 - itype.spot_usd_per_hour / itype.on_demand_usd_per_hour
        job.billable_time_in_seconds = int(round(seconds * (1 - discount)))
        life.phase = secondary


_STOP_INSTALLED = False


def _install_stop_training_job() -> None:
    """moto has no StopTrainingJob: add it (InProgress -> Stopping; the life cycle then stops it)."""
    global _STOP_INSTALLED
    if _STOP_INSTALLED:
        return
    from moto.sagemaker.responses import SageMakerResponse

    def stop_training_job(self):
        name = self._get_param("TrainingJobName")
        jobs = self.sagemaker_backend.training_jobs
        if name not in jobs:
            from moto.sagemaker.exceptions import ValidationError

            raise ValidationError(message=f"Requested resource not found: training job {name}")
        if jobs[name].training_job_status == "InProgress":
            jobs[name].training_job_status = jobs[name].secondary_status = "Stopping"
        return "{}"

    SageMakerResponse.stop_training_job = stop_training_job  # type: ignore[attr-defined]  # patching moto

    from moto.sagemaker.models import FakeTrainingJob

    born_completed = FakeTrainingJob.__init__

    def born_starting(self, *args, **kwargs):  # a new job starts, it is not done at once
        born_completed(self, *args, **kwargs)
        self.training_job_status, self.secondary_status = "InProgress", "Starting"
        self.training_start_time = self.training_end_time = None
        self.final_metric_data_list = []

    FakeTrainingJob.__init__ = born_starting  # type: ignore[method-assign]  # patching moto

    from moto.sagemaker.exceptions import ResourceInUseException
    from moto.sagemaker.models import SageMakerModelBackend

    create = SageMakerModelBackend.create_training_job

    def create_once(self, training_job_name: str, *args, **kwargs):
        """SageMaker refuses a second job under a name in use; moto would silently replace it."""
        CREATES[training_job_name] = CREATES.get(training_job_name, 0) + 1
        if training_job_name in self.training_jobs:
            raise ResourceInUseException(message=f"Training job {training_job_name} already exists")
        return create(self, training_job_name, *args, **kwargs)

    SageMakerModelBackend.create_training_job = create_once  # type: ignore[method-assign]  # patching moto

    from moto.core.exceptions import JsonRESTError

    for action, method in (("CreateTrainingJob", "create_training_job"),
                           ("DescribeTrainingJob", "describe_training_job"),
                           ("StopTrainingJob", "stop_training_job")):
        def faulty(self, _real=getattr(SageMakerResponse, method), _action=action):
            fault = _take_fault(_action)
            if fault is not None:
                error = JsonRESTError(fault[0], f"injected {fault[0]} on {_action}")
                error.code = fault[1]
                raise error
            return _real(self)

        setattr(SageMakerResponse, method, faulty)
    _STOP_INSTALLED = True


CREATES: dict[str, int] = {}  # CreateTrainingJob calls per name, refused ones included (for tests)
_FAULTS: list[list] = []  # [error code, HTTP status, action, times left]
_FAULTS_LOCK = threading.Lock()


def inject_fault(action: str, code: str = "ThrottlingException", status: int = 400, times: int = 1) -> None:
    """Answer the next `times` calls of `action` (CreateTrainingJob, DescribeTrainingJob,
    StopTrainingJob) with an error, as SageMaker does under load: ThrottlingException (400), or
    InternalFailure / ServiceUnavailable (500 / 503). botocore retries all three."""
    with _FAULTS_LOCK:
        _FAULTS.append([code, status, action, times])


def _take_fault(action: str) -> tuple[str, int] | None:
    with _FAULTS_LOCK:
        for fault in _FAULTS:
            if fault[2] == action:
                fault[3] -= 1
                if not fault[3]:
                    _FAULTS.remove(fault)
                return fault[0], fault[1]
    return None
