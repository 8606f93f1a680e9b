"""`spillway sim`: replay a trace through policies.plan() and report cost against waiting."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from policies import BurstPolicy, InputError, InputIssue, default_policy, load_policy
from policies.model import POSITIVE, SageMakerKind, finite_or_none

from .cli_world import add_world_options, with_restart_overhead, world
from .engine import SimConfig, simulate
from .files import check_writable_file, make_folder, read_text, write_text
from .presets import BASELINES, scenario_baseline, with_instance_types
from .report import jobs_csv, not_allowed_note, render, summarize, types_note
from .sweep import run_all
from .traces import OPENB_URL, USER_CSV_COLUMNS

# An example trace with training, transform and tuning Jobs (the default policy allows no type
# with a transform price: the transform example's policy does).
MIXED_EXAMPLE = "policies/examples/mixed-kinds-trace.csv"

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
                      A trace with transform or tuning rows gets rows per kind of Job in the report;
                      """ + MIXED_EXAMPLE + """ has all three kinds
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
  spillway sim --trace csv:""" + MIXED_EXAMPLE + """ --cluster 2x8 \\
      --policy policies/examples/transform-policy.yaml
"""


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
    p.add_argument("--same-types", action="store_true",
                   help="every policy bursts to the first one's sageMaker.allowedInstanceTypes, to compare rules "
                        "alone: the baselines allow any type (ml.*), the default starts at L4 (ml.g6)")
    p.add_argument("--jobs-csv", metavar="FILE", help="write one row per Job (with --compare: one file per policy)")
    p.set_defaults(run=run)
    from .tune import register as register_tune

    register_tune(sub)


def run(args) -> int:
    """`spillway sim`: the world and the policies from the options; one run per policy; the
    summaries, the oracle and the plots; then the table (or JSON/YAML)."""
    if args.jobs_csv:  # checked before a long run, not after it
        check_writable_file(Path(args.jobs_csv), "--jobs-csv")
    if args.plot:
        make_folder(Path(args.plot), "--plot")
    jobs, nodes, cloud, tick = world(args)
    policies = _policies(args)
    progress = not args.no_progress
    tasks = [(jobs, SimConfig(nodes, policy, cloud, tick, args.seed, args.optimizer, args.estimate_error,
                              progress=progress and len(policies) == 1)) for _, policy in policies]
    if len(policies) == 1 and progress:
        print(f"simulating {len(jobs)} Jobs with policy '{policies[0][0]}' ...", file=sys.stderr)
    runs = run_all(_simulate, tasks, workers=args.workers, label="policies", progress=progress,
                   ray_address=args.ray)
    summaries, wall, sims = _summaries(args, policies, runs)
    oracle = _hindsight(args, jobs, nodes, summaries[0], runs[0][0].records) if args.hindsight else None
    plots = _plots(Path(args.plot), jobs, nodes, summaries, sims) if args.plot else []
    if args.output == "table":
        _print_table(args, jobs, nodes, cloud, tick, summaries, wall, sims, oracle, plots)
    else:
        emit({"scenario": _scenario(args, jobs, nodes, cloud, tick),
              "results": [s.as_dict() for s in summaries],
              "hindsight": None if oracle is None else oracle.__dict__}, args.output)
    return 0


def _scenario(args, jobs, nodes, cloud, tick) -> dict:
    """The world of the run, for -o json/yaml: a transform burst's start-up only when the trace has one."""
    scenario = {"jobs": len(jobs), "nodes": len(nodes), "tick_seconds": tick, "spot": cloud.spot,
                "startup_seconds": cloud.startup_seconds, "seed": args.seed}
    if _has_transform(jobs):
        scenario["transform_startup_seconds"] = cloud.transform_startup_seconds
    return scenario


def _has_transform(jobs) -> bool:
    return any(j.kind == SageMakerKind.TRANSFORM for j in jobs)


def _summaries(args, policies, runs):
    """Each run's summary, wall time and simulation, by policy name; its Jobs' CSV if asked."""
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
    return summaries, wall, sims


