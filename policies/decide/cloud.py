"""The cloud side of a decision: can this Job burst, on which type, for how much?"""

from __future__ import annotations

import fnmatch
import math
from functools import partial
from typing import Callable, NamedTuple

from ..model import (BudgetPeriod, BurstPolicy, CapacityType, Catalog, CloudLaunch, EmitTarget, InstanceType,
                     JobRequest, OptionCost, Placement, Reason, SAGEMAKER_IMAGE, gpu_family_of_product, value)
from ..spot import SpotWindow, spot_window
from .transform_cloud import transform_options, transform_types
from .tuning_cloud import tuning_options



@value
class Blocked:
    reason: Reason
    message: str
    # BudgetExhausted only: the window that binds, so the Wait knows when money comes back (the
    # next UTC midnight, or the next month's start).
    budget_period: BudgetPeriod | None = None


@value
class Target:
    """Where a burst would go, before quotas and budgets."""

    types: tuple[InstanceType, ...]  # allowed candidates, in order of preference
    role_arn: str
    output_s3_uri: str


# What each emit target can carry of a container (the ACK and legacy CRDs have no
# containerEntrypoint/containerArguments; legacy has no environment either).
_CARRIES = {
    EmitTarget.API: frozenset({"command", "args", "env"}),
    EmitTarget.ACK: frozenset({"env"}),
    EmitTarget.LEGACY: frozenset(),
}


def untranslatable_for(job: JobRequest, emit: EmitTarget) -> str | None:
    """Why this Job cannot be sent to SageMaker as `emit` says, or None. A command, args or env
    that the target cannot carry is never dropped silently."""
    if job.untranslatable:
        return job.untranslatable
    if job.is_transform:
        return None  # its env goes on the Model on every target (command and args: job.untranslatable)
    if job.is_tuning:
        if job.environment and emit != EmitTarget.API:
            return (f"the container sets containers[].env, and the {emit.value} HyperParameterTuningJob's training "
                    "definition has no field for it; set spec.sageMaker.emit: api (CreateHyperParameterTuningJob "
                    "carries env), or pass the values as static hyperparameters in the tuning spec")
        return None  # command and args: job.untranslatable (no target carries them)
    present = [name for name, value in (("command", job.command), ("args", job.args), ("env", job.environment))
               if value]
    lost = [name for name in present if name not in _CARRIES[emit]]
    if not lost:
        return None
    fields = " and ".join(f"containers[].{name}" for name in lost)
    what = {EmitTarget.ACK: "the ACK TrainingJob (sagemaker.services.k8s.aws/v1alpha1) has no field for it",
            EmitTarget.LEGACY: "the legacy TrainingJob (sagemaker.aws.amazon.com/v1) has no field for it"}[emit]
    return (f"the container sets {fields}, and {what}; set spec.sageMaker.emit: api (CreateTrainingJob "
            "carries command, args and env), or let the image's ENTRYPOINT run the training")


_VERDICTS_KEPT = 4096


def _allowlist_verdict(job: JobRequest, policy: BurstPolicy) -> tuple[str, str] | Blocked:
    """(IAM role, the Job's own output S3 URI or else the first allowed prefix, without its trailing
    slash, for a folder per Job under it), or what blocks the burst. Reads only the fields
    burst_target() memoizes it by."""
    why_not = untranslatable_for(job, policy.spec.sage_maker.emit)
    if why_not:
        return Blocked(Reason.NOT_TRANSLATABLE, f"cannot run on SageMaker: {why_not}")
    allow = policy.allowlist_for(job.namespace)
    if allow is None:
        return Blocked(Reason.BURST_NOT_ALLOWED,
                       f"namespace {job.namespace} has no entry in spec.allowlists, so it may not burst")
    image = job.training_image or ""
    if not any(fnmatch.fnmatchcase(image, pattern) for pattern in allow.images):
        return Blocked(Reason.BURST_NOT_ALLOWED,
                       f"image {image} is not in the images allowed for {job.namespace} "
                       f"({', '.join(allow.images) or 'none'}); set {SAGEMAKER_IMAGE} to an allowed image")
    role = job.role_arn or (allow.role_arns[0] if allow.role_arns else None)
    if role is None:
        return Blocked(Reason.BURST_NOT_ALLOWED, f"no IAM role allowed for namespace {job.namespace}")
    if role not in allow.role_arns:
        return Blocked(Reason.BURST_NOT_ALLOWED, f"role {role} is not in the allowlist of {job.namespace}")
    for uri in (job.output_s3_uri, job.checkpoint_s3_uri, job.input_s3_uri):
        if uri and not any(uri.startswith(p) for p in allow.s3_prefixes):
            return Blocked(Reason.BURST_NOT_ALLOWED,
                           f"{uri} is outside the S3 prefixes allowed for {job.namespace}")
    if not job.output_s3_uri and not allow.s3_prefixes:
        return Blocked(Reason.BURST_NOT_ALLOWED, f"no S3 prefix allowed for namespace {job.namespace}")
    return role, job.output_s3_uri or allow.s3_prefixes[0].rstrip("/")


