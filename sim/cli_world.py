"""The simulated world from the command line: the trace, the cluster and the cloud that `spillway sim`
and `spillway tune` share (their options, and the world they describe)."""

from __future__ import annotations

import argparse
from pathlib import Path

from policies import InputError, InputIssue
from policies.model import AT_LEAST_ONE, COUNT, FRACTION, NON_NEGATIVE, Node, POSITIVE, SECONDS

from .cloud import WORLD_RESTART_OVERHEAD_SECONDS, CloudModel, spot_traces
from .cluster_spec import node_groups
from .files import read_text
from .sweep import default_workers
from .traces import (load_alibaba, load_openb_nodes, load_philly, load_user_csv, sample, scale_arrivals, starburst_sb1,
                     synthetic)


def add_world_options(p: argparse.ArgumentParser) -> None:
    """The trace, the cluster and the cloud: shared by `sim` and `tune`."""
    p.add_argument("--trace", default="philly", help="philly | sb1 | synthetic | csv:PATH | alibaba:PATH")
    p.add_argument("--weeks", default="6-6", help="Philly weeks FIRST-LAST (0-11), default 6-6")
    p.add_argument("--max-jobs", type=COUNT, default=1500, metavar="N",
                   help="only the first N Jobs of the slice (default 1500; 0: all)")
    p.add_argument("--jobs", type=AT_LEAST_ONE, default=1000, help="synthetic: number of Jobs")
    p.add_argument("--rate", type=POSITIVE, default=32.0, help="synthetic: arrivals per hour")
    p.add_argument("--sample", type=FRACTION, default=None, metavar="FRACTION", help="keep this fraction of Jobs")
    p.add_argument("--scale-arrivals", type=POSITIVE, default=None, metavar="X",
                   help="compress time by X (X > 1: more load)")
    p.add_argument("--cluster", default="64x8",
                   help="NODESxGPUS[:GPU_PRODUCT], comma-separated groups; openb:PATH for the Alibaba OpenB "
                        "node list (openb_node_list_all_node.csv, next to the pods); or a ClusterSnapshot YAML "
                        "file (its nodes)")
    p.add_argument("--scenario", choices=["sb1"], help="sb1: Starburst Table 4 (trace, 4x8, no start-up, exact events)")
    p.add_argument("--tick", type=SECONDS, default=60.0, metavar="SECONDS",
                   help="controller cycle; 0 decides at every event (default 60)")
    p.add_argument("--startup", type=SECONDS, default=420.0, metavar="SECONDS",
                   help="SageMaker start-up of a training job (and of each trial of a tuning job)")
    p.add_argument("--transform-startup", type=SECONDS, default=420.0, metavar="SECONDS",
                   help="SageMaker start-up of a batch transform job (kind transform in a CSV trace)")
    p.add_argument("--spot", choices=["poisson", "trace", "none"], default="poisson",
                   help="spot interruptions: Spot Advisor bands, real AWS traces, or none")
    p.add_argument("--spot-trace", metavar="ID", help=f"one trace of {len(spot_traces())} (default: random per burst)")
    p.add_argument("--restart-overhead", type=SECONDS, default=None, metavar="SECONDS",
                   help="wall time lost per spot interruption or fallback, in the simulated world (default "
                        f"{WORLD_RESTART_OVERHEAD_SECONDS:g}); given, it also overrides spot.restartOverheadSeconds "
                        "of every policy simulated. The spot fallback rule reads the policy's value, in the "
                        "simulator as in the controller")
    p.add_argument("--estimate-error", type=NON_NEGATIVE, default=0.0, metavar="SIGMA",
                   help="runtime estimates = truth x lognormal(0, SIGMA)")
    p.add_argument("--optimizer", choices=["greedy", "cpsat"], default="greedy")
    p.add_argument("--seed", type=COUNT, default=0)
    p.add_argument("--plot", metavar="DIR", help="write PNG plots: cost vs. p95 wait (with the Pareto frontier), "
                   "and queue, utilization and spend per policy over the arrival window, stacked by kind of Job "
                   "when the trace has transform or tuning Jobs (a long tail of runs finishing is summed up "
                   "under the plot)")
    p.add_argument("--workers", type=AT_LEAST_ONE, default=default_workers(), metavar="N",
                   help=f"runs in parallel, one process each (default: this machine's {default_workers()} cores); "
                        "results are the same as one after the other")
    p.add_argument("--ray", metavar="ADDRESS",
                   help="run the sweep's runs on the Ray cluster at ADDRESS (host:port of its head, as `ray start "
                        "--head` prints it) instead of this machine's cores; results are the same")
    p.add_argument("--no-progress", action="store_true", help="no progress on stderr")


PHILLY_LAST_WEEK = 11  # the bundled trace holds weeks 0-11 (sim/data/philly_jobs_weeks00-11.csv.gz)


