"""A reconcile loop on a thread: what every simulated controller of the sandbox is."""

from __future__ import annotations

import threading


class ReconcileLoop:
    """Calls reconcile() every `period` seconds on its own thread until stop()."""

    name = "reconcile-loop"

    def __init__(self, period: float):
        self.period = period
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._loop, name=self.name, daemon=True)

    def start(self):
        self.thread.start()
        return self

    def stop(self) -> None:
        self.stopping.set()
        self.thread.join(timeout=5)

    def _loop(self) -> None:
        while not self.stopping.is_set():
            self.reconcile()
            self.stopping.wait(self.period)

    def reconcile(self) -> None:
        raise NotImplementedError
