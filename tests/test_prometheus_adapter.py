"""The controller's Prometheus adapter against a real Prometheus scraping the sandbox's DCGM
series, with either spelling of the node label; and decisions that go on when it is down."""

from __future__ import annotations

import socket

import pytest

from scheduler.prometheus import DcgmLabels, Utilization
from sim.sandbox.metrics import MetricStyle
from tests.sandboxes import controller, create, manifest, needs_prometheus, real_prometheus

NODES = {"gpu-node-000", "gpu-node-001"}


@needs_prometheus
def test_dcgm_utilization_by_node_with_either_label_spelling(busy_cluster, tmp_path):
    busy_cluster.metric_style = MetricStyle("both", exported=True)  # 4.x's Hostname and main's hostname
    with real_prometheus(busy_cluster.url.removeprefix("http://"), tmp_path) as prom:
        url = prom.url
        for label in ("Hostname", "hostname"):
            util = Utilization(url, DcgmLabels(node=label, pod="exported_pod"))
            assert util.by_node(600) == {"gpu-node-000": pytest.approx(90.0), "gpu-node-001": pytest.approx(30.0)}
            assert util.cluster_average(600, NODES) == pytest.approx(60.0)
            assert util.last_error is None
        wrong = Utilization(url, DcgmLabels(node="kubernetes_node"))
        assert wrong.by_node(600) == {} and wrong.cluster_average(600, NODES) is None


def test_with_prometheus_down_decisions_go_on_from_the_kubernetes_api(cluster, caplog):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{s.getsockname()[1]}"  # nothing listens here once the socket closes
    create(cluster, manifest("runs-anyway"))
    ctl = controller(cluster)
    ctl.utilization = Utilization(dead, timeout_seconds=1)
    report = ctl.cycle()
    assert [d.reason.value for d in report.decisions] == ["LocalCapacityAvailable"]
    assert report.prometheus_ok is False
    assert ctl.metrics.registry.get_sample_value("spillway_prometheus_up") == 0
    assert "deciding from the Kubernetes API alone" in caplog.text
