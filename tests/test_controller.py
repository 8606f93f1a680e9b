"""The controller against the sandbox cluster, with the real kubernetes client, kubectl and
moto's SageMaker (with the sandbox's life cycle, and its refusal of a duplicate name).

No Job controller runs here, so bursts are kept as suspended Jobs (spec.sageMaker.burstAs:
suspendedJob): what is tested is the burst itself (its ledger, its training job, its fallback,
its cost). tests/test_bursts_as_jobs.py runs bursts as Jobs on the virtual node."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from kubernetes import client

from policies import Placement, Reason
from policies import constants as C
from scheduler.controller import Controller, Settings
from scheduler.kube import Kube, api_client
from scheduler.ledger import DONE, LAUNCHING, RUNNING
from scheduler.sagemaker import SageMaker
from sim import sagemaker_lifecycle
from sim.sandbox.ack import AckStandIn
from tests.builders import BUCKET, ROLE, policy
from tests.waiting import wait_for
from tests.sandboxes import IMAGE, SUSPENDED, controller, create, kube_of, manifest

KUBECTL = Path(sys.executable).parent / "kubectl"
ACK = ("sagemaker.services.k8s.aws", "v1alpha1", "trainingjobs")


def adapter(sagemaker) -> SageMaker:
    """The controller's SageMaker adapter (with its own retry policy) on the sandbox's SageMaker."""
    return SageMaker("us-east-1", endpoint_url=sagemaker.endpoint_url, aws_access_key_id="sandbox",
                     aws_secret_access_key="sandbox")


def job_annotations(server, name: str) -> dict:
    return server.store.get(server.store.type_for("batch", "v1", "jobs"), "ml", name)["metadata"].get(
        "annotations") or {}


def events_of(server, name: str) -> list[tuple[str, str]]:
    items, _ = server.store.list(server.store.type_for("", "v1", "events"), "ml")
    return [(e["reason"], e["message"]) for e in items if e["involvedObject"]["name"] == name]


def training_status(sagemaker, name: str) -> str | None:
    """The training job's TrainingJobStatus, or None while SageMaker does not know it."""
    try:
        return sagemaker.client().describe_training_job(TrainingJobName=name)["TrainingJobStatus"]
    except sagemaker.client().exceptions.ClientError:
        return None


def test_a_job_that_fits_runs_locally_and_holds_its_gpus_until_its_pods_bind(cluster):
    create(cluster, manifest("first"))
    create(cluster, manifest("second", **{C.MODE: "local"}))
    ctl = controller(cluster)
    report = ctl.cycle()
    placed = {d.job: (d.placement, d.reason) for d in report.decisions}
    assert placed == {"ml/first": (Placement.LOCAL, Reason.LOCAL_CAPACITY_AVAILABLE),
                      "ml/second": (Placement.WAIT, Reason.WAITING_FOR_LOCAL_CAPACITY)}
    jobs = cluster.store.type_for("batch", "v1", "jobs")
    assert cluster.store.get(jobs, "ml", "first")["spec"]["suspend"] is False
    assert job_annotations(cluster, "first")[C.LOCAL_NODES] == "gpu-node-000=1"
    [(reason, message)] = events_of(cluster, "first")  # one Event per decision, with its Reason
    assert reason == "LocalCapacityAvailable" and message.endswith("; un-suspended on gpu-node-000=1")
    # No pod exists yet (no Job controller runs here): the decision itself holds the 8 GPUs.
    again = ctl.cycle()
    assert [(d.job, d.placement) for d in again.decisions] == [("ml/second", Placement.WAIT)]
    assert again.writes == 0, "a second cycle over the same world writes nothing"
    assert cluster.store.get(jobs, "ml", "second")["spec"]["suspend"] is True
    sample = ctl.metrics.registry.get_sample_value
    assert sample("spillway_decisions_total", {"placement": "Local", "reason": "LocalCapacityAvailable"}) == 1
    assert sample("spillway_decisions_total", {"placement": "Wait", "reason": "WaitingForLocalCapacity"}) == 1
    assert sample("spillway_queue_jobs") == 1 and sample("spillway_cycle_seconds_count") == 2


