"""The Prometheus adapter: the only module that imports prometheus_api_client.

It reads the NVIDIA DCGM exporter's DCGM_FI_DEV_GPU_UTIL, averaged per node over the hot window.
The node label is configurable: dcgm-exporter 4.x writes `Hostname`, its main branch `hostname`;
behind a ServiceMonitor with honorLabels: false, pod labels arrive as `exported_pod`. When
Prometheus is down, slow or answers nonsense, the reading is None: decisions go on from the
Kubernetes API alone, and the log says why.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from prometheus_api_client import PrometheusApiClientException, PrometheusConnect
from urllib3.util.retry import Retry

log = logging.getLogger(__name__)
METRIC = "DCGM_FI_DEV_GPU_UTIL"


@dataclass(frozen=True)
class DcgmLabels:
    node: str = "Hostname"  # or "hostname" (dcgm-exporter main), or "node" after relabelling
    pod: str = "pod"  # or "exported_pod" behind a ServiceMonitor with honorLabels: false


class Utilization:
    def __init__(self, url: str, labels: DcgmLabels = DcgmLabels(), *, timeout_seconds: float = 5.0):
        self.url, self.labels, self.timeout = url, labels, timeout_seconds
        # One quick retry: a controller cycle must not wait long on a Prometheus that is down.
        self.prom = PrometheusConnect(url=url, disable_ssl=True, timeout=timeout_seconds,
                                      retry=Retry(total=1, backoff_factor=0.1, status_forcelist=(502, 503, 504)))
        self.last_error: str | None = None

    def query(self, window_seconds: int) -> str:
        return f"avg by ({self.labels.node}) (avg_over_time({METRIC}[{int(window_seconds)}s]))"

    def by_node(self, window_seconds: int) -> dict[str, float] | None:
        """Average GPU utilization (%) per node over the window, or None if Prometheus cannot say."""
        try:
            result = self.prom.custom_query(self.query(window_seconds),
                                            params={"timeout": f"{int(self.timeout * 1000)}ms"})
        except (PrometheusApiClientException, OSError, ValueError) as exc:
            self._failed(f"query failed: {exc}")
            return None
        except Exception as exc:  # noqa: BLE001 - requests' errors (timeouts, refused) vary by version
            self._failed(f"{type(exc).__name__}: {exc}")
            return None
        out: dict[str, float] = {}
        for series in result:
            node = (series.get("metric") or {}).get(self.labels.node)
            try:
                value = float(series["value"][1])
            except (KeyError, IndexError, TypeError, ValueError):
                continue
            if node and 0 <= value <= 100:
                out[node] = value
        if self.last_error is not None:
            log.info("Prometheus at %s answers again", self.url)
        self.last_error = None
        return out

    def cluster_average(self, window_seconds: int, nodes: set[str]) -> float | None:
        """The average over the cluster's GPU nodes that report; None when none does."""
        per_node = self.by_node(window_seconds)
        if per_node is None:
            return None
        known = [v for n, v in per_node.items() if n in nodes] or list(per_node.values())
        if not known:
            if nodes:
                log.info("no %s series carry the label %r; is spec.prometheus.nodeLabel right?",
                         METRIC, self.labels.node)
            return None
        return sum(known) / len(known)

    def _failed(self, why: str) -> None:
        if self.last_error is None:
            log.warning("Prometheus at %s: %s; deciding from the Kubernetes API alone", self.url, why)
        self.last_error = why