def burst_target(job: JobRequest, policy: BurstPolicy, catalog: Catalog) -> Target | Blocked:
    # What the allowlist says depends on a few of the Job's fields, shared by most of a queue's
    # Jobs: kept per policy for each combination of them (at most _VERDICTS_KEPT: Jobs with URIs of
    # their own each make one).
    fields = (job.namespace, job.training_image, job.role_arn, job.output_s3_uri, job.checkpoint_s3_uri,
              job.input_s3_uri, job.untranslatable, bool(job.command), bool(job.args), bool(job.environment),
              job.sagemaker_kind)
    verdicts = policy.memo.setdefault("allowlist verdicts", {})
    allowed_by_list = verdicts.get(fields)
    if allowed_by_list is None:
        if len(verdicts) >= _VERDICTS_KEPT:
            verdicts.clear()
        allowed_by_list = verdicts[fields] = _allowlist_verdict(job, policy)
    if isinstance(allowed_by_list, Blocked):
        return allowed_by_list
    role, output = allowed_by_list
    if not job.output_s3_uri:  # under the first allowed prefix, a folder per Job
        output = f"{output}/{job.namespace}/{job.name}/"
    key = ("types", id(catalog), job.namespace, job.gpus_per_pod, job.gpu_product, job.instance_type,
           job.sagemaker_kind)
    allowed = policy.memo.get(key)
    if allowed is None:  # the same for every Job of this shape: worked out once per policy
        types = candidate_types(job, policy, catalog)
        if job.is_transform and not isinstance(types, Blocked):
            priced = transform_types(types)
            if not priced:
                names = ", ".join(t.name for t in types[:4])
                types = Blocked(Reason.NO_INSTANCE_TYPE,
                                f"no SageMaker batch transform price is known for the types that fit ({names}); "
                                f"give one in spec.sageMaker.prices.<type>.transformUsdPerHour")
            else:
                types = priced
        if isinstance(types, Blocked):
            allowed = types
        else:
            allowed = tuple(t for t in types if policy.type_allowed(t.name, job.namespace))
            if not allowed:
                names = ", ".join(t.name for t in types[:4])
                allowed = Blocked(Reason.NO_INSTANCE_TYPE,
                                  f"the types that fit ({names}) are not allowed for {job.namespace}")
        policy.memo[key] = allowed
    if isinstance(allowed, Blocked):
        return allowed
    return Target(allowed, role, output)


def candidate_types(job: JobRequest, policy: BurstPolicy, catalog: Catalog) -> list[InstanceType] | Blocked:
    region = policy.spec.sage_maker.region
    regional = [t for t in catalog.types if t.region == region]
    if job.instance_type:
        found = [t for t in regional if t.name == job.instance_type]
        if not found:
            return Blocked(Reason.NO_INSTANCE_TYPE, f"{job.instance_type} is not a known training type in {region}")
        if found[0].accel_count < job.gpus_per_pod:
            return Blocked(Reason.NO_INSTANCE_TYPE, f"{job.instance_type} has {found[0].accel_count} GPUs; "
                           f"the Job needs {job.gpus_per_pod} per pod")
        return found
    product = job.gpu_product or ""
    for rule in policy.spec.sage_maker.instance_types:
        if not fnmatch.fnmatchcase(product, rule.gpu_product) and not (rule.gpu_product == "*" and not product):
            continue
        if rule.gpus_per_pod is not None and rule.gpus_per_pod != job.gpus_per_pod:
            continue
        out: list[InstanceType] = []
        for pattern in rule.instance_types:
            matches = sorted((t for t in regional if fnmatch.fnmatchcase(t.name, pattern)),
                             key=lambda t: (t.on_demand_usd_per_hour, t.name))
            out.extend(t for t in matches if t.accel_count >= job.gpus_per_pod and t not in out)
        if out:
            return out
    family = gpu_family_of_product(product) if product else None
    if product and family is None:
        return Blocked(Reason.NO_INSTANCE_TYPE, f"unknown GPU product {product!r}; add a "
                       "spec.sageMaker.instanceTypes rule for it")
    fits = [t for t in regional if t.is_nvidia and t.accel_count >= job.gpus_per_pod
            and (family is None or t.gpu_family == family)]
    if not fits:
        what = f"{family} " if family else ""
        return Blocked(Reason.NO_INSTANCE_TYPE, f"no {what}SageMaker type has {job.gpus_per_pod} GPUs per instance")
    # Exact GPU count first (no paying for idle GPUs), then the price of the whole Job.
    return sorted(fits, key=lambda t: (t.accel_count != job.gpus_per_pod, t.on_demand_usd_per_hour, t.name))