def test_jobs_behind_the_planning_depth_are_told_once_and_planned_when_they_move_up(cluster):
    for name in ("first", "second", "third"):  # queued in this order (same second: by name)
        create(cluster, manifest(name, **({} if name == "first" else {C.MODE: "local"})))
    ctl = controller(cluster, local={"planningDepth": 2})
    placed = {d.job: d.reason for d in ctl.cycle().decisions}
    assert placed == {"ml/first": Reason.LOCAL_CAPACITY_AVAILABLE, "ml/second": Reason.WAITING_FOR_LOCAL_CAPACITY,
                      "ml/third": Reason.QUEUED_BEYOND_PLANNING_DEPTH}
    [(reason, message)] = events_of(cluster, "third")
    assert reason == "QueuedBeyondPlanningDepth" and "planningDepth" in message
    assert job_annotations(cluster, "third")[C.DECISION_REASON] == "QueuedBeyondPlanningDepth"
    # "first" left the queue, so "third" moves up into the first two and is planned.
    assert {d.job: d.reason for d in ctl.cycle().decisions}["ml/third"] == Reason.WAITING_FOR_LOCAL_CAPACITY
    assert job_annotations(cluster, "third")[C.DECISION_REASON] == "WaitingForLocalCapacity"


def test_a_stop_ends_a_controller_that_waits_on_a_quiet_cluster_at_once(cluster):
    import threading

    ctl = controller(cluster)
    stop = threading.Event()
    thread = threading.Thread(target=ctl.run, args=(stop,), daemon=True)
    thread.start()
    wait_for(ctl.metrics.ready.is_set, what="the first cycle")  # then it waits for a change, up to 5 min
    stop.set()  # what SIGTERM and Ctrl-C do in `spillway run --no-leader-elect`
    thread.join(timeout=5)
    assert not thread.is_alive(), "the loop woke for the stop instead of sleeping out its wait"


def test_metrics_health_and_readiness_are_served(cluster):
    import urllib.error
    import urllib.request

    from scheduler.metrics import serve

    ctl = controller(cluster)
    server = serve(ctl.metrics, 0, host="127.0.0.1")
    url = f"http://127.0.0.1:{server.server_port}"
    try:
        with pytest.raises(urllib.error.HTTPError) as exc:
            urllib.request.urlopen(f"{url}/readyz", timeout=5)
        assert exc.value.code == 503, "not ready before it has read the cluster"
        ctl.cycle()
        assert urllib.request.urlopen(f"{url}/readyz", timeout=5).status == 200
        assert urllib.request.urlopen(f"{url}/healthz", timeout=5).status == 200
        text = urllib.request.urlopen(f"{url}/metrics", timeout=5).read().decode()
        assert "spillway_cycle_seconds_count 1.0" in text and "# TYPE spillway_decisions_total counter" in text
    finally:
        server.shutdown()


