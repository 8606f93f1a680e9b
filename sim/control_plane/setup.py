"""A running plane, ready for the controller: what `scripts/control-plane up` and the real test
tier both start.

After the processes are up: the ACK SageMaker CRDs as they are published, the controller's
namespace, the GPU nodes and their stand-in kubelet (woken by a watch on pods), and, with
kueue, Kueue (`kueue.start_kueue`). Ready means every node is Ready and the default
ServiceAccount exists (pods are refused until the controller-manager made it).
"""

from __future__ import annotations

import contextlib
import threading
import time
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, Callable, Iterator

from .build import binaries
from .kubelet import StandInKubelet, node_specs
from .plane import ControlPlane, PlaneError, kubectl
from .versions import KUBERNETES


@dataclass
class RunningPlane:
    plane: ControlPlane
    kubelet: StandInKubelet
    kube: Any  # the admin client (scheduler.kube.Kube), made by the caller's kube_for
    version: str = KUBERNETES.version


def ack_crd_files() -> list[Path]:
    folder = resources.files("sim").joinpath("sandbox/crds")
    return sorted(Path(str(f)) for f in folder.iterdir() if f.name.endswith(".yaml"))


def install_crds(kubeconfig: Path, files: list[Path], timeout: float = 60.0) -> None:
    """`kubectl create` (a client-side apply would store each large CRD a second time in an
    annotation, over the 256 KiB limit), then wait until each is Established."""
    for f in files:
        done = kubectl(kubeconfig, "create", "-f", str(f), check=False)
        if done.returncode != 0 and "AlreadyExists" not in done.stderr:
            raise PlaneError(f"installing {f.name}: {done.stderr.strip()}")
    kubectl(kubeconfig, "wait", "--for=condition=Established", f"--timeout={int(timeout)}s",
            *[a for f in files for a in ("-f", str(f))])


def wait_until(check: Callable[[], bool], timeout: float, what: str, period: float = 0.2) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(period)
    raise PlaneError(f"timed out after {timeout:.0f} s waiting for {what}")


@contextlib.contextmanager
def start_plane(folder: Path, *, nodes: str, kube_for: Callable[[Path], Any], kueue: bool = False,
                time_scale: float = 60.0, stop: threading.Event | None = None,
                clock: Callable[[], float] | None = None, run_kubelet: bool = True) -> Iterator[RunningPlane]:
    """Start everything; yield the running plane; stop everything (also on an exception).
    With run_kubelet False the kubelet is registered but not run: the caller steps it by hand."""
    plane = ControlPlane(folder, binaries(), kueue=kueue)
    stop = stop or threading.Event()
    own_stop = threading.Event()
    try:
        plane.start()
        kube = kube_for(plane.kubeconfig)
        install_crds(plane.kubeconfig, ack_crd_files())
        kubectl(plane.kubeconfig, "create", "namespace", "spillway-system")
        clocked: dict[str, Any] = {"clock": clock} if clock is not None else {}
        kubelet = StandInKubelet(kube, node_specs(nodes), time_scale=time_scale, **clocked)
        kubelet.register()
        if run_kubelet:
            kube.watch_pods(lambda: kubelet.wake.set(), own_stop)
            kubelet.start(own_stop)
        wait_until(lambda: _all_ready(kube, kubelet), 60, "the GPU nodes to be Ready")
        wait_until(lambda: kubectl(plane.kubeconfig, "get", "serviceaccount", "default", "-n", "default",
                                   check=False).returncode == 0, 60, "the default ServiceAccount")
        if kueue:
            from .kueue import start_kueue

            start_kueue(plane)
        yield RunningPlane(plane, kubelet, kube)
    finally:
        own_stop.set()
        plane.stop()


def _all_ready(kube: Any, kubelet: StandInKubelet) -> bool:
    names = {n.name for n in kubelet.nodes}
    ready = {n["metadata"]["name"] for n in kube.list_nodes()
             if any(c.get("type") == "Ready" and c.get("status") == "True" for c in n["status"].get("conditions") or [])
             and not any(t.get("key", "").startswith("node.kubernetes.io/") for t in n["spec"].get("taints") or [])}
    return names <= ready
