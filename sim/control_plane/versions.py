"""The pinned versions of the control plane, and where its binaries are cached.

Each component is built by its own Go module under tools/control-plane/ (their go.mod files
pin the same versions; `tests/test_control_plane.py` keeps the two in step). Kubernetes 1.35
is the first release where a Job's spec.managedBy is GA; Kueue v0.17.0 is built against
Kubernetes 0.35 libraries, so the two agree.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
MODULES = REPO / "tools" / "control-plane"


@dataclass(frozen=True)
class Component:
    name: str  # also its folder under tools/control-plane/
    module: str  # the upstream module that holds its source
    version: str
    packages: tuple[str, ...]  # main packages to build
    binaries: tuple[str, ...]  # what `go build -o DIR/` writes
    ldflags: tuple[str, ...] = ()

    @property
    def module_dir(self) -> Path:
        return MODULES / self.name


KUBERNETES = Component(
    "kubernetes", "k8s.io/kubernetes", "v1.35.4",
    ("k8s.io/kubernetes/cmd/kube-apiserver", "k8s.io/kubernetes/cmd/kube-controller-manager",
     "k8s.io/kubernetes/cmd/kube-scheduler"),
    ("kube-apiserver", "kube-controller-manager", "kube-scheduler"),
    # What upstream's hack/lib/version.sh stamps, so `kubectl version` names the release.
    ("-X k8s.io/component-base/version.gitVersion=v1.35.4", "-X k8s.io/component-base/version.gitMajor=1",
     "-X k8s.io/component-base/version.gitMinor=35", "-X k8s.io/component-base/version.gitTreeState=clean",
     "-X k8s.io/client-go/pkg/version.gitVersion=v1.35.4"))
ETCD = Component("etcd", "go.etcd.io/etcd/server/v3", "v3.6.13", (".",), ("etcd",))
KUEUE = Component("kueue", "sigs.k8s.io/kueue", "v0.17.0", ("sigs.k8s.io/kueue/cmd/kueue",), ("kueue",),
                  ("-X sigs.k8s.io/kueue/pkg/version.GitVersion=v0.17.0",))
COMPONENTS = (ETCD, KUBERNETES, KUEUE)


def cache_root() -> Path:
    """SPILLWAY_CACHE, else $XDG_CACHE_HOME/spillway, else ~/.cache/spillway."""
    if os.environ.get("SPILLWAY_CACHE"):
        return Path(os.environ["SPILLWAY_CACHE"])
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "spillway"


def binary_dir(component: Component, go_version: str) -> Path:
    """One folder per component, version and Go release: a new pin never reuses an old binary."""
    return cache_root() / "control-plane" / f"{component.name}-{component.version}-{go_version}"
