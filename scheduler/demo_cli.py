"""`spillway demo`: the controller, the sandbox cluster and a SageMaker, on one virtual clock.

Part of the command line, the one place that wires the controller (scheduler/) and the sandbox
(sim/) together.
"""

from __future__ import annotations

import argparse
import logging
import statistics
import sys
import threading
import time

from policies import constants as C
from policies.model import AT_LEAST_ONE, COUNT, POSITIVE, parse_time

from .output import emit, money, table
from .world import finished

DESCRIPTION = """\
Watch Spillway work, with nothing to install: a sandbox Kubernetes cluster (4 nodes x 8 A100
GPUs), a SageMaker (moto, with a life cycle) behind a stand-in for the ACK SageMaker
controller, and the Spillway controller, all on one virtual clock running --time-scale times
faster than real time. A burst of annotated Jobs drawn from the bundled Microsoft Philly trace
arrives; each is un-suspended on the cluster, sent to SageMaker, or left waiting, exactly as
`spillway run` would do in a real cluster, under the embedded default policy (or --policy). A
live line on stderr shows what goes where; at the end, a table of every Job and what the
bursts cost.

examples:
  spillway demo
  spillway demo --jobs 60 --time-scale 1200
  spillway demo -o json > demo.json"""


class VirtualClock:
    """Wall time since start, times `rate`, from `origin`: one clock for every part of the demo."""

    def __init__(self, rate: float, origin: float | None = None):
        self.rate, self.origin, self.started = rate, origin or time.time(), time.monotonic()

    def __call__(self) -> float:
        return self.origin + (time.monotonic() - self.started) * self.rate


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("demo", help="the controller against a sandbox cluster and SageMaker, in about a minute",
                       formatter_class=argparse.RawDescriptionHelpFormatter, description=DESCRIPTION)
    p.add_argument("--jobs", type=AT_LEAST_ONE, default=40, help="Jobs drawn from the Philly trace (default 40)")
    p.add_argument("--time-scale", type=POSITIVE, default=900.0,
                   help="virtual seconds per real second (default 900: an hour in 4 s)")
    p.add_argument("--seed", type=COUNT, default=6, help="which Philly Jobs are drawn (default 6)")
    p.add_argument("--timeout", type=POSITIVE, default=180.0, help="real seconds to give up after (default 180)")
    p.add_argument("--policy", metavar="FILE", help="BurstPolicy YAML; default: the embedded default policy")
    p.add_argument("-o", "--output", choices=["table", "json", "yaml"], default="table")
    p.set_defaults(run=cmd_demo)


def demo_jobs(count: int, seed: int):
    """Philly Jobs of two to eight GPUs on one node, 20 minutes to four hours long, arriving over
    one hour: a burst that a 32-GPU cluster cannot absorb."""
    import numpy as np

    from sim.traces import load_philly

    pool = [j for j in load_philly(weeks=(6, 6)) if j.pods == 1 and j.gpus_per_pod >= 2
            and 1200 <= j.duration_s <= 4 * 3600]
    rng = np.random.default_rng(seed)
    picked = sorted(rng.choice(len(pool), size=min(count, len(pool)), replace=False))
    arrivals = np.sort(rng.uniform(0, 3600, size=len(picked)))
    return [(float(at), pool[i]) for at, i in zip(arrivals, picked)]


def manifest(job) -> dict:
    """A suspended Job that opts in, checkpoints (so it may use spot), and runs as long as Philly's did."""
    return {"metadata": {"name": f"philly-{job.id}", "namespace": "research", "annotations": {
        C.MODE: "auto", C.RUNTIME_ESTIMATE: str(int(job.duration_s)),
        C.CHECKPOINT_S3_URI: f"s3://spillway-example/research/philly-{job.id}/ckpt/"}},
        "spec": {"suspend": True, "backoffLimit": 0, "template": {
            "metadata": {"annotations": {"sandbox.spillway.io/run-seconds": str(int(job.duration_s))}}, "spec": {
            "restartPolicy": "Never", "nodeSelector": {C.GPU_PRODUCT_LABEL: "NVIDIA-A100-SXM4-80GB"},
            "containers": [{"name": "trainer", "image": "123456789012.dkr.ecr.us-east-1.amazonaws.com/philly:1",
                            "resources": {"limits": {C.GPU_RESOURCE: str(job.gpus_per_pod)}}}]}}}}


