"""The cloud side of a batch transform Job: on-demand only, at the transform price, after its own start-up.

SageMaker batch transform has no managed spot, so a transform Job is never offered spot: with
capacity-type any it gets on-demand (and the note says why spot is missing); with spot alone it
cannot burst, and the decision says that transform has no spot. A transform job has no
MaxRuntimeInSeconds either: the controller stops it at the runtime cap (startup + the cap is
what it commits against the budget, as a training burst commits its own cap).
"""

from __future__ import annotations

import math
from functools import partial
from typing import Callable

from ..model import BurstPolicy, CapacityType, CloudLaunch, InstanceType, JobRequest, OptionCost, Placement, SageMakerKind

NO_SPOT = "SageMaker batch transform has no managed spot, so a transform burst runs on on-demand"


def transform_types(types: list[InstanceType]) -> list[InstanceType]:
    """The types a transform burst may use: those with a known transform price."""
    return [t for t in types if t.transform_usd_per_hour is not None]


def transform_options(
    job: JobRequest,
    itype: InstanceType,
    policy: BurstPolicy,
    *,
    now: float,
    runtime: float,
    wait_usd_per_hour: float,
    capacity: CapacityType,
    role_arn: str,
    output_s3_uri: str,
) -> tuple[list[tuple[OptionCost, Callable[[], CloudLaunch]]], list[str]]:
    """The one on-demand option on this type (none when only spot is accepted), with the note on spot."""
    sm = policy.spec.sage_maker
    if capacity == CapacityType.SPOT:
        return [], [NO_SPOT]
    assert itype.transform_usd_per_hour is not None  # transform_types() left the unpriced out
    startup, cap = sm.transform_startup_seconds, runtime * sm.max_runtime_factor
    rate = itype.transform_usd_per_hour * job.pods  # per instance-second, billed while it runs
    expected = rate * (startup + runtime) / 3600
    committed = rate * (startup + cap) / 3600
    start = now + startup
    launch = partial(CloudLaunch, instance_type=itype.name, instance_count=job.pods, spot=False, role_arn=role_arn,
                     output_s3_uri=output_s3_uri, checkpoint_s3_uri=None,
                     max_runtime_seconds=max(int(math.ceil(cap)), 1), sagemaker_max_wait_seconds=None,
                     fallback_time=None, region=sm.region, kind=SageMakerKind.TRANSFORM)
    option = OptionCost(Placement.SAGEMAKER_ON_DEMAND, expected, committed, start, start + runtime,
                        expected + wait_usd_per_hour * startup / 3600, itype.name, "batch transform, on-demand")
    notes = [NO_SPOT] if capacity == CapacityType.ANY else []
    return [(option, launch)], notes
