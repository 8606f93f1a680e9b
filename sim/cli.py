"""`spillway sim`: replay a trace through policies.plan() and report cost against waiting."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from policies import BurstPolicy, InputError, InputIssue, default_policy, load_policy
from policies.model import AT_LEAST_ONE, COUNT, FRACTION, NON_NEGATIVE, Node, POSITIVE, SECONDS, finite_or_none

from .cloud import WORLD_RESTART_OVERHEAD_SECONDS, CloudModel, spot_traces
from .cluster_spec import node_groups
from .engine import SimConfig, simulate
from .files import check_writable_file, make_folder, read_text, write_text
from .presets import BASELINES, scenario_baseline
from .report import jobs_csv, not_allowed_note, render, summarize
from .sweep import default_workers, run_all
from .traces import (
    OPENB_URL,
    USER_CSV_COLUMNS,
    load_alibaba,
    load_openb_nodes,
    load_philly,
    load_user_csv,
    sample,
    scale_arrivals,
    starburst_sb1,
    synthetic,
)

DESCRIPTION = """\
Replay real or synthetic Jobs through the same decision code the controller runs, on a
virtual cluster and cloud, and report what the policy costs and how long Jobs wait.

With no options: the first 1,500 Jobs of week 6 of the bundled Microsoft Philly trace (about
1.3 days of arrivals) on 64 nodes x 8 GPUs, with the embedded default policy.

When a budget holds thousands of Jobs back on an overloaded cluster, a run slows down: every
waiting Job's local start is kept exact. The policy's local.planningDepth bounds that work, at a
cost in waiting (the report counts the Jobs it left unplanned). The progress bar on stderr shows
the simulated day and how many Jobs are queued, and says so once 10,000 are.

traces (--trace):
  philly              bundled Philly weeks 0-11 (choose with --weeks; default 6-6)
  sb1                 Starburst's Table 4 synthetic burst (500 Jobs, seed 13); use --scenario sb1
  synthetic           --jobs N --rate JOBS_PER_HOUR, exponential run times, the Philly GPU mix
  csv:PATH            your own trace; columns:
""" + "\n".join(f"                        {k}: {v}" for k, v in USER_CSV_COLUMNS.items()) + """
  alibaba:PATH        Alibaba OpenB pods: openb_pod_list_default.csv of github.com/alibaba/clusterdata
                      (cluster-trace-gpu-v2023/csv/; curl -LO """ + OPENB_URL + """openb_pod_list_default.csv)

policies (--policy FILE, --baseline NAME, --compare NAME_OR_FILE ...):
""" + "\n".join(f"  {k:19s} {v[0]}" for k, v in BASELINES.items()) + """
  default             the embedded default policy (spillway policy show)

examples:
  spillway sim
  spillway sim --compare default no-wait compute-wait always-on-demand
  spillway sim --scenario sb1 --compare no-wait constant-wait compute-wait
  spillway sim --trace csv:jobs.csv --cluster 16x8:NVIDIA-A100-SXM4-80GB --policy mine.yaml -o json