class CloudOffer(NamedTuple):
    """The spot and on-demand options on one type, each with a function that makes its launch."""
    options: list[tuple[OptionCost, Callable[[], CloudLaunch]]]
    notes: list[str]  # what was left out, in words
    # Spot was left out because its window cannot keep the Job's deadline (a fact, not only a note:
    # it turns the burst's reason into DeadlineRequiresOnDemand).
    spot_unsafe_for_deadline: bool = False


def cloud_options(
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
) -> CloudOffer:
    """The spot and on-demand options on this type, each with a function that makes its launch (only
    the chosen option's launch is ever made); plus notes on what was left out."""
    if job.is_tuning:
        return CloudOffer(*tuning_options(job, itype, policy, now=now, runtime=runtime,
                                          wait_usd_per_hour=wait_usd_per_hour, capacity=capacity,
                                          role_arn=role_arn, output_s3_uri=output_s3_uri))
    if job.is_transform:
        return CloudOffer(*transform_options(job, itype, policy, now=now, runtime=runtime,
                                             wait_usd_per_hour=wait_usd_per_hour, capacity=capacity,
                                             role_arn=role_arn, output_s3_uri=output_s3_uri))
    sm, spot = policy.spec.sage_maker, policy.spec.spot
    count = job.pods
    startup = sm.startup_seconds
    cap = runtime * sm.max_runtime_factor
    start = now + startup
    options: list[tuple[OptionCost, Callable[[], CloudLaunch]]] = []
    notes: list[str] = []
    unsafe = False

    def launch(is_spot: bool, window: SpotWindow | None) -> CloudLaunch:
        return CloudLaunch(
            instance_type=itype.name, instance_count=count, spot=is_spot, role_arn=role_arn,
            output_s3_uri=output_s3_uri, checkpoint_s3_uri=job.checkpoint_s3_uri,
            max_runtime_seconds=window.max_runtime_seconds if window else max(int(math.ceil(cap)), 1),
            sagemaker_max_wait_seconds=window.sagemaker_max_wait_seconds if window else None,
            fallback_time=window.fallback_time if window else None, region=sm.region,
        )

    wait_value = wait_usd_per_hour * startup / 3600
    if capacity in (CapacityType.ANY, CapacityType.ON_DEMAND):
        od_rate = itype.on_demand_usd_per_hour * count
        expected = od_rate * (startup + runtime) / 3600
        committed = od_rate * (startup + cap) / 3600
        options.append((OptionCost(Placement.SAGEMAKER_ON_DEMAND, expected, committed, start, start + runtime,
                                   expected + wait_value, itype.name), partial(launch, False, None)))
    if capacity in (CapacityType.ANY, CapacityType.SPOT):
        if not spot.enabled:
            notes.append("spot is disabled by the policy")
        elif spot.require_checkpoint and not job.checkpointable:
            notes.append("spot needs a checkpoint (spillway.io/checkpoint-s3-uri) under this policy")
        else:
            window = spot_window(
                now=now, runtime_seconds=runtime, runtime_cap_seconds=cap, startup_seconds=startup,
                restart_overhead_seconds=spot.restart_overhead_seconds,
                safety_margin_seconds=spot.safety_margin_seconds, max_wait_factor=spot.max_wait_factor,
                deadline=job.deadline, fallback_mode=spot.fallback,
            )
            if not window.safe:
                unsafe = True
                notes.append(f"spot is unsafe for the deadline: {window.why}")
            else:
                rate = itype.interruptions_per_hour * count if spot.interruption_model == "advisor" else 0.0
                interruptions = rate * runtime / 3600
                spot_time = runtime + interruptions * spot.restart_overhead_seconds
                spot_rate = itype.spot_usd_per_hour * count
                expected = spot_rate * (startup + spot_time) / 3600
                committed = spot_rate * min(startup + cap, window.sagemaker_max_wait_seconds or math.inf) / 3600
                if job.deadline is not None:
                    # The on-demand relaunch that guarantees the deadline is paid for up front.
                    committed += itype.on_demand_usd_per_hour * count * (startup + runtime) / 3600
                options.append((OptionCost(
                    Placement.SAGEMAKER_SPOT, expected, committed, start, start + spot_time,
                    expected + wait_value + wait_usd_per_hour * (spot_time - runtime) / 3600, itype.name,
                    f"{interruptions:.2f} expected interruptions ({itype.interrupt_band} band)",
                ), partial(launch, True, window)))
    return CloudOffer(options, notes, unsafe)
