"""Bad input never crashes: policy, Job and snapshot loaders raise InputError or succeed, nothing else."""

from __future__ import annotations

import copy

import yaml
from hypothesis import HealthCheck, given, settings, strategies as st

from policies import InputError, job_from_manifest, load_policy, load_snapshot
from tests.builders import BASE_JOB as JOB

scalars = st.one_of(st.none(), st.booleans(), st.integers(-10**6, 10**6), st.floats(allow_nan=True),
                    st.text(max_size=12), st.sampled_from(["ack", "1h", "s3://x/", "2026-11-28T00:00:00Z", "-1",
                                                           "ml.p4d.24xlarge", "NVIDIA-A100", "*", "nan", "inf"]))
keys = st.one_of(st.text(max_size=10), st.sampled_from(
    ["spec", "local", "maxWaitSeconds", "sageMaker", "quotas", "budgets", "default", "dailyUsd", "allowlists",
     "roleArns", "s3Prefixes", "instanceTypes", "tradeoff", "kind", "apiVersion", "nodes", "running", "pending",
     "time", "allocatableGpus", "name", "node", "gpus", "startTime", "spot", "namespaces", "metadata"]))
trees = st.recursive(scalars, lambda kids: st.one_of(st.lists(kids, max_size=4),
                                                    st.dictionaries(keys, kids, max_size=5)), max_leaves=25)
FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def survives(load, text):
    try:
        load(text)
    except InputError as exc:
        assert exc.issues and all(i.problem for i in exc.issues)
        str(exc)


@FUZZ
@given(st.text(max_size=200))
def test_policy_loader_on_arbitrary_text(text):
    survives(load_policy, text)


@FUZZ
@given(trees)
def test_policy_loader_on_arbitrary_structures(tree):
    survives(load_policy, yaml.safe_dump({"kind": "BurstPolicy", "spec": tree}))


@FUZZ
@given(trees)
def test_snapshot_loader_on_arbitrary_structures(tree):
    doc = {"kind": "ClusterSnapshot", "time": "2026-11-28T00:00:00Z"}
    doc.update(tree if isinstance(tree, dict) else {"nodes": tree})
    survives(load_snapshot, yaml.safe_dump(doc))


@FUZZ
@given(st.text(max_size=200))
def test_snapshot_loader_on_arbitrary_text(text):
    survives(load_snapshot, text)


paths = st.sampled_from([
    ("metadata",), ("metadata", "name"), ("metadata", "annotations"), ("metadata", "labels"),
    ("metadata", "creationTimestamp"), ("spec",), ("spec", "parallelism"), ("spec", "completionMode"),
    ("spec", "template"), ("spec", "template", "spec"), ("spec", "template", "spec", "containers"),
    ("spec", "template", "spec", "nodeSelector"), ("spec", "template", "spec", "volumes"),
])


@FUZZ
@given(st.lists(st.tuples(paths, trees), max_size=4),
       st.dictionaries(st.sampled_from(["spillway.io/mode", "spillway.io/deadline", "spillway.io/runtime-estimate",
                                         "spillway.io/max-wait-seconds", "spillway.io/role-arn", "spillway.io/x"]),
                       scalars, max_size=3))
def test_job_reader_on_mutated_manifests(mutations, annotations):
    m = copy.deepcopy(JOB)
    for path, value in mutations:
        node = m
        for k in path[:-1]:
            node = node.get(k) if isinstance(node, dict) else None
            if not isinstance(node, dict):
                break
        else:
            node[path[-1]] = value
    if isinstance(m.get("metadata"), dict) and isinstance(m["metadata"].get("annotations"), dict):
        m["metadata"]["annotations"].update(annotations)
    try:
        job_from_manifest(m)
    except InputError as exc:
        assert exc.issues
