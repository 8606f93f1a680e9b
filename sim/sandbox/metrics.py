"""Prometheus metrics of the sandbox cluster, with the real exporters' names and labels.

- NVIDIA dcgm-exporter: DCGM_FI_DEV_GPU_UTIL, DCGM_FI_DEV_FB_USED, DCGM_FI_DEV_FB_FREE,
  DCGM_FI_DEV_POWER_USAGE per GPU, labelled gpu, UUID, device, modelName, the host (as `Hostname`
  like release 4.5.3-4.8.2, as `hostname` like its HEAD, or both) and DCGM_FI_DRIVER_VERSION; GPUs
  that a running pod holds also carry namespace, pod and container, or exported_namespace,
  exported_pod and exported_container the way a ServiceMonitor with honorLabels: false delivers them.
- kube-state-metrics: kube_node_status_allocatable / _capacity and
  kube_pod_container_resource_requests for resource="nvidia_com_gpu", unit="integer";
  kube_pod_status_phase; kube_job_status_active / _succeeded / _failed; kube_job_spec_parallelism.

A busy GPU's utilization comes from its pod's annotation sandbox.spillway.io/gpu-util (default 85).
The text is prometheus-client's exposition (labels in its order, values as floats).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.metrics_core import Metric

from .machinery import GPU, pod_gpus
from .store import Store

GPU_UTIL = "sandbox.spillway.io/gpu-util"
DRIVER = "550.90.07"


@dataclass(frozen=True)
class MetricStyle:
    hostname_label: str = "Hostname"  # Hostname | hostname | both
    exported: bool = False  # pod labels as exported_* (ServiceMonitor with honorLabels: false)


class _Families:
    """The families of one scrape, in prometheus-client's Metric (samples may differ in labels, as
    dcgm-exporter's do: a GPU a pod holds carries the pod's)."""

    def __init__(self) -> None:
        self.families: list[Metric] = []

    def family(self, name: str, help_text: str) -> Metric:
        metric = Metric(name, help_text, "gauge")
        self.families.append(metric)
        return metric


class _Collector:
    def __init__(self, store: Store, style: MetricStyle):
        self.store, self.style = store, style

    def collect(self):
        return iter(families(self.store, self.style))


def render(store: Store, style: MetricStyle = MetricStyle()) -> str:
    """The exposition text of one scrape (prometheus-client's generate_latest)."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Collector(store, style))
    return generate_latest(registry).decode()


def families(store: Store, style: MetricStyle = MetricStyle()) -> list[Metric]:
    """One scrape: dcgm-exporter's series per GPU, then kube-state-metrics' per node, pod and Job."""
    with store.lock:
        nodes = sorted(store.objects[("", "nodes")].values(), key=lambda n: n["metadata"]["name"])
        pods = sorted(store.objects[("", "pods")].values(), key=lambda p: (p["metadata"].get("namespace", ""),
                                                                          p["metadata"]["name"]))
        jobs = sorted(store.objects[("batch", "jobs")].values(), key=lambda j: (j["metadata"].get("namespace", ""),
                                                                              j["metadata"]["name"]))
    out = _Families()
    _dcgm(out, _gpu_rows(nodes, pods, style))
    _node_gpus(out, nodes)
    _pod_requests(out, pods)
    _pod_phases(out, pods)
    _job_status(out, jobs)
    return out.families


def _gpu_rows(nodes: list[dict], pods: list[dict], style: MetricStyle) -> list[tuple[dict, float, int]]:
    """(labels, utilization %, framebuffer MiB used) per GPU of every node, a running pod's GPU
    labelled with the pod."""
    running = [p for p in pods if (p.get("status") or {}).get("phase") == "Running" and (p.get("spec") or {}).get("nodeName")]
    holders: dict[str, list[dict]] = {}
    for p in running:
        holders.setdefault(p["spec"]["nodeName"], []).extend([p] * pod_gpus(p))

    gpu_rows = []
    for node in nodes:
        name = node["metadata"]["name"]
        count = int(((node.get("status") or {}).get("capacity") or {}).get(GPU, 0) or 0)
        model = (node["metadata"].get("labels") or {}).get("nvidia.com/gpu.product", "NVIDIA GPU").replace("-", " ")
        for i in range(count):
            pod = holders.get(name, [])[i] if i < len(holders.get(name, [])) else None
            gpu_rows.append(_gpu_row(name, i, model, pod, style))
    return gpu_rows


def _gpu_row(name: str, i: int, model: str, pod: dict | None, style: MetricStyle) -> tuple[dict, float, int]:
    uuid = "GPU-" + hashlib.sha1(f"{name}/{i}".encode()).hexdigest()[:32]
    base = {"gpu": str(i), "UUID": uuid, "pci_bus_id": f"00000000:{i + 0x10:02X}:00.0", "device": f"nvidia{i}",
            "modelName": model}
    if style.hostname_label in ("Hostname", "both"):
        base["Hostname"] = name
    if style.hostname_label in ("hostname", "both"):
        base["hostname"] = name
    base["DCGM_FI_DRIVER_VERSION"] = DRIVER
    util, fb_used = 0.0, 0
    if pod is not None:
        prefix = "exported_" if style.exported else ""
        container = ((pod.get("spec") or {}).get("containers") or [{}])[0].get("name", "")
        base.update({f"{prefix}container": container, f"{prefix}namespace": pod["metadata"].get("namespace", ""),
                     f"{prefix}pod": pod["metadata"]["name"]})
        try:
            util = float((pod["metadata"].get("annotations") or {}).get(GPU_UTIL, 85))
        except ValueError:
            util = 85.0
        fb_used = int(util / 100 * 70000)
    return base, util, fb_used


def _dcgm(out: _Families, gpu_rows: list[tuple[dict, float, int]]) -> None:
    for metric, help_text, figure in (
            ("DCGM_FI_DEV_GPU_UTIL", "GPU utilization (in %).", lambda u, f: u),
            ("DCGM_FI_DEV_FB_USED", "Framebuffer memory used (in MiB).", lambda u, f: f),
            ("DCGM_FI_DEV_FB_FREE", "Framebuffer memory free (in MiB).", lambda u, f: 80000 - f),
            ("DCGM_FI_DEV_POWER_USAGE", "Power draw (in W).", lambda u, f: round(60 + 3.4 * u, 1))):
        family = out.family(metric, help_text)
        for labels, util, fb in gpu_rows:
            family.add_sample(metric, labels, figure(util, fb))


def _node_gpus(out: _Families, nodes: list[dict]) -> None:
    for metric, key in (("kube_node_status_allocatable", "allocatable"), ("kube_node_status_capacity", "capacity")):
        family = out.family(metric, f"The {key} for different resources of a node.")
        for node in nodes:
            value = ((node.get("status") or {}).get(key) or {}).get(GPU)
            if value is not None:
                family.add_sample(metric, {"node": node["metadata"]["name"], "resource": "nvidia_com_gpu",
                                           "unit": "integer"}, float(value))


def _pod_requests(out: _Families, pods: list[dict]) -> None:
    family = out.family("kube_pod_container_resource_requests",
                        "The number of requested request resource by a container.")
    for p in pods:
        for c in (p.get("spec") or {}).get("containers") or []:
            res = c.get("resources") or {}
            value = (res.get("requests") or {}).get(GPU) or (res.get("limits") or {}).get(GPU)
            if value:
                family.add_sample("kube_pod_container_resource_requests", {
                    "namespace": p["metadata"].get("namespace", ""), "pod": p["metadata"]["name"],
                    "uid": p["metadata"]["uid"], "container": c.get("name", ""),
                    "node": (p.get("spec") or {}).get("nodeName") or "", "resource": "nvidia_com_gpu",
                    "unit": "integer"}, float(value))


def _pod_phases(out: _Families, pods: list[dict]) -> None:
    family = out.family("kube_pod_status_phase", "The pods current phase.")
    for p in pods:
        phase = (p.get("status") or {}).get("phase", "Pending")
        for candidate in ("Pending", "Running", "Succeeded", "Failed", "Unknown"):
            family.add_sample("kube_pod_status_phase", {"namespace": p["metadata"].get("namespace", ""),
                                                        "pod": p["metadata"]["name"], "uid": p["metadata"]["uid"],
                                                        "phase": candidate}, int(candidate == phase))


def _job_status(out: _Families, jobs: list[dict]) -> None:
    for metric, key in (("kube_job_status_active", "active"), ("kube_job_status_succeeded", "succeeded"),
                        ("kube_job_status_failed", "failed")):
        family = out.family(metric, f"The number of {key} pods.")
        for j in jobs:
            family.add_sample(metric, {"namespace": j["metadata"].get("namespace", ""),
                                       "job_name": j["metadata"]["name"]}, (j.get("status") or {}).get(key, 0))
    family = out.family("kube_job_spec_parallelism",
                        "The maximum desired number of pods the job should run at any given time.")
    for j in jobs:
        family.add_sample("kube_job_spec_parallelism", {"namespace": j["metadata"].get("namespace", ""),
                                                        "job_name": j["metadata"]["name"]},
                          (j.get("spec") or {}).get("parallelism", 1))
