"""Batch transform in the pure core: a Job annotated spillway.io/sagemaker-kind: transform is read,
decided (never on spot), priced per instance-second at the transform price after its own start-up,
and emitted as CreateModel + CreateTransformJob, the ACK Model + TransformJob, or the legacy
BatchTransformJob, each custom resource passing its real CRD with fieldValidation=Strict."""

from __future__ import annotations

import copy
from importlib import resources

import pytest
import yaml
from hypothesis import HealthCheck, given, settings, strategies as st

from policies import Placement, Reason, decide, job_from_manifest
from policies import constants as C
from policies.decide import (create_model_request, create_transform_job_request, model_resource, transform_job_name,
                             transform_job_resource)
from policies.model import EmitTarget, InputError, SageMakerKind, SplitType, default_catalog
from sim.sandbox.validation import validate
from tests.crds import crd_type
from tests.builders import BUCKET, ROLE, cluster, policy

EXAMPLE = yaml.safe_load(resources.files("policies").joinpath("examples/transform-job.yaml").read_text())
T4 = "Tesla-T4"
TRANSFORM_POLICY = {"sageMaker": {"allowedInstanceTypes": ["ml.g4dn.*", "ml.g5.*"]}}


def example(**annotations: str | None) -> dict:
    m = copy.deepcopy(EXAMPLE)
    m["metadata"].update(namespace="ml", uid="6f1c2d3e-0000-4000-8000-00000000007a")
    ann = m["metadata"]["annotations"]
    for key in (C.MODEL_S3_URI, C.INPUT_S3_URI, C.OUTPUT_S3_URI):
        ann[key] = ann[key].replace("s3://spillway-example/", BUCKET)
    for key, value in annotations.items():
        if value is None:
            ann.pop(key, None)
        else:
            ann[key] = value
    return m


def burst(manifest: dict, emit: str = "ack", busy: bool = True, **spec):
    j = job_from_manifest(manifest)
    snap = cluster().nodes(1, 4, product=T4)
    if busy:
        snap = snap.busy("n0", 4, until_hours=20)
    sm = {**TRANSFORM_POLICY["sageMaker"], "emit": emit, **spec.pop("sageMaker", {})}
    return j, decide(j, snap.build(), policy(sageMaker=sm, **spec))



def test_the_annotations_make_a_transform_request():
    j = job_from_manifest(example())
    assert j.sagemaker_kind == SageMakerKind.TRANSFORM and j.is_transform
    assert (j.content_type, j.split_type, j.pods) == ("text/csv", SplitType.LINE, 2)
    assert j.model_s3_uri == f"{BUCKET}ml-research/sentiment/model.tar.gz" and j.untranslatable is None


@pytest.mark.parametrize("annotations, path, fix", [
    ({C.SAGEMAKER_KIND: "inference"}, C.SAGEMAKER_KIND, "use training, transform or tuning"),
    ({C.SPLIT_TYPE: "lines"}, C.SPLIT_TYPE, "None, Line, RecordIO, TFRecord"),
    ({C.CONTENT_TYPE: "csv"}, C.CONTENT_TYPE, "text/csv"),
    ({C.MODEL_S3_URI: "/models/m.tar.gz"}, C.MODEL_S3_URI, "s3://bucket/"),
    ({C.INPUT_S3_URI: None}, C.INPUT_S3_URI, f"set {C.INPUT_S3_URI}"),
    ({C.CAPACITY_TYPE: "spot"}, C.CAPACITY_TYPE, "use on-demand or any"),
    ({C.CHECKPOINT_S3_URI: f"{BUCKET}ckpt/"}, C.CHECKPOINT_S3_URI, f"remove {C.CHECKPOINT_S3_URI}"),
    ({C.SAGEMAKER_KIND: None}, C.MODEL_S3_URI, f"set {C.SAGEMAKER_KIND}: transform"),
])
def test_a_bad_annotation_is_named_with_its_fix(annotations, path, fix):
    with pytest.raises(InputError) as caught:
        job_from_manifest(example(**annotations))
    [issue] = [i for i in caught.value.issues if path in i.path]
    assert fix in issue.fix, issue


