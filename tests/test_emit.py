"""What a burst is sent as: the CreateTrainingJob request, the ACK and the legacy TrainingJob.

Every custom resource must pass the real CRD schemas with fieldValidation=Strict (an unknown
field would be pruned silently by a real API server: a checkpoint config lost). Whatever the
target cannot carry (command, args, env) makes the decision NotTranslatable instead.
"""

from __future__ import annotations

import copy
import re
from importlib import resources

import pytest
import yaml

from policies import Placement, Reason, decide, job_from_manifest
from policies.model.constants import EmitTarget
from policies.decide.emit import create_training_job_request, training_job_name, training_job_resource
from policies.model.errors import InputError
from sim.sandbox.validation import validate
from tests import crds
from tests.builders import BUCKET, ROLE, cluster, policy

EXAMPLE = yaml.safe_load(resources.files("policies").joinpath("examples/job.yaml").read_text())
SAGEMAKER_NAME = re.compile(r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$")


def example(**changes) -> dict:
    m = copy.deepcopy(EXAMPLE)
    m["metadata"]["namespace"] = "ml"
    m["metadata"]["uid"] = "6f1c2d3e-0000-4000-8000-000000000001"
    ann = m["metadata"]["annotations"]
    ann["spillway.io/checkpoint-s3-uri"] = f"{BUCKET}ckpt/"
    ann["spillway.io/input-s3-uri"] = f"{BUCKET}data/"
    ann["spillway.io/mode"] = "cloud"
    container = m["spec"]["template"]["spec"]["containers"][0]
    for key, value in changes.items():
        if value is None:
            container.pop(key, None)
        else:
            container[key] = value
    return m


def crd_type(group: str):
    return crds.crd_type("TrainingJob", group)


def burst(manifest: dict, emit: str = "ack", **spec):
    j = job_from_manifest(manifest)
    snap = cluster().nodes(1, 8).busy("n0", 8, until_hours=20).build()
    return j, decide(j, snap, policy(sageMaker={"emit": emit}, **spec))


@pytest.mark.parametrize("emit, group", [("ack", "sagemaker.services.k8s.aws"),
                                         ("legacy", "sagemaker.aws.amazon.com")])
@pytest.mark.parametrize("spot", [True, False], ids=["spot", "on-demand"])
def test_every_emitted_training_job_passes_its_crd_strictly(emit, group, spot):
    manifest = example(env=None) if emit == "legacy" else example()
    if not spot:
        manifest["metadata"]["annotations"]["spillway.io/capacity-type"] = "on-demand"
    j, d = burst(manifest, emit)
    assert d.placement == (Placement.SAGEMAKER_SPOT if spot else Placement.SAGEMAKER_ON_DEMAND), d.message
    cr = training_job_resource(j, d.launch, training_job_name(j), EmitTarget(emit))
    assert validate(crd_type(group), cr, strict=True) == []
    spec = cr["spec"]
    if emit == "ack":
        assert spec["roleARN"] == ROLE and spec["checkpointConfig"]["s3URI"] == f"{BUCKET}ckpt/"
        assert spec["inputDataConfig"][0]["dataSource"]["s3DataSource"]["s3URI"] == f"{BUCKET}data/"
        assert spec["environment"] == {"TRAIN_CONFIG": "llama7b.yaml"}
        assert {"key": "spillway.io/job-uid", "value": j.uid} in spec["tags"]
    else:
        assert spec["roleArn"] == ROLE and spec["region"] == "us-east-1" and "environment" not in spec
    assert spec["enableManagedSpotTraining"] is spot
    assert ("maxWaitTimeInSeconds" in spec["stoppingCondition"]) is spot
    assert spec["resourceConfig"] == {"instanceType": d.launch.instance_type, "instanceCount": 1,
                                      "volumeSizeInGB": 100}
    owner = cr["metadata"]["ownerReferences"][0]
    assert (owner["kind"], owner["uid"], owner["controller"]) == ("Job", j.uid, True)


def test_a_misspelt_field_is_what_strict_validation_catches():
    j, d = burst(example())
    cr = training_job_resource(j, d.launch, training_job_name(j), EmitTarget.ACK)
    cr["spec"]["checkpointConfig"]["s3Uri"] = cr["spec"]["checkpointConfig"].pop("s3URI")
    causes = validate(crd_type("sagemaker.services.k8s.aws"), cr, strict=True)
    assert any("s3Uri" in c["message"] for c in causes)


def test_the_api_request_carries_command_args_env_gang_and_spot():
    m = example(command=["python", "train.py"], args=["--epochs", "3"])
    m["spec"].update(parallelism=2, completions=2, completionMode="Indexed")
    j, d = burst(m, "api")
    assert d.placement == Placement.SAGEMAKER_SPOT, d.message
    request = create_training_job_request(j, d.launch, training_job_name(j))
    assert request["AlgorithmSpecification"] == {
        "TrainingImage": j.image, "TrainingInputMode": "File",
        "ContainerEntrypoint": ["python", "train.py"], "ContainerArguments": ["--epochs", "3"]}
    assert request["Environment"] == {"TRAIN_CONFIG": "llama7b.yaml"}
    assert request["ResourceConfig"]["InstanceCount"] == 2
    assert request["EnableManagedSpotTraining"] is True
    stop = request["StoppingCondition"]
    assert stop["MaxWaitTimeInSeconds"] >= stop["MaxRuntimeInSeconds"] == d.launch.max_runtime_seconds
    assert request["CheckpointConfig"]["S3Uri"] == f"{BUCKET}ckpt/"
    fallback = create_training_job_request(j, d.launch, training_job_name(j, 1), on_demand=True)
    assert fallback["EnableManagedSpotTraining"] is False and "MaxWaitTimeInSeconds" not in fallback["StoppingCondition"]
    assert fallback["CheckpointConfig"] == request["CheckpointConfig"]


@pytest.mark.parametrize("emit, changes, named", [
    ("ack", {"command": ["python", "train.py"]}, "containers[].command"),
    ("ack", {"args": ["--lr", "3e-4"]}, "containers[].args"),
    ("legacy", {}, "containers[].env"),
    ("legacy", {"command": ["train"]}, "containers[].command and containers[].env"),
])
def test_what_the_target_cannot_carry_is_never_dropped(emit, changes, named):
    j, d = burst(example(**changes), emit)
    assert (d.placement, d.reason) == (Placement.WAIT, Reason.NOT_TRANSLATABLE)
    assert named in d.message and "spec.sageMaker.emit: api" in d.message


def test_env_from_a_secret_is_not_translatable_on_any_target():
    env = [{"name": "TOKEN", "valueFrom": {"secretKeyRef": {"name": "s", "key": "k"}}}]
    j, d = burst(example(env=env), "api")
    assert d.reason == Reason.NOT_TRANSLATABLE and "env[0] (TOKEN)" in d.message


def test_an_image_outside_the_allowlist_may_not_burst_and_the_override_is_checked_too():
    ecr = "123456789012.dkr.ecr.us-east-1.amazonaws.com/*"
    allow = {"ml": {"roleArns": [ROLE], "s3Prefixes": [BUCKET], "images": [ecr]}}
    m = example(image="docker.io/me/train:1")
    _, d = burst(m, allowlists=allow)
    assert d.reason == Reason.BURST_NOT_ALLOWED and "spillway.io/sagemaker-image" in d.message
    m["metadata"]["annotations"]["spillway.io/sagemaker-image"] = ecr.replace("*", "train:1")
    j, d = burst(m, allowlists=allow)
    assert d.placement.is_cloud and j.training_image.endswith("/train:1")
    assert create_training_job_request(j, d.launch, "x")["AlgorithmSpecification"]["TrainingImage"] == \
        j.training_image


def test_names_derive_from_the_uid_and_fit_sagemaker():
    j = job_from_manifest(example())
    other = job_from_manifest({**example(), "metadata": {**example()["metadata"], "uid": "another"}})
    long = job_from_manifest({**example(), "metadata": {**example()["metadata"], "name": "x" * 80 + "_Y"}})
    names = {training_job_name(j), training_job_name(j, 1), training_job_name(other), training_job_name(long)}
    assert len(names) == 4 and training_job_name(j) == training_job_name(job_from_manifest(example()))
    assert all(SAGEMAKER_NAME.match(n) and len(n) <= 63 and n == n.lower() for n in names)


def test_the_controllers_own_annotations_read_back_and_a_typo_is_still_caught():
    m = example()
    m["metadata"]["annotations"].update({"spillway.io/placement": "Local", "spillway.io/cost-usd": "1.20",
                                         "spillway.io/sagemaker-job-name": "x"})
    assert job_from_manifest(m).mode is not None
    m["metadata"]["annotations"]["spillway.io/sagemaker-imag"] = "x"
    with pytest.raises(InputError) as exc:
        job_from_manifest(m)
    assert "did you mean 'spillway.io/sagemaker-image'" in str(exc.value.issues[0].render())
