"""A batch/v1 Job manifest, reduced to what the decision needs: a JobRequest.

Parsing never raises on a well-formed-but-odd Job: what cannot be sent to SageMaker is kept
as `untranslatable` (the decision says why). Malformed fields raise InputError naming the
field path and the fix.
"""

from __future__ import annotations

import re
from dataclasses import field
from typing import Any, Callable

from . import constants as C
from .constants import CapacityType, Mode, SageMakerKind, SplitType
from .errors import InputError, InputIssue
from .transform_annotations import is_mime_type, read_kind, read_transform_annotations, transform_untranslatable
from .tuning_annotations import ConfigMaps, read_tuning_annotations, tuning_untranslatable
from .tuning_spec import TuningSpec
from .units import parse_duration, parse_gpu_quantity, parse_time
from .values import value

# Suffixes that make names unique: Kubernetes generateName (5 chars, no vowels), counters, hashes.
_FAMILY_SUFFIX = re.compile(r"(-[bcdfghjklmnpqrstvwxz2456789]{5}|-\d+|-[0-9a-f]{8,})+$")


@value
class JobRequest:
    namespace: str
    name: str
    gpus_per_pod: int
    pods: int = 1
    gpu_product: str | None = None
    submit_time: float = 0.0
    uid: str = ""
    labels: tuple[tuple[str, str], ...] = ()
    mode: Mode | None = None  # None: the policy's default for managed Jobs
    capacity_type: CapacityType | None = None
    runtime_estimate_seconds: float | None = None
    deadline: float | None = None
    checkpoint_s3_uri: str | None = None
    output_s3_uri: str | None = None
    input_s3_uri: str | None = None
    role_arn: str | None = None
    instance_type: str | None = None
    wait_usd_per_hour: float | None = None
    local_max_wait_seconds: float | None = None  # spillway.io/max-wait-seconds: for local GPUs
    untranslatable: str | None = None  # why SageMaker cannot run it, if it cannot
    opted_in: bool = False  # carries spillway.io/mode
    image: str | None = None  # the pod's image
    sagemaker_image: str | None = None  # spillway.io/sagemaker-image: what SageMaker runs instead
    command: tuple[str, ...] | None = None  # the GPU container's command (entrypoint), if it sets one
    args: tuple[str, ...] | None = None
    environment: tuple[tuple[str, str], ...] = ()  # literal env of the GPU container, in order
    sagemaker_kind: SageMakerKind = SageMakerKind.TRAINING  # spillway.io/sagemaker-kind
    model_s3_uri: str | None = None  # transform: the model artifact its container loads (None: the image holds it)
    content_type: str | None = None  # transform: MIME type of the input records
    split_type: SplitType | None = None  # transform: how the input is cut into records
    tuning: TuningSpec | None = None  # tuning: the sweep's objective, strategy and ranges
    trials: int = 1  # tuning: the most trials (the Job's completions); pods is the most at once
    manifest: dict[str, Any] | None = field(default=None, compare=False, repr=False)

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"

    @property
    def total_gpus(self) -> int:
        return self.gpus_per_pod * self.pods

    @property
    def checkpointable(self) -> bool:
        return bool(self.checkpoint_s3_uri)

    @property
    def training_image(self) -> str | None:
        """The image SageMaker runs: a training job's, or a transform burst's Model's."""
        return self.sagemaker_image or self.image

    @property
    def is_transform(self) -> bool:
        return self.sagemaker_kind == SageMakerKind.TRANSFORM

    @property
    def is_tuning(self) -> bool:
        return self.sagemaker_kind == SageMakerKind.TUNING

    @property
    def waves(self) -> int:
        """How many rounds of `pods` trials a sweep runs in (1 for any other Job)."""
        return -(-self.trials // self.pods) if self.is_tuning else 1

    @property
    def family(self) -> str:
        """Name without generated suffixes: what 'similar Jobs' are grouped by."""
        return family_of(self.name)

    def label(self, key: str) -> str | None:
        for k, v in self.labels:
            if k == key:
                return v
        return None


def pod_spec_gpus(pod_spec: dict[str, Any]) -> int:
    """nvidia.com/gpu a pod spec's containers request (limits, else requests); what a bound pod
    holds on its node. A malformed quantity counts as none: it is reported where a Job is read."""
    total = 0
    for ctr in pod_spec.get("containers") or []:
        res = (ctr.get("resources") or {}) if isinstance(ctr, dict) else {}
        value = (res.get("limits") or {}).get(C.GPU_RESOURCE) or (res.get("requests") or {}).get(C.GPU_RESOURCE)
        try:
            total += parse_gpu_quantity(value or 0)
        except ValueError:
            pass
    return total


def family_of(name: str) -> str:
    """A Job name without generated suffixes: what 'similar Jobs' are grouped by."""
    return _FAMILY_SUFFIX.sub("", name) or name


Bad = Callable[[str, str, str], None]  # bad(path, problem, fix): note an issue with the input


def job_from_manifest(manifest: Any, source: str = "<job>", config_maps: ConfigMaps | None = None) -> JobRequest:
    """Read a batch/v1 Job (a dict as parsed from YAML/JSON); raise InputError on bad fields.
    config_maps: the ConfigMaps of the Job's namespace (name -> data), for a sweep whose tuning
    spec is in one (None: the cluster cannot be read here; such a spec is left unread)."""
    issues: list[InputIssue] = []

    def bad(path: str, problem: str, fix: str) -> None:
        issues.append(InputIssue(source, path, problem, fix))

    if not isinstance(manifest, dict):
        raise InputError([InputIssue(source, "", f"expected a Job object, got {type(manifest).__name__}",
                                     "pass a batch/v1 Job manifest")])
    api, kind = manifest.get("apiVersion"), manifest.get("kind")
    if kind != "Job" or api not in ("batch/v1", None):
        bad("kind", f"expected apiVersion batch/v1, kind Job; got {api!r}, {kind!r}",
            "pass a batch/v1 Job (CronJobs and bare Pods are not managed)")
    meta = _mapping(manifest.get("metadata"), "metadata", bad)
    spec = _mapping(manifest.get("spec"), "spec", bad)
    name, namespace, labels, annotations, submit = _read_metadata(meta, bad)
    template = _mapping(spec.get("template"), "spec.template", bad)
    pod_spec = _mapping(template.get("spec"), "spec.template.spec", bad)
    containers = pod_spec.get("containers")
    if not isinstance(containers, list) or not containers:
        bad("spec.template.spec.containers", "expected a non-empty list of containers",
            "give the pod template at least one container")
        containers = []
    gpus, gpu_containers, image, main = _gpu_containers(containers, bad)
    command, args, environment, env_problem = _container_fields(containers, main, bad)

    parallelism = _int_field(spec, "parallelism", 1, bad)
    completions = _int_field(spec, "completions", parallelism or 1, bad)
    indexed = spec.get("completionMode") == "Indexed"
    pods = max(1, parallelism if parallelism is not None else 1)
    node_selector = pod_spec.get("nodeSelector") or {}
    product = node_selector.get(C.GPU_PRODUCT_LABEL) if isinstance(node_selector, dict) else None

    fields: dict[str, Any] = {}
    _read_annotations(annotations, fields, bad)
    read_tuning_annotations(annotations, fields.get("sagemaker_kind", SageMakerKind.TRAINING),
                            trials=completions or 1, indexed=indexed, config_maps=config_maps, out=fields, bad=bad)
    if issues:
        raise InputError(issues)

    why_not = env_problem or _untranslatable(pod_spec, gpu_containers, pods, indexed, completions, image, fields)
    if fields.get("sagemaker_kind") == SageMakerKind.TRANSFORM:
        why_not = why_not or transform_untranslatable(command, args)
    if fields.get("sagemaker_kind") == SageMakerKind.TUNING:
        why_not = why_not or tuning_untranslatable(command, args)
    return JobRequest(
        namespace=str(namespace),
        name=str(name),
        gpus_per_pod=gpus,
        pods=pods,
        gpu_product=str(product) if product else None,
        submit_time=submit,
        uid=str(meta.get("uid") or ""),
        labels=tuple(sorted(labels.items())),
        untranslatable=why_not,
        opted_in=C.MODE in annotations,
        image=image if isinstance(image, str) else None,
        command=command,
        args=args,
        environment=environment,
        manifest=manifest,
        **fields,
    )


def _read_metadata(meta: dict[str, Any], bad: Bad) -> tuple[str, str, dict[str, str], dict[str, str], float]:
    """name, namespace, labels, annotations and submission time."""
    name = meta.get("name") or meta.get("generateName") or ""
    if not isinstance(name, str) or not name:
        bad("metadata.name", "missing", "give the Job a metadata.name")
        name = "?"
    namespace = meta.get("namespace") or "default"
    labels = _string_map(meta.get("labels"), "metadata.labels", bad)
    annotations = _string_map(meta.get("annotations"), "metadata.annotations", bad)
    submit = 0.0
    if meta.get("creationTimestamp"):
        try:
            submit = parse_time(meta["creationTimestamp"])
        except ValueError as exc:
            bad("metadata.creationTimestamp", str(exc), "use RFC 3339 with a zone")
    return name, namespace, labels, annotations, submit


def _gpu_containers(containers: list[Any], bad: Bad) -> tuple[int, int, Any, int | None]:
    """GPUs per pod, how many containers ask for GPUs, the image and index of the main container
    (the first with GPUs; else the first)."""
    gpus, gpu_containers, image, main = 0, 0, None, None
    for i, ctr in enumerate(containers):
        n = _container_gpus(i, ctr, bad)
        if n:
            gpus += n
            gpu_containers += 1
            image = image or ctr.get("image")
            main = main if main is not None else i
    if image is None and containers and isinstance(containers[0], dict):
        image = containers[0].get("image")
        main = 0
    return gpus, gpu_containers, image, main


def _container_gpus(i: int, ctr: Any, bad: Bad) -> int:
    """The GPUs container i asks for: the larger of its limit and request (0 if it is malformed)."""
    if not isinstance(ctr, dict):
        bad(f"spec.template.spec.containers[{i}]", "expected a container mapping", "fix the list item")
        return 0
    resources = ctr.get("resources") or {}
    if not isinstance(resources, dict):
        bad(f"spec.template.spec.containers[{i}].resources", "expected a mapping", "write limits: {...}")
        return 0
    n = 0
    for part in ("limits", "requests"):
        values = resources.get(part) or {}
        if not isinstance(values, dict):
            bad(f"spec.template.spec.containers[{i}].resources.{part}", "expected a mapping",
                f'write {part}: {{"nvidia.com/gpu": "1"}}')
            continue
        if C.GPU_RESOURCE in values:
            try:
                n = max(n, parse_gpu_quantity(values[C.GPU_RESOURCE]))
            except ValueError as exc:
                bad(f"spec.template.spec.containers[{i}].resources.{part}.{C.GPU_RESOURCE}", str(exc),
                    'GPUs are whole devices: write "1", "2", ...')
    return n


def _non_negative(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"expected a number, got {text!r}") from None
    if not value >= 0 or value == float("inf"):
        raise ValueError(f"expected a non-negative finite number, got {text!r}")
    return value


def _annotation_path(key: str) -> str:
    return f'metadata.annotations["{key}"]'


# Annotations read as an enum: (key, field, enum, what it is, fix)
_ENUM_ANNOTATIONS: tuple[tuple[str, str, type[Mode] | type[CapacityType], str, str], ...] = (
    (C.MODE, "mode", Mode, "mode", "use auto, local or cloud"),
    (C.CAPACITY_TYPE, "capacity_type", CapacityType, "capacity type", "use any, spot or on-demand"),
)
# Annotations parsed as numbers or times: (key, field, parse, fix)
_PARSED_ANNOTATIONS: tuple[tuple[str, str, Callable[[str], float], str], ...] = (
    (C.RUNTIME_ESTIMATE, "runtime_estimate_seconds", parse_duration, "write seconds or 90m / 2h30m"),
    (C.DEADLINE, "deadline", parse_time, "write an RFC 3339 time, e.g. 2026-11-29T08:00:00Z"),
    (C.MAX_WAIT_SECONDS, "local_max_wait_seconds", _non_negative, "write a number of seconds"),
    (C.WAIT_USD_PER_HOUR, "wait_usd_per_hour", _non_negative, "write a dollar amount, e.g. 4.5"),
)


def _is_s3_uri(value: str) -> bool:
    return value.startswith("s3://") and len(value) > 5


# Annotations kept as text once they pass a check: (key, field, check, what it is not, fix)
_TEXT_ANNOTATIONS: tuple[tuple[str, str, Callable[[str], bool], str, str], ...] = (
    (C.CHECKPOINT_S3_URI, "checkpoint_s3_uri", _is_s3_uri, "an S3 URI", "write s3://bucket/prefix/"),
    (C.OUTPUT_S3_URI, "output_s3_uri", _is_s3_uri, "an S3 URI", "write s3://bucket/prefix/"),
    (C.INPUT_S3_URI, "input_s3_uri", _is_s3_uri, "an S3 URI", "write s3://bucket/prefix/"),
    (C.ROLE_ARN, "role_arn", lambda v: v.startswith("arn:aws") and ":role/" in v, "an IAM role ARN",
     "write arn:aws:iam::<account>:role/<name>"),
    (C.SAGEMAKER_IMAGE, "sagemaker_image", lambda v: bool(v) and not any(c.isspace() for c in v),
     "an image reference", "write an ECR image, e.g. 123456789012.dkr.ecr.us-east-1.amazonaws.com/train:1"),
    (C.INSTANCE_TYPE, "instance_type", lambda v: v.startswith("ml."), "a SageMaker instance type",
     "write a type such as ml.g5.12xlarge"),
    # batch transform only (transform_annotations refuses them on other Jobs)
    (C.MODEL_S3_URI, "model_s3_uri", _is_s3_uri, "an S3 URI", "write s3://bucket/prefix/model.tar.gz"),
    (C.CONTENT_TYPE, "content_type", is_mime_type, "a MIME type", "write e.g. text/csv or application/jsonlines"),
)


def _read_annotations(ann: dict[str, str], out: dict[str, Any], bad: Bad) -> None:
    read_transform_annotations(ann, read_kind(ann, out, bad), out, bad)
    for key, attr, enum, what, fix in _ENUM_ANNOTATIONS:
        if key in ann:
            try:
                out[attr] = enum(ann[key].strip().lower())
            except ValueError:
                bad(_annotation_path(key), f"unknown {what} {ann[key]!r}", fix)
    for key, attr, parse, fix in _PARSED_ANNOTATIONS:
        if key in ann:
            try:
                out[attr] = parse(ann[key])
            except ValueError as exc:
                bad(_annotation_path(key), str(exc), fix)
    for key, attr, check, what, fix in _TEXT_ANNOTATIONS:
        if key in ann:
            value = ann[key].strip()
            if check(value):
                out[attr] = value
            else:
                bad(_annotation_path(key), f"{value!r} is not {what}", fix)
    _unknown_annotations(ann, bad)


def _unknown_annotations(ann: dict[str, str], bad: Bad) -> None:
    """Note every spillway.io/ annotation that Spillway neither reads nor writes (a typo, likely)."""
    for key in ann:
        if key.startswith(C.ANNOTATION_PREFIX) and key not in C.READ_ANNOTATIONS and key not in C.WRITTEN_ANNOTATIONS:
            import difflib

            close = difflib.get_close_matches(key, C.READ_ANNOTATIONS, n=1, cutoff=0.7)
            bad(_annotation_path(key), "unknown Spillway annotation",
                f"did you mean '{close[0]}'?" if close else f"known: {', '.join(C.READ_ANNOTATIONS)}")


def _container_fields(containers: list[Any], main: int | None, bad: Bad
                      ) -> tuple[tuple[str, ...] | None, tuple[str, ...] | None, tuple[tuple[str, str], ...], str | None]:
    """The command, args and literal env of the container SageMaker would run, and why its env
    cannot travel, if it cannot (a value from a Secret or ConfigMap stays in the cluster)."""
    if main is None or not isinstance(containers[main], dict):
        return None, None, (), None
    ctr, where = containers[main], f"spec.template.spec.containers[{main}]"
    out: list[tuple[str, ...] | None] = []
    for key in ("command", "args"):
        value = ctr.get(key)
        if value is None:
            out.append(None)
        elif not isinstance(value, list) or not all(isinstance(v, (str, int, float)) for v in value):
            bad(f"{where}.{key}", "expected a list of strings", f'write {key}: ["python", "train.py"]')
            out.append(None)
        else:
            out.append(tuple(str(v) for v in value))
    environment, problem = [], None
    env = ctr.get("env") or []
    if not isinstance(env, list):
        bad(f"{where}.env", "expected a list of {name, value}", 'write env: [{name: EPOCHS, value: "3"}]')
        env = []
    for j, item in enumerate(env):
        if not isinstance(item, dict) or not isinstance(item.get("name"), str):
            bad(f"{where}.env[{j}]", "expected {name, value}", 'write {name: EPOCHS, value: "3"}')
            continue
        if "valueFrom" in item:
            problem = problem or (f"{where}.env[{j}] ({item['name']}) takes its value from valueFrom, which a "
                                  "SageMaker training job cannot read; give it a literal value, or keep the Job "
                                  "local (spillway.io/mode: local)")
            continue
        environment.append((item["name"], str(item.get("value", ""))))
    if ctr.get("envFrom"):
        problem = problem or (f"{where}.envFrom reads a Secret or ConfigMap, which a SageMaker training job "
                              "cannot read; list the variables under env with literal values")
    return out[0], out[1], tuple(environment), problem


def _untranslatable(pod_spec: dict[str, Any], gpu_containers: int, pods: int, indexed: bool, completions: int | None,
                    image: Any, fields: dict[str, Any]) -> str | None:
    """Why SageMaker could not run this Job, or None when it could."""
    if gpu_containers > 1:
        return "more than one container requests GPUs; a SageMaker training job runs one container"
    if not image:
        return "no container image"
    volumes = pod_spec.get("volumes") or []
    for vol in volumes if isinstance(volumes, list) else []:
        if isinstance(vol, dict) and ("persistentVolumeClaim" in vol or "hostPath" in vol or "nfs" in vol):
            kind = next(k for k in ("persistentVolumeClaim", "hostPath", "nfs") if k in vol)
            return (f"volume '{vol.get('name', '?')}' is a {kind}, which SageMaker cannot mount; stage the "
                    f"data on S3 and set {C.INPUT_S3_URI}")
    if pods > 1 and not indexed and fields.get("sagemaker_kind") != SageMakerKind.TRANSFORM:
        # (A transform job splits its input among its instances: a work queue is what it is.)
        return ("parallel non-Indexed Job (a work queue); only Indexed Jobs map to a multi-instance "
                "training job")
    if indexed and completions not in (None, pods) and fields.get("sagemaker_kind") != SageMakerKind.TUNING:
        return "Indexed Job with completions != parallelism cannot run as one SageMaker training job"
    return None


def _mapping(value: Any, path: str, bad: Bad) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        bad(path, f"expected a mapping, got {type(value).__name__}", "fix the indentation of this field")
        return {}
    return value


def _string_map(value: Any, path: str, bad: Bad) -> dict[str, str]:
    value = _mapping(value, path, bad)
    out = {}
    for k, v in value.items():
        if not isinstance(v, (str, int, float, bool)) or isinstance(v, bool):
            bad(f'{path}["{k}"]', f"expected a string value, got {type(v).__name__}", "quote the value")
            continue
        out[str(k)] = str(v)
    return out


def _int_field(spec: dict[str, Any], key: str, default: int | None, bad: Bad) -> int | None:
    value = spec.get(key, default)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        bad(f"spec.{key}", f"expected a non-negative integer, got {value!r}", f"write {key}: 1")
        return default
    return value