def test_the_decision_is_never_spot_and_says_why():
    # A checkpoint-free burst on a policy that would take spot for training (no deadline, any capacity).
    for capacity in ("any", "on-demand"):
        j, d = burst(example(**{C.CAPACITY_TYPE: capacity, C.MODE: "cloud"}), spot={"requireCheckpoint": False})
        assert d.placement == Placement.SAGEMAKER_ON_DEMAND, d.message
        assert not d.launch.spot and d.launch.kind == SageMakerKind.TRANSFORM
        assert "transform has no managed spot" in d.message
        assert all(o.placement != Placement.SAGEMAKER_SPOT for o in d.evidence.options)


def test_a_spot_only_transform_job_in_the_core_is_blocked_with_the_reason():
    # The parser refuses the annotation; a JobRequest made another way (the simulator) still meets the rule.
    from dataclasses import replace

    from policies.model import CapacityType
    j = replace(job_from_manifest(example(**{C.MODE: "cloud"})), capacity_type=CapacityType.SPOT)
    d = decide(j, cluster().nodes(1, 4, product=T4).build(), policy(**TRANSFORM_POLICY))
    assert d.placement == Placement.WAIT and d.reason == Reason.BURST_NOT_ALLOWED
    assert "batch transform has no managed spot" in d.message


def test_it_is_priced_per_instance_second_at_the_transform_price_after_its_own_startup():
    j, d = burst(example(**{C.MODE: "cloud"}), sageMaker={"transformStartupSeconds": 300, "startupSeconds": 900})
    price = default_catalog().get("ml.g4dn.xlarge", "us-east-1").transform_usd_per_hour
    assert price == 0.736
    option = next(o for o in d.evidence.options if o.placement == Placement.SAGEMAKER_ON_DEMAND)
    runtime = d.evidence.runtime_estimate_seconds
    assert option.expected_usd == pytest.approx(price * 2 * (300 + runtime) / 3600)
    assert option.committed_usd == pytest.approx(price * 2 * (300 + 2 * runtime) / 3600)
    assert option.start_time == d.evidence.now + 300


def test_a_type_without_a_transform_price_takes_no_transform_burst_until_the_policy_prices_it():
    m = example(**{C.MODE: "cloud"})
    m["spec"]["template"]["spec"]["nodeSelector"][C.GPU_PRODUCT_LABEL] = "NVIDIA-A10G"
    _, d = burst(m)
    assert d.reason == Reason.NO_INSTANCE_TYPE and "transformUsdPerHour" in d.message
    _, d = burst(m, sageMaker={"prices": {"ml.g5.xlarge": {"transformUsdPerHour": 1.5}}})
    assert d.placement == Placement.SAGEMAKER_ON_DEMAND and d.launch.instance_type == "ml.g5.xlarge"


def test_a_transform_job_still_runs_locally_when_its_gpus_are_free():
    _, d = burst(example(), busy=False)
    assert (d.placement, d.reason) == (Placement.LOCAL, Reason.LOCAL_CAPACITY_AVAILABLE)


def test_command_or_args_cannot_become_a_model_on_any_target():
    m = example(**{C.MODE: "cloud"})
    m["spec"]["template"]["spec"]["containers"][0]["command"] = ["python", "score.py"]
    _, d = burst(m, "api")
    assert d.reason == Reason.NOT_TRANSLATABLE and "containers[].command" in d.message


@pytest.mark.parametrize("emit", ["ack", "legacy"])
def test_every_emitted_resource_passes_its_crd_strictly(emit):
    j, d = burst(example(**{C.MODE: "cloud"}), emit)
    name = transform_job_name(j)
    cr = transform_job_resource(j, d.launch, name, EmitTarget(emit))
    assert validate(crd_type("TransformJob" if emit == "ack" else "BatchTransformJob"), cr, strict=True) == []
    spec = cr["spec"]
    assert spec["modelName"] == name and spec["transformResources"]["instanceCount"] == 2
    source = spec["transformInput"]["dataSource"]["s3DataSource"]
    assert source[{"ack": "s3URI", "legacy": "s3Uri"}[emit]] == j.input_s3_uri
    assert (spec["transformInput"]["contentType"], spec["transformInput"]["splitType"]) == ("text/csv", "Line")
    owner = cr["metadata"]["ownerReferences"][0]
    assert (owner["kind"], owner["uid"]) == ("Job", j.uid)
    if emit == "ack":
        model = model_resource(j, d.launch, name)
        assert validate(crd_type("Model"), model, strict=True) == []
        container = model["spec"]["primaryContainer"]
        assert container == {"image": j.image, "modelDataURL": j.model_s3_uri, "environment": {"BATCH_SIZE": "64"}}
        assert model["spec"]["executionRoleARN"] == ROLE
    else:
        assert spec["region"] == "us-east-1"


