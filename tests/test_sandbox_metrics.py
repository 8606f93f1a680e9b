"""A real Prometheus scrapes the sandbox's DCGM and kube-state-metrics series and answers the
PromQL the controller will use (Debian's prometheus, started here on loopback)."""

from __future__ import annotations

import pytest

from sim.sandbox.metrics import MetricStyle, render
from tests.sandboxes import needs_prometheus, real_prometheus, samples


def test_exposition_uses_the_real_names_and_label_spellings(busy_cluster):
    text = render(busy_cluster.store)
    util = samples(text, "DCGM_FI_DEV_GPU_UTIL")
    first = next(s for s in util if s.labels["gpu"] == "0" and s.labels["Hostname"] == "gpu-node-000")
    assert first.labels["modelName"] == "NVIDIA A100 SXM4 80GB" and first.labels["DCGM_FI_DRIVER_VERSION"]
    [allocatable] = [s for s in samples(text, "kube_node_status_allocatable") if s.labels["node"] == "gpu-node-000"]
    assert allocatable.labels == {"node": "gpu-node-000", "resource": "nvidia_com_gpu", "unit": "integer"}
    assert allocatable.value == 8
    busy = [s for s in util if "pod" in s.labels]
    assert len(busy) == 12 and all(s.labels["namespace"] == "default" for s in busy)
    idle = [s for s in util if "pod" not in s.labels]
    assert len(idle) == 4 and all(s.value == 0 for s in idle)
    both = samples(render(busy_cluster.store, MetricStyle("both", exported=True)), "DCGM_FI_DEV_GPU_UTIL")
    assert all(s.labels["hostname"] == s.labels["Hostname"] for s in both)
    exported = [s for s in both if "exported_pod" in s.labels]
    assert len(exported) == 12 and not any("pod" in s.labels for s in both)


@needs_prometheus
def test_a_real_prometheus_answers_the_controllers_promql(busy_cluster, tmp_path):
    with real_prometheus(busy_cluster.url.removeprefix("http://"), tmp_path) as prom:
        value = lambda q: float(prom.custom_query(q)[0]["value"][1])  # noqa: E731
        free = ('sum(kube_node_status_allocatable{resource="nvidia_com_gpu"}) - '
                'sum(kube_pod_container_resource_requests{resource="nvidia_com_gpu",node!=""})')
        assert value(free) == 4
        assert value("avg(DCGM_FI_DEV_GPU_UTIL)") == pytest.approx((8 * 90 + 4 * 60) / 16)
        per_node = prom.custom_query(
            # accepts both spellings of the host label (dcgm-exporter renamed Hostname to hostname)
            'avg by (node) (label_replace(DCGM_FI_DEV_GPU_UTIL{Hostname!=""}, "node", "$1", "Hostname", "(.+)") '
            'or label_replace(DCGM_FI_DEV_GPU_UTIL{hostname!=""}, "node", "$1", "hostname", "(.+)"))')
        assert {r["metric"]["node"]: float(r["value"][1]) for r in per_node} == {
            "gpu-node-000": 90.0, "gpu-node-001": 30.0}
        by_ns = prom.custom_query('sum by (namespace) (DCGM_FI_DEV_GPU_UTIL{pod!=""} > bool 0)')
        assert {r["metric"]["namespace"]: float(r["value"][1]) for r in by_ns} == {"default": 12.0}
        assert value('sum(kube_job_status_active{job_name=~"a|b"})') == 2
        assert value("avg(avg_over_time(DCGM_FI_DEV_GPU_UTIL[10m]))") == pytest.approx(60.0)  # the hot window
