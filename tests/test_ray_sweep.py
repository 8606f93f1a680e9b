"""Sweeps on a Ray cluster: a real local Ray head, started by the test, runs `spillway sim
--compare` and `spillway tune`; the results are the serial ones, byte for byte."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from scheduler.cli import main

RAY = Path(sys.executable).parent / "ray"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def ray_head():
    port = free_port()
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0"}
    with tempfile.TemporaryDirectory(prefix="ray", dir="/tmp") as temp:  # short: Ray's socket paths are capped
        started = subprocess.run([str(RAY), "start", "--head", f"--port={port}", "--num-cpus=2",
                                  "--include-dashboard=false", "--disable-usage-stats", f"--temp-dir={temp}"],
                                 capture_output=True, text=True, timeout=120, env=env)
        assert started.returncode == 0, started.stderr[-2000:]
        try:
            yield f"127.0.0.1:{port}"
        finally:
            subprocess.run([str(RAY), "stop"], capture_output=True, timeout=120, env=env)


@pytest.mark.slow
def test_a_sweep_on_ray_gives_the_serial_results_byte_for_byte(ray_head, capsys, tmp_path):
    outputs, tuned = {}, {}
    for where in ("serial", "ray"):
        extra = ["--ray", ray_head] if where == "ray" else ["--workers", "1"]
        assert main(["sim", "--scenario", "sb1", "--compare", "no-wait", "compute-wait", "-o", "json", *extra]) == 0
        captured = capsys.readouterr()
        outputs[where] = captured.out
        if where == "ray":
            assert "policies on Ray: 100%" in captured.err and "2/2" in captured.err
        path = tmp_path / f"tuned-{where}.yaml"
        assert main(["tune", "--scenario", "sb1", "--param", "local.maxWaitSeconds=0,3600", "--write", str(path),
                     *extra]) == 0
        err = capsys.readouterr().err
        if where == "ray":
            assert f"on the Ray cluster at {ray_head}" in err
        tuned[where] = path.read_text()
    assert outputs["ray"] == outputs["serial"]
    assert tuned["ray"] == tuned["serial"]


def test_an_address_where_no_ray_answers_is_refused_at_once(capsys):
    port = free_port()  # nothing listens there
    assert main(["sim", "--scenario", "sb1", "--compare", "no-wait", "compute-wait", "--ray",
                 f"127.0.0.1:{port}"]) == 1
    err = capsys.readouterr().err
    assert "--ray" in err and f"no Ray cluster answers at '127.0.0.1:{port}'" in err and "ray start --head" in err