def cmd_demo(args) -> int:
    from .cli_inputs import policy_from

    # Read the policy before anything starts: a bad file must not leave a sandbox, SageMaker and
    # their threads running, nor the process's loggers silenced.
    policy = policy_from(args.policy)
    logging.basicConfig(level=logging.ERROR)
    for noisy in ("werkzeug", "botocore", "urllib3", "scheduler", "kubernetes"):
        logging.getLogger(noisy).setLevel(logging.CRITICAL)
    from sim.sagemaker_lifecycle import SageMakerSandbox
    from sim.sandbox.ack import AckStandIn
    from sim.sandbox.apiserver import SandboxServer
    from sim.sandbox.machinery import Machinery, add_nodes

    from .controller import Controller, Settings
    from .kube import Kube, api_client
    from .sagemaker import SageMaker

    clock = VirtualClock(args.time_scale)
    server = SandboxServer(clock=clock, history=100_000).start()
    store = server.store
    add_nodes(store, "4x8:NVIDIA-A100-SXM4-80GB")
    for ns in ("research", "spillway-system"):
        store.create(store.type_for("", "v1", "namespaces"), "", {"metadata": {"name": ns}})
    machinery = Machinery(store, time_scale=1.0, period=0.02).start()  # the clock is virtual already
    sagemaker = SageMakerSandbox(clock=clock, time_scale=1.0, period=0.02).start()
    ack = AckStandIn(store, sagemaker.client(), period=0.05).start()
    sm = SageMaker("us-east-1", endpoint_url=sagemaker.endpoint_url, aws_access_key_id="sandbox",
                   aws_secret_access_key="sandbox")
    ctl = Controller(Kube(api_client(host=server.url)), policy, sagemaker=sm, clock=clock,
                     settings=Settings(burst_poll_seconds=60.0, min_requeue_seconds=1.0,
                                       clock_rate=args.time_scale))
    stop = threading.Event()
    runner = threading.Thread(target=ctl.run, args=(stop,), name="controller", daemon=True)
    runner.start()
    jobs = demo_jobs(args.jobs, args.seed)
    job_type = store.type_for("batch", "v1", "jobs")
    start, deadline = clock(), time.monotonic() + args.timeout
    created, live, last_line = 0, sys.stderr.isatty(), -float("inf")
    try:
        while time.monotonic() < deadline:
            now = clock()
            while created < len(jobs) and start + jobs[created][0] <= now:
                store.create(job_type, "research", manifest(jobs[created][1]))
                created += 1
            view = _view(store)
            line = (f"  t+{_hm(now - start)}  arrived {created:>2}/{len(jobs)}  waiting {view['waiting']:>2}  "
                    f"local {view['local']:>2} ({view['local_done']} done)  SageMaker {view['cloud']:>2} "
                    f"({view['cloud_done']} done)  {money(view['cost'])}")
            if live:
                print(f"\r{line}   ", end="", file=sys.stderr, flush=True)
            elif now - last_line >= 1800 or view["finished"] == len(jobs):  # a log, not a screen
                print(line, file=sys.stderr, flush=True)
                last_line = now
            if created == len(jobs) and view["finished"] == len(jobs):
                break
            time.sleep(0.25)
        if live:
            print(file=sys.stderr)
        rows = _rows(store)
        budget_waits = _waited_for_budget(store)
    finally:
        stop.set()
        runner.join(timeout=10)
        for part in (ack, sagemaker, machinery):
            part.stop()
        server.stop()
    finished = sum(r["outcome"] in ("Complete", "Completed") for r in rows)
    waits = [r["wait_minutes"] for r in rows if r["wait_minutes"] is not None]
    summary = {"jobs": len(rows), "finished": finished,
               "local": sum(r["placement"] == "Local" for r in rows),
               "sagemaker": sum(r["placement"].startswith("SageMaker") for r in rows),
               "cloud_usd": round(sum(r["cost_usd"] for r in rows), 2),
               "mean_wait_minutes": round(statistics.fmean(waits), 1) if waits else None,
               "max_wait_minutes": round(max(waits), 1) if waits else None,
               "virtual_hours": round((clock() - start) / 3600, 1),
               "waited_for_budget": len(budget_waits)}
    if args.output != "table":
        emit({"summary": summary, "jobs": rows}, args.output)
    else:
        print(table(["JOB", "GPUS", "RUNS", "PLACEMENT", "REASON", "WAITED", "OUTCOME", "COST"],
                    [[r["job"], r["gpus"], f"{r['runtime_hours']:.1f} h", r["placement"], r["reason"],
                      "-" if r["wait_minutes"] is None else f"{r['wait_minutes']:.0f} min", r["outcome"],
                      money(r["cost_usd"])] for r in rows]))
        print(f"\n{summary['finished']}/{summary['jobs']} Jobs finished in {summary['virtual_hours']} virtual hours: "
              f"{summary['local']} on the cluster, {summary['sagemaker']} on SageMaker for "
              f"{money(summary['cloud_usd'])}; mean wait {summary['mean_wait_minutes']} min, "
              f"longest {summary['max_wait_minutes']} min.")
        daily = policy.budget_for("research").daily_usd
        if budget_waits:
            print(f"{len(budget_waits)} Jobs waited for money: bursts in flight commit their worst case against "
                  f"the ${daily:,.0f}/day budget (spec.budgets), and it frees up as they end. `spillway policy "
                  f"show` prints the default policy.")
    return 0 if finished == len(rows) == len(jobs) else 1