def test_a_burst_is_one_ack_training_job_across_restarts_and_its_outcome_reaches_kubectl(cluster, sagemaker,
                                                                                      tmp_path):
    ack = AckStandIn(cluster.store, sagemaker.client(), period=0.02).start()
    try:
        config = cluster.kubeconfig(tmp_path / "kubeconfig")
        kubectl = lambda *a: subprocess.run([str(KUBECTL), "--kubeconfig", str(config), *a], check=True,  # noqa
                                            capture_output=True, text=True, timeout=30).stdout
        job = manifest("burst", **{C.MODE: "cloud", C.CAPACITY_TYPE: "on-demand", C.RUNTIME_ESTIMATE: "10m"})
        (tmp_path / "job.yaml").write_text(yaml.safe_dump(job))
        kubectl("apply", "-f", str(tmp_path / "job.yaml"))
        sm = adapter(sagemaker)
        first = controller(cluster, sm=sm)
        [d] = first.cycle().decisions
        assert (d.placement, d.reason) == (Placement.SAGEMAKER_ON_DEMAND, Reason.FORCED_CLOUD)
        name = job_annotations(cluster, "burst")[C.SAGEMAKER_JOB_NAME]
        crs = lambda: cluster.store.list(cluster.store.type_for(*ACK), "ml")[0]  # noqa: E731
        assert [cr["metadata"]["name"] for cr in crs()] == [name]
        # A restarted controller rebuilds what is in flight from the ledger, and launches nothing.
        second = controller(cluster, sm=sm)
        assert second.cycle().decisions == []
        [(uid, burst)] = second.ledger.bursts.items()
        assert burst.state in (LAUNCHING, RUNNING) and uid == first.ledger.bursts.popitem()[0]
        assert len(crs()) == 1
        in_flight = second.ledger.in_flight()
        assert [(c.job, c.instance_type, c.committed_usd > 0) for c in in_flight] == [
            ("ml/burst", d.launch.instance_type, True)]
        wait_for(lambda: sagemaker.client().describe_training_job(TrainingJobName=name)["TrainingJobStatus"]
                 == "Completed")
        second.cycle()
        ann = job_annotations(cluster, "burst")
        assert ann[C.SAGEMAKER_STATUS] == "Completed/Completed"
        described = sagemaker.client().describe_training_job(TrainingJobName=name)
        price = second.catalog.get(d.launch.instance_type, "us-east-1").on_demand_usd_per_hour
        cost = described["BillableTimeInSeconds"] * price / 3600
        assert float(ann[C.COST_USD]) == pytest.approx(cost, abs=0.01)
        [spend] = second.ledger.spend(time.time())
        assert spend.today_usd == pytest.approx(cost, abs=1e-4)
        assert second.ledger.bursts and all(b.state == DONE for b in second.ledger.bursts.values())
        assert sagemaker_lifecycle.CREATES[name] == 1
        described_text = kubectl("describe", "job", "burst", "-n", "ml")
        for word in ("ForcedCloud", "launched SageMaker training job", "SageMakerCompleted", name):
            assert word in described_text
    finally:
        ack.stop()


def test_spot_gives_way_to_on_demand_once_when_the_fallback_rule_says_so(cluster, sagemaker):
    from policies.model.units import format_time

    now = [time.time()]
    deadline = format_time(now[0] + 4 * 3600)
    create(cluster, manifest("spotty", **{C.MODE: "cloud", C.CAPACITY_TYPE: "spot", C.DEADLINE: deadline,
                                         C.CHECKPOINT_S3_URI: f"{BUCKET}ckpt/spotty/"}))
    sm = adapter(sagemaker)
    ctl = Controller(kube_of(cluster), policy(sageMaker={"emit": "api", **SUSPENDED}), sagemaker=sm,
                     clock=lambda: now[0])
    [d] = ctl.cycle().decisions
    assert d.placement == Placement.SAGEMAKER_SPOT and d.launch.fallback_time > now[0]
    spot_name = job_annotations(cluster, "spotty")[C.SAGEMAKER_JOB_NAME]
    ctl.cycle()
    [burst] = ctl.ledger.bursts.values()
    assert burst.names == [spot_name], "before the fallback time, spot keeps running"
    now[0] = d.launch.fallback_time + 1  # no progress checkpointed: on-demand must start now to keep the deadline
    ctl.cycle()
    [burst] = ctl.ledger.bursts.values()
    od_name = burst.names[1]
    assert burst.names == [spot_name, f"{spot_name}-od1"]
    od = sagemaker.client().describe_training_job(TrainingJobName=od_name)
    assert od["EnableManagedSpotTraining"] is False and od["CheckpointConfig"]["S3Uri"] == f"{BUCKET}ckpt/spotty/"
    assert sagemaker.client().describe_training_job(TrainingJobName=spot_name)["TrainingJobStatus"] in (
        "Stopping", "Stopped")
    ann = job_annotations(cluster, "spotty")
    assert ann[C.SAGEMAKER_JOB_NAME] == od_name and "relaunched on on-demand" in ann[C.FALLBACK]
    assert any(r == "SpotFellBackToOnDemand" for r, _ in events_of(cluster, "spotty"))
    ctl.cycle()
    ctl.cycle()
    assert sagemaker_lifecycle.CREATES[od_name] == 1 and sagemaker_lifecycle.CREATES[spot_name] == 1


