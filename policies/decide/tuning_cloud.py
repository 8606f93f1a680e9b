"""The cloud side of a hyperparameter sweep: a SageMaker tuning job, priced for the sweep as a whole.

A sweep of T trials, P at once, each a run of r seconds on one instance, is weighed as one Job:
- locally it holds P pods' GPUs for ceil(T / P) waves of r (the local side's runtime);
- on SageMaker each trial is a training job of its own, on one instance, with its own start-up
  s, so the tuning job pays T x (s + r) instance-seconds and ends after ceil(T / P) x (s + r);
  what it commits is T trials at their runtime cap (MaxRuntimeInSeconds per trial).
Managed spot is offered for the trials as for a training Job (enabled, and checkpointed where
the policy asks it), with one difference: SageMaker's tuner has no on-demand fallback, so a
sweep with a deadline runs on on-demand, and the note says why.
"""

from __future__ import annotations

import math
from functools import partial
from typing import Callable

from ..model import BurstPolicy, CapacityType, CloudLaunch, InstanceType, JobRequest, OptionCost, Placement, SageMakerKind

NO_FALLBACK = ("a tuning job's trials have no on-demand fallback, so a sweep with a deadline runs its trials "
               "on on-demand")


def tuning_options(
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
    """The on-demand and managed-spot options of the sweep on this type, with notes on what was left out."""
    sm, spot = policy.spec.sage_maker, policy.spec.spot
    trials, waves = job.trials, job.waves
    trial = runtime / waves  # the local side's runtime is the sweep's: waves of trials
    startup, cap = sm.startup_seconds, trial * sm.max_runtime_factor
    start = now + startup
    launch = partial(CloudLaunch, instance_type=itype.name, instance_count=1, role_arn=role_arn,
                     output_s3_uri=output_s3_uri, checkpoint_s3_uri=job.checkpoint_s3_uri,
                     max_runtime_seconds=max(int(math.ceil(cap)), 1), fallback_time=None, region=sm.region,
                     kind=SageMakerKind.TUNING)
    shape = f"{trials} trials, {min(job.pods, trials)} at once"
    options: list[tuple[OptionCost, Callable[[], CloudLaunch]]] = []
    notes: list[str] = []
    if capacity in (CapacityType.ANY, CapacityType.ON_DEMAND):
        rate = itype.on_demand_usd_per_hour * trials
        expected = rate * (startup + trial) / 3600
        options.append((OptionCost(Placement.SAGEMAKER_ON_DEMAND, expected, rate * (startup + cap) / 3600, start,
                                   now + waves * (startup + trial), expected + wait_usd_per_hour * startup / 3600,
                                   itype.name, f"{shape}, on-demand"),
                        partial(launch, spot=False, sagemaker_max_wait_seconds=None)))
    if capacity not in (CapacityType.ANY, CapacityType.SPOT):
        return options, notes
    if not spot.enabled:
        notes.append("spot is disabled by the policy")
    elif spot.require_checkpoint and not job.checkpointable:
        notes.append("spot needs a checkpoint (spillway.io/checkpoint-s3-uri) under this policy")
    elif job.deadline is not None:
        notes.append(NO_FALLBACK)
    else:
        per_hour = itype.interruptions_per_hour if spot.interruption_model == "advisor" else 0.0
        interruptions = per_hour * trial / 3600  # per trial
        spot_trial = trial + interruptions * spot.restart_overhead_seconds
        rate = itype.spot_usd_per_hour * trials
        expected = rate * (startup + spot_trial) / 3600
        max_wait = max(int(math.ceil(cap * spot.max_wait_factor)), int(math.ceil(cap)), 1)
        options.append((OptionCost(
            Placement.SAGEMAKER_SPOT, expected, rate * (startup + cap) / 3600, start,
            now + waves * (startup + spot_trial),
            expected + wait_usd_per_hour * (startup + (spot_trial - trial) * waves) / 3600, itype.name,
            f"{shape}, {interruptions:.2f} expected interruptions a trial ({itype.interrupt_band} band)",
        ), partial(launch, spot=True, sagemaker_max_wait_seconds=max_wait)))
    return options, notes
