"""The architecture's arrows, enforced: policies/ is pure, and each SDK has one adapter."""

from __future__ import annotations

import ast
import subprocess
import sys
import tomllib
from pathlib import Path

import grimp
import pytest

ROOT = Path(__file__).resolve().parent.parent
FORBIDDEN_IN_POLICIES = {"kubernetes", "boto3", "botocore", "prometheus_api_client", "time", "random",
                         "scheduler", "sim", "requests", "urllib", "socket", "http", "subprocess", "os",
                         "moto", "datetime.datetime.now"}
# Each SDK may be imported by exactly these modules (the adapters); none exist before their issue lands.
SDK_OWNERS = {
    "kubernetes": {"scheduler/kube.py"},
    "boto3": {"scheduler/sagemaker.py", "sim/sagemaker_lifecycle.py"},
    "prometheus_api_client": {"scheduler/prometheus.py"},
    "ray": {"sim/ray_backend.py"},
    "optuna": {"scheduler/bayesian_trials.py"},
}


def imports_of(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module)
    return names


def python_files(package: str) -> list[Path]:
    return sorted((ROOT / package).rglob("*.py"))


def top(name: str) -> str:
    return name.split(".")[0]


@pytest.mark.parametrize("path", python_files("policies"), ids=lambda p: str(p.relative_to(ROOT)))
def test_policies_imports_nothing_impure(path):
    bad = {n for n in imports_of(path) if top(n) in FORBIDDEN_IN_POLICIES}
    assert not bad, f"{path.relative_to(ROOT)} imports {sorted(bad)}; policies/ must stay pure"


@pytest.mark.parametrize("path", python_files("policies"), ids=lambda p: str(p.relative_to(ROOT)))
def test_policies_reads_no_clock_and_no_global_randomness(path):
    text = path.read_text()
    for call in ("datetime.now(", "datetime.utcnow(", "date.today(", "time.time(", "np.random.", "numpy.random."):
        assert call not in text, f"{path.relative_to(ROOT)} calls {call}: time and randomness come in as arguments"


# The command line is the one composition root: `spillway` registers the simulator's commands,
# and `spillway demo` runs the controller against the sandbox.
ALLOWED_CROSSINGS = {"scheduler/cli.py": {"sim.cli", "sim.sandbox.cli"},
                     "scheduler/demo_cli.py": {"sim.traces", "sim.sagemaker_lifecycle", "sim.sandbox.ack",
                                               "sim.sandbox.apiserver", "sim.sandbox.machinery"}}


@pytest.mark.parametrize("package", ["scheduler", "sim"])
def test_scheduler_and_sim_do_not_import_each_other(package):
    other = {"scheduler": "sim", "sim": "scheduler"}[package]
    for path in python_files(package):
        rel = str(path.relative_to(ROOT))
        crossing = {n for n in imports_of(path) if top(n) == other} - ALLOWED_CROSSINGS.get(rel, set())
        assert not crossing, f"{rel} imports {sorted(crossing)}"


def test_each_sdk_is_imported_by_its_adapter_only():
    for package in ("scheduler", "sim", "policies"):
        for path in python_files(package):
            rel = str(path.relative_to(ROOT))
            for name in imports_of(path):
                owners = SDK_OWNERS.get(top(name))
                assert owners is None or rel in owners, f"{rel} imports {top(name)}; only {sorted(owners)} may"


def test_the_contract_test_catches_a_violation(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text("import time\nfrom kubernetes import client\n")
    assert {"time", "kubernetes"} <= {top(n) for n in imports_of(bad)}


def test_the_import_contracts_hold():
    """pyproject.toml's [tool.importlinter] contracts: policies/ in layers, each sub-package read
    through its face, no cycles between the modules of one package. (In its own process: the
    linter reconfigures logging, which would silence the loggers other tests read.)"""
    lint = subprocess.run([str(Path(sys.executable).parent / "lint-imports"), "--config", str(ROOT / "pyproject.toml"),
                           "--no-cache"], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert lint.returncode == 0, lint.stdout + lint.stderr


def test_every_sub_package_of_policies_is_in_a_layer_and_behind_its_face():
    contracts = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]["contracts"]
    packages = {p.parent.name for p in (ROOT / "policies").glob("*/__init__.py")}
    layered = {name.strip() for c in contracts if c["type"] == "layers" for layer in c["layers"]
               for name in layer.split("|")}
    faced = {c["protected_modules"][0].split(".")[1] for c in contracts if c["type"] == "protected"}
    assert packages == layered == faced == {"model", "forecast", "spot", "decide", "queue"}
    assert [p.name for p in (ROOT / "policies").glob("*.py")] == ["__init__.py"], "a module outside the layers"


def import_cycles(graph: grimp.ImportGraph) -> list[list[str]]:
    """The graph's strongly connected components of more than one module (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    cycles: list[list[str]] = []

    def visit(module: str) -> None:
        index[module] = low[module] = len(index)
        stack.append(module)
        for imported in sorted(graph.find_modules_directly_imported_by(module)):
            if imported not in index:
                visit(imported)
                low[module] = min(low[module], low[imported])
            elif imported in stack:
                low[module] = min(low[module], index[imported])
        if low[module] == index[module]:
            component = stack[stack.index(module):]
            del stack[stack.index(module):]
            if len(component) > 1:
                cycles.append(sorted(component))

    for module in sorted(graph.modules):
        if module not in index:
            visit(module)
    return cycles


def test_no_import_cycles():
    """No module imports, through any chain, a module that imports it back (faces included; an
    import under TYPE_CHECKING counts too)."""
    graph = grimp.build_graph("policies", "scheduler", "sim", cache_dir=None)
    assert sys.getrecursionlimit() > len(graph.modules)
    assert import_cycles(graph) == []


def test_the_cycle_finder_finds_a_cycle():
    graph = grimp.ImportGraph()
    for importer, imported in [("a", "b"), ("b", "c"), ("c", "a"), ("c", "d"), ("d", "e")]:
        graph.add_import(importer=importer, imported=imported)
    assert import_cycles(graph) == [["a", "b", "c"]]


def test_the_api_version_literal_is_the_groups():
    """constants.API_VERSION is written out as a literal so that the policy schema's Literal type
    can name it (mypy --strict on policies/); it must still be the group's v1alpha1."""
    from policies.model.constants import API_GROUP, API_VERSION

    assert API_VERSION == f"{API_GROUP}/v1alpha1"


@pytest.mark.parametrize("path", sorted((ROOT / "tests").glob("test_*.py")), ids=lambda p: p.name)
def test_a_test_module_imports_no_other_test_module(path):
    """Shared fixtures live in tests/conftest.py, shared helpers in helper modules (builders,
    sandboxes, scenario, planner_runs, waiting): a test module is never imported for its helpers."""
    tree = ast.parse(path.read_text(), filename=str(path))
    modules = {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    modules |= {n.module or "" for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
    assert not [m for m in modules if m.split(".")[-1].startswith("test_")], f"{path.name} imports a test module"
