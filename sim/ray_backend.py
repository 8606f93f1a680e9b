"""Sweeps larger than one machine: the runs of `spillway sim --compare` and `spillway tune` on a
Ray cluster the team already operates (`--ray ADDRESS`).

The only module that imports Ray. Each run goes to the cluster as one task; this process's own
`policies` and `sim` packages travel with them (Ray's runtime_env py_modules), so every node runs
the very code of this checkout, and a run's result is the one it gives here: results come back
in task order, identical to a serial sweep. The cluster's Python needs the dependencies (numpy,
ortools, pydantic, ...) installed, as for any Ray job.
"""

from __future__ import annotations

import socket
import sys
from pathlib import Path
from typing import Callable, Sequence, TypeVar

from policies.model import InputError, InputIssue

T = TypeVar("T")
R = TypeVar("R")
RAY_PIN = "ray==2.60.0"  # requirements-dev.txt pins the same


def run_on_ray(fn: Callable[[T], R], tasks: Sequence[T], *, address: str, label: str, progress: bool) -> list[R]:
    """fn(task) for every task on the Ray cluster at `address`, results in task order."""
    from tqdm import tqdm

    try:
        import ray
    except ImportError:
        raise InputError([InputIssue("--ray", "", "Ray is not installed here",
                                     f"pip install '{RAY_PIN}' (the cluster's version), or drop --ray")]) from None
    import policies
    import sim

    _check_reachable(address)
    modules = [str(Path(policies.__file__).parent), str(Path(sim.__file__).parent)]
    try:
        ray.init(address=address, runtime_env={"py_modules": modules}, log_to_driver=False,
                 logging_level="WARNING", ignore_reinit_error=True)  # type: ignore[arg-type]  # ray takes a name too
    except (ConnectionError, RuntimeError, ValueError) as exc:
        raise _unreachable(address, str(exc).splitlines()[0]) from None
    try:
        remote = ray.remote(fn)
        pending = {remote.remote(task): i for i, task in enumerate(tasks)}
        results: list = [None] * len(tasks)
        with tqdm(total=len(tasks), desc=f"{label} on Ray", unit="run", file=sys.stderr,
                  disable=not progress or len(tasks) < 2, dynamic_ncols=True) as bar:
            while pending:
                done, _ = ray.wait(list(pending), num_returns=1)
                for ref in done:
                    results[pending.pop(ref)] = ray.get(ref)
                    bar.update()
        return results
    finally:
        ray.shutdown()


def _check_reachable(address: str) -> None:
    """A head node's host:port must answer at once: Ray itself keeps retrying a wrong address for
    minutes before it gives up. (Other forms, such as "auto" or "ray://...", are left to Ray.)"""
    host, sep, port = address.rpartition(":")
    if not sep or not port.isdigit() or "/" in address:
        return
    try:
        socket.create_connection((host, int(port)), timeout=5).close()
    except OSError as exc:
        raise _unreachable(address, str(exc)) from None


def _unreachable(address: str, why: str) -> InputError:
    return InputError([InputIssue("--ray", "", f"no Ray cluster answers at {address!r} ({why})",
                                  "give the head node's address as `ray start --head` printed it (host:port), "
                                  "or drop --ray to run on this machine")])