def test_planned_spot_leaves_an_outage_for_on_demand_and_comes_back_once_each(cluster, sagemaker):
    """spot.fallback planned: with spot capacity gone, the plan sends the burst to on-demand, and
    later back to managed spot; each relaunch is created once, and a restarted controller acts
    neither twice in a tick nor forgets what it saw."""
    from policies.model.units import format_time

    start = time.time()
    now = [start]
    deadline = format_time(start + 10 * 3600 + 900)  # 10 h to the deadline less the safety margin
    create(cluster, manifest("planner", **{C.MODE: "cloud", C.CAPACITY_TYPE: "spot", C.DEADLINE: deadline,
                                           C.RUNTIME_ESTIMATE: "8h",
                                           C.CHECKPOINT_S3_URI: f"{BUCKET}ckpt/planner/"}))
    p = policy(sageMaker={"emit": "api", **SUSPENDED}, spot={"fallback": "planned", "planTickSeconds": 1800})
    sm = adapter(sagemaker)

    def ctl() -> Controller:
        return Controller(kube_of(cluster), p, sagemaker=sm, clock=lambda: now[0])

    sagemaker.set_spot_capacity(False)
    try:
        first = ctl()
        [d] = first.cycle().decisions
        assert d.placement == Placement.SAGEMAKER_SPOT and "follows a spot plan every 30 min" in d.message
        spot_name = job_annotations(cluster, "planner")[C.SAGEMAKER_JOB_NAME]
        seen = []
        for tick in range(1, 20):
            now[0] = start + tick * 1800 + 1
            ctl().cycle()  # a new controller each tick: what it knows comes from the ledger
            [burst] = _ledger(cluster).values()
            seen.append((tick, list(burst.names)))
            if len(burst.names) == 2:
                sagemaker.set_spot_capacity(True)  # on on-demand nothing of spot shows; it is back meanwhile
                # SageMaker's life cycle runs on real time, the controller's clock does not: the next
                # tick waits until the on-demand job trains, or on a loaded machine the plan could go
                # back to spot before it trained a second (trained == 0 below).
                wait_for(lambda: sagemaker.trained_seconds(burst.names[1]) > 0, what="on-demand training")
            if len(burst.names) == 3:
                break
        names = seen[-1][1]
        assert names == [spot_name, f"{spot_name}-od1", f"{spot_name}-sp2"], seen
        assert now[0] < start + 10 * 3600
        od = sagemaker.client().describe_training_job(TrainingJobName=names[1])
        back = sagemaker.client().describe_training_job(TrainingJobName=names[2])
        assert od["EnableManagedSpotTraining"] is False and back["EnableManagedSpotTraining"] is True
        assert back["CheckpointConfig"]["S3Uri"] == f"{BUCKET}ckpt/planner/"
        assert sagemaker.client().describe_training_job(TrainingJobName=names[1])["TrainingJobStatus"] in (
            "Stopping", "Stopped")
        reasons = [r for r, _ in events_of(cluster, "planner")]
        assert "SpotFellBackToOnDemand" in reasons and "SpotResumed" in reasons
        [burst] = _ledger(cluster).values()
        assert burst.plan_tick == seen[-1][0] and burst.trained[names[1]] > 0
        again = ctl()
        again.cycle()
        again.cycle()  # the same tick, a restarted controller: nothing more
        assert [b.names for b in _ledger(cluster).values()] == [names]
        assert all(sagemaker_lifecycle.CREATES[n] == 1 for n in names)
    finally:
        sagemaker.set_spot_capacity(True)