def _hm(seconds: float) -> str:
    minutes = int(seconds // 60)
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


def _jobs(store) -> list[dict]:
    items, _ = store.list(store.type_for("batch", "v1", "jobs"), "research")
    return items


def _view(store) -> dict:
    out = {"waiting": 0, "local": 0, "local_done": 0, "cloud": 0, "cloud_done": 0, "finished": 0, "cost": 0.0}
    for job in _jobs(store):
        ann = job["metadata"].get("annotations") or {}
        placement = ann.get(C.DECISION_PLACEMENT, "Wait")
        complete = finished(job)  # Complete or Failed: either way it is done
        if placement == "Local":
            out["local"] += 1
            out["local_done"] += complete
            out["finished"] += complete
        elif placement.startswith("SageMaker"):
            out["cloud"] += 1
            # A burst on the virtual node finishes as a Job; one kept suspended, as its training job.
            done = complete if not job["spec"].get("suspend") else \
                (ann.get(C.SAGEMAKER_STATUS) or "").split("/")[0] in ("Completed", "Failed", "Stopped")
            out["cloud_done"] += done
            out["finished"] += done
            out["cost"] += float(ann.get(C.COST_USD) or 0)
        else:
            out["waiting"] += 1
    return out


def _waited_for_budget(store) -> set[str]:
    items, _ = store.list(store.type_for("", "v1", "events"), "research")
    return {e["involvedObject"]["name"] for e in items if e.get("reason") == "BudgetExhausted"}


def _rows(store) -> list[dict]:
    rows = []
    for job in sorted(_jobs(store), key=lambda j: j["metadata"]["creationTimestamp"]):
        ann = job["metadata"].get("annotations") or {}
        placement = ann.get(C.DECISION_PLACEMENT, "Wait")
        created = parse_time(job["metadata"]["creationTimestamp"])
        decided = parse_time(ann[C.DECIDED_AT]) if C.DECIDED_AT in ann else None
        conditions = {c["type"] for c in (job.get("status") or {}).get("conditions") or [] if c.get("status") == "True"}
        outcome = "Complete" if "Complete" in conditions else "Failed" if "Failed" in conditions else \
            (ann.get(C.SAGEMAKER_STATUS) or "").split("/")[0] or ("Running" if placement == "Local" else "Waiting")
        limits = job["spec"]["template"]["spec"]["containers"][0]["resources"]["limits"]
        rows.append({"job": job["metadata"]["name"], "gpus": int(limits[C.GPU_RESOURCE]),
                     "runtime_hours": round(float(ann[C.RUNTIME_ESTIMATE]) / 3600, 2), "placement": placement,
                     "reason": ann.get(C.DECISION_REASON, ""),
                     "wait_minutes": None if decided is None or placement == "Wait" else round((decided - created) / 60, 1),
                     "outcome": outcome, "cost_usd": round(float(ann.get(C.COST_USD) or 0), 2)})
    return rows
