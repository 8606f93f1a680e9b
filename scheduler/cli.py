"""The `spillway` command. Each subcommand's --help says what it does and shows an example."""

from __future__ import annotations

import argparse
import json
import sys
from importlib import resources
from typing import Sequence

import yaml

from policies import (
    InputError,
    InputIssue,
    check_policy_text,
    decide,
    default_catalog,
    job_from_manifest,
    json_schema,
    load_snapshot,
    plan,
    queue_order,
)
from policies import constants as C
from policies.decide import emitted, transform_job_name, tuning_emitted, tuning_job_name
from policies.model import (HYPERPARAMETERS_DIR, HYPERPARAMETERS_FILE, POSITIVE, SageMakerKind, format_time, parse_time,
                            trial_hyperparameters)

from .cli_inputs import policy_from, read_input
from .output import duration, emit, money, table

EXAMPLES = resources.files("policies").joinpath("examples")

DESCRIPTION = """\
Spillway keeps GPU training Jobs on your Kubernetes cluster while it has room, and sends the
overflow to Amazon SageMaker (managed spot or on-demand) when GPUs are busy, a deadline is
near, or the queue is long. Every decision comes with a reason and the numbers behind it.

Start here:
  spillway sim                          replay real Philly Jobs through the default policy
  spillway demo                         the controller on a sandbox cluster and SageMaker, in a minute
  spillway sim --compare default no-wait compute-wait --plot plots/
  spillway tune --goal "wait_p95_hours<=0.5" --write tuned.yaml
  spillway sandbox up                   a local Kubernetes API with GPU nodes, for kubectl
  spillway run --kubeconfig spillway-sandbox.kubeconfig
                                        the controller: annotated Jobs run locally or on SageMaker
  spillway logs JOB -n NAMESPACE        a burst Job's SageMaker training log, from CloudWatch
  spillway explain                      decide the bundled example Job on the bundled cluster
  spillway explain job.yaml --policy p.yaml --cluster snapshot.yaml -o json
  spillway policy validate p.yaml       every error at once, with line numbers and fixes
  spillway policy show                  the embedded default policy, all defaults filled in
  spillway catalog                      SageMaker GPU types, prices and spot bands
"""


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not hasattr(args, "run"):
        parser.print_help()
        return 2
    try:
        return args.run(args)
    except InputError as exc:
        for issue in exc.issues:
            print(issue.render(), file=sys.stderr)
        return 1
    except BrokenPipeError:
        return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="spillway", description=DESCRIPTION,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(title="commands", metavar="COMMAND")

    p = sub.add_parser("explain", help="decide one Job on a cluster snapshot and show why",
                       formatter_class=argparse.RawDescriptionHelpFormatter, description="""\
Decide where one Job should run: Local, SageMakerSpot, SageMakerOnDemand or Wait, with the
reason, the forecast local start, the cost of every option, the deadline slack and the spot
window. Pending Jobs in the snapshot are queued ahead of this one.

With no JOB, the bundled example Job and cluster snapshot are used (a 8-GPU fine-tune with a
deadline on a busy 4-node A100 cluster).

examples:
  spillway explain
  spillway explain train.yaml --cluster snapshot.yaml --policy policy.yaml
  spillway explain train.yaml --cluster snapshot.yaml -o json | jq .evidence.options""")
    p.add_argument("job", nargs="?", help="batch/v1 Job manifest (YAML or JSON); default: bundled example")
    _common(p, cluster=True)
    p.set_defaults(run=cmd_explain)

    p = sub.add_parser("plan", help="decide a whole pending queue in one cycle",
                       formatter_class=argparse.RawDescriptionHelpFormatter, description="""\
Decide every pending Job, in queue order, as one controller cycle does: each decision is assumed
before the next, so no two Jobs claim the same GPUs, dollars or quota. The queue is the
snapshot's pending Jobs plus the Job manifests given (a file may hold several, separated by
---), ordered by creation time. --optimizer cpsat first lets OR-Tools CP-SAT choose which Jobs
burst so the rest fit locally.

With no JOBS and no --cluster: the five bundled 8-GPU fine-tunes (policies/examples/
sandbox-jobs.yaml) on the bundled busy 4-node A100 cluster.

examples:
  spillway plan
  spillway plan jobs.yaml --cluster snapshot.yaml --optimizer cpsat -o yaml""")
    p.add_argument("jobs", nargs="*", metavar="JOBS",
                   help="batch/v1 Job manifests (YAML, several per file with ---), queued after the snapshot's")
    _common(p, cluster=True)
    p.add_argument("--optimizer", choices=["greedy", "cpsat"], default="greedy",
                   help="greedy: per-Job rules in queue order (default); cpsat: joint optimizer first")
    p.add_argument("--time-limit", type=POSITIVE, default=2.0, metavar="SECONDS",
                   help="CP-SAT deterministic time limit (default 2)")
    p.set_defaults(run=cmd_plan)

    pol = sub.add_parser("policy", help="validate, show or describe BurstPolicy files")
    psub = pol.add_subparsers(title="policy commands", metavar="COMMAND")
    p = psub.add_parser("validate", help="check policy files; exit 1 if any has an error",
                        description="Report every problem in each file at once: YAML path, line, what was "
                                    "expected, what came, and a fix (with 'did you mean' for misspelled keys).")
    p.add_argument("files", nargs="+", metavar="FILE")
    p.add_argument("-o", "--output", choices=["text", "json"], default="text")
    p.set_defaults(run=cmd_policy_validate)
    p = psub.add_parser("schema", help="print the JSON Schema of BurstPolicy (for editors)")
    p.set_defaults(run=lambda a: (print(json.dumps(json_schema(), indent=2)), 0)[1])
    p = psub.add_parser("show", help="print the effective policy with every default filled in")
    p.add_argument("file", nargs="?", help="policy file; default: the embedded default policy")
    p.add_argument("-o", "--output", choices=["yaml", "json"], default="yaml")
    p.set_defaults(run=cmd_policy_show)
    pol.set_defaults(run=_usage(pol))

    from sim.cli import register as register_sim  # the simulator's public command surfaces
    from sim.sandbox.cli import register as register_sandbox

    register_sim(sub)
    register_sandbox(sub)
    from .demo_cli import register as register_demo
    from .logs_cli import register as register_logs
    from .run_cli import register as register_run

    register_run(sub)
    register_logs(sub)
    register_demo(sub)

    p = sub.add_parser("catalog", help="list SageMaker GPU training types with prices and spot bands")
    p.add_argument("--region", default=None, help="only this region (us-east-1, us-west-2)")
    p.add_argument("-o", "--output", choices=["table", "json", "yaml"], default="table")
    p.set_defaults(run=cmd_catalog)
    return parser


