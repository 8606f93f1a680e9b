"""Fluent builders so tests read like specs: job("train").gpus(8).deadline_in(hours=6).build()."""

from __future__ import annotations

import copy
from dataclasses import replace
from typing import Any

from policies import BurstPolicy, JobRequest, Snapshot
from policies.model.constants import CapacityType, Mode
from policies.model.snapshot import CloudJob, CompletedJob, Node, RunningPod, Spend
from scheduler.trial_pods import TRIAL_LABEL
from scheduler.webhook import MUTATE_PATH, MUTATE_POD_PATH, VALIDATE_PATH

NOW = 1_795_000_000.0  # 2026-11-18T09:46:40Z, a fixed instant: the core never reads a clock
HOUR = 3600.0
PRODUCT = "NVIDIA-A100-SXM4-80GB"
ROLE = "arn:aws:iam::123456789012:role/Train"
BUCKET = "s3://acme-ml/"


class job:
    def __init__(self, name: str = "train", namespace: str = "ml"):
        self._j = JobRequest(namespace=namespace, name=name, gpus_per_pod=1, submit_time=NOW, gpu_product=PRODUCT,
                             image="train:1", opted_in=True, runtime_estimate_seconds=HOUR)

    def _set(self, **kw) -> "job":
        self._j = replace(self._j, **kw)
        return self

    def gpus(self, n: int, pods: int = 1) -> "job":
        return self._set(gpus_per_pod=n, pods=pods)

    def product(self, p: str | None = PRODUCT) -> "job":
        return self._set(gpu_product=p)

    def runs(self, hours: float) -> "job":
        return self._set(runtime_estimate_seconds=hours * HOUR)

    def unestimated(self) -> "job":
        return self._set(runtime_estimate_seconds=None)

    def submitted_ago(self, hours: float) -> "job":
        return self._set(submit_time=NOW - hours * HOUR)

    def deadline_in(self, hours: float) -> "job":
        return self._set(deadline=NOW + hours * HOUR)

    def checkpointed(self) -> "job":
        return self._set(checkpoint_s3_uri=f"{BUCKET}ckpt/{self._j.name}/")

    def mode(self, m: str) -> "job":
        return self._set(mode=Mode(m))

    def capacity(self, c: str) -> "job":
        return self._set(capacity_type=CapacityType(c))

    def untranslatable(self, why: str = "uses a PVC") -> "job":
        return self._set(untranslatable=why)

    def max_wait(self, seconds: float) -> "job":
        return self._set(local_max_wait_seconds=seconds)

    def build(self) -> JobRequest:
        return self._j


class cluster:
    def __init__(self):
        self._nodes: list[Node] = []
        self._running: list[RunningPod] = []
        self._cloud: list[CloudJob] = []
        self._spend: list[Spend] = []
        self._completed: list[CompletedJob] = []
        self._util: float | None = None
        self._pending: list[JobRequest] = []

    def nodes(self, count: int, gpus: int = 8, product: str | None = PRODUCT, prefix: str = "n") -> "cluster":
        start = len(self._nodes)
        self._nodes += [Node(f"{prefix}{start + i}", gpus, product) for i in range(count)]
        return self

    def busy(self, node: str, gpus: int, until_hours: float | None, started_hours_ago: float = 1.0,
             job: str = "ml/running") -> "cluster":
        end = None if until_hours is None else NOW + until_hours * HOUR
        self._running.append(RunningPod(job, node, gpus, NOW - started_hours_ago * HOUR, end))
        return self

    def spent(self, namespace: str, today: float = 0.0, month: float = 0.0) -> "cluster":
        self._spend.append(Spend(namespace, today, month))
        return self

    def in_cloud(self, instance_type: str, count: int = 1, namespace: str = "ml", committed: float = 0.0) -> "cluster":
        self._cloud.append(CloudJob(f"{namespace}/c{len(self._cloud)}", namespace, instance_type, count, committed))
        return self

    def history(self, namespace: str, family: str, *hours: float) -> "cluster":
        self._completed += [CompletedJob(namespace, family, 1, h * HOUR) for h in hours]
        return self

    def utilization(self, percent: float) -> "cluster":
        self._util = percent
        return self

    def pending(self, *jobs: JobRequest) -> "cluster":
        self._pending += jobs
        return self

    def build(self) -> Snapshot:
        return Snapshot(NOW, tuple(self._nodes), tuple(self._running), tuple(self._cloud), tuple(self._spend),
                        tuple(self._completed), tuple(self._pending), self._util)


