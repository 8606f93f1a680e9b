"""Faults on demand, so tests can show the controller survives what a real cluster does to it.

    server.faults.inject(500, verb="PATCH", plural="jobs", times=2)   # two 500s on Job patches
    server.faults.inject(429, verb="LIST", plural="pods")             # one 429 (Retry-After: 0)
    server.faults.inject(409, verb="PATCH", plural="jobs")            # a write that lost a race
    server.faults.inject(410, verb="WATCH", plural="jobs")            # the watch's version expired

Each injected fault answers one matching request (of `times`), in the order injected, and is
counted in `served`. Verbs are the API's: GET, LIST, WATCH, CREATE, UPDATE, PATCH, DELETE.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

REASONS = {409: "Conflict", 410: "Expired", 429: "TooManyRequests", 500: "InternalError",
           503: "ServiceUnavailable"}


@dataclass
class Fault:
    code: int
    verb: str | None
    plural: str | None
    left: int


class Faults:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.pending: list[Fault] = []
        self.served: list[tuple[int, str, str]] = []

    def inject(self, code: int, *, verb: str | None = None, plural: str | None = None, times: int = 1) -> None:
        with self.lock:
            self.pending.append(Fault(code, verb, plural, times))

    def take(self, verb: str, plural: str) -> int | None:
        """The code to answer this request with, or None to serve it."""
        with self.lock:
            for fault in self.pending:
                if fault.verb in (None, verb) and fault.plural in (None, plural):
                    fault.left -= 1
                    if not fault.left:
                        self.pending.remove(fault)
                    self.served.append((fault.code, verb, plural))
                    return fault.code
        return None

    @property
    def exhausted(self) -> bool:
        with self.lock:
            return not self.pending