def _common(p: argparse.ArgumentParser, cluster: bool) -> None:
    p.add_argument("--policy", metavar="FILE", help="BurstPolicy YAML; default: the embedded default policy")
    if cluster:
        p.add_argument("--cluster", metavar="FILE", help="ClusterSnapshot YAML; default: bundled example")
    p.add_argument("--now", metavar="TIME", help="decide as of this RFC 3339 time; default: the snapshot's time")
    p.add_argument("-o", "--output", choices=["table", "json", "yaml"], default="table")


# --- commands -----------------------------------------------------------------------------------


def cmd_explain(args) -> int:
    policy = policy_from(args.policy)
    snapshot = _snapshot(args.cluster)
    if args.job is None:
        text, source = EXAMPLES.joinpath("job.yaml").read_text(), "bundled example job.yaml"
        if args.output == "table":
            print("(no JOB given: using the bundled example Job and cluster; see --help)\n")
    else:
        text, source = read_input(args.job), args.job
    manifest, config_maps = _job_and_config_maps(text, source)
    job = job_from_manifest(manifest, source, config_maps)
    now = _now(args, snapshot)
    decision = decide(job, snapshot, policy, now)
    launch = decision.launch
    shown = launch if launch is not None and launch.kind != SageMakerKind.TRAINING else None
    target = policy.spec.sage_maker.emit
    if args.output != "table":
        out = decision.to_dict()
        if shown is not None:  # what the burst would send, in order
            out["emits"] = burst_emission(job, shown, target)
        if job.tuning is not None and job.tuning.strategy.drawn_per_index:
            out["trials"] = [trial_hyperparameters(job.tuning, i) for i in range(job.trials)]
        emit(out, args.output)
        return 0
    print(render_decision(decision))
    if shown is not None:
        print(render_emission(job, shown, target))
    if job.tuning is not None:
        print(render_trials(job))
    return 0


