"""The controller's own metrics (prometheus-client) and its health and readiness endpoints.

Served on one port: /metrics (Prometheus text format), /healthz (the cycle loop is alive: it
finished a cycle, or is waiting for the lease, within the last few minutes), /readyz (this
replica has read the cluster once, or stands by for the lease).
"""

from __future__ import annotations

import threading
import time
from wsgiref.simple_server import WSGIRequestHandler, make_server

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, make_wsgi_app


class ControllerMetrics:
    def __init__(self, registry: CollectorRegistry | None = None):
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.decisions = Counter("spillway_decisions", "Decisions written to Jobs, by placement and reason.",
                                 ["placement", "reason"], registry=r)
        self.bursts = Counter("spillway_bursts", "SageMaker training jobs created, by capacity and emit target.",
                              ["capacity", "emit"], registry=r)
        self.fallbacks = Counter("spillway_spot_fallbacks", "Spot bursts relaunched on on-demand.", registry=r)
        self.spot_returns = Counter("spillway_spot_returns", "Bursts relaunched from on-demand back on managed "
                                    "spot (spot.fallback: planned).", registry=r)
        self.launch_failures = Counter("spillway_launch_failures", "Bursts SageMaker or the API refused.", registry=r)
        self.errors = Counter("spillway_cycle_errors", "Cycles that failed, by the kind of error.", ["kind"],
                              registry=r)
        self.spend = Gauge("spillway_spend_usd", "Dollars billed per namespace, today and this month (UTC).",
                           ["namespace", "window"], registry=r)
        self.committed = Gauge("spillway_committed_usd", "Most that bursts in flight can still cost, by namespace.",
                               ["namespace"], registry=r)
        self.in_flight = Gauge("spillway_bursts_in_flight", "Bursts not finished yet.", registry=r)
        self.queue = Gauge("spillway_queue_jobs", "Managed Jobs waiting for a decision to run.", registry=r)
        self.wait = Histogram("spillway_queue_wait_seconds", "How long a Job waited before it was placed.",
                              buckets=(60, 300, 900, 1800, 3600, 7200, 14400, 43200, 86400, float("inf")),
                              registry=r)
        self.cycle_seconds = Histogram("spillway_cycle_seconds", "Wall time of one reconcile cycle.",
                                       buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, float("inf")),
                                       registry=r)
        self.prometheus_up = Gauge("spillway_prometheus_up", "1 when the last DCGM query answered, 0 when the "
                                   "controller decides from the Kubernetes API alone.", registry=r)
        self.leader = Gauge("spillway_leader", "1 while this replica holds the lease.", registry=r)
        self.heartbeat = time.monotonic()
        self.ready = threading.Event()

    def beat(self) -> None:
        self.heartbeat = time.monotonic()


class _Quiet(WSGIRequestHandler):
    def log_message(self, *args) -> None:  # probes every few seconds would flood the log
        pass


def serve(metrics: ControllerMetrics, port: int, *, host: str = "0.0.0.0", stale_seconds: float = 600.0):
    """Serve /metrics, /healthz and /readyz on a daemon thread; returns the server (port 0: any)."""
    exposition = make_wsgi_app(metrics.registry)

    def app(environ, start_response):
        path = environ.get("PATH_INFO", "")
        if path in ("/healthz", "/readyz"):
            ok = (time.monotonic() - metrics.heartbeat < stale_seconds) if path == "/healthz" else \
                metrics.ready.is_set()
            start_response("200 OK" if ok else "503 Service Unavailable", [("Content-Type", "text/plain")])
            return [b"ok\n" if ok else b"not yet\n"]
        return exposition(environ, start_response)

    server = make_server(host, port, app, handler_class=_Quiet)
    threading.Thread(target=server.serve_forever, name="metrics", daemon=True).start()
    return server
