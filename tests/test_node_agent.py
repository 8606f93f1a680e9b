"""The virtual node's agent, its pure part: where a burst's pods go, and what they show."""

from __future__ import annotations

from policies import constants as C
from policies.model.constants import PodReason
from scheduler.node_agent import (TOLERATIONS, Shown, gang_bound, gang_size, pod_status, refused, shown,
                                  template_patch)


def pod(phase="Pending", **status) -> dict:
    return {"metadata": {"name": "p", "namespace": "ml", "uid": "u"},
            "spec": {"nodeName": C.VIRTUAL_NODE_NAME, "containers": [{"name": "trainer"}]},
            "status": {"phase": phase, **status}}


def test_the_template_goes_to_the_virtual_node_and_keeps_the_users_tolerations():
    spec = {"nodeSelector": {C.GPU_PRODUCT_LABEL: "NVIDIA-A100-SXM4-80GB"},
            "affinity": {"nodeAffinity": {}}, "tolerations": [{"key": "team", "operator": "Exists"}]}
    patch = template_patch(spec)
    assert patch["nodeSelector"] == {C.GPU_PRODUCT_LABEL: None, C.VIRTUAL_NODE_LABEL: "true"}, \
        "the local product label is removed (merge patch null), the virtual node's added"
    assert patch["affinity"] is None
    assert patch["tolerations"] == [{"key": "team", "operator": "Exists"}, *TOLERATIONS]
    sent = {"nodeSelector": {C.VIRTUAL_NODE_LABEL: "true"}, "tolerations": patch["tolerations"]}
    assert template_patch(sent) is None, "a template sent there already needs no patch"


def test_the_gang_is_what_runs_at_once():
    assert gang_size({"spec": {}}) == 1
    assert gang_size({"spec": {"parallelism": 4, "completions": 4}}) == 4
    assert gang_size({"spec": {"parallelism": 4, "completions": 2}}) == 2
    job = {"spec": {"parallelism": 2, "completions": 2}}
    assert not gang_bound(job, [pod()])
    assert gang_bound(job, [pod(), pod("Running")])
    deleting = pod()
    deleting["metadata"]["deletionTimestamp"] = "2026-12-07T00:00:00Z"
    assert not gang_bound(job, [pod(), deleting]), "a pod being deleted is not part of the gang"


def test_a_pod_shows_its_training_job_as_a_kubelet_shows_a_container():
    starting = shown(done=False, described={"TrainingJobStatus": "InProgress", "SecondaryStatus": "Downloading"},
                     outcome="", name="j")
    assert starting == Shown("Pending", "SageMakerStarting", "SageMaker training job j: Downloading")
    status = pod_status(pod(), starting, 0.0)
    assert status["containerStatuses"][0]["state"]["waiting"]["reason"] == "SageMakerStarting"
    assert pod_status(pod(**status), starting, 1.0) is None, "nothing new: nothing written"
    training = shown(done=False, described={"TrainingJobStatus": "InProgress", "SecondaryStatus": "Training"},
                     outcome="", name="j")
    running = pod_status(pod(**status), training, 2.0)
    assert running["phase"] == "Running" and running["containerStatuses"][0]["ready"] is True
    running_pod = pod(**running)
    # A spot fallback relaunches the training job, which starts again: the pod runs on.
    assert pod_status(running_pod, shown(done=False, described=None, outcome="", name="j-od1"), 3.0) is None
    assert pod_status(running_pod, training, 4.0) is None
    done = shown(done=True, described=None, outcome="Completed/Completed", name="j")
    succeeded = pod_status(running_pod, done, 5.0)
    assert succeeded["phase"] == "Succeeded"
    assert succeeded["containerStatuses"][0]["state"]["terminated"]["exitCode"] == 0
    assert pod_status(pod(**succeeded), shown(done=True, described=None, outcome="Failed/Failed", name="j"), 6.0) \
        is None, "an ended pod never changes"


def test_a_failure_carries_sagemakers_reason_and_a_refused_pod_says_why():
    failed = shown(done=True, described={"TrainingJobStatus": "Failed", "FailureReason": "AlgorithmError: OOM"},
                   outcome="Failed/Failed", name="j")
    status = pod_status(pod("Running", startTime="2026-12-07T00:00:00Z"), failed, 0.0)
    assert (status["phase"], status["reason"]) == ("Failed", "SageMakerFailed")
    assert status["message"] == "SageMaker training job j: AlgorithmError: OOM"
    terminated = status["containerStatuses"][0]["state"]["terminated"]
    assert (terminated["exitCode"], terminated["reason"]) == (1, "SageMakerFailed")
    launch = shown(done=True, described=None, outcome="LaunchFailed/ValidationException: bad role", name="j")
    assert launch == Shown("Failed", "SageMakerLaunchFailed",
                           "SageMaker refused training job j: ValidationException: bad role")
    stray = refused(pod(), 0.0, PodReason.NOT_A_BURST, "not ours")
    assert (stray["phase"], stray["reason"], stray["message"]) == ("Failed", "NotPlacedBySpillway", "not ours")
    assert refused(pod("Succeeded"), 0.0, PodReason.NOT_A_BURST, "x") is None