def cmd_plan(args) -> int:
    policy = policy_from(args.policy)
    snapshot = _snapshot(args.cluster)
    files = args.jobs
    if not files and args.cluster is None:
        files = [str(EXAMPLES.joinpath("sandbox-jobs.yaml"))]
        if args.output == "table":
            print("(no JOBS given: the bundled example fine-tunes on the bundled cluster; see --help)\n")
    queue = queue_order([*snapshot.pending, *(job for path in files for job in _jobs_in(path))])
    if not queue:
        raise InputError([InputIssue(args.cluster or "bundled example cluster.yaml", "pending",
                                     "nothing to plan: the snapshot has no pending Jobs and no JOBS were given",
                                     "give Job manifests: spillway plan jobs.yaml --cluster snapshot.yaml")])
    result = plan(queue, snapshot, policy, _now(args, snapshot), optimizer=args.optimizer,
                  time_limit_seconds=args.time_limit)
    position = {job.key: i for i, job in enumerate(queue)}
    result_in_order = sorted(result.decisions, key=lambda d: position[d.job])
    if args.output != "table":
        emit({"solver": vars_of(result.solver),
              "decisions": [d.to_dict() for d in result_in_order]}, args.output)
        return 0
    rows = []
    for d in result_in_order:
        rows.append([d.job, d.placement.value, d.reason.value, duration(d.evidence.local_wait_seconds),
                     money(_chosen_cost(d)), d.launch.instance_type if d.launch else ",".join(d.local_nodes) or "-"])
    print(table(["JOB", "PLACEMENT", "REASON", "LOCAL WAIT", "COST", "WHERE"], rows))
    s = result.solver
    print(f"\nplanner: {s.optimizer} ({s.status}); {len(result.decisions)} Jobs, in queue order")
    return 0


def _jobs_in(path: str) -> list:
    """The Job manifests of a YAML file; several may be separated by ---."""
    import yaml

    text = read_input(path)
    try:
        docs = [d for d in yaml.safe_load_all(text) if d is not None]
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        raise InputError([InputIssue(path, "", f"not valid YAML: {getattr(exc, 'problem', None) or exc}",
                                     "check indentation and quoting near this line",
                                     mark.line + 1 if mark else None)]) from None
    except RecursionError:
        raise InputError([InputIssue(path, "", "not valid YAML: nested too deeply")]) from None
    jobs, issues = [], []
    config_maps = _config_maps_among(docs)  # a sweep's tuning spec may be in one of them
    for i, doc in enumerate(docs):
        if isinstance(doc, dict) and doc.get("kind") == "ConfigMap":
            continue
        source = f"{path} (document {i + 1})" if len(docs) > 1 else path
        try:
            jobs.append(job_from_manifest(doc, source, config_maps))
        except InputError as exc:
            issues += exc.issues
    if issues:
        raise InputError(issues)
    return jobs


def cmd_policy_validate(args) -> int:
    results, failed = [], False
    for path in args.files:
        try:
            _, issues = check_policy_text(read_input(path), path)
        except InputError as exc:
            issues = exc.issues
        failed |= any(i.severity == "error" for i in issues)
        results.append((path, issues))
    if args.output == "json":
        emit([{"file": p, "valid": not any(i.severity == "error" for i in iss),
               "issues": [i.as_dict() for i in iss]} for p, iss in results], "json")
    else:
        for path, issues in results:
            errors = sum(i.severity == "error" for i in issues)
            for issue in issues:
                print(issue.render())
            print(f"{path}: {'INVALID' if errors else 'valid'} ({errors} error(s), {len(issues) - errors} warning(s))")
    return 1 if failed else 0


def cmd_policy_show(args) -> int:
    policy = policy_from(args.file)
    emit(policy.to_yaml_dict(), args.output)
    return 0


def cmd_catalog(args) -> int:
    cat = default_catalog()
    if args.region is not None and args.region not in cat.regions():
        raise InputError([InputIssue("--region", "", f"no prices for region {args.region!r}",
                                     f"use one of {', '.join(cat.regions())}")])
    types = [t for t in cat.types if args.region in (None, t.region)]
    if args.output != "table":
        emit([{"instanceType": t.name, "region": t.region, "accelerator": t.accelerator, "gpuFamily": t.gpu_family,
               "gpus": t.accel_count, "gpuMemoryGiB": t.accel_mem_gib, "onDemandUsdPerHour": t.on_demand_usd_per_hour,
               "onDemandBasis": t.on_demand_basis, "spotUsdPerHour": t.spot_usd_per_hour,
               "interruptBand": t.interrupt_band, "transformUsdPerHour": t.transform_usd_per_hour,
               "transformBasis": t.transform_basis} for t in types], args.output)
        return 0
    rows = [[t.name, t.region, t.gpu_family, t.accel_count, money(t.on_demand_usd_per_hour),
             money(t.spot_usd_per_hour), t.interrupt_band, t.on_demand_basis.split(" ")[0],
             money(t.transform_usd_per_hour) if t.transform_usd_per_hour is not None else "-"] for t in types]
    print(table(["TYPE", "REGION", "GPU", "N", "ON-DEMAND/H", "SPOT/H (EST)", "INTERRUPTS", "PRICE BASIS",
                 "TRANSFORM/H"], rows))
    print("\nPrices: AWS list prices (see policies/data/PROVENANCE.md); spot = on-demand x (1 - Spot Advisor "
          "savings). Override any of them in spec.sageMaker.prices.")
    print("Batch transform (TRANSFORM/H): only where a per-type price was found; '-' takes no transform burst "
          "until spec.sageMaker.prices.<type>.transformUsdPerHour prices it.")
    return 0