def test_a_misspelt_transform_field_is_what_strict_validation_catches():
    j, d = burst(example(**{C.MODE: "cloud"}))
    cr = transform_job_resource(j, d.launch, transform_job_name(j), EmitTarget.ACK)
    source = cr["spec"]["transformInput"]["dataSource"]["s3DataSource"]
    source["s3Uri"] = source.pop("s3URI")
    assert any("s3Uri" in c["message"] for c in validate(crd_type("TransformJob"), cr, strict=True))


def test_the_api_requests_name_the_model_they_create():
    j, d = burst(example(**{C.MODE: "cloud", C.CONTENT_TYPE: None, C.SPLIT_TYPE: None}), "api")
    name = transform_job_name(j)
    model = create_model_request(j, d.launch, name)
    job = create_transform_job_request(j, d.launch, name)
    assert job["ModelName"] == model["ModelName"] == name
    assert "ContentType" not in job["TransformInput"] and "SplitType" not in job["TransformInput"]
    assert job["TransformResources"] == {"InstanceType": "ml.g4dn.xlarge", "InstanceCount": 2}
    assert model["ExecutionRoleArn"] == ROLE and model["PrimaryContainer"]["Image"] == j.image


def test_a_launch_record_from_before_transform_reads_back_as_training():
    from scheduler.ledger import launch_from_dict, launch_to_dict

    _, d = burst(example(**{C.MODE: "cloud"}))
    stored = launch_to_dict(d.launch)
    assert launch_from_dict(stored) == d.launch
    older = {k: v for k, v in stored.items() if k != "kind"}
    assert launch_from_dict(older).kind == SageMakerKind.TRAINING


def test_the_controller_reads_a_transform_job_in_its_training_terms_and_keeps_its_runtime_cap():
    from datetime import datetime, timedelta, timezone

    from scheduler import transform_burst

    _, d = burst(example(**{C.MODE: "cloud"}))
    itype = default_catalog().get("ml.g4dn.xlarge", "us-east-1")
    start = datetime(2026, 11, 28, 15, 0, tzinfo=timezone.utc)
    starting = transform_burst.followed({"TransformJobStatus": "InProgress", "TransformJobArn": "arn:t"})
    assert (starting["TrainingJobStatus"], starting["SecondaryStatus"]) == ("InProgress", "Starting")
    assert transform_burst.cost(d.launch, itype, starting, start.timestamp()) is None, "nothing billed before it starts"
    running = transform_burst.followed({"TransformJobStatus": "InProgress", "TransformStartTime": start})
    assert running["SecondaryStatus"] == "Transforming"
    hour_later = start.timestamp() + 3600
    assert transform_burst.cost(d.launch, itype, running, hour_later) == pytest.approx(2 * 0.736)
    cap = d.launch.max_runtime_seconds
    assert not transform_burst.past_runtime_cap(d.launch, running, start.timestamp() + cap - 1)
    assert transform_burst.past_runtime_cap(d.launch, running, start.timestamp() + cap)
    done = transform_burst.followed({"TransformJobStatus": "Completed", "TransformStartTime": start,
                                     "TransformEndTime": start + timedelta(minutes=30)})
    assert done["SecondaryStatus"] == "Completed" and not transform_burst.past_runtime_cap(d.launch, done, 1e12)
    assert transform_burst.cost(d.launch, itype, done, 1e12) == pytest.approx(2 * 0.736 / 2)
    failed = transform_burst.followed_resource({"status": {"transformJobStatus": "Failed", "failureReason": "boom"}})
    assert (failed["TrainingJobStatus"], failed["FailureReason"], failed["_resource"]) == ("Failed", "boom", True)


