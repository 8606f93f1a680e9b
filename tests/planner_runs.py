"""Simulated runs that the QueuePlanner tests compare: a mixed trace, the outcomes of one run, and
policies near the shipped default."""

from __future__ import annotations

from dataclasses import replace

from policies.model.snapshot import Node
from sim.cloud import CloudModel
from sim.engine import SimConfig, simulate
from sim.traces import synthetic

NO_STARTUP = CloudModel(0.0, "none", None, 0.0)


def mixed_trace(n=600, seed=3):
    """Overloaded 2-node cluster; 1-16 GPU Jobs, some as 2-pod gangs, some with deadlines."""
    jobs = synthetic(n, 20, seed, gpu_choices=(1, 2, 4, 8), gpu_probs=(0.5, 0.2, 0.2, 0.1))
    out = []
    for j in jobs:
        if j.id % 9 == 0:
            j = replace(j, pods=2)
        if j.id % 13 == 0:
            j = replace(j, deadline_s=j.arrival_s + 3 * j.duration_s)
        out.append(j)
    return out


def outcomes(jobs, pol, skip, tick=0.0, node_count=2):
    nodes = tuple(Node(name, 8) for name in "abcdefgh"[:node_count])
    sim, records = simulate(jobs, SimConfig(nodes, pol, NO_STARTUP, tick, 0, skip_waiting=skip))
    return sim, [(r.placement, r.reason, r.start, r.finish) for r in records]


def from_default(daily_usd: float | None, **spec):
    """The shipped default policy with this daily budget (None: lifted), allowlisting the
    simulator's role and bucket, and these spec sections updated."""
    from policies import BurstPolicy, default_policy

    data = default_policy().model_dump(by_alias=True, mode="json")
    data["spec"]["budgets"] = {"default": {"dailyUsd": daily_usd, "monthlyUsd": None}}
    data["spec"]["allowlists"] = {"*": {"roleArns": ["arn:aws:iam::000000000000:role/Simulated"],
                                        "s3Prefixes": ["s3://sim/"]}}
    for section, values in spec.items():
        data["spec"].setdefault(section, {}).update(values)
    return BurstPolicy.model_validate(data)


def budget_bound_policy(daily_usd: float, **spec):
    """The shipped default policy with a small daily budget, so most Jobs that would burst wait for money."""
    # The default until it priced waiting per Job: a 30-min max wait and $2 per GPU-hour burst
    # early and often, so most bursts find the budget spent (the case this is about).
    base = {"local": {"maxWaitSeconds": 1800, "burstTiming": "early"}, "tradeoff": {"waitUsdPerHour": 2.0, "per": "gpu"}}
    for section, values in spec.items():
        base[section] = {**base.get(section, {}), **values}
    return from_default(daily_usd, **base)


def shipped_default(**spec):
    """The shipped default policy with its budget lifted (issue #11's "default-nobudget"): backfill,
    early timing, $15 per Job-hour of waiting, quotas on p4d and p5."""
    return from_default(None, **spec)