# --- rendering ------------------------------------------------------------------------------------


def render_decision(d) -> str:
    ev = d.evidence
    lines = [f"Job        {d.job}", f"Placement  {d.placement.value}", f"Reason     {d.reason.value}",
             f"Message    {d.message}"]
    if d.requeue_after_seconds is not None:
        lines.append(f"Requeue    in {duration(d.requeue_after_seconds)}")
    lines.append("")
    facts = [
        ("now", format_time(ev.now)),
        ("runtime estimate", f"{duration(ev.runtime_estimate_seconds)} ({ev.runtime_source})"),
        ("forecast local start", _time_or_never(ev.local_start_time) +
         (f" (in {duration(ev.local_wait_seconds)})" if ev.local_start_time != float("inf") else "")),
        ("waited so far / max wait", f"{duration(ev.waited_seconds)} / {duration(ev.local_max_wait_seconds)}"),
        ("value of waiting", f"{money(ev.wait_usd_per_hour)} per hour"),
        ("deadline", format_time(ev.deadline) if ev.deadline else "-"),
        ("deadline slack", duration(ev.deadline_slack_seconds) if ev.deadline_slack_seconds is not None else "-"),
        ("cluster hot", "yes" if ev.cluster_hot else "no"),
        ("budget left", money(ev.budget_remaining_usd) if ev.budget_remaining_usd is not None else "unlimited"),
    ]
    if ev.trigger:
        facts.append(("burst trigger", ev.trigger))
    if ev.blocked:
        facts.append(("cloud blocked", ev.blocked))
    width = max(len(k) for k, _ in facts)
    lines += [f"{k.ljust(width)}  {v}" for k, v in facts]
    lines.append("")
    rows = [[o.placement.value, o.instance_type or "-", _time_or_never(o.start_time), _time_or_never(o.end_time),
             money(o.expected_usd), money(o.committed_usd), money(o.score) if o.score != float("inf") else "-", o.note]
            for o in ev.options]
    lines.append(table(["OPTION", "TYPE", "START", "END", "EXPECTED", "AT MOST", "SCORE", "NOTE"], rows))
    lines.append("(score = expected dollars + the value of waiting until the start; lowest wins unless a rule decides)")
    if d.launch:
        l = d.launch
        shape = f"{l.instance_count} x {l.instance_type}"
        if l.kind == SageMakerKind.TUNING:
            shape = f"trials of 1 x {l.instance_type} each"
        lines += ["", f"Launch     {shape} in {l.region}, "
                      f"{'managed spot' if l.spot else 'on-demand'}, role {l.role_arn}",
                  f"           output {l.output_s3_uri}" + (f", checkpoints {l.checkpoint_s3_uri}" if l.checkpoint_s3_uri else ""),
                  (f"           runtime cap {l.max_runtime_seconds} s (a transform job has no MaxRuntimeInSeconds: "
                   "the controller stops it then)" if l.kind == SageMakerKind.TRANSFORM else
                   f"           MaxRuntimeInSeconds {l.max_runtime_seconds}" + (" a trial" if l.kind == SageMakerKind.TUNING else ""))
                  + (f", MaxWaitTimeInSeconds {l.sagemaker_max_wait_seconds}" if l.sagemaker_max_wait_seconds else "")
                  + (f", on-demand fallback at {format_time(l.fallback_time)}" if l.fallback_time else "")]
    return "\n".join(lines)


def burst_emission(job, launch, target) -> list[dict]:
    """What a transform or tuning burst would send, in order (a transform's Model first: its
    transform job names it)."""
    if launch.kind == SageMakerKind.TUNING:
        return tuning_emitted(job, launch, tuning_job_name(job), target)
    return emitted(job, launch, transform_job_name(job), target)


