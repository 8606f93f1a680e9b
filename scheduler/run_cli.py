"""`spillway run`: the controller, against a cluster named by a kubeconfig (or in-cluster)."""

from __future__ import annotations

import argparse
import logging
import os
import signal
import threading
import time

from policies import InputError, InputIssue
from policies.model import AT_LEAST_ONE, METRICS_PORT, POSITIVE

from .output import emit, table

DESCRIPTION = """\
Run the Spillway controller. It watches batch/v1 Jobs that opt in (spillway.io/mode, or a GPU
Job in a namespace listed in spec.managedJobs.namespaces) and are created with
spec.suspend: true. Each cycle it reads nodes, pods and GPU requests from the Kubernetes API,
DCGM utilization from Prometheus (if --prometheus-url is given), and the burst ledger (a
ConfigMap per burst in --namespace); decides with the same plan() as `spillway sim`; and
then un-suspends the Job (Local), bursts it, or leaves it waiting. A burst's Job runs on the
virtual node spillway-sagemaker, which this controller keeps (spec.sageMaker.burstAs:
virtualNode): once its pods are bound there it creates the SageMaker training job
(spec.sageMaker.emit: ack, legacy or api) and is their kubelet, so the Job completes or fails as
the training job does. Where Kueue queues Jobs, it answers the AdmissionCheck
spillway.io/sagemaker-burst instead (deploy/kueue). Decisions, SageMaker status and cost are
written onto the Job as spillway.io/* annotations and Events: `kubectl describe job NAME` tells
the story.

examples:
  spillway run --kubeconfig spillway-sandbox.kubeconfig --once          one cycle, then print the decisions
  spillway run --policy policy.yaml --prometheus-url http://prometheus:9090
  AWS_ACCESS_KEY_ID=x AWS_SECRET_ACCESS_KEY=x spillway run --sagemaker-endpoint-url http://127.0.0.1:PORT
                                        the sandbox's SageMaker (any AWS credentials do there)"""


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("run", help="run the controller against a cluster",
                       formatter_class=argparse.RawDescriptionHelpFormatter, description=DESCRIPTION)
    p.add_argument("--kubeconfig", help="kubeconfig file; default: $KUBECONFIG, ~/.kube/config, or in-cluster")
    p.add_argument("--context", help="kubeconfig context; default: the current one")
    p.add_argument("--policy", metavar="FILE", help="BurstPolicy YAML; default: the embedded default policy")
    p.add_argument("--namespace", default="spillway-system",
                   help="where the burst ledger ConfigMap lives (default spillway-system)")
    p.add_argument("--prometheus-url", help="Prometheus with the DCGM exporter's series; none: no hot-cluster signal")
    p.add_argument("--dcgm-node-label", default="Hostname",
                   help="node label of DCGM series: Hostname (dcgm-exporter 4.x, default) or hostname")
    p.add_argument("--dcgm-pod-label", default="pod", help="pod label of DCGM series: pod, or exported_pod "
                   "behind a ServiceMonitor with honorLabels: false")
    p.add_argument("--sagemaker-endpoint-url", help="SageMaker endpoint (e.g. the sandbox's); default: AWS")
    p.add_argument("--no-sagemaker", action="store_true",
                   help="never call SageMaker directly (emit: ack or legacy only; costs are then the committed "
                        "figures, since the custom resources carry no billing)")
    p.add_argument("--burst-poll-seconds", type=POSITIVE, default=30.0,
                   help="how often a burst in flight is described (default 30; lower it for a fast sandbox)")
    p.add_argument("--leader-elect", action=argparse.BooleanOptionalAction, default=True,
                   help="act only while holding the Lease spillway-controller in --namespace (default on; "
                        "run several replicas and one acts)")
    p.add_argument("--lease-seconds", type=AT_LEAST_ONE, default=15,
                   help="how long a silent leader keeps the Lease before another replica takes over (default 15)")
    p.add_argument("--identity", help="this replica's name in the Lease; default: $POD_NAME or the host name")
    p.add_argument("--metrics-port", type=METRICS_PORT, default=8080,
                   help="serve /metrics, /healthz and /readyz here (default 8080; -1: off)")
    p.add_argument("--webhook-port", type=METRICS_PORT, default=-1,
                   help="serve the admission webhook (Jobs that opt in are created suspended; wrong "
                        "spillway.io/ annotations are refused at kubectl apply) over TLS here; every replica "
                        "serves it (default -1: off)")
    p.add_argument("--webhook-cert-dir", default="/etc/spillway/webhook-certs", metavar="DIR",
                   help="the webhook's tls.crt and tls.key (default /etc/spillway/webhook-certs)")
    p.add_argument("--kubelet-port", type=METRICS_PORT, default=10250,
                   help="serve the virtual node's kubelet API here, over TLS, so that kubectl logs of a burst's pod "
                        "shows its training job's CloudWatch log (default 10250; -1: off)")
    p.add_argument("--kubelet-cert-dir", default="/etc/spillway/kubelet-certs", metavar="DIR",
                   help="its tls.crt and tls.key (default /etc/spillway/kubelet-certs; without them it is off, "
                        "with a warning)")
    p.add_argument("--node-address", default=os.environ.get("POD_IP", "127.0.0.1"),
                   help="the address the API server calls for it: this replica's (default $POD_IP, or 127.0.0.1)")
    p.add_argument("--workers", type=AT_LEAST_ONE, default=8,
                   help="threads that write one cycle's actions to the API server and SageMaker (default 8)")
    p.add_argument("--once", action="store_true", help="run one cycle, print its decisions, and exit")
    p.add_argument("-o", "--output", choices=["table", "json", "yaml"], default="table", help="with --once")
    p.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"],
                   help="INFO (default) logs each decision, launch and outcome as its Event says it")
    p.add_argument("--log-format", default="text", choices=["text", "json"],
                   help="json: one object a line (time, level, logger, message), for a log pipeline")
    p.set_defaults(run=cmd_run)


