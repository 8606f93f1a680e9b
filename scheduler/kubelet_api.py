"""The virtual node's kubelet API, as far as `kubectl logs` needs it.

`kubectl logs POD` asks the API server for pods/log; the API server calls the kubelet of the
pod's node, at the node's address and status.daemonEndpoints.kubeletEndpoint.Port, on
GET /containerLogs/{namespace}/{pod}/{container}, over TLS. For a pod on spillway-sagemaker
that is this server: it answers with the CloudWatch log of the burst's training (or transform)
jobs, each under a header, as `spillway logs` prints them.
"""

from __future__ import annotations

import logging
from http.server import BaseHTTPRequestHandler
from typing import Callable, NamedTuple
from urllib.parse import parse_qs, urlparse

from .tls_server import TlsServer

log = logging.getLogger(__name__)



class BurstJobs(NamedTuple):
    """The SageMaker jobs a burst's pod stands for, in order, and how to name them."""

    names: list[str]
    words: str = "training job"  # or "transform job" (a tuning burst's are its trials: training jobs)


# (namespace, pod) -> the jobs the pod's burst ran; None: not a burst's pod
BurstJobsOf = Callable[[str, str], "BurstJobs | None"]
LogOf = Callable[[str], "list[str]"]  # a SageMaker job's log lines


def log_text(jobs: BurstJobs, log_of: LogOf, tail: int | None = None) -> str:
    """What `kubectl logs` prints for a burst's pod (tail: the last lines only, as --tail)."""
    lines: list[str] = []
    for i, name in enumerate(jobs.names):
        lines.append(header(name, jobs.words, i, len(jobs.names)))
        lines += log_of(name) or ["(no log yet)"]
    if tail is not None and tail >= 0:
        lines = lines[-tail:] if tail else []
    return "".join(f"{line}\n" for line in lines)


def header(name: str, words: str, index: int, count: int) -> str:
    """The line above each job's log, in kubectl logs and spillway logs alike."""
    return f"==> SageMaker {words} {name} ({words} {index + 1} of {count}) <=="


class _Handler(BaseHTTPRequestHandler):
    server: "KubeletApi"

    def log_message(self, fmt, *args) -> None:
        log.debug("kubelet api: " + fmt, *args)

    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        url = urlparse(self.path)
        parts = url.path.strip("/").split("/")
        if url.path == "/healthz":
            return self._send(200, "ok\n")
        if len(parts) != 4 or parts[0] != "containerLogs":
            return self._send(404, f"{url.path}: only /containerLogs/NAMESPACE/POD/CONTAINER is served here\n")
        _, namespace, pod, _container = parts
        try:
            jobs = self.server.jobs_of(namespace, pod)
        except Exception as exc:  # noqa: BLE001 - SageMaker unreachable while a sweep's trials are listed, say
            return self._send(502, f"cannot tell which SageMaker jobs pod {namespace}/{pod} ran: {exc}\n")
        if jobs is None:
            return self._send(404, f"pod {namespace}/{pod} is not a burst's: nothing of it runs on SageMaker\n")
        tail_lines = parse_qs(url.query).get("tailLines")
        tail = tail_lines[0] if tail_lines else None
        try:
            text = log_text(jobs, self.server.log_of, int(tail) if tail is not None else None)
        except Exception as exc:  # noqa: BLE001 - CloudWatch unreachable, say, or throttled: say so to kubectl
            return self._send(502, f"cannot read the CloudWatch log of {', '.join(jobs.names)}: {exc}\n")
        self._send(200, text)

    def _send(self, code: int, text: str) -> None:
        data = text.encode()
        self.send_response(code)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


class KubeletApi(TlsServer):
    """The log endpoint over TLS on (host, port); port 0 picks a free one (see .port)."""

    def __init__(self, jobs_of: BurstJobsOf, log_of: LogOf, cert_file: str, key_file: str,
                 host: str = "0.0.0.0", port: int = 10250):
        super().__init__(_Handler, cert_file, key_file, host, port)
        self.jobs_of, self.log_of = jobs_of, log_of
