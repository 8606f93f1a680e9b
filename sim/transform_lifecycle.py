"""Batch transform jobs on the sandbox's SageMaker (moto), with a life cycle as training jobs have.

moto answers CreateModel, CreateTransformJob and DescribeTransformJob, but creates every transform
job already Completed, silently replaces a model or a transform job created twice under one name,
accepts a transform job whose model does not exist, and has no StopTransformJob. Real SageMaker
does none of these, and a double-launch test passing against moto would prove nothing; this layer
(over moto's backend, not a change to moto) makes it behave:

    InProgress (Starting) -> InProgress with TransformStartTime -> Completed, with TransformEndTime
    (reported the virtual seconds it ran after its start: its cost is the virtual run's)
    StopTransformJob: Stopping -> Stopped;  a failing model: Failed, with a FailureReason

A transform job runs for the virtual seconds in its model's environment variable
SANDBOX_RUN_SECONDS (default 60), after the sandbox's start-up; SANDBOX_FAIL=true fails it.
sim.sagemaker_lifecycle.SageMakerSandbox steps it on its clock.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any, Callable

DEFAULT_RUN_SECONDS = 60.0
TRANSFORM_CREATES: dict[str, int] = {}  # CreateTransformJob calls per name, refused ones included (for tests)
MODEL_CREATES: dict[str, int] = {}


@dataclass
class _Life:
    created: float  # virtual seconds
    run_seconds: float
    fail_reason: str = ""
    started: float | None = None


class TransformLives:
    """The life of every transform job of one moto backend, stepped on virtual time."""

    def __init__(self, wall: Callable[[float], datetime], startup_seconds: float,
                 log: Callable[[str, datetime, str], None] = lambda name, wall, line: None):
        self.wall, self.startup = wall, startup_seconds  # wall: virtual seconds -> the time SageMaker reports
        self.log = log  # a line of the job's CloudWatch log (/aws/sagemaker/TransformJobs): its status changes
        self.lives: dict[str, _Life] = {}

    def step(self, backend: Any, now: float) -> None:
        for name, job in list(backend.transform_jobs.items()):
            life = self.lives.get(name)
            if life is None:
                life = self.lives[name] = self._adopt(backend, job, now)
            self._advance(job, life, now)

    def _adopt(self, backend: Any, job: Any, now: float) -> _Life:
        model = backend._models.get(job.model_name)
        env = ((model.primary_container or {}).get("Environment") or {}) if model is not None else {}
        return _Life(now, float(env.get("SANDBOX_RUN_SECONDS") or DEFAULT_RUN_SECONDS),
                     "ClientError: the model container exited (SANDBOX_FAIL was set)"
                     if env.get("SANDBOX_FAIL") == "true" else "")

    def _advance(self, job: Any, life: _Life, now: float) -> None:
        status = job.transform_job_status
        if status in ("Completed", "Failed", "Stopped"):
            return
        if status == "Stopping":
            return self._end(job, life, now, "Stopped", "")
        if life.started is None:
            if now - life.created >= self.startup:
                life.started = now
                job.transform_start_time = job.last_modified_time = self.wall(now)
                self.log(job.transform_job_name, self.wall(now), "Transforming: the model server is up; "
                         "sending the input records")
            return
        if life.fail_reason:
            return self._end(job, life, now, "Failed", life.fail_reason)
        if now - life.started >= life.run_seconds:
            self._end(job, life, now, "Completed", "")

    def _end(self, job: Any, life: _Life, now: float, status: str, reason: str) -> None:
        job.transform_job_status = status
        job.failure_reason = reason
        job.last_modified_time = self.wall(now)
        # Its end is reported the virtual seconds it ran after its start, so that what it costs
        # (instance-seconds from start to end) is the virtual run's, as a training job's
        # BillableTimeInSeconds is: the sandbox's clock runs faster than the wall's.
        ran = 0.0 if life.started is None else now - life.started
        job.transform_end_time = (job.transform_start_time or self.wall(now)) + timedelta(seconds=ran)
        self.log(job.transform_job_name, self.wall(now), f"{status}: " + (reason or f"Transform job {status.lower()}"))


_INSTALLED = False


def install_transform_jobs() -> None:
    """Teach moto's SageMaker what real SageMaker does with transform jobs (the module's docstring)."""
    global _INSTALLED
    if _INSTALLED:
        return
    from moto.sagemaker.exceptions import ResourceInUseException, ValidationError
    from moto.sagemaker.models import FakeTransformJob, SageMakerModelBackend
    from moto.sagemaker.responses import SageMakerResponse

    born_completed = FakeTransformJob.__init__

    def born_starting(self, *args, **kwargs):  # a new job starts; it is not done at once
        born_completed(self, *args, **kwargs)
        self.transform_job_status = "InProgress"
        self.transform_start_time = self.transform_end_time = None

    FakeTransformJob.__init__ = born_starting  # type: ignore[method-assign]  # patching moto

    create_model = SageMakerModelBackend.create_model

    def create_model_once(self, model_name: str, *args, **kwargs):
        MODEL_CREATES[model_name] = MODEL_CREATES.get(model_name, 0) + 1
        if model_name in self._models:
            raise ValidationError(message=f"Cannot create already existing model \"{model_name}\".")
        return create_model(self, model_name, *args, **kwargs)

    SageMakerModelBackend.create_model = create_model_once  # type: ignore[method-assign]  # patching moto

    create_transform = SageMakerModelBackend.create_transform_job

    def create_transform_once(self, transform_job_name: str, model_name: str, *args, **kwargs):
        TRANSFORM_CREATES[transform_job_name] = TRANSFORM_CREATES.get(transform_job_name, 0) + 1
        if transform_job_name in self.transform_jobs:
            raise ResourceInUseException(message=f"Transform job {transform_job_name} already exists")
        if model_name not in self._models:
            raise ValidationError(message=f"Could not find model \"{model_name}\".")
        return create_transform(self, transform_job_name, model_name, *args, **kwargs)

    SageMakerModelBackend.create_transform_job = create_transform_once  # type: ignore[method-assign]  # patching moto

    def stop_transform_job(self):
        name = self._get_param("TransformJobName")
        jobs = self.sagemaker_backend.transform_jobs
        if name not in jobs:
            raise ValidationError(message=f"Could not find transform job \"{name}\".")
        if jobs[name].transform_job_status == "InProgress":
            jobs[name].transform_job_status = "Stopping"
        return "{}"

    SageMakerResponse.stop_transform_job = stop_transform_job  # type: ignore[attr-defined]  # patching moto
    _INSTALLED = True


def wall_clock(origin: float, scale: float) -> Callable[[float], datetime]:
    """Virtual seconds since the sandbox started -> the UTC time SageMaker reports."""
    return lambda virtual: datetime.fromtimestamp(origin + virtual / scale, tz=timezone.utc)