def render_emission(job, launch, target) -> str:
    sent = burst_emission(job, launch, target)
    head = f"\nEmits      (spec.sageMaker.emit: {target.value}) {len(sent)} in order\n"
    return head + yaml.safe_dump_all(sent, sort_keys=False).rstrip()


TRIALS_SHOWN = 8


def render_trials(job) -> str:
    """A sweep's trials as they run on the cluster: each index's hyperparameters (Random and Grid
    are drawn per index), or how they are chosen as earlier trials finish."""
    spec = job.tuning
    if not spec.strategy.runs_locally:
        return (f"\nTrials     {job.trials}, chosen by SageMaker's {spec.strategy.value} tuner as earlier trials "
                "finish (such a sweep runs only on SageMaker)")
    if not spec.strategy.drawn_per_index:
        return (f"\nTrials     {job.trials}, {min(job.pods, job.trials)} at once; on the cluster, chosen by Optuna's TPE "
                f"as earlier trials finish: the pod of index i is asked for its values given the objectives read "
                f"from the finished trials' logs ({C.TRIAL_RESULTS} on the Job; random until 10 have finished), "
                f"and gets them as SM_HP_<NAME> and {HYPERPARAMETERS_DIR}/{HYPERPARAMETERS_FILE}; on SageMaker, "
                f"chosen by its {spec.strategy.value} tuner")
    names = [p.name for p in spec.parameters]
    rows = [[i, *(trial_hyperparameters(spec, i)[n] for n in names)] for i in range(min(job.trials, TRIALS_SHOWN))]
    more = f"\n(... and {job.trials - TRIALS_SHOWN} more; -o json lists every trial)" if job.trials > TRIALS_SHOWN else ""
    static = ", ".join(f"{k}={v}" for k, v in spec.static)
    head = (f"\nTrials     {job.trials}, {min(job.pods, job.trials)} at once; on the cluster, the pod of index i "
            f"gets trial i's values as SM_HP_<NAME> and {HYPERPARAMETERS_DIR}/{HYPERPARAMETERS_FILE}"
            + (f" (with {static})" if static else "") + "\n")
    return head + table(["INDEX", *names], rows) + more


def vars_of(obj) -> dict:
    return {k: getattr(obj, k) for k in obj.__slots__}


def _chosen_cost(d) -> float | None:
    for o in d.evidence.options:
        if o.placement == d.placement:
            return o.expected_usd
    return None


def _time_or_never(t: float) -> str:
    return "never" if t == float("inf") else format_time(t)


# --- input ----------------------------------------------------------------------------------------


def _job_and_config_maps(text: str, source: str) -> tuple[object, dict[str, dict[str, str]]]:
    """The Job of a file, and the ConfigMaps beside it (a sweep's tuning spec may be in one)."""
    if not any(line.startswith("---") for line in text.splitlines()[1:]):
        return _yaml(text, source), {}
    docs = [d for d in yaml.safe_load_all(text) if d is not None]
    jobs = [d for d in docs if isinstance(d, dict) and d.get("kind") == "Job"]
    if len(jobs) != 1:
        raise InputError([InputIssue(source, "", f"expected one Job among its documents, found {len(jobs)}",
                                     "explain decides one Job: pass a file with one Job (and its ConfigMaps)")])
    return jobs[0], _config_maps_among(docs)


def _config_maps_among(docs: list) -> dict[str, dict[str, str]]:
    return {str((d.get("metadata") or {}).get("name")): {str(k): str(v) for k, v in (d.get("data") or {}).items()}
            for d in docs if isinstance(d, dict) and d.get("kind") == "ConfigMap"}


def _yaml(text: str, source: str):
    from policies.model import parse_yaml

    data, _ = parse_yaml(text, source)
    return data


def _usage(parser: argparse.ArgumentParser):
    """A command group named without a subcommand: its help, and exit status 2."""
    def run(_args) -> int:
        parser.print_help()
        return 2
    return run


def _snapshot(path: str | None):
    if path is None:
        return load_snapshot(EXAMPLES.joinpath("cluster.yaml").read_text(), "bundled example cluster.yaml")
    return load_snapshot(read_input(path), path)


def _now(args, snapshot) -> float:
    if not args.now:
        return snapshot.time
    try:
        return parse_time(args.now)
    except ValueError as exc:
        raise InputError([InputIssue("--now", "", str(exc), "e.g. --now 2026-11-28T15:00:00Z")]) from None


if __name__ == "__main__":
    sys.exit(main())
