"""The annotations of a batch inference Job (spillway.io/sagemaker-kind: transform), read and checked.

Such a Job runs on the cluster as it is, or bursts to a SageMaker batch transform job: a Model
(the container image, the model artifact) and a transform job over the input S3 prefix, on as
many instances as the Job's parallelism. What a transform job needs that a Job does not say
comes from annotations; each mistake is reported with the annotation's path and the fix, so
that the admission webhook refuses it at `kubectl apply`, as it refuses any bad annotation.
"""

from __future__ import annotations

from typing import Any, Callable

from . import constants as C
from .constants import CapacityType, SageMakerKind, SplitType

Bad = Callable[[str, str, str], None]  # bad(path, problem, fix)


def _path(key: str) -> str:
    return f'metadata.annotations["{key}"]'


def read_kind(ann: dict[str, str], out: dict[str, Any], bad: Bad) -> SageMakerKind:
    """spillway.io/sagemaker-kind (training when absent), stored in out["sagemaker_kind"]."""
    text = ann.get(C.SAGEMAKER_KIND)
    if text is None:
        return SageMakerKind.TRAINING
    try:
        kind = SageMakerKind(text.strip().lower())
    except ValueError:
        bad(_path(C.SAGEMAKER_KIND), f"unknown SageMaker kind {text!r}",
            "use training, transform or tuning")
        return SageMakerKind.TRAINING
    out["sagemaker_kind"] = kind
    return kind


def is_mime_type(value: str) -> bool:
    kind, slash, sub = value.partition("/")
    return bool(kind) and bool(slash) and bool(sub) and not any(c.isspace() for c in value)


def read_transform_annotations(ann: dict[str, str], kind: SageMakerKind, out: dict[str, Any], bad: Bad) -> None:
    """The model, content type and split type of a transform Job; what a transform job cannot
    have (a checkpoint, managed spot) and what only a transform job reads, both refused with the fix."""
    if kind != SageMakerKind.TRANSFORM:
        for key in C.TRANSFORM_ONLY_ANNOTATIONS:
            if key in ann:
                bad(_path(key), "applies only to batch transform Jobs",
                    f"set {C.SAGEMAKER_KIND}: transform, or remove {key}")
        return
    _read_transform_fields(ann, out, bad)
    if C.INPUT_S3_URI not in ann:
        bad(_path(C.INPUT_S3_URI), "missing: a transform job reads its records from S3",
            f"set {C.INPUT_S3_URI} to the S3 prefix of the input, e.g. s3://bucket/batch/in/")
    if C.CHECKPOINT_S3_URI in ann:
        bad(_path(C.CHECKPOINT_S3_URI), "a batch transform job has no checkpoints (and no managed spot)",
            f"remove {C.CHECKPOINT_S3_URI}")
    if (ann.get(C.CAPACITY_TYPE) or "").strip().lower() == CapacityType.SPOT.value:
        bad(_path(C.CAPACITY_TYPE), "SageMaker batch transform has no managed spot",
            "use on-demand or any (a transform burst runs on on-demand)")


def _read_transform_fields(ann: dict[str, str], out: dict[str, Any], bad: Bad) -> None:
    """The split type (the model and content type are read with the other text annotations, by jobs.py)."""
    split = ann.get(C.SPLIT_TYPE)
    if split is not None:
        found = next((s for s in SplitType if s.value.lower() == split.strip().lower()), None)
        if found is None:
            bad(_path(C.SPLIT_TYPE), f"unknown split type {split!r}",
                f"use one of {', '.join(s.value for s in SplitType)}")
        else:
            out["split_type"] = found


def entrypoint_untranslatable(command: Any, args: Any, what: str, instead: str) -> str | None:
    """Why a container's command or args cannot travel to a SageMaker job that runs its image's
    own ENTRYPOINT (`what` has no field for them), or None when it sets neither."""
    present = [name for name, value in (("command", command), ("args", args)) if value]
    if not present:
        return None
    fields = " and ".join(f"containers[].{name}" for name in present)
    return (f"the container sets {fields}, and {what} has no field for it (its image's ENTRYPOINT runs); "
            f"{instead}, or keep the Job local ({C.MODE}: local)")


def transform_untranslatable(command: Any, args: Any) -> str | None:
    """A Model runs its image's own entrypoint (SageMaker starts it with `serve`), and CreateModel
    has no field for a command or args, on any emit target."""
    return entrypoint_untranslatable(command, args, "a SageMaker Model", "build an image that serves on its own")