class JsonFormatter(logging.Formatter):
    """One JSON object a line: what log pipelines (Fluent Bit, CloudWatch) index without parsing."""

    def format(self, record: logging.LogRecord) -> str:
        import json

        entry = {"time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S") + f".{int(record.msecs):03d}Z",
                 "level": record.levelname, "logger": record.name, "message": record.getMessage()}
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry)

    converter = time.gmtime  # type: ignore[assignment]  # logging's documented UTC override; typeshed's overload misses it


def cmd_run(args) -> int:
    """The controller, in steps: logging; the policy and the adapters; then one cycle (--once), or
    the servers and the loop, alone or under a lease."""
    _log_to_stderr(args)
    from .cli_inputs import policy_from
    from .controller import Controller, Settings

    policy = policy_from(args.policy)
    kube = _kube(args)
    sagemaker = _sagemaker(args, policy)
    utilization = _utilization(args)
    from .metrics import ControllerMetrics

    metrics = ControllerMetrics()
    ctl = Controller(kube, policy, sagemaker=sagemaker, utilization=utilization, metrics=metrics,
                     settings=Settings(namespace=args.namespace, burst_poll_seconds=args.burst_poll_seconds,
                                       workers=max(args.workers, 1)))
    if args.once:
        return _one_cycle(ctl, args)
    _serve(args, policy, ctl, sagemaker, metrics)
    stop = _stop_on_signals()
    if not args.leader_elect:
        logging.getLogger("spillway").info("controller running; Ctrl-C stops it")
        ctl.run(stop)
        return 0
    return _run_under_lease(args, kube, ctl, metrics, stop)


def _log_to_stderr(args) -> None:
    handler = logging.StreamHandler()
    handler.setFormatter(JsonFormatter() if args.log_format == "json" else
                         logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
    logging.basicConfig(level=args.log_level, handlers=[handler])


def _kube(args):
    from .kube import Kube, api_client

    try:
        return Kube(api_client(args.kubeconfig, args.context))
    except Exception as exc:  # noqa: BLE001 - the kubernetes config loader raises several kinds
        raise InputError([InputIssue("--kubeconfig", "", f"cannot load a cluster configuration: {exc}",
                                     "pass --kubeconfig FILE, set KUBECONFIG, or run inside the cluster")]) from None


def _sagemaker(args, policy):
    if args.no_sagemaker:
        return None
    from .sagemaker import SageMaker

    return SageMaker(policy.spec.sage_maker.region, endpoint_url=args.sagemaker_endpoint_url)


def _utilization(args):
    if not args.prometheus_url:
        return None
    from .prometheus import DcgmLabels, Utilization

    return Utilization(args.prometheus_url, DcgmLabels(args.dcgm_node_label, args.dcgm_pod_label))


def _one_cycle(ctl, args) -> int:
    """--once: one cycle, its decisions printed."""
    from .kube import KubeError

    logging.getLogger("urllib3").setLevel(logging.ERROR)  # one cycle: its outcome says it all
    try:
        report = ctl.cycle()
    except KubeError as exc:
        if exc.status not in (0, 401, 403):
            raise
        fix = ("check that the API server is up and that the kubeconfig points at it (kubectl cluster-info)"
               if exc.status == 0 else "give the controller's identity the RBAC in deploy/base/rbac.yaml")
        raise InputError([InputIssue("--kubeconfig", "", exc.message, fix)]) from None
    rows = [d.to_dict() for d in report.decisions]
    if args.output == "table":
        print(table(["JOB", "PLACEMENT", "REASON", "MESSAGE"],
                    [[d.job, d.placement.value, d.reason.value, d.message] for d in report.decisions])
              if rows else "no managed Job is waiting for a decision")
    else:
        emit({"decisions": rows, "writes": report.writes}, args.output)
    return 0


def _serve(args, policy, ctl, sagemaker, metrics) -> None:
    """The controller's servers: metrics, the admission webhook, the virtual node's kubelet API."""
    from .metrics import serve

    if args.metrics_port >= 0:
        try:
            serve(metrics, args.metrics_port)
        except OSError as exc:
            raise InputError([InputIssue("--metrics-port", "", f"cannot listen on port {args.metrics_port}: "
                                         f"{exc.strerror}", "choose another port, or -1 for none")]) from None
    if args.webhook_port >= 0:
        serve_webhook(policy, args.webhook_port, args.webhook_cert_dir, ctl.kube)
    if args.kubelet_port >= 0 and policy.spec.sage_maker.burst_as.value == "virtualNode":
        serve_kubelet_api(ctl, sagemaker, args.kubelet_port, args.kubelet_cert_dir, args.node_address)


def _stop_on_signals() -> threading.Event:
    stop = threading.Event()
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, lambda *_: stop.set())
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
    return stop