def _ledger(server) -> dict:
    from scheduler.ledger import Ledger

    ledger = Ledger(kube_of(server), "spillway-system")
    ledger.load()
    return ledger.bursts


class Crash(Exception):
    """The controller process dies here."""


def test_a_crash_around_the_create_never_launches_twice(cluster, sagemaker):
    create(cluster, manifest("crashy", command=["python", "train.py"], **{C.MODE: "cloud",
                                                                      C.CAPACITY_TYPE: "on-demand"}))
    sm = adapter(sagemaker)
    real = sm.create_training_job

    def dies_after_sending(request):
        real(request)
        raise Crash()

    first = controller(cluster, emit="api", sm=sm)
    sm.create_training_job = dies_after_sending
    with pytest.raises(Crash):
        first.cycle()
    sm.create_training_job = real
    name = job_annotations(cluster, "crashy")[C.SAGEMAKER_JOB_NAME]
    restarted = controller(cluster, emit="api", sm=sm)
    assert restarted.cycle().decisions == []
    assert sagemaker_lifecycle.CREATES[name] == 1, "the restarted controller found the job: it sent nothing"
    jobs = sagemaker.client().list_training_jobs(NameContains=name)["TrainingJobSummaries"]
    assert len(jobs) == 1
    [burst] = restarted.ledger.bursts.values()
    assert burst.state == RUNNING and burst.arns[name] == jobs[0]["TrainingJobArn"]
    request = sagemaker.client().describe_training_job(TrainingJobName=name)
    assert request["AlgorithmSpecification"]["ContainerEntrypoint"] == ["python", "train.py"]
    assert C.FINALIZER in cluster.store.get(cluster.store.type_for("batch", "v1", "jobs"), "ml",
                                            "crashy")["metadata"]["finalizers"]


def test_deleting_a_bursting_job_stops_its_training_job_and_lets_the_job_go(cluster, sagemaker):
    create(cluster, manifest("doomed", **{C.MODE: "cloud", C.CAPACITY_TYPE: "on-demand"}))
    sm = adapter(sagemaker)
    ctl = controller(cluster, emit="api", sm=sm)
    ctl.cycle()
    name = job_annotations(cluster, "doomed")[C.SAGEMAKER_JOB_NAME]
    batch = client.BatchV1Api(api_client(host=cluster.url))
    batch.delete_namespaced_job("doomed", "ml")
    assert batch.read_namespaced_job("doomed", "ml").metadata.deletion_timestamp is not None
    ctl.cycle()
    status = wait_for(lambda: (s := sagemaker.client().describe_training_job(TrainingJobName=name)
                               ["TrainingJobStatus"]) in ("Stopping", "Stopped") and s)
    assert status in ("Stopping", "Stopped")
    with pytest.raises(client.ApiException) as exc:
        batch.read_namespaced_job("doomed", "ml")
    assert exc.value.status == 404
    [burst] = ctl.ledger.bursts.values()
    assert burst.state == DONE and burst.outcome == "Stopped/JobDeleted"


def test_bad_annotations_are_told_once_and_the_job_is_left_alone(cluster):
    create(cluster, manifest("typo", **{"spillway.io/deadlin": "tomorrow", C.RUNTIME_ESTIMATE: "soon"}))
    ctl = controller(cluster)
    assert ctl.cycle().decisions == []
    ann = job_annotations(cluster, "typo")
    assert "did you mean 'spillway.io/deadline'" in ann[C.ANNOTATION_ERROR]
    assert "runtime-estimate" in ann[C.ANNOTATION_ERROR]
    [(reason, message)] = events_of(cluster, "typo")
    assert reason == "InvalidAnnotations" and "spillway.io/deadlin" in message
    assert ctl.cycle().writes == 0
    job = cluster.store.get(cluster.store.type_for("batch", "v1", "jobs"), "ml", "typo")
    assert job["spec"]["suspend"] is True and C.DECISION_PLACEMENT not in ann


