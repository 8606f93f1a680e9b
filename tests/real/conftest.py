"""The real-control-plane tier: one plane per test session (etcd, kube-apiserver,
kube-controller-manager, kube-scheduler built from upstream by `scripts/control-plane build`),
with GPU nodes run by the stand-in kubelet. Every test here is marked `real`; the default test
run leaves them out, and `python -m pytest -m real` runs them. Nothing here is skipped: with the
binaries missing, the plane's fixture fails and says how to build them.
"""

from __future__ import annotations

import itertools
import threading
import time
from pathlib import Path

import pytest

from scheduler.kube import Kube, api_client
from sim.control_plane.setup import RunningPlane, start_plane

PRODUCT = "NVIDIA-A100-SXM4-80GB"
NODES = f"2x8:{PRODUCT}"
_names = itertools.count()


def pytest_collection_modifyitems(items):
    here = Path(__file__).parent
    for item in items:
        if here in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.real)


@pytest.fixture(scope="session")
def plane(tmp_path_factory) -> RunningPlane:
    folder = tmp_path_factory.mktemp("control-plane")
    with start_plane(folder, nodes=NODES, kube_for=lambda path: Kube(api_client(str(path))),
                     time_scale=60.0) as running:
        yield running


@pytest.fixture
def namespace(plane) -> str:
    """A namespace of its own for each test, deleted after it."""
    name = f"t{next(_names)}-{int(time.time()) % 100000}"
    plane.kube.core.create_namespace({"metadata": {"name": name}})
    yield name
    plane.kube.core.delete_namespace(name)


def wait_for(check, timeout: float = 60.0, step: float = 0.1, what: str = "the condition"):
    """Poll check() until it returns something truthy, and return that."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        value = check()
        if value:
            return value
        time.sleep(step)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


@pytest.fixture
def stop_event():
    stop = threading.Event()
    yield stop
    stop.set()
