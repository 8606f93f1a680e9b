"""`spillway sandbox up`: a local Kubernetes API with simulated GPU nodes, for kubectl and the controller."""

from __future__ import annotations

import argparse
import signal
import threading
from pathlib import Path

from policies import InputError, InputIssue
from policies.model import PORT, POSITIVE

from ..cluster_spec import node_groups
from ..files import check_writable_file


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("sandbox", help="a local Kubernetes API with simulated GPU nodes (no cluster needed)",
                       formatter_class=argparse.RawDescriptionHelpFormatter, description="""\
Run a small GPU cluster on this machine: an HTTP server on 127.0.0.1 that speaks the Kubernetes
API (the official client and kubectl work unmodified), with simulated nodes, a Job controller,
a GPU-aware scheduler and a kubelet that run pods in real time scaled by --time-scale.

A pod runs for the seconds in its annotation sandbox.spillway.io/run-seconds (default 60),
divided by the time scale. The SageMaker TrainingJob CRD (ACK) is installed, and a stand-in for
the ACK controller runs TrainingJob resources on a local SageMaker (moto, with a life cycle:
Starting, Downloading, Training, spot interruptions, MaxWait expiry, Completed/Stopped).

examples:
  spillway sandbox up
  spillway sandbox up --nodes 4x8:NVIDIA-A100-SXM4-80GB,2x4:NVIDIA-A10G --time-scale 600
  export KUBECONFIG=$PWD/spillway-sandbox.kubeconfig; kubectl get nodes,jobs,pods""")
    ssub = p.add_subparsers(title="sandbox commands", metavar="COMMAND")
    up = ssub.add_parser("up", help="start the sandbox and serve until Ctrl-C")
    up.add_argument("--nodes", default="4x8:NVIDIA-A100-SXM4-80GB", help="NODESxGPUS[:GPU_PRODUCT], comma-separated")
    up.add_argument("--time-scale", type=POSITIVE, default=60.0, help="virtual seconds per real second (default 60)")
    up.add_argument("--port", type=PORT, default=16443, help="loopback port (default 16443; 0 picks a free one)")
    up.add_argument("--kubeconfig", default="spillway-sandbox.kubeconfig", help="where to write the kubeconfig")
    up.set_defaults(run=run_up)
    p.set_defaults(run=lambda a: (p.print_help(), 2)[1])


def run_up(args, *, ready: threading.Event | None = None, stop: threading.Event | None = None) -> int:
    from .apiserver import SandboxServer
    from .machinery import Machinery, add_nodes

    try:
        node_groups(args.nodes)
    except ValueError as exc:
        raise InputError([InputIssue("--nodes", "", str(exc), "e.g. 4x8:NVIDIA-A100-SXM4-80GB")]) from None
    check_writable_file(Path(args.kubeconfig), "--kubeconfig")
    try:
        server = SandboxServer(args.port)
    except OSError as exc:
        raise InputError([InputIssue("--port", "", f"cannot listen on 127.0.0.1:{args.port}: {exc.strerror}",
                                     "choose another --port, or 0 for any free one")]) from None
    names = add_nodes(server.store, args.nodes)
    # The controller's own namespace (its ledger lives there), as deploy/ creates it on a real cluster.
    server.store.create(server.store.type_for("", "v1", "namespaces"), "", {"metadata": {"name": "spillway-system"}})
    machinery = Machinery(server.store, time_scale=args.time_scale).start()
    from ..sagemaker_lifecycle import SageMakerSandbox
    from .ack import AckStandIn

    sagemaker = SageMakerSandbox(time_scale=args.time_scale).start()
    ack = AckStandIn(server.store, sagemaker.client()).start()
    server.start()
    config = server.kubeconfig(Path(args.kubeconfig).resolve())
    print(f"Spillway sandbox: Kubernetes API v1.35 at {server.url}, {len(names)} GPU nodes, time x{args.time_scale:g}")
    print(f"kubeconfig written to {config}\n")
    print(f"  export KUBECONFIG={config}")
    print("  kubectl get nodes,jobs,pods")
    print("  kubectl apply -f job.yaml\n")
    print(f"SageMaker (moto, with a life cycle) at {sagemaker.endpoint_url}: TrainingJob resources "
          "(sagemaker.services.k8s.aws/v1alpha1) run there, and boto3 can call it directly:")
    print(f"  boto3.client('sagemaker', endpoint_url='{sagemaker.endpoint_url}', region_name='us-east-1', "
          "aws_access_key_id='x', aws_secret_access_key='x')\n")
    print("Ctrl-C stops it.", flush=True)
    stop = stop or threading.Event()
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, lambda *_: stop.set())
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
    if ready:
        ready.set()
    stop.wait()
    ack.stop()
    sagemaker.stop()
    machinery.stop()
    server.stop()
    print("sandbox stopped")
    return 0