def _hindsight(args, jobs, nodes, first, first_records):
    """--hindsight: the hindsight-optimal schedule at the first policy's average wait."""
    from .hindsight import hindsight_optimal

    if any(j.kind != SageMakerKind.TRAINING for j in jobs):
        raise InputError([InputIssue("--hindsight", "", "the oracle schedules training Jobs only; the trace has "
                                     "transform or tuning Jobs", "leave --hindsight out, or give a training-only trace")])
    if len(jobs) > 500:
        raise InputError([InputIssue("--hindsight", "", f"{len(jobs)} Jobs is too many for the oracle",
                                     "use --max-jobs 500 or fewer")])
    hint = {r.trace.id: (r.placement.startswith("SageMaker"), r.start) for r in first_records}
    return hindsight_optimal(jobs, sum(n.allocatable_gpus for n in nodes),
                             first.wait_mean_hours * first.jobs,
                             node_gpus=[n.allocatable_gpus for n in nodes if n.schedulable],
                             time_limit_seconds=args.hindsight, hint=hint)


def _plots(out_dir: Path, jobs, nodes, summaries, sims) -> list:
    """--plot: cost against p95 wait for every policy, and each policy's timeline."""
    from .plots import plot_pareto, plot_timeline

    gpus = sum(n.allocatable_gpus for n in nodes)
    plots = [plot_pareto(summaries, out_dir / "cost-vs-wait.png", f"{len(jobs)} Jobs on {len(nodes)} nodes / {gpus} GPUs")]
    for name, sim in sims.items():
        plots.append(plot_timeline(sim, out_dir / f"timeline-{name}.png", f"policy {name}"))
    return plots


def _print_table(args, jobs, nodes, cloud, tick, summaries, wall, sims, oracle, plots) -> None:
    print(render(summaries))
    notes = [types_note({name: sim.policy.spec.sage_maker.allowed_instance_types for name, sim in sims.items()}),
             *(not_allowed_note(name, sim.records) for name, sim in sims.items())]
    if any(notes):
        print("\n" + "\n".join(n for n in notes if n))
    for path in plots:
        print(f"plot: {path}")
    total_gpus = sum(n.allocatable_gpus for n in nodes)
    if oracle is not None:
        print(f"\nhindsight-optimal at {summaries[0].policy}'s average wait ({summaries[0].wait_mean_hours:.4f} h): "
              f"{oracle.cloud_gpu_hours:.2f} cloud GPU-hours (CP-SAT {oracle.status} in {oracle.wall_seconds:.0f} s, "
              f"nodes packed exactly; {summaries[0].policy}: {summaries[0].cloud_gpu_hours:.2f})")
    transform = f"; a transform burst, {cloud.transform_startup_seconds:g} s" if _has_transform(jobs) else ""
    print(f"\nWait: from arrival to the local start or the SageMaker launch. Time to start adds SageMaker's "
          f"start-up ({cloud.startup_seconds:g} s{transform}) for a burst.")
    print(f"{len(jobs)} Jobs, {len(nodes)} nodes / {total_gpus} GPUs, tick {tick:g} s, spot model "
          f"{cloud.spot}, seed {args.seed}. Simulated in " +
          ", ".join(f"{n} {w:.1f} s" for n, w in wall.items()) + ".")


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


def _policies(args) -> list[tuple[str, BurstPolicy]]:
    if args.compare:
        named = [_policy(item, args.scenario) for item in args.compare]
    elif args.baseline:
        named = [_policy(args.baseline, args.scenario)]
    elif args.policy:
        named = [_policy(args.policy, args.scenario)]
    else:
        named = [("default", default_policy())]
    if args.same_types:
        types = named[0][1].spec.sage_maker.allowed_instance_types
        named = [(name, with_instance_types(policy, types)) for name, policy in named]
    if args.restart_overhead is None:
        return named
    return [(name, _with_restart_overhead(policy, args.restart_overhead)) for name, policy in named]


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