def test_a_namespace_cannot_burst_outside_its_allowlist(cluster):
    create(cluster, manifest("elsewhere", **{C.MODE: "cloud", C.ROLE_ARN: "arn:aws:iam::999999999999:role/Other"}))
    ctl = controller(cluster, allowlists={"ml": {"roleArns": [ROLE], "s3Prefixes": [BUCKET]}})
    [d] = ctl.cycle().decisions
    assert d.reason == Reason.BURST_NOT_ALLOWED and "999999999999" in d.message
    assert cluster.store.list(cluster.store.type_for(*ACK), "ml")[0] == []
    assert json.loads(json.dumps(job_annotations(cluster, "elsewhere")))[C.DECISION_REASON] == "BurstNotAllowed"


@pytest.mark.slow
def test_of_two_replicas_only_the_leader_acts_and_a_killed_leader_is_replaced(cluster, tmp_path):
    import os
    import signal

    config = cluster.kubeconfig(tmp_path / "kubeconfig")
    spillway = str(Path(sys.executable).parent / "spillway")
    policy_file = tmp_path / "policy.yaml"
    policy_file.write_text(yaml.safe_dump({"apiVersion": "spillway.io/v1alpha1", "kind": "BurstPolicy", "spec": {
        "allowlists": {"*": {"roleArns": [ROLE], "s3Prefixes": [BUCKET]}}, "sageMaker": SUSPENDED}}))
    crs = cluster.store.type_for(*ACK)
    created: list[str] = []
    cluster.store.listeners.append(lambda e: created.append(e.obj["metadata"]["name"])
                                   if (e.group, e.plural, e.type) == (ACK[0], ACK[2], "ADDED") else None)
    replicas = {name: subprocess.Popen(
        [spillway, "run", "--kubeconfig", str(config), "--policy", str(policy_file), "--no-sagemaker",
         "--lease-seconds", "3", "--identity", name, "--log-level", "WARNING", "--metrics-port", "0"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True) for name in ("replica-a", "replica-b")}
    lease = cluster.store.type_for("coordination.k8s.io", "v1", "leases")
    try:
        holder = lambda: (cluster.store.objects[lease.key].get(("spillway-system", "spillway-controller"))  # noqa
                          or {}).get("spec", {}).get("holderIdentity")
        first = wait_for(holder, timeout=30)
        create(cluster, manifest("one", **{C.MODE: "cloud", C.CAPACITY_TYPE: "on-demand"}))
        wait_for(lambda: len(cluster.store.list(crs, "ml")[0]) == 1, timeout=30)
        os.kill(replicas[first].pid, signal.SIGKILL)
        replicas[first].wait(timeout=10)
        create(cluster, manifest("two", **{C.MODE: "cloud", C.CAPACITY_TYPE: "on-demand"}))
        wait_for(lambda: len(cluster.store.list(crs, "ml")[0]) == 2, timeout=30)
        second = holder()
        assert second != first and second in replicas
        assert sorted(created) == sorted(cr["metadata"]["name"] for cr in cluster.store.list(crs, "ml")[0])
        assert len(created) == 2, "each burst was created once, by whichever replica led"
    finally:
        for p in replicas.values():
            p.kill()
            p.wait(timeout=10)


def test_conflicts_throttling_server_errors_and_expired_watches_are_survived(cluster, sagemaker):
    """What a busy real cluster and SageMaker do: every fault below is answered at least once, and
    the outcome is the fault-free one: the Local Job runs, the burst runs once."""
    faults = cluster.faults
    faults.inject(409, verb="PATCH", plural="jobs")  # the first write loses a race
    faults.inject(429, verb="LIST", plural="pods", times=2)  # throttled, then served (Retry-After: 0)
    faults.inject(500, verb="CREATE", plural="events", times=2)
    faults.inject(503, verb="LIST", plural="nodes")
    faults.inject(410, verb="WATCH", plural="jobs")  # the watch's version expired: list again
    sagemaker_lifecycle.inject_fault("CreateTrainingJob", "ThrottlingException", 400, times=3)
    sagemaker_lifecycle.inject_fault("DescribeTrainingJob", "InternalFailure", 500, times=2)
    create(cluster, manifest("fits", gpus=4, **{C.MODE: "local"}))
    create(cluster, manifest("bursts", **{C.MODE: "cloud", C.CAPACITY_TYPE: "on-demand", C.RUNTIME_ESTIMATE: "10h"}))
    ctl = controller(cluster, emit="api", sm=adapter(sagemaker))
    changes = []
    stop = __import__("threading").Event()
    ctl.kube.watch_changes(lambda: changes.append(1), stop)
    try:
        jobs = cluster.store.type_for("batch", "v1", "jobs")
        for _ in range(3):
            ctl.cycle()
        assert cluster.store.get(jobs, "ml", "fits")["spec"]["suspend"] is False
        name = job_annotations(cluster, "bursts")[C.SAGEMAKER_JOB_NAME]
        assert sagemaker_lifecycle.CREATES[name] == 1, "throttled calls never reached the backend"
        assert sagemaker.client().describe_training_job(TrainingJobName=name)["TrainingJobStatus"] == "InProgress"
        [burst] = ctl.ledger.bursts.values()
        assert burst.state == RUNNING and burst.arns[name]
        wait_for(lambda: faults.exhausted)  # the expired watch was served too...
        before = len(changes)
        create(cluster, manifest("later", gpus=1, **{C.MODE: "local"}))
        wait_for(lambda: len(changes) > before)  # ...and the watch came back and sees new Jobs
        assert {code for code, _, _ in faults.served} == {409, 410, 429, 500, 503}
        assert not sagemaker_lifecycle._FAULTS
    finally:
        stop.set()


def test_sagemaker_refuses_a_second_job_under_a_name_and_the_adapter_adopts_the_first(sagemaker):
    request = dict(TrainingJobName="twice-0123456789", RoleArn=ROLE,
                   AlgorithmSpecification={"TrainingImage": IMAGE, "TrainingInputMode": "File"},
                   ResourceConfig={"InstanceType": "ml.g5.xlarge", "InstanceCount": 1, "VolumeSizeInGB": 50},
                   OutputDataConfig={"S3OutputPath": BUCKET}, StoppingCondition={"MaxRuntimeInSeconds": 3600})
    raw = sagemaker.client()
    raw.create_training_job(**request)
    with pytest.raises(raw.exceptions.ResourceInUse):
        raw.create_training_job(**request)
    arn = adapter(sagemaker).create_training_job(request)
    assert arn == raw.describe_training_job(TrainingJobName="twice-0123456789")["TrainingJobArn"]
    assert sagemaker_lifecycle.CREATES["twice-0123456789"] == 3


def test_a_failed_training_job_is_told_on_the_job_and_what_it_billed_is_charged(cluster, sagemaker):
    create(cluster, manifest("breaks", **{C.MODE: "cloud", C.CAPACITY_TYPE: "on-demand", C.RUNTIME_ESTIMATE: "10h"}))
    ctl = controller(cluster, emit="api", sm=adapter(sagemaker))
    ctl.cycle()
    name = job_annotations(cluster, "breaks")[C.SAGEMAKER_JOB_NAME]
    wait_for(lambda: sagemaker.client().describe_training_job(TrainingJobName=name)["SecondaryStatus"] == "Training")
    sagemaker.fail(name, "AlgorithmError: CUDA out of memory")
    wait_for(lambda: sagemaker.client().describe_training_job(TrainingJobName=name)["TrainingJobStatus"] == "Failed")
    ctl.cycle()
    ann = job_annotations(cluster, "breaks")
    assert ann[C.SAGEMAKER_STATUS] == "Failed/Failed"
    [(reason, message)] = [e for e in events_of(cluster, "breaks") if e[0] == "SageMakerFailed"]
    assert "CUDA out of memory" in message
    [burst] = ctl.ledger.bursts.values()
    billed = sagemaker.client().describe_training_job(TrainingJobName=name)["BillableTimeInSeconds"]
    assert burst.state == DONE and burst.cost_usd == pytest.approx(
        billed * ctl.catalog.get(burst.launch.instance_type, "us-east-1").on_demand_usd_per_hour / 3600, abs=1e-4)
    assert C.FINALIZER not in (cluster.store.get(cluster.store.type_for("batch", "v1", "jobs"), "ml", "breaks")
                               ["metadata"].get("finalizers") or [])


def test_deleting_a_job_burst_as_an_ack_resource_stops_its_training_job(cluster, sagemaker):
    ack = AckStandIn(cluster.store, sagemaker.client(), period=0.02).start()
    try:
        create(cluster, manifest("acked", **{C.MODE: "cloud", C.CAPACITY_TYPE: "on-demand", C.RUNTIME_ESTIMATE: "10h"}))
        ctl = controller(cluster, sm=adapter(sagemaker))
        ctl.cycle()
        name = job_annotations(cluster, "acked")[C.SAGEMAKER_JOB_NAME]
        wait_for(lambda: training_status(sagemaker, name) == "InProgress")  # the ACK stand-in created it
        client.BatchV1Api(api_client(host=cluster.url)).delete_namespaced_job("acked", "ml")
        # The TrainingJob resource goes with its owner, and the ACK finalizer stops the training job.
        wait_for(lambda: training_status(sagemaker, name) in ("Stopping", "Stopped"))
        wait_for(lambda: not cluster.store.list(cluster.store.type_for(*ACK), "ml")[0])
        ctl.cycle()
        [burst] = ctl.ledger.bursts.values()
        assert burst.state == DONE and burst.outcome == "Stopped/JobDeleted"
    finally:
        ack.stop()


def test_an_api_server_that_does_not_answer_is_one_line_and_a_running_controller_keeps_trying(tmp_path):
    """Hostile input: `spillway run --once` against a dead address printed urllib3's MaxRetryError
    traceback, and a running controller's thread died on it (found on the real control plane,
    across an API server restart)."""
    config = tmp_path / "dead.kubeconfig"
    config.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "c",
        "clusters": [{"name": "c", "cluster": {"server": "http://127.0.0.1:9"}}],
        "users": [{"name": "u", "user": {"token": "x"}}],
        "contexts": [{"name": "c", "context": {"cluster": "c", "user": "u"}}]}))
    done = subprocess.run([str(Path(sys.executable).parent / "spillway"), "run", "--once", "--kubeconfig",
                           str(config), "--no-sagemaker"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert done.stderr.strip().splitlines()[-1] == (
        "--kubeconfig: error: no answer from the Kubernetes API at http://127.0.0.1:9 (connection refused) (fix: "
        "check that the API server is up and that the kubeconfig points at it (kubectl cluster-info))")
    import threading

    ctl = Controller(Kube(api_client(host="http://127.0.0.1:9", retries=0)), policy(),
                     settings=Settings(min_requeue_seconds=0.01), clock=time.time)
    stop = threading.Event()
    thread = threading.Thread(target=ctl.run, args=(stop,), kwargs={"watch": False}, daemon=True)
    thread.start()
    try:
        failures = lambda: ctl.metrics.registry.get_sample_value("spillway_cycle_errors_total", {"kind": "kube-0"})  # noqa
        wait_for(lambda: (failures() or 0) >= 3)  # failed, backed off, and tried again, twice
        assert thread.is_alive()
    finally:
        stop.set()
        thread.join(timeout=10)
