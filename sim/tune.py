"""`spillway tune`: sweep policy parameters over a trace, find the Pareto frontier of cloud dollars
against p95 wait, and write the cheapest policy that meets a latency goal."""

from __future__ import annotations

import argparse
import itertools
import re
import sys
from pathlib import Path
from typing import Any

import yaml

from policies import BurstPolicy, InputError, InputIssue, default_policy, load_policy

from .cli_world import add_world_options, with_restart_overhead, world
from .engine import SimConfig, simulate
from .files import check_writable_file, make_folder, read_text, write_text
from .report import Summary, pareto_front, summarize
from .sweep import run_all

DEFAULT_GRID: dict[str, list[Any]] = {
    "local.maxWaitSeconds": [0, 600, 1800, 3600, 7200],
    "tradeoff.waitUsdPerHour": [0.25, 1, 4, 16],
}
GOAL = re.compile(r"^\s*(\w+)\s*(<=|<|>=|>)\s*([0-9.eE+-]+)\s*$")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("tune", help="sweep policy parameters, show the Pareto frontier, write the best policy",
                       formatter_class=argparse.RawDescriptionHelpFormatter, description="""\
Run the simulator once per combination of parameter values (in parallel over the machine's
cores), print every point with the Pareto frontier of cloud dollars against p95 wait marked,
and write the policy that costs least while meeting the goal.

Parameters are policy keys as YAML paths under spec. Without --param the grid is
local.maxWaitSeconds x tradeoff.waitUsdPerHour (20 runs).

examples:
  spillway tune --goal "wait_p95_hours<=0.5" --write tuned.yaml
  spillway tune --param local.maxWaitSeconds=0,900,3600 --param local.queueing=backfill,outOfOrder
  spillway tune --scenario sb1 --policy base.yaml --param local.maxWaitPerGpuSecond=0.05,0.1,0.15""")
    add_world_options(p)
    p.add_argument("--policy", metavar="FILE", help="the policy to vary (default: the embedded default)")
    p.add_argument("--param", action="append", default=[], metavar="PATH=V1,V2,...",
                   help="a policy key under spec and the values to try (repeatable)")
    p.add_argument("--goal", default="wait_p95_hours<=0.5",
                   help="a report figure and a bound, e.g. wait_p95_hours<=0.5 (default), deadline_misses<=0")
    p.add_argument("--write", metavar="FILE", help="write the chosen policy here")
    p.set_defaults(run=run)


def parse_grid(params: list[str]) -> dict[str, list]:
    if not params:
        return dict(DEFAULT_GRID)
    grid = {}
    for item in params:
        path, sep, values = item.partition("=")
        if not sep or not values:
            raise InputError([InputIssue("--param", "", f"expected PATH=V1,V2 got {item!r}",
                                         "e.g. --param local.maxWaitSeconds=0,900,1800")])
        try:
            grid[path.strip()] = [yaml.safe_load(v) for v in values.split(",")]
        except yaml.YAMLError:
            raise InputError([InputIssue("--param", path.strip(), f"cannot read the values {values!r}",
                                         "give plain values, e.g. 0,900,1800 or backfill,fifo")]) from None
    return grid


def parse_goal(text: str) -> tuple[str, str, float]:
    m = GOAL.match(text)
    if not m or m.group(1) not in Summary.__dataclass_fields__:
        fields = ", ".join(k for k, f in Summary.__dataclass_fields__.items() if f.type in ("float", "int"))
        raise InputError([InputIssue("--goal", "", f"cannot read goal {text!r}",
                                     f"write FIGURE<=NUMBER with a figure among: {fields}")])
    return m.group(1), m.group(2), float(m.group(3))


def meets(summary: Summary, goal: tuple[str, str, float]) -> bool:
    value, op, bound = getattr(summary, goal[0]), goal[1], goal[2]
    return {"<=": value <= bound, "<": value < bound, ">=": value >= bound, ">": value > bound}[op]


def variant(base: dict, assignment: dict[str, object]) -> dict:
    doc = yaml.safe_load(yaml.safe_dump(base))
    for path, value in assignment.items():
        node = doc.setdefault("spec", {})
        keys = path.split(".")
        for key in keys[:-1]:
            node = node.setdefault(key, {})
        node[keys[-1]] = value
    return doc


def _one(task):
    index, doc, jobs, config_args = task
    policy = BurstPolicy.model_validate(doc)
    sim, records = simulate(jobs, SimConfig(policy=policy, **config_args))
    return index, summarize(f"#{index}", sim, records)