"""


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
    p.add_argument("--startup", type=SECONDS, default=420.0, metavar="SECONDS", help="SageMaker start-up")
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
                   "and queue, utilization and spend over time per policy")
    p.add_argument("--workers", type=AT_LEAST_ONE, default=default_workers(), metavar="N",
                   help=f"runs in parallel, one process each (default: this machine's {default_workers()} cores); "
                        "results are the same as one after the other")
    p.add_argument("--ray", metavar="ADDRESS",
                   help="run the sweep's runs on the Ray cluster at ADDRESS (host:port of its head, as `ray start "
                        "--head` prints it) instead of this machine's cores; results are the same")
    p.add_argument("--no-progress", action="store_true", help="no progress on stderr")


PHILLY_LAST_WEEK = 11  # the bundled trace holds weeks 0-11 (sim/data/philly_jobs_weeks00-11.csv.gz)


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("sim", help="replay a trace through the policy and report cost vs. waiting",
                       description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_world_options(p)
    group = p.add_mutually_exclusive_group()
    group.add_argument("--policy", metavar="FILE", help="BurstPolicy YAML")
    group.add_argument("--baseline", choices=sorted(BASELINES), help="a ready-made baseline policy")
    group.add_argument("--compare", nargs="+", metavar="POLICY", help="several policies side by side")
    p.add_argument("-o", "--output", choices=["table", "json", "yaml"], default="table")
    p.add_argument("--hindsight", type=POSITIVE, metavar="SECONDS",
                   help="also solve the hindsight-optimal schedule (CP-SAT, this time limit) at the first "
                        "policy's average wait: the yardstick for the gap to optimal (windows of <= 500 Jobs)")
    p.add_argument("--jobs-csv", metavar="FILE", help="write one row per Job (with --compare: one file per policy)")
    p.set_defaults(run=run)
    from .tune import register as register_tune

    register_tune(sub, add_world_options)


def run(args) -> int:
    if args.jobs_csv:  # checked before a long run, not after it
        check_writable_file(Path(args.jobs_csv), "--jobs-csv")
    if args.plot:
        make_folder(Path(args.plot), "--plot")
    jobs, nodes, cloud, tick = _world(args)
    policies = _policies(args)
    progress = not args.no_progress
    tasks = [(jobs, SimConfig(nodes, policy, cloud, tick, args.seed, args.optimizer, args.estimate_error,
                              progress=progress and len(policies) == 1)) for _, policy in policies]
    if len(policies) == 1 and progress:
        print(f"simulating {len(jobs)} Jobs with policy '{policies[0][0]}' ...", file=sys.stderr)
    runs = run_all(_simulate, tasks, workers=args.workers, label="policies", progress=progress,
                   ray_address=args.ray)
    summaries, wall, sims = [], {}, {}
    for (name, _), (sim, seconds) in zip(policies, runs):
        wall[name] = seconds
        summaries.append(summarize(name, sim, sim.records))
        sims[name] = sim
        if args.jobs_csv:
            path = Path(args.jobs_csv)
            if len(policies) > 1:
                path = path.with_name(f"{path.stem}-{name}{path.suffix or '.csv'}")
            write_text(path, jobs_csv(sim.records), "--jobs-csv")
    first_records = runs[0][0].records
    oracle = None
    if args.hindsight:
        from .hindsight import hindsight_optimal

        if len(jobs) > 500:
            raise InputError([InputIssue("--hindsight", "", f"{len(jobs)} Jobs is too many for the oracle",
                                         "use --max-jobs 500 or fewer")])
        first = summaries[0]
        hint = {r.trace.id: (r.placement.startswith("SageMaker"), r.start) for r in first_records}
        oracle = hindsight_optimal(jobs, sum(n.allocatable_gpus for n in nodes),
                                   first.wait_mean_hours * first.jobs,
                                   node_gpus=[n.allocatable_gpus for n in nodes if n.schedulable],
                                   time_limit_seconds=args.hindsight, hint=hint)
    plots = []
    if args.plot:
        from .plots import plot_pareto, plot_timeline

        out_dir = Path(args.plot)
        gpus = sum(n.allocatable_gpus for n in nodes)
        plots.append(plot_pareto(summaries, out_dir / "cost-vs-wait.png",
                                 f"{len(jobs)} Jobs on {len(nodes)} nodes / {gpus} GPUs"))
        for name, sim in sims.items():
            plots.append(plot_timeline(sim, out_dir / f"timeline-{name}.png", f"policy {name}"))
    if args.output == "table":
        print(render(summaries))
        notes = [not_allowed_note(name, sim.records) for name, sim in sims.items()]
        if any(notes):
            print("\n" + "\n".join(n for n in notes if n))
        for path in plots:
            print(f"plot: {path}")
        total_gpus = sum(n.allocatable_gpus for n in nodes)
        if oracle is not None:
            print(f"\nhindsight-optimal at {summaries[0].policy}'s average wait ({summaries[0].wait_mean_hours:.4f} h): "
                  f"{oracle.cloud_gpu_hours:.2f} cloud GPU-hours (CP-SAT {oracle.status} in {oracle.wall_seconds:.0f} s, "
                  f"nodes packed exactly; {summaries[0].policy}: {summaries[0].cloud_gpu_hours:.2f})")
        print(f"\nWait: from arrival to the local start or the SageMaker launch. Time to start adds SageMaker's "
              f"start-up ({cloud.startup_seconds:g} s) for a burst.")
        print(f"{len(jobs)} Jobs, {len(nodes)} nodes / {total_gpus} GPUs, tick {tick:g} s, spot model "
              f"{cloud.spot}, seed {args.seed}. Simulated in " +
              ", ".join(f"{n} {w:.1f} s" for n, w in wall.items()) + ".")
    else:
        emit({"scenario": {"jobs": len(jobs), "nodes": len(nodes), "tick_seconds": tick, "spot": cloud.spot,
                           "startup_seconds": cloud.startup_seconds, "seed": args.seed},
              "results": [s.as_dict() for s in summaries],
              "hindsight": None if oracle is None else oracle.__dict__}, args.output)
    return 0


def _simulate(task):
    """One run (in a worker process when there are several): the simulation and its wall time."""
    jobs, config = task
    started = time.perf_counter()
    sim, _ = simulate(jobs, config)
    return sim, time.perf_counter() - started


def emit(data, fmt: str) -> None:
    import json

    import yaml

    data = finite_or_none(data)
    if fmt == "json":
        print(json.dumps(data, indent=2))
    else:
        print(yaml.safe_dump(data, sort_keys=False), end="")


def _world(args):
    trace = args.trace
    overhead = WORLD_RESTART_OVERHEAD_SECONDS if args.restart_overhead is None else args.restart_overhead
    tick, cloud = args.tick, CloudModel(args.startup, args.spot, args.spot_trace, overhead)
    cluster = args.cluster
    if args.spot_trace is not None:
        if args.spot != "trace":
            raise InputError([InputIssue("--spot-trace", "", f"only used with --spot trace (the spot model is "
                                         f"{args.spot})", "add --spot trace, or leave --spot-trace out")])
        if args.spot_trace not in spot_traces():
            raise InputError([InputIssue("--spot-trace", "", f"no spot trace {args.spot_trace!r}",
                                         f"use one of {', '.join(sorted(spot_traces()))}")])
    if args.scenario == "sb1":
        trace, cluster, tick = "sb1", "4x8", 0.0
        cloud = CloudModel(0.0, "none", None, 0.0)
    if trace == "philly":
        first, _, last = args.weeks.partition("-")
        try:
            weeks = (int(first), int(last or first))
        except ValueError:
            raise InputError([InputIssue("--weeks", "", f"expected FIRST-LAST like 6-6, got {args.weeks!r}",
                                         "weeks are 0..11")]) from None
        if not 0 <= weeks[0] <= weeks[1] <= PHILLY_LAST_WEEK:
            raise InputError([InputIssue("--weeks", "", f"{args.weeks!r} is outside the bundled Philly weeks "
                                         f"0-{PHILLY_LAST_WEEK}, or ends before it starts",
                                         f"choose FIRST-LAST within 0-{PHILLY_LAST_WEEK}, like 6-6 or 0-11")])
        jobs = load_philly(weeks=weeks)
    elif trace == "sb1":
        jobs = starburst_sb1()
    elif trace == "synthetic":
        jobs = synthetic(args.jobs, args.rate, args.seed)
    elif trace.startswith("csv:"):
        jobs = load_user_csv(Path(trace[4:]))
    elif trace.startswith("alibaba:"):
        jobs = load_alibaba(Path(trace[8:]))
    else:
        raise InputError([InputIssue("--trace", "", f"unknown trace {trace!r}",
                                     "use philly, sb1, synthetic, csv:PATH or alibaba:PATH")])
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


def _policies(args) -> list[tuple[str, BurstPolicy]]:
    if args.compare:
        named = [_policy(item, args.scenario) for item in args.compare]
    elif args.baseline:
        named = [_policy(args.baseline, args.scenario)]
    elif args.policy:
        named = [_policy(args.policy, args.scenario)]
    else:
        named = [("default", default_policy())]
    if args.restart_overhead is None:
        return named
    return [(name, _with_restart_overhead(policy, args.restart_overhead)) for name, policy in named]


def with_restart_overhead(doc: dict, seconds: float | None) -> dict:
    """A policy document with --restart-overhead as its spot.restartOverheadSeconds (None: as it is)."""
    if seconds is None:
        return doc
    spec = dict(doc.get("spec") or {})
    spec["spot"] = {**(spec.get("spot") or {}), "restartOverheadSeconds": seconds}
    return {**doc, "spec": spec}


def _with_restart_overhead(policy: BurstPolicy, seconds: float) -> BurstPolicy:
    try:
        return BurstPolicy.model_validate(with_restart_overhead(policy.to_yaml_dict(), seconds))
    except ValueError as exc:
        why = str(exc).splitlines()[0]
        raise InputError([InputIssue("--restart-overhead", f"{seconds:g}", why, "give a smaller overhead, or a "
                                     "policy whose spot.planTickSeconds fits it")]) from None


def _policy(item: str, scenario: str | None) -> tuple[str, BurstPolicy]:
    if item == "default":
        return item, default_policy()
    if item in BASELINES:
        return item, scenario_baseline(item, scenario)
    path = Path(item)
    if not path.exists():
        raise InputError([InputIssue(item, "", "neither a baseline nor a policy file",
                                     f"use a file path, 'default', or one of {', '.join(BASELINES)}")])
    return path.stem, load_policy(read_text(path, "a BurstPolicy YAML file (spillway policy show prints one)"), item)