def test_spillway_explain_on_the_transform_example_shows_the_transform_job_it_would_emit(capsys):
    import json
    from pathlib import Path

    from scheduler.cli import main

    examples = Path(__file__).resolve().parent.parent / "policies" / "examples"
    args = ["explain", str(examples / "transform-job.yaml"), "--policy", str(examples / "transform-policy.yaml")]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "Placement  SageMakerOnDemand" in out and "transform has no managed spot" in out
    shown = list(yaml.safe_load_all(out[out.index("apiVersion:"):]))
    assert [r["kind"] for r in shown] == ["Model", "TransformJob"]
    assert validate(crd_type("TransformJob"), shown[1], strict=True) == []
    assert main([*args, "-o", "json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["launch"]["kind"] == "transform" and [e["kind"] for e in data["emits"]] == ["Model", "TransformJob"]
    assert main(["explain", str(examples / "transform-job.yaml")]) == 0  # the default policy allows no g4dn
    assert "NoInstanceType" in capsys.readouterr().out


@st.composite
def mixed_queues(draw):
    """T4 transform and training Jobs on a small T4 cluster, under policies that like spot."""
    from dataclasses import replace

    from policies import JobRequest
    from policies.model import CapacityType, Mode, Node, RunningPod, Snapshot
    from tests.builders import HOUR, NOW

    nodes = tuple(Node(f"n{i}", 4, T4) for i in range(draw(st.integers(1, 3))))
    running = tuple(RunningPod("ml/r", n.name, draw(st.integers(0, 4)), NOW - HOUR, NOW + draw(st.floats(0, 8)) * HOUR)
                    for n in nodes)
    jobs = []
    for i in range(draw(st.integers(1, 8))):
        transform = draw(st.booleans())
        deadline = draw(st.one_of(st.none(), st.floats(0.5, 30)))
        job = JobRequest(namespace="ml", name=f"j{i}", gpus_per_pod=draw(st.sampled_from([1, 4])),
                         pods=draw(st.sampled_from([1, 2])), gpu_product=T4, submit_time=NOW - HOUR, image="i",
                         opted_in=True, runtime_estimate_seconds=draw(st.floats(0.1, 10)) * HOUR,
                         deadline=None if deadline is None else NOW + deadline * HOUR,
                         mode=draw(st.sampled_from([Mode.AUTO, Mode.CLOUD])),
                         capacity_type=draw(st.sampled_from([None, CapacityType.ANY, CapacityType.ON_DEMAND])),
                         input_s3_uri=f"{BUCKET}in/")
        if transform:
            job = replace(job, sagemaker_kind=SageMakerKind.TRANSFORM)
        else:
            job = replace(job, checkpoint_s3_uri=draw(st.sampled_from([None, f"{BUCKET}c/"])))
        jobs.append(job)
    spec = {"sageMaker": {"allowedInstanceTypes": ["ml.g4dn.*"]},
            "spot": {"requireCheckpoint": draw(st.booleans()),
                     "fallback": draw(st.sampled_from(["progress", "launchWindow"]))},
            "tradeoff": {"waitUsdPerHour": draw(st.floats(0, 200))}}
    return Snapshot(NOW, nodes, tuple(r for r in running if r.gpus)), jobs, policy(**spec)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mixed_queues())
def test_no_plan_ever_sends_a_transform_job_to_spot(world):
    from policies import plan

    snapshot, jobs, p = world
    kinds = {j.key: j.sagemaker_kind for j in jobs}
    for d in plan(jobs, snapshot, p, snapshot.time).decisions:
        if kinds[d.job] == SageMakerKind.TRANSFORM:
            assert d.placement != Placement.SAGEMAKER_SPOT, d.message
            assert d.launch is None or (not d.launch.spot and d.launch.kind == SageMakerKind.TRANSFORM)
        elif d.launch is not None:
            assert d.launch.kind == SageMakerKind.TRAINING
