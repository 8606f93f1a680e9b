"""The controller's watches against a real API server going away: a restart after etcd was
compacted past the watch's resourceVersion (410 Gone on resume), and a connection that goes
half-open (no FIN, no bytes). Either way, a Job created afterwards is decided promptly: the
controller's own timed cycle is 5 minutes away, so only a live watch can see it within the wait."""

from __future__ import annotations

import socket
import threading

from policies import constants as C
from scheduler.kube import Kube, api_client
from sim.control_plane.plane import write_kubeconfig
from tests.real.conftest import annotation, job_manifest, start_controller, wait_for


def decided(kube, namespace: str, name: str) -> str | None:
    return annotation(kube, namespace, name, C.DECISION_PLACEMENT)


def test_a_watch_resumes_after_compaction_and_an_api_server_restart(plane, namespace, controller_kube,
                                                                   stop_event):
    plane.kube.batch.create_namespaced_job(namespace, job_manifest("before", namespace, run_seconds=60))
    start_controller(controller_kube, stop_event)
    wait_for(lambda: decided(plane.kube, namespace, "before"), what="the first Job's decision")
    for i in range(20):  # move etcd on past the controller's last Job or Pod event, then compact
        plane.kube.create_config_map(namespace, f"filler-{i}", {"i": str(i)})
    plane.plane.compact_etcd()
    plane.plane.restart_apiserver()
    plane.kube.batch.create_namespaced_job(namespace, job_manifest("after", namespace, run_seconds=60))
    wait_for(lambda: decided(plane.kube, namespace, "after"), timeout=45,
             what="the Job created after the restart to be decided")


class FreezingProxy:
    """A TCP relay on loopback to the API server; freeze() stops relaying on the connections open
    now, without closing them (a half-open connection, as a dead NAT entry leaves it)."""

    def __init__(self, target_port: int):
        self.target = ("127.0.0.1", target_port)
        self.server = socket.create_server(("127.0.0.1", 0))
        self.port = self.server.getsockname()[1]
        self.frozen: list[threading.Event] = []
        self.lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.server.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(self.target)
            except OSError:
                client.close()
                continue
            frozen = threading.Event()
            with self.lock:
                self.frozen.append(frozen)
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b, frozen), daemon=True).start()

    @staticmethod
    def _pipe(source: socket.socket, sink: socket.socket, frozen: threading.Event) -> None:
        try:
            while True:
                data = source.recv(65536)
                if not data:
                    break
                if frozen.is_set():
                    frozen.wait(3600)  # hold the bytes: nothing more reaches either side
                sink.sendall(data)
        except OSError:
            pass

    def freeze(self) -> None:
        with self.lock:
            for f in self.frozen:
                f.set()

    def close(self) -> None:
        self.server.close()


def test_a_watch_on_a_half_open_connection_is_replaced(plane, namespace, stop_event, tmp_path, monkeypatch):
    import scheduler.kube as kube_module

    monkeypatch.setattr(kube_module, "WATCH_SECONDS", 5)  # the read timeout is WATCH_SECONDS + 30
    proxy = FreezingProxy(plane.plane.ports["apiserver"])
    try:
        config = write_kubeconfig(tmp_path / "proxied.kubeconfig", f"https://127.0.0.1:{proxy.port}",
                                  plane.plane.pki.ca_cert, plane.plane.pki.tokens["admin"], user="admin")
        kube = Kube(api_client(str(config)))
        start_controller(kube, stop_event)
        plane.kube.batch.create_namespaced_job(namespace, job_manifest("before", namespace, run_seconds=60))
        wait_for(lambda: decided(plane.kube, namespace, "before"), what="the first Job's decision")
        proxy.freeze()  # every open connection, the watches' too, now hangs without closing
        plane.kube.batch.create_namespaced_job(namespace, job_manifest("after", namespace, run_seconds=60))
        wait_for(lambda: decided(plane.kube, namespace, "after"), timeout=90,
                 what="a fresh watch to see the Job created on a frozen connection")
    finally:
        proxy.close()
