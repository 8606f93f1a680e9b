"""Reading batch/v1 Job manifests: what the core needs, and clear errors for what is wrong."""

from __future__ import annotations

import copy

import pytest

from policies import InputError, job_from_manifest
from policies.model.constants import CapacityType, Mode
from tests.builders import BASE_JOB as BASE


def manifest(**changes):
    m = copy.deepcopy(BASE)
    for path, value in changes.items():
        node = m
        keys = path.split("__")
        for k in keys[:-1]:
            node = node[int(k)] if k.isdigit() else node.setdefault(k, {})
        node[keys[-1]] = value
    return m


def annotated(**ann):
    m = copy.deepcopy(BASE)
    m["metadata"]["annotations"].update({f"spillway.io/{k.replace('_', '-')}": v for k, v in ann.items()})
    return m


def test_reads_gpus_product_submit_time_and_mode():
    j = job_from_manifest(BASE)
    assert (j.namespace, j.name, j.gpus_per_pod, j.pods) == ("ml", "train-7", 4, 1)
    assert j.gpu_product == "NVIDIA-A100-SXM4-80GB"
    assert j.submit_time == 1795874400.0
    assert j.mode == Mode.AUTO and j.opted_in
    assert j.family == "train" and j.label("team") == "nlp"
    assert j.untranslatable is None


def test_annotations_are_parsed_with_units():
    j = job_from_manifest(annotated(runtime_estimate="1h30m", deadline="2026-11-29T08:00:00Z",
                                    capacity_type="spot", checkpoint_s3_uri="s3://b/ckpt/",
                                    role_arn="arn:aws:iam::1:role/r", max_wait_seconds="600",
                                    wait_usd_per_hour="3.5", instance_type="ml.g5.12xlarge"))
    assert j.runtime_estimate_seconds == 5400
    assert j.deadline == 1795939200.0
    assert j.capacity_type == CapacityType.SPOT and j.checkpointable
    assert (j.local_max_wait_seconds, j.wait_usd_per_hour, j.instance_type) == (600, 3.5, "ml.g5.12xlarge")


def test_all_bad_annotations_are_reported_together():
    with pytest.raises(InputError) as exc:
        job_from_manifest(annotated(mode="sometimes", runtime_estimate="soon", deadline="tomorrow",
                                    checkpoint_s3_uri="/tmp/x", role_arn="admin", deadlin="x"))
    paths = {i.path: i for i in exc.value.issues}
    assert set(paths) == {f'metadata.annotations["spillway.io/{k}"]' for k in
                          ("mode", "runtime-estimate", "deadline", "checkpoint-s3-uri", "role-arn", "deadlin")}
    assert paths['metadata.annotations["spillway.io/deadlin"]'].fix == "did you mean 'spillway.io/deadline'?"
    assert "90m" in paths['metadata.annotations["spillway.io/runtime-estimate"]'].fix


def test_fractional_gpu_quantity_is_refused_with_the_field_path():
    with pytest.raises(InputError) as exc:
        job_from_manifest(manifest(spec__template__spec__containers=[
            {"name": "t", "image": "i", "resources": {"limits": {"nvidia.com/gpu": "500m"}}}]))
    assert exc.value.issues[0].path == "spec.template.spec.containers[0].resources.limits.nvidia.com/gpu"


def test_deadline_without_zone_is_refused():
    with pytest.raises(InputError, match="no zone"):
        job_from_manifest(annotated(deadline="2026-11-29T08:00:00"))


@pytest.mark.parametrize("changes, why", [
    ({"spec__template__spec__volumes": [{"name": "data", "persistentVolumeClaim": {"claimName": "c"}}]},
     "persistentVolumeClaim"),
    ({"spec__parallelism": 4}, "non-Indexed"),
    ({"spec__template__spec__containers": [
        {"name": "a", "image": "i", "resources": {"limits": {"nvidia.com/gpu": 1}}},
        {"name": "b", "image": "i", "resources": {"limits": {"nvidia.com/gpu": 1}}}]}, "more than one container"),
])
def test_untranslatable_jobs_say_why(changes, why):
    j = job_from_manifest(manifest(**changes))
    assert why in j.untranslatable


def test_indexed_job_is_a_gang_of_pods():
    j = job_from_manifest(manifest(spec__parallelism=4, spec__completions=4, spec__completionMode="Indexed"))
    assert (j.pods, j.gpus_per_pod, j.total_gpus, j.untranslatable) == (4, 4, 16, None)


@pytest.mark.parametrize("bad, path", [
    ("not a job", ""),
    ({"kind": "Pod"}, "kind"),
    ({"kind": "Job", "apiVersion": "batch/v1", "metadata": {"name": "x"}, "spec": {"template": {"spec": {}}}},
     "spec.template.spec.containers"),
    ({"kind": "Job", "metadata": "oops"}, "metadata"),
])
def test_malformed_manifests_name_the_field(bad, path):
    with pytest.raises(InputError) as exc:
        job_from_manifest(bad)
    assert path in [i.path for i in exc.value.issues]


def test_generated_name_suffix_is_not_part_of_the_family():
    j = job_from_manifest(manifest(metadata__name="detr-sweep-x7k2p"))
    assert j.family == "detr-sweep"