def run(args) -> int:
    if args.write:  # checked before the sweep, not after it
        check_writable_file(Path(args.write), "--write")
    if args.plot:
        make_folder(Path(args.plot), "--plot")
    jobs, nodes, cloud, tick = world(args)
    base = (load_policy(read_text(Path(args.policy), "a BurstPolicy YAML file"), args.policy) if args.policy
            else default_policy()).to_yaml_dict()
    base = with_restart_overhead(base, args.restart_overhead)  # the world's flag, in the policy too
    grid = parse_grid(args.param)
    goal = parse_goal(args.goal)
    names = list(grid)
    assignments = [dict(zip(names, combo)) for combo in itertools.product(*(grid[n] for n in names))]
    docs = []
    for i, assignment in enumerate(assignments):
        doc = variant(base, assignment)
        try:
            BurstPolicy.model_validate(doc)
        except Exception as exc:  # noqa: BLE001 - reported as input
            raise InputError([InputIssue("--param", ", ".join(f"{k}={v}" for k, v in assignment.items()),
                                         str(exc).splitlines()[0], "use keys and values of the policy schema "
                                         "(spillway policy schema)")]) from None
        docs.append(doc)
    config_args = dict(nodes=nodes, cloud=cloud, tick_seconds=tick, seed=args.seed, optimizer=args.optimizer,
                       estimate_error=args.estimate_error)
    tasks = [(i, doc, jobs, config_args) for i, doc in enumerate(docs)]
    if not args.no_progress:
        where = f"the Ray cluster at {args.ray}" if args.ray else f"{min(args.workers, len(tasks))} worker(s)"
        print(f"tuning: {len(tasks)} runs of {len(jobs)} Jobs on {where}", file=sys.stderr)
    summaries = [summary for _, summary in run_all(_one, tasks, workers=args.workers, label="tune",
                                                     progress=not args.no_progress, ray_address=args.ray)]
    points = [(s.cloud_usd, s.wait_p95_hours) for s in summaries]
    front = set(pareto_front(points))
    feasible = [i for i, s in enumerate(summaries) if meets(s, goal)]
    best = min(feasible, key=lambda i: (summaries[i].cloud_usd, summaries[i].wait_p95_hours)) if feasible else None

    headers = [*names, "cloud $", "p95 wait h", "mean wait h", "bursts", "frontier", "goal"]
    rows = []
    for i in sorted(range(len(summaries)), key=lambda i: points[i]):
        s = summaries[i]
        rows.append([*(assignments[i][n] for n in names), f"{s.cloud_usd:,.2f}", f"{s.wait_p95_hours:.3f}",
                     f"{s.wait_mean_hours:.3f}", s.bursts, "*" if i in front else "",
                     ("BEST" if i == best else "ok") if i in feasible else "-"])
    widths = [max(len(str(r[c])) for r in rows + [headers]) for c in range(len(headers))]
    print("  ".join(str(h).ljust(w) for h, w in zip(headers, widths)))
    for r in rows:
        print("  ".join(str(c).ljust(w) for c, w in zip(r, widths)))
    if best is None:
        print(f"\nno combination meets {args.goal}; loosen the goal or widen the grid")
        return 1
    chosen = assignments[best]
    print(f"\nbest under {args.goal}: " + ", ".join(f"{k}={v}" for k, v in chosen.items()) +
          f" (cloud ${summaries[best].cloud_usd:,.2f}, p95 wait {summaries[best].wait_p95_hours:.3f} h)")
    if args.plot:
        from .plots import plot_pareto

        out = Path(args.plot)
        named = [Summary(**{**s.__dict__, "policy": ",".join(str(assignments[i][n]) for n in names)})
                 for i, s in enumerate(summaries)]
        print(f"plot: {plot_pareto(named, out / 'tune-pareto.png', 'policy sweep: ' + ' x '.join(names))}")
    if args.write:
        doc = variant(base, chosen)
        doc.setdefault("metadata", {})["name"] = "tuned"
        header = (f"# Written by `spillway tune`: the cheapest of {len(tasks)} combinations that meets "
                  f"{args.goal}\n# on {len(jobs)} Jobs ({args.scenario or args.trace}), {len(nodes)} nodes; chosen: "
                  + ", ".join(f"{k}={v}" for k, v in chosen.items()) + "\n")
        write_text(Path(args.write), header + yaml.safe_dump(doc, sort_keys=False), "--write")
        print(f"wrote {args.write}")
    return 0
