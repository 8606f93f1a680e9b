"""The real control plane's pins and cache, without Go: what `scripts/control-plane build` will
build is what tools/control-plane/*/go.mod pin, and a half-written build never counts as done."""

from __future__ import annotations

import re

import pytest

from sim.control_plane import build
from sim.control_plane.versions import COMPONENTS, ETCD, KUBERNETES, KUEUE, binary_dir


def requirements(component) -> dict[str, str]:
    text = (component.module_dir / "go.mod").read_text()
    return dict(re.findall(r"^\s*(?:require\s+)?(\S+)\s+(v\S+)(?:\s*//.*)?$", text, re.M))


@pytest.mark.parametrize("component", COMPONENTS, ids=lambda c: c.name)
def test_each_go_mod_pins_the_version_the_build_names(component):
    assert requirements(component)[component.module] == component.version
    assert (component.module_dir / "go.sum").exists(), "go.sum is committed: builds are reproducible"


def test_kubernetes_staging_modules_are_replaced_by_the_same_release():
    text = (KUBERNETES.module_dir / "go.mod").read_text()
    replaced = dict(re.findall(r"^\s*(k8s\.io/\S+) => \S+ (v\S+)$", text, re.M))
    minor = KUBERNETES.version.removeprefix("v1.")  # v1.35.4 -> 35.4
    assert len(replaced) >= 25 and set(replaced.values()) == {f"v0.{minor}"}
    assert {"k8s.io/api", "k8s.io/apiserver", "k8s.io/client-go", "k8s.io/kube-scheduler"} <= set(replaced)
    # Kueue is built against the same minor release of the Kubernetes libraries.
    assert requirements(KUEUE).get("k8s.io/api", "").startswith(f"v0.{minor.split('.')[0]}.")
    assert ETCD.packages == (".",) and (ETCD.module_dir / "main.go").exists()


def test_a_cache_folder_is_a_build_only_when_every_binary_is_there(tmp_path, monkeypatch):
    monkeypatch.setenv("SPILLWAY_CACHE", str(tmp_path))
    folder = binary_dir(KUBERNETES, "go1.26.8")
    assert folder == tmp_path / "control-plane" / "kubernetes-v1.35.4-go1.26.8"
    folder.mkdir(parents=True)
    for name in KUBERNETES.binaries[:-1]:
        (folder / name).write_text("#!/bin/sh\n")
        (folder / name).chmod(0o755)
    assert not build.is_built(KUBERNETES, folder)  # the scheduler is missing: a build stopped half-way
    (folder / KUBERNETES.binaries[-1]).write_text("#!/bin/sh\n")
    assert not build.is_built(KUBERNETES, folder), "not executable"
    (folder / KUBERNETES.binaries[-1]).chmod(0o755)
    assert build.is_built(KUBERNETES, folder)
    assert build.build(KUBERNETES, go="go1.26.8").cached  # nothing is compiled for a finished folder