def world(args):
    """The Jobs, the nodes, the cloud model and the tick the options describe."""
    trace = args.trace
    overhead = WORLD_RESTART_OVERHEAD_SECONDS if args.restart_overhead is None else args.restart_overhead
    tick, cloud = args.tick, CloudModel(args.startup, args.spot, args.spot_trace, overhead, args.transform_startup)
    cluster = args.cluster
    _check_spot_trace(args)
    if args.scenario == "sb1":
        trace, cluster, tick = "sb1", "4x8", 0.0
        cloud = CloudModel(0.0, "none", None, 0.0, 0.0)
    jobs = _trace_jobs(trace, args)
    if args.sample is not None:
        jobs = sample(jobs, args.sample, args.seed)
    if args.max_jobs and trace != "sb1":
        jobs = jobs[: args.max_jobs]
    if args.scale_arrivals:
        jobs = scale_arrivals(jobs, args.scale_arrivals)
    if not jobs:
        raise InputError([InputIssue("--trace", "", "the trace has no Jobs in the chosen slice",
                                     "choose other --weeks, or a larger --sample")])
    nodes = parse_cluster(cluster)
    _check_fit(jobs, nodes)
    return jobs, nodes, cloud, tick



def _check_spot_trace(args) -> None:
    if args.spot_trace is None:
        return
    if args.spot != "trace":
        raise InputError([InputIssue("--spot-trace", "", f"only used with --spot trace (the spot model is "
                                     f"{args.spot})", "add --spot trace, or leave --spot-trace out")])
    if args.spot_trace not in spot_traces():
        raise InputError([InputIssue("--spot-trace", "", f"no spot trace {args.spot_trace!r}",
                                     f"use one of {', '.join(sorted(spot_traces()))}")])


def _trace_jobs(trace: str, args) -> list:
    """The Jobs of --trace, whole (the slice is cut by the caller)."""
    if trace == "philly":
        return load_philly(weeks=_philly_weeks(args.weeks))
    if trace == "sb1":
        return starburst_sb1()
    if trace == "synthetic":
        return synthetic(args.jobs, args.rate, args.seed)
    if trace.startswith("csv:"):
        return load_user_csv(Path(trace[4:]))
    if trace.startswith("alibaba:"):
        return load_alibaba(Path(trace[8:]))
    raise InputError([InputIssue("--trace", "", f"unknown trace {trace!r}",
                                 "use philly, sb1, synthetic, csv:PATH or alibaba:PATH")])


def _philly_weeks(text: str) -> tuple[int, int]:
    first, _, last = text.partition("-")
    try:
        weeks = (int(first), int(last or first))
    except ValueError:
        raise InputError([InputIssue("--weeks", "", f"expected FIRST-LAST like 6-6, got {text!r}",
                                     "weeks are 0..11")]) from None
    if not 0 <= weeks[0] <= weeks[1] <= PHILLY_LAST_WEEK:
        raise InputError([InputIssue("--weeks", "", f"{text!r} is outside the bundled Philly weeks "
                                     f"0-{PHILLY_LAST_WEEK}, or ends before it starts",
                                     f"choose FIRST-LAST within 0-{PHILLY_LAST_WEEK}, like 6-6 or 0-11")])
    return weeks


def parse_cluster(text: str) -> tuple[Node, ...]:
    """NODESxGPUS[:PRODUCT],...; openb:PATH (Alibaba OpenB nodes.csv); or a ClusterSnapshot YAML file."""
    if text.startswith("openb:"):
        nodes = _openb_nodes(Path(text[len("openb:"):]))
    elif text.endswith((".yaml", ".yml")):
        nodes = _snapshot_nodes(Path(text))
    else:
        try:
            groups = node_groups(text)
        except ValueError as exc:
            raise InputError([InputIssue("--cluster", "", str(exc),
                                         "e.g. 64x8 or 4x8:NVIDIA-A100-SXM4-80GB,2x4:NVIDIA-A10G, "
                                         "openb:nodes.csv, or cluster.yaml")]) from None
        nodes = []
        for n, g, product in groups:
            start = len(nodes)
            nodes += [Node(f"node-{start + i:04d}", g, product) for i in range(n)]
    if not any(n.allocatable_gpus for n in nodes):
        raise InputError([InputIssue("--cluster", "", "the cluster has no GPUs",
                                     "give at least one node with GPUs, e.g. --cluster 4x8")])
    return tuple(nodes)


def _openb_nodes(path: Path) -> list[Node]:
    """The GPU nodes of the Alibaba OpenB inventory, the GPU model as the product. CPU-only nodes are
    left out: no Job of a GPU trace can use them."""
    return [Node(name, gpus, model) for name, gpus, model in load_openb_nodes(path) if gpus > 0]


def _snapshot_nodes(path: Path) -> list[Node]:
    from policies.model import load_snapshot

    if not path.is_file():
        raise InputError([InputIssue(str(path), "", "no such file",
                                     "give a ClusterSnapshot YAML (see policies/examples/cluster.yaml)")])
    return list(load_snapshot(read_text(path, "a ClusterSnapshot YAML file"), str(path)).nodes)


def _check_fit(jobs, nodes) -> None:
    biggest = max(n.allocatable_gpus for n in nodes)
    too_big = [j for j in jobs if j.gpus_per_pod > biggest]
    if too_big and len(too_big) == len(jobs):
        raise InputError([InputIssue("--cluster", "", f"no Job fits a node (largest node has {biggest} GPUs, "
                                     f"Jobs want up to {max(j.gpus_per_pod for j in jobs)} per pod)",
                                     "give bigger nodes, or let them burst with a policy that allows it")])


def with_restart_overhead(doc: dict, seconds: float | None) -> dict:
    """A policy document with --restart-overhead as its spot.restartOverheadSeconds (None: as it is)."""
    if seconds is None:
        return doc
    spec = dict(doc.get("spec") or {})
    spec["spot"] = {**(spec.get("spot") or {}), "restartOverheadSeconds": seconds}
    return {**doc, "spec": spec}
