"""`scripts/control-plane up` as a user runs it: it prints its kubeconfig, kubectl works with it,
and SIGTERM stops every process it started."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from sim.control_plane.plane import kubectl
from tests.real.conftest import ROOT, wait_for


def children(pid: int) -> set[int]:
    """Every process whose parent chain leads to pid."""
    parents = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                parents[int(entry.name)] = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
    found, frontier = set(), {pid}
    while frontier:
        frontier = {p for p, parent in parents.items() if parent in frontier} - found
        found |= frontier
    return found


def test_up_serves_kubectl_and_sigterm_leaves_no_process_behind(tmp_path):
    config = tmp_path / "cp.kubeconfig"
    up = subprocess.Popen([sys.executable, str(ROOT / "scripts" / "control-plane"), "up", "--nodes", "1x4",
                           "--kubeconfig", str(config)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        lines = []
        for line in up.stdout:
            lines.append(line)
            if "Ctrl-C stops it" in line:
                break
        assert f"kubeconfig written to {config}" in "".join(lines), "".join(lines) + up.stderr.read()
        nodes = kubectl(config, "get", "nodes", "-o", "name").stdout.split()
        assert nodes == ["node/gpu-node-000"]
        started = children(up.pid)
        names = {Path(os.readlink(f"/proc/{p}/exe")).name for p in started if os.path.exists(f"/proc/{p}/exe")}
        assert {"etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler"} <= names
        up.send_signal(signal.SIGTERM)
        assert up.wait(timeout=60) == 0
        assert "control plane stopped" in up.stdout.read()
        wait_for(lambda: not any(os.path.exists(f"/proc/{p}") for p in started), timeout=30,
                 what="every process it started to exit")
    finally:
        if up.poll() is None:
            up.kill()
