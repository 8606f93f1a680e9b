"""The SageMaker adapter: the only module of the controller that imports boto3.

Throttling (ThrottlingException) and 5xx answers are retried by botocore's adaptive retry mode.
A create under a name that already exists is not an error here: names derive from the Job's
UID, so it is the same burst created again after a crash, and its ARN is returned.
"""

from __future__ import annotations

import logging
from typing import Any, Callable

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

log = logging.getLogger(__name__)


class SageMakerError(Exception):
    def __init__(self, code: str, message: str):
        super().__init__(f"{code}: {message}")
        self.code, self.message = code, message


def _already_exists(exc: ClientError) -> bool:
    error = exc.response.get("Error") or {}
    return error.get("Code") == "ResourceInUse" or "already exists" in (error.get("Message") or "").lower()


def _not_found(exc: ClientError) -> bool:
    error = exc.response.get("Error") or {}
    message = (error.get("Message") or "").lower()
    return error.get("Code") in ("ResourceNotFound", "ValidationException") and (
        "could not find" in message or "not found" in message)


LOG_GROUP = "/aws/sagemaker/TrainingJobs"  # where SageMaker writes a training job's container output
TRANSFORM_LOG_GROUP = "/aws/sagemaker/TransformJobs"  # ... and a transform job's


class SageMaker:
    def __init__(self, region: str, *, endpoint_url: str | None = None, client: Any = None,
                 max_attempts: int = 8, **credentials: str):
        self.client = client or boto3.client(
            "sagemaker", region_name=region, endpoint_url=endpoint_url,
            config=Config(retries={"max_attempts": max_attempts, "mode": "adaptive"}), **credentials)
        self._logs_client = lambda: boto3.client("logs", region_name=region, endpoint_url=endpoint_url,
                                                 **credentials)

    def job_log(self, name: str) -> list[str]:
        """A training or transform job's CloudWatch log (its streams <name>/... in
        /aws/sagemaker/TrainingJobs, or else in /aws/sagemaker/TransformJobs: a name derives from
        one Job's UID, so it is never in both), oldest first; [] while it has none."""
        return self._log(LOG_GROUP, name) or self._log(TRANSFORM_LOG_GROUP, name)

    def _log(self, group: str, name: str) -> list[str]:
        logs = self._logs_client()
        lines: list[str] = []
        try:
            streams = logs.describe_log_streams(logGroupName=group, logStreamNamePrefix=f"{name}/")
            for stream in streams.get("logStreams") or []:
                token = None
                while True:
                    page = logs.get_log_events(logGroupName=group, logStreamName=stream["logStreamName"],
                                               startFromHead=True, **({"nextToken": token} if token else {}))
                    lines += [e["message"] for e in page.get("events") or []]
                    if not page.get("events") or page.get("nextForwardToken") == token:
                        break
                    token = page.get("nextForwardToken")
        except ClientError as exc:
            if (exc.response.get("Error") or {}).get("Code") == "ResourceNotFoundException":
                return lines
            raise _wrapped(exc) from None
        except BotoCoreError as exc:
            raise SageMakerError(type(exc).__name__, str(exc)) from None
        return lines

    def create_training_job(self, request: dict) -> str:
        """The ARN of the training job named in the request, created now or before."""
        return self._create_once(self.client.create_training_job, request, "TrainingJob", self.describe)

    def describe(self, name: str) -> dict | None:
        return self._describe(self.client.describe_training_job, TrainingJobName=name)

    def stop(self, name: str) -> None:
        self._stop(self.client.stop_training_job, TrainingJobName=name)

    # --- batch transform: the training calls' rules ---------------------------------------------

    def create_model(self, request: dict) -> None:
        try:
            self.client.create_model(**request)
        except ClientError as exc:
            message = ((exc.response.get("Error") or {}).get("Message") or "").lower()
            if _already_exists(exc) or "already existing model" in message:
                log.info("model %s exists already (a retried launch); adopting it", request["ModelName"])
                return
            raise _wrapped(exc) from None
        except BotoCoreError as exc:
            raise SageMakerError(type(exc).__name__, str(exc)) from None

    def delete_model(self, name: str) -> None:
        try:
            self.client.delete_model(ModelName=name)
        except ClientError as exc:
            if _not_found(exc):
                return  # gone already
            raise _wrapped(exc) from None
        except BotoCoreError as exc:
            raise SageMakerError(type(exc).__name__, str(exc)) from None

    def create_transform_job(self, request: dict) -> str:
        """The ARN of the transform job named in the request, created now or before."""
        return self._create_once(self.client.create_transform_job, request, "TransformJob",
                                 self.describe_transform_job)

    def describe_transform_job(self, name: str) -> dict | None:
        return self._describe(self.client.describe_transform_job, TransformJobName=name)

    def stop_transform_job(self, name: str) -> None:
        self._stop(self.client.stop_transform_job, TransformJobName=name)

    # --- hyperparameter tuning: the same rules, and its trials --------------------------------------

    def create_tuning_job(self, request: dict) -> str:
        """The ARN of the tuning job named in the request, created now or before."""
        return self._create_once(self.client.create_hyper_parameter_tuning_job, request, "HyperParameterTuningJob",
                                 self.describe_tuning_job)

    def describe_tuning_job(self, name: str) -> dict | None:
        return self._describe(self.client.describe_hyper_parameter_tuning_job, HyperParameterTuningJobName=name)

    def stop_tuning_job(self, name: str) -> None:
        self._stop(self.client.stop_hyper_parameter_tuning_job, HyperParameterTuningJobName=name)

    def tuning_trials(self, name: str) -> list[dict]:
        """The training jobs a tuning job launched (ListTrainingJobsForHyperParameterTuningJob), all pages."""
        trials: list[dict] = []
        token = None
        while True:
            page = self._describe(self.client.list_training_jobs_for_hyper_parameter_tuning_job,
                                  HyperParameterTuningJobName=name, MaxResults=100,
                                  **({"NextToken": token} if token else {}))
            if page is None:
                return trials
            trials += page.get("TrainingJobSummaries") or []
            token = page.get("NextToken")
            if not token:
                return trials

    # --- what every kind shares ----------------------------------------------------------------------

    def _create_once(self, create: Callable[..., dict], request: dict, kind: str,
                     describe: Callable[[str], dict | None]) -> str:
        """Create a job (kind TrainingJob, TransformJob or HyperParameterTuningJob: the request's {kind}Name, the answer's
        {kind}Arn). One under a name in use is the same burst created again after a crash: adopted."""
        try:
            return create(**request)[f"{kind}Arn"]
        except ClientError as exc:
            name = request[f"{kind}Name"]
            if _already_exists(exc):
                log.info("%s %s exists already (a retried launch); adopting it", kind, name)
                found = describe(name)
                if found is not None:
                    return found[f"{kind}Arn"]
            raise _wrapped(exc) from None
        except BotoCoreError as exc:
            raise SageMakerError(type(exc).__name__, str(exc)) from None

    def _describe(self, call: Callable[..., dict], **name: Any) -> dict | None:
        """What SageMaker says of a job; None while it does not exist."""
        try:
            return call(**name)
        except ClientError as exc:
            if _not_found(exc):
                return None
            raise _wrapped(exc) from None
        except BotoCoreError as exc:
            raise SageMakerError(type(exc).__name__, str(exc)) from None

    def _stop(self, call: Callable[..., dict], **name: str) -> None:
        try:
            call(**name)
        except ClientError as exc:
            if _not_found(exc):
                return
            code = (exc.response.get("Error") or {}).get("Code")
            if code == "ValidationException":  # not InProgress any more: nothing to stop
                return
            raise _wrapped(exc) from None
        except BotoCoreError as exc:
            raise SageMakerError(type(exc).__name__, str(exc)) from None


def _wrapped(exc: ClientError) -> SageMakerError:
    error = exc.response.get("Error") or {}
    return SageMakerError(error.get("Code") or "Unknown", error.get("Message") or str(exc))
