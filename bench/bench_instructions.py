"""Simulation cost in instructions: a speed figure that does not move with the machine's load.

    python bench/bench_instructions.py                    # four policies, Philly week 6, 64 x 8 GPUs
    python bench/bench_instructions.py --configs constant-wait-1h --tree ../main-checkout

Wall time on a shared 2-core machine moves by 5-15 % between runs of the same commit, which hides
a change that costs 1-2 %. This bench runs each configuration once under valgrind's cachegrind
(Debian's `valgrind` package; about 40x slower than a plain run) and counts the instructions of
the simulation alone: the run's count minus that of a run that loads the same trace and stops
before simulating. PYTHONHASHSEED is fixed, BLAS runs one thread, and each child first runs once
plainly (so that no module is compiled while counted): four counts of the same run differed by
under 300 instructions in 4e9. --tree measures another checkout with its own code, so that two commits compare
side by side (issue #24 measured its shared queue walk so). Configurations are bench_sim.py's
(POLICY as there, without the node count). The last line printed is one JSON object: billions
of instructions per configuration, and thousands per Job.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

from tqdm import tqdm

import thresholds

ROOT = Path(__file__).resolve().parent.parent
CONFIGS = ["no-wait", "constant-wait-1h", "compute-wait", "default-nobudget"]
STARTUP = "startup"  # the child that loads the trace and stops: subtracted from every count
REFS = re.compile(r"I\s+refs:\s+([\d,]+)")


def child(tree: Path, name: str, weeks: tuple[int, int], cluster: str) -> None:
    sys.path.insert(0, str(tree))
    from bench_sim import policy_of
    from sim.cli_world import parse_cluster
    from sim.cloud import CloudModel
    from sim.engine import SimConfig, simulate
    from sim.traces import load_philly

    jobs = load_philly(weeks=weeks)
    policy = policy_of("no-wait" if name == STARTUP else name)
    config = SimConfig(parse_cluster(cluster), policy, CloudModel(0.0, "none", None, 0.0), 0.0, 0)
    if name != STARTUP:
        simulate(jobs, config)
    print(json.dumps({"jobs": len(jobs)}))


def count(tree: Path, name: str, weeks: str, cluster: str) -> tuple[int, int]:
    """(instructions, Jobs in the trace) of one child under cachegrind. The child runs once plainly
    first: a module compiled to bytecode during the counted run (a source changed since its .pyc
    was written) would add 0.1e9 instructions to that run alone."""
    command = [sys.executable, __file__, "--child", name, "--tree", str(tree), "--weeks", weeks, "--cluster", cluster]
    # One BLAS thread: a pool's threads spin while they wait, and valgrind counts the spinning.
    env = {**os.environ, "PYTHONHASHSEED": "0", "PYTHONPATH": str(tree), "OPENBLAS_NUM_THREADS": "1",
           "OMP_NUM_THREADS": "1"}
    subprocess.run(command, capture_output=True, cwd=tree, env=env)
    valgrind = ["valgrind", "--tool=cachegrind", "--cache-sim=no", "--cachegrind-out-file=/dev/null"]
    out = subprocess.run(valgrind + command, capture_output=True, text=True, cwd=tree, env=env)
    refs = REFS.search(out.stderr)
    if out.returncode != 0 or refs is None:
        tail = "\n".join(out.stderr.strip().splitlines()[-5:])
        raise SystemExit(f"{name}: the run under valgrind failed (exit {out.returncode}):\n{tail}")
    return int(refs.group(1).replace(",", "")), json.loads(out.stdout.strip().splitlines()[-1])["jobs"]


def weeks_of(text: str) -> tuple[int, int]:
    first, _, last = text.partition("-")
    try:
        return int(first), int(last or first)
    except ValueError:
        raise argparse.ArgumentTypeError(f"--weeks {text!r}: give Philly weeks as FIRST-LAST, e.g. 6-6") from None


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--configs", nargs="+", default=CONFIGS, metavar="POLICY",
                    help=f"policies as bench_sim.py names them (default: {' '.join(CONFIGS)})")
    ap.add_argument("--weeks", default="6-6", help="Philly weeks FIRST-LAST (default 6-6: 7,729 Jobs)")
    ap.add_argument("--cluster", default="64x8", help="NODESxGPUS (default 64x8)")
    ap.add_argument("--tree", type=Path, default=ROOT, help="the checkout whose code runs (default: this one)")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    args = ap.parse_args()
    weeks = weeks_of(args.weeks)
    tree = args.tree.resolve()
    if args.child:
        child(tree, args.child, weeks, args.cluster)
        return
    if shutil.which("valgrind") is None:
        raise SystemExit("valgrind is not installed: apt-get install valgrind (Debian's package has cachegrind)")
    if not (tree / "sim" / "engine.py").is_file():
        raise SystemExit(f"--tree {tree}: not a Spillway checkout (no sim/engine.py there)")
    counts: dict[str, int] = {}
    jobs = 0
    for name in tqdm([STARTUP, *args.configs], desc="under cachegrind", unit="run", file=sys.stderr):
        counts[name], jobs = count(tree, name, args.weeks, args.cluster)
    figures: dict[str, object] = {"tree": str(tree), "weeks": args.weeks, "cluster": args.cluster, "jobs": jobs,
                                  "startup_instructions_e9": round(counts[STARTUP] / 1e9, 4)}
    rows = []
    for name in args.configs:
        simulated = counts[name] - counts[STARTUP]
        figures[name] = {"instructions_e9": round(simulated / 1e9, 4),
                         "instructions_per_job_k": round(simulated / jobs / 1e3, 1)}
        rows.append([name, f"{simulated / 1e9:.4f}", f"{simulated / jobs / 1e3:,.1f}"])
    from scheduler.output import table

    print(table(["POLICY", "INSTRUCTIONS (1e9, SIMULATION ONLY)", "PER JOB (1e3)"], rows))
    thresholds.report("bench_instructions", figures)
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
