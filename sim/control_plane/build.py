"""`scripts/control-plane build`: the control plane's binaries, built once per version.

Each component's Go module (tools/control-plane/<name>/go.mod) pins its upstream module; `go
build` compiles the upstream main packages into a cache folder named after the component, its
version and the Go release. A folder that holds every binary is a finished build, and is kept:
binaries are written to a temporary folder and renamed into place, so a build that is stopped
half-way never passes for a finished one.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from .versions import COMPONENTS, KUEUE, Component, binary_dir

log = logging.getLogger(__name__)


class BuildError(Exception):
    """A build step failed; the message says which and what go printed."""


@dataclass
class Built:
    component: Component
    folder: Path
    seconds: float  # 0 when the cache had it
    cached: bool


def go_version() -> str:
    """`go1.26.8`: part of every cache key."""
    go = shutil.which("go")
    if go is None:
        raise BuildError("the control plane is built from Go modules, and `go` is not on PATH: install Go 1.25 or "
                         "newer (https://go.dev/doc/install), or put /usr/local/go/bin on PATH")
    out = subprocess.run([go, "env", "GOVERSION"], capture_output=True, text=True, check=True).stdout.strip()
    return out.split()[0]


def module_dir(component: Component) -> Path:
    """Where the Go module cache holds the component's upstream source (downloading it if needed)."""
    out = _go(["mod", "download", "-json", f"{component.module}@{component.version}"], component.module_dir)
    return Path(json.loads(out)["Dir"])


def is_built(component: Component, folder: Path) -> bool:
    return all((folder / b).is_file() and os.access(folder / b, os.X_OK) for b in component.binaries)


def build(component: Component, *, go: str | None = None, force: bool = False) -> Built:
    go = go or go_version()
    folder = binary_dir(component, go)
    if is_built(component, folder) and not force:
        return Built(component, folder, 0.0, True)
    start = time.monotonic()
    staging = folder.with_name(folder.name + ".partial")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    ldflags = " ".join(("-s", "-w") + component.ldflags)  # no symbol tables: smaller, faster to link
    _go(["build", "-trimpath", f"-ldflags={ldflags}", "-o", str(staging) + os.sep, *component.packages],
        component.module_dir)
    if component.packages == (".",):  # a module of our own with one main package: name its binary
        built = staging / component.module_dir.name
        if built.exists() and built.name != component.binaries[0]:
            built.rename(staging / component.binaries[0])
    if component is KUEUE:  # its CRDs, RBAC and webhooks, from the same module's config/
        shutil.copytree(module_dir(component) / "config", staging / "config")
        for path in (staging / "config").rglob("*"):
            path.chmod(0o755 if path.is_dir() else 0o644)  # the module cache's copies are read-only
    missing = [b for b in component.binaries if not (staging / b).is_file()]
    if missing:
        raise BuildError(f"go build of {component.name} {component.version} wrote no {', '.join(missing)}")
    shutil.rmtree(folder, ignore_errors=True)
    staging.rename(folder)
    return Built(component, folder, time.monotonic() - start, False)


def build_all(names: tuple[str, ...] = (), *, force: bool = False) -> list[Built]:
    go = go_version()
    chosen = [c for c in COMPONENTS if not names or c.name in names]
    return [build(c, go=go, force=force) for c in chosen]


def binaries(go: str | None = None) -> dict[str, Path]:
    """Binary name -> path, for every component already built. Starting needs no Go: without it,
    the newest build of each pinned version in the cache is used."""
    try:
        go = go or go_version()
    except BuildError:
        go = None
    out: dict[str, Path] = {}
    for c in COMPONENTS:
        if go is not None:
            folder = binary_dir(c, go)
        else:
            built = sorted(binary_dir(c, "").parent.glob(f"{c.name}-{c.version}-go*"),
                           key=lambda f: f.stat().st_mtime)
            folder = built[-1] if built else binary_dir(c, "go")
        if is_built(c, folder):
            out.update({b: folder / b for b in c.binaries})
            if c is KUEUE:
                out["kueue-config"] = folder / "config"
    return out


def _go(args: list[str], cwd: Path) -> str:
    env = {**os.environ, "GOFLAGS": os.environ.get("GOFLAGS", "") + " -mod=readonly"}
    proc = subprocess.run(["go", *args], cwd=cwd, capture_output=True, text=True, env=env)
    if proc.returncode != 0:
        raise BuildError(f"`go {' '.join(args)}` in {cwd} failed (exit {proc.returncode}):\n"
                         f"{(proc.stderr or proc.stdout).strip()[-4000:]}")
    return proc.stdout