BASE_POLICY: dict[str, Any] = {
    "spec": {
        # The hand-computed cases are written for a 30-min max wait that bursts early, and $2 per
        # GPU-hour of waiting (the embedded default until it weighed waiting per Job): pinned here.
        "local": {"maxWaitSeconds": 1800, "burstTiming": "early"},
        "tradeoff": {"waitUsdPerHour": 2.0, "per": "gpu"},
        "allowlists": {"*": {"roleArns": [ROLE], "s3Prefixes": [BUCKET]}},
        "budgets": {"default": {"dailyUsd": 10_000, "monthlyUsd": 100_000}},
    }
}


def policy(**spec_overrides: Any) -> BurstPolicy:
    """The test base policy with spec sections merged in: policy(local={"maxWaitSeconds": 60}).
    `allowlists` replaces the base entry instead of merging with it."""
    data = copy.deepcopy(BASE_POLICY)
    for key, value in spec_overrides.items():
        if key != "allowlists" and isinstance(value, dict) and isinstance(data["spec"].get(key), dict):
            data["spec"][key] = {**data["spec"][key], **value}
        else:
            data["spec"][key] = value
    return BurstPolicy.model_validate(data)


def webhook_configs(url: str, ca: str, failure_policy: str = "Fail") -> list[dict]:
    """Spillway's two webhook configurations, as deploy/overlays/webhook has them, called by URL."""
    def hook(name, path, operations, group="batch", resource="jobs"):
        return {"name": f"{name}.spillway.io", "admissionReviewVersions": ["v1"], "sideEffects": "None",
                "failurePolicy": failure_policy, "clientConfig": {"url": url + path, "caBundle": ca},
                "namespaceSelector": {"matchExpressions": [{"key": "kubernetes.io/metadata.name", "operator": "NotIn",
                                                            "values": ["kube-system", "spillway-system"]}]},
                "rules": [{"apiGroups": [group], "apiVersions": ["v1"], "resources": [resource],
                           "operations": operations}]}
    trials = {**hook("trials.pods", MUTATE_POD_PATH, ["CREATE"], "", "pods"),
              "objectSelector": {"matchLabels": {TRIAL_LABEL: "true"}}}
    return [{"apiVersion": "admissionregistration.k8s.io/v1", "kind": "MutatingWebhookConfiguration",
             "metadata": {"name": "spillway"}, "webhooks": [hook("suspend", MUTATE_PATH, ["CREATE"]), trials]},
            {"apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingWebhookConfiguration",
             "metadata": {"name": "spillway"}, "webhooks": [hook("annotations", VALIDATE_PATH, ["CREATE", "UPDATE"])]}]


BROKEN = """\
apiVersion: spillway.io/v1alpha1
kind: BurstPolicy
spec:
  local:
    maxWaitSecond: 600
    hotUtilizationPercent: 250
  sageMaker:
    emit: helm
    quotas:
      ml.p4d.24xlarg: 2
  budgets:
    default: {dailyUsd: -5}
"""


BASE_JOB = {
    "apiVersion": "batch/v1",
    "kind": "Job",
    "metadata": {"name": "train-7", "namespace": "ml", "creationTimestamp": "2026-11-28T14:00:00Z",
                 "labels": {"team": "nlp"}, "annotations": {"spillway.io/mode": "auto"}},
    "spec": {"suspend": True, "template": {"spec": {
        "restartPolicy": "Never",
        "nodeSelector": {"nvidia.com/gpu.product": "NVIDIA-A100-SXM4-80GB"},
        "containers": [{"name": "t", "image": "img:1", "resources": {"limits": {"nvidia.com/gpu": "4"}}}],
    }}},
}


ACK_JOB = {
    "apiVersion": "sagemaker.services.k8s.aws/v1alpha1", "kind": "TrainingJob",
    "metadata": {"name": "train-1"},
    "spec": {"trainingJobName": "train-1", "roleARN": "arn:aws:iam::1:role/r",
             "algorithmSpecification": {"trainingImage": "img", "trainingInputMode": "File"},
             "outputDataConfig": {"s3OutputPath": "s3://b/out/"},
             "resourceConfig": {"instanceType": "ml.g5.xlarge", "instanceCount": 1, "volumeSizeInGB": 50},
             "stoppingCondition": {"maxRuntimeInSeconds": 3600, "maxWaitTimeInSeconds": 7200},
             "enableManagedSpotTraining": True},
}
