"""SIGKILL the controller at random points of a burst storm; then check that nothing was launched
twice, nothing was lost, no budget was exceeded, and the spend ledger is exact.

    python bench/bench_controller_kill.py              # 50 kills, 100 Jobs
    python bench/bench_controller_kill.py --kills 10   # quicker

The sandbox cluster and its SageMaker run in this process; `spillway run` (emit: api) runs as its
own process and is killed with SIGKILL after a random 0.3-4 s, 50 times, while Jobs keep arriving
(two per kill). Each burst is one on-demand ml.g5.xlarge that trains for 10 virtual minutes (the
sandbox's SageMaker runs 60x faster than real time); the namespace's daily budget fits about a
third of them at their committed (worst-case) figure, so Jobs also wait for money. A last
controller then runs until every Job has run.

Checks, printed with their figures (the last line is one JSON object):
- one SageMaker training job per Job that burst (CreateTrainingJob calls that SageMaker refused
  as duplicates are counted too), and none without a ledger entry or the other way round;
- committed dollars never above the budget: at every instant, from the ledger (each burst holds
  its committed figure from launch to end, then what it cost), and at every cycle the final
  controller ran;
- the ledger's spend equals what SageMaker billed: the sum of BillableTimeInSeconds x
  InstanceCount x price over the training jobs, to the cent.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import yaml  # noqa: E402

from policies import BurstPolicy, default_catalog  # noqa: E402
from policies import constants as C  # noqa: E402
from scheduler.kube import Kube, api_client  # noqa: E402
from scheduler.ledger import DONE, Ledger  # noqa: E402
from sim import sagemaker_lifecycle  # noqa: E402
from sim.sagemaker_lifecycle import SageMakerSandbox  # noqa: E402
from sim.sandbox.apiserver import SandboxServer  # noqa: E402
from sim.sandbox.machinery import Machinery, add_nodes  # noqa: E402
import thresholds  # noqa: E402

PRODUCT = "NVIDIA-A100-SXM4-80GB"
TYPE = "ml.g5.xlarge"
BUDGET = 20.0  # dollars a day for the namespace: about a third of the storm at its committed figure
POLICY = {"apiVersion": "spillway.io/v1alpha1", "kind": "BurstPolicy", "spec": {
    "sageMaker": {"emit": "api"},
    "allowlists": {"*": {"roleArns": ["arn:aws:iam::123456789012:role/SpillwayTraining"],
                         "s3Prefixes": ["s3://spillway-example/"]}},
    "budgets": {"default": {"dailyUsd": BUDGET, "monthlyUsd": 10 * BUDGET}}}}


def job(i: int) -> dict:
    local = i % 5 == 0  # a few that fit on the cluster, to keep the Local path busy too
    return {"metadata": {"name": f"storm-{i:03d}", "namespace": "storm", "annotations": {
        C.MODE: "local" if local else "cloud", C.CAPACITY_TYPE: "on-demand", C.RUNTIME_ESTIMATE: "10m",
        C.INSTANCE_TYPE: TYPE}},
        "spec": {"suspend": True, "template": {"metadata": {"annotations": {"sandbox.spillway.io/run-seconds": "30"}},
                                               "spec": {
            "restartPolicy": "Never", "nodeSelector": {C.GPU_PRODUCT_LABEL: PRODUCT},
            "containers": [{"name": "t", "image": "123456789012.dkr.ecr.us-east-1.amazonaws.com/t:1",
                            "resources": {"limits": {C.GPU_RESOURCE: "1"}}}]}}}}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--kills", type=int, default=50)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--timeout", type=float, default=300.0, help="for the last controller to finish the storm")
    args = ap.parse_args()
    rng = random.Random(args.seed)
    server = SandboxServer(history=200_000).start()
    store = server.store
    add_nodes(store, f"2x8:{PRODUCT}")
    for ns in ("storm", "spillway-system"):
        store.create(store.type_for("", "v1", "namespaces"), "", {"metadata": {"name": ns}})
    machinery = Machinery(store, time_scale=60.0).start()
    sagemaker = SageMakerSandbox(time_scale=60.0, startup_seconds=60, period=0.05).start()
    tmp = Path(tempfile.mkdtemp())
    kubeconfig = server.kubeconfig(tmp / "kubeconfig")
    (tmp / "policy.yaml").write_text(yaml.safe_dump(POLICY))
    env = {**os.environ, "AWS_ACCESS_KEY_ID": "sandbox", "AWS_SECRET_ACCESS_KEY": "sandbox"}
    command = [str(Path(sys.executable).parent / "spillway"), "run", "--kubeconfig", str(kubeconfig),
               "--policy", str(tmp / "policy.yaml"), "--no-leader-elect", "--metrics-port", "-1",
               "--sagemaker-endpoint-url", sagemaker.endpoint_url, "--burst-poll-seconds", "0.5",
               "--log-level", "ERROR"]
    jobs_type = store.type_for("batch", "v1", "jobs")
    created, lives = 0, []
    started = time.monotonic()
    try:
        for _ in range(args.kills):
            for _ in range(2):
                store.create(jobs_type, "storm", job(created))
                created += 1
            proc = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            life = rng.uniform(0.3, 4.0)
            time.sleep(life)
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            lives.append(life)
        kills_s = time.monotonic() - started
        # The survivor: cycles in this process, so every cycle's commitment can be checked.
        from scheduler.controller import Controller, Settings
        from scheduler.sagemaker import SageMaker

        policy = BurstPolicy.model_validate(POLICY)
        ctl = Controller(Kube(api_client(host=server.url)), policy,
                         sagemaker=SageMaker("us-east-1", endpoint_url=sagemaker.endpoint_url,
                                             aws_access_key_id="sandbox", aws_secret_access_key="sandbox"),
                         settings=Settings(burst_poll_seconds=0.0, min_requeue_seconds=0.2))
        worst_commitment, deadline, cycles = 0.0, time.monotonic() + args.timeout, 0
        while time.monotonic() < deadline:
            report = ctl.cycle()
            cycles += 1
            spend = {s.namespace: s.today_usd for s in ctl.ledger.spend(time.time())}.get("storm", 0.0)
            committed = sum(c.committed_usd for c in ctl.ledger.in_flight() if c.namespace == "storm")
            worst_commitment = max(worst_commitment, spend + committed)
            placed = [j for j in store.list(jobs_type, "storm")[0]
                      if (j["metadata"].get("annotations") or {}).get(C.DECISION_PLACEMENT) not in (None, "Wait")]
            if len(placed) == created and all(b.state == DONE for b in ctl.ledger.bursts.values()) and not any(
                    d.placement.value == "Wait" for d in report.decisions):
                break
            time.sleep(0.2)
        finish_s = time.monotonic() - started - kills_s
        figures = check(store, sagemaker, Ledger(Kube(api_client(host=server.url)), "spillway-system"), created)
        figures.update({"kills": args.kills, "jobs": created, "mean_life_s": round(sum(lives) / len(lives), 2),
                        "kills_seconds": round(kills_s, 1), "finish_seconds": round(finish_s, 1),
                        "final_cycles": cycles, "budget_usd": BUDGET,
                        "worst_spend_plus_committed_usd": round(worst_commitment, 2)})
        figures["ok"] = figures["ok"] and worst_commitment <= BUDGET + 1e-6
    finally:
        sagemaker.stop()
        machinery.stop()
        server.stop()
    print(f"{figures['kills']} SIGKILLs over {figures['jobs']} Jobs: {figures['bursts']} bursts, "
          f"{figures['training_jobs']} training jobs, {figures['duplicates_refused']} duplicate creates refused, "
          f"{figures['lost']} lost, spend ${figures['ledger_spend_usd']} (SageMaker billed "
          f"${figures['billed_usd']}), worst spend + committed ${figures['worst_spend_plus_committed_usd']} "
          f"of ${BUDGET:.0f} (most held at any instant ${figures['most_held_usd']}): "
          f"{'OK' if figures['ok'] else 'FAILED'}")
    thresholds.report("bench_controller_kill", figures)
    print(json.dumps(figures))
    sys.exit(0 if figures["ok"] else 1)


def check(store, sagemaker, ledger: Ledger, created: int) -> dict:
    bursts = ledger.load()
    client = sagemaker.client()
    pages = client.get_paginator("list_training_jobs").paginate(NameContains="storm-")
    training = [s["TrainingJobName"] for page in pages for s in page["TrainingJobSummaries"]]
    jobs = {j["metadata"]["uid"]: j for j in store.list(store.type_for("batch", "v1", "jobs"), "storm")[0]}
    per_job: dict[str, list[str]] = {}
    for name in training:
        stem = name.rsplit("-", 1)[0]
        per_job.setdefault(stem, []).append(name)
    twice = {stem: names for stem, names in per_job.items() if len(names) > 1}
    ledger_names = {n for b in bursts.values() for n in b.names}
    lost = sorted(ledger_names - set(training)) + sorted(set(training) - ledger_names)
    price = default_catalog().get(TYPE, "us-east-1").on_demand_usd_per_hour
    billed = 0.0
    for name in training:
        described = client.describe_training_job(TrainingJobName=name)
        billed += (described.get("BillableTimeInSeconds") or 0) * price / 3600
    spend = sum(b.cost_usd for b in bursts.values() if b.state == DONE)
    unplaced = [j["metadata"]["name"] for j in jobs.values()
                if (j["metadata"].get("annotations") or {}).get(C.DECISION_PLACEMENT) in (None, "Wait")]
    refused = sum(n - 1 for name, n in sagemaker_lifecycle.CREATES.items() if name.startswith("storm-") and n > 1)
    # Money held at every instant, from the ledger alone (so the killed controllers' cycles count
    # too): a burst holds its committed figure from its launch to its end, then what it cost.
    moves = sorted([(b.launched_at, b.committed_usd) for b in bursts.values()] +
                   [(b.ended_at, b.cost_usd - b.committed_usd) for b in bursts.values() if b.ended_at])
    held, most = 0.0, 0.0
    for _, usd in moves:
        held += usd
        most = max(most, held)
    ok = not twice and not lost and not unplaced and abs(spend - billed) < 0.005 and len(jobs) == created \
        and most <= BUDGET + 1e-6
    return {"ok": ok, "most_held_usd": round(most, 2),
            "bursts": len(bursts), "training_jobs": len(training), "launched_twice": len(twice),
            "lost": len(lost), "unplaced": len(unplaced), "duplicates_refused": refused,
            "ledger_spend_usd": round(spend, 4), "billed_usd": round(billed, 4)}


if __name__ == "__main__":
    main()