def _run_under_lease(args, kube, ctl, metrics, stop: threading.Event) -> int:
    """--leader-elect: run for the lease; lead while it is held, stand by (ready) while not. A
    leader that loses the lease exits with 1, so that a fresh process runs for it again."""
    import socket

    from policies.model import LEASE_NAME

    log = logging.getLogger("spillway")
    identity = args.identity or os.environ.get("POD_NAME") or f"{socket.gethostname()}-{os.getpid()}"
    lost, leading = threading.Event(), threading.Event()

    def lead() -> None:
        log.info("%s leads; controller running", identity)
        leading.set()
        metrics.leader.set(1)
        ctl.run(stop)

    def stopped() -> None:
        metrics.leader.set(0)
        if not stop.is_set():
            log.warning("%s lost the lease; exiting so that a fresh process runs for it again", identity)
            lost.set()
            stop.set()

    log.info("%s runs for leadership of lease %s/%s", identity, args.namespace, LEASE_NAME)
    renew = max(args.lease_seconds * 2 // 3, 2)
    kube.lead(args.namespace, LEASE_NAME, identity, on_started=lead, on_stopped=stopped,
              lease_seconds=max(args.lease_seconds, renew + 1), renew_deadline_seconds=renew,
              retry_seconds=max(renew * 2 // 5, 1))
    metrics.ready.set()  # a standby replica is ready: it takes over when the leader goes
    while not stop.wait(30):
        if not leading.is_set():
            metrics.beat()  # standing by is healthy; the leader's cycles beat for themselves
    return 1 if lost.is_set() else 0


def serve_webhook(policy, port: int, cert_dir: str, kube=None):
    """The admission webhook; with kube, it reads a sweep's ConfigMap, and a Bayesian sweep's Job
    and finished pods (its next trial is chosen from them)."""
    from pathlib import Path

    from .webhook import WebhookServer

    cert, key = Path(cert_dir) / "tls.crt", Path(cert_dir) / "tls.key"
    try:
        return WebhookServer(policy, str(cert), str(key), port=port, **webhook_reads(kube)).start()
    except FileNotFoundError:
        raise InputError([InputIssue("--webhook-cert-dir", "", f"no tls.crt and tls.key in {cert_dir}",
                                     "mount the webhook's certificate there (a Secret), or pass its folder")]) from None
    except OSError as exc:
        raise InputError([InputIssue("--webhook-port", "", f"cannot serve the webhook on port {port}: "
                                     f"{exc.strerror or exc}", "choose another port, or -1 for none")]) from None


def webhook_reads(kube) -> dict:
    """What the webhook reads of the cluster, through the controller's client (none without one)."""
    if kube is None:
        return {}
    from .trial_history import CONTROLLER_UID

    return {"read_config_map": kube.get_config_map, "read_job": kube.read_job,
            "succeeded_pods": lambda namespace, uid: kube.list_pods_selected(
                f"{CONTROLLER_UID}={uid}", "status.phase=Succeeded", namespace=namespace)}


def serve_kubelet_api(ctl, sagemaker, port: int, cert_dir: str, address: str):
    """kubectl logs of a burst's pod: the virtual node's kubelet API, if its certificate is there."""
    from pathlib import Path

    from .kubelet_api import KubeletApi

    cert, key = Path(cert_dir) / "tls.crt", Path(cert_dir) / "tls.key"
    if not (cert.exists() and key.exists()):
        logging.getLogger("spillway").warning(
            "no tls.crt and tls.key in %s: kubectl logs of a burst's pod is off (spillway logs JOB still "
            "works); mount a serving certificate there, or pass --kubelet-cert-dir", cert_dir)
        return None

    def log_of(name: str) -> list[str]:
        if sagemaker is None:
            return ["(--no-sagemaker: this controller reads no CloudWatch log; use spillway logs JOB)"]
        return sagemaker.job_log(name)

    try:
        server = KubeletApi(ctl.jobs_of, log_of, str(cert), str(key), port=port).start()
    except OSError as exc:
        raise InputError([InputIssue("--kubelet-port", "", f"cannot serve the kubelet API on port {port}: "
                                     f"{exc.strerror or exc}", "choose another port, or -1 for none")]) from None
    ctl.virtual_node.endpoint = (address, server.port)
    logging.getLogger("spillway").info("serving the virtual node's kubelet API (kubectl logs) at %s:%d",
                                       address, server.port)
    return server
