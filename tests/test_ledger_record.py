"""The ledger's launch record: the core's CloudLaunch, stored as the JSON object it always was."""

from __future__ import annotations

import json
from dataclasses import asdict, fields

import pytest

from policies.model.decision import CloudLaunch
from scheduler.ledger import Burst, launch_from_dict, launch_to_dict

LAUNCH = CloudLaunch(instance_type="ml.p4d.24xlarge", instance_count=2, spot=True, role_arn="arn:aws:iam::1:role/r",
                     output_s3_uri="s3://b/out", checkpoint_s3_uri="s3://b/ckpt", max_runtime_seconds=7200,
                     sagemaker_max_wait_seconds=9000, fallback_time=1_780_000_000.5, region="us-east-1")
# A record as controllers wrote it before it was read back typed: the launch as asdict(CloudLaunch).
STORED_BEFORE = json.dumps({
    "uid": "u1", "job": "ml/train", "namespace": "ml", "emit": "ack", "launch": asdict(LAUNCH),
    "names": ["spillway-u1"], "committed_usd": 12.5, "launched_at": 1_779_990_000.0, "placement": "SageMakerSpot",
    "reason": "MaxWaitExceeded", "runtime_seconds": 3600.0, "message": "m", "decided_at": "", "deadline": None,
    "state": "running", "arns": {}, "costs": {}, "outcome": "", "fallback": "", "ended_at": None, "started": {},
    "trained": {}, "plan_tick": -1, "belief": None}, sort_keys=True, separators=(",", ":"))


def test_a_stored_record_reads_as_a_typed_launch_and_writes_back_byte_for_byte():
    burst = Burst.from_json(STORED_BEFORE)
    assert isinstance(burst.launch, CloudLaunch)
    assert burst.launch.fallback_time == LAUNCH.fallback_time and burst.launch.spot
    assert burst.cloud_launch == LAUNCH
    # Byte for byte, with the fields later versions added (virtual node, retries, Kueue) at their defaults.
    added = {"via": "suspendedJob", "pods": [], "attempt_usd": 0.0, "kueue": ""}
    assert burst.to_json() == json.dumps({**json.loads(STORED_BEFORE), **added}, sort_keys=True, separators=(",", ":"))
    assert Burst.from_json(burst.copy().to_json()) == burst


def test_the_record_carries_every_field_of_the_launch():
    assert list(launch_to_dict(LAUNCH)) == [f.name for f in fields(CloudLaunch)]
    assert launch_from_dict(launch_to_dict(LAUNCH)) == LAUNCH


def test_older_records_without_the_spot_fields_still_read():
    data = asdict(LAUNCH)
    for key in ("checkpoint_s3_uri", "sagemaker_max_wait_seconds", "fallback_time"):
        del data[key]
    record = launch_from_dict({**data, "a_later_field": 1})
    assert record.fallback_time is None and record.checkpoint_s3_uri is None


def test_a_record_without_what_a_relaunch_needs_is_unreadable():
    data = asdict(LAUNCH)
    del data["instance_type"]
    with pytest.raises(ValueError, match="instance_type"):
        launch_from_dict(data)
    with pytest.raises(ValueError):
        Burst.from_json(json.dumps({**json.loads(STORED_BEFORE), "launch": None}))
