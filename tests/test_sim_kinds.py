"""The simulator with transform and tuning Jobs: the trace columns, the engine's runs of each kind
as the core decides them, and the report's rows per kind, against figures worked out by hand."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from policies import InputError, load_policy
from policies.model import Node, SageMakerKind, Strategy
from scheduler.cli import main
from sim.cli_world import parse_cluster
from sim.cloud import CloudModel
from sim.engine import SimConfig, simulate
from sim.plot_kinds import kind_series
from sim.plots import timeline_figure
from sim.presets import baseline
from sim.report import jobs_csv, render, summarize
from sim.sweep_burst import SweepShape, run_sweep
from sim.traces import TraceJob, load_user_csv

H = 3600.0
EXAMPLE = Path(__file__).resolve().parent.parent / "policies" / "examples" / "mixed-kinds-trace.csv"
TRANSFORM_POLICY = EXAMPLE.parent / "transform-policy.yaml"
# Prices of the bundled catalog (us-east-1), per instance-hour: the type a 1-GPU pod bursts to.
G4DN_XLARGE, G4DN_XLARGE_SPOT, G4DN_XLARGE_TRANSFORM = 0.7364, 0.2651, 0.736
TUNING, TRANSFORM = SageMakerKind.TUNING, SageMakerKind.TRANSFORM


def run(jobs, policy, cloud, nodes=(Node("n0", 8),)):
    sim, records = simulate(jobs, SimConfig(tuple(nodes), policy, cloud, 0.0, 0))
    return sim, {r.request.name: r for r in records}


def hog(hours: float = 2.0) -> TraceJob:
    """A training Job that takes the whole 8-GPU node from t=0."""
    return TraceJob(0, 0.0, 8, hours * H, name="hog")


# --- the trace ------------------------------------------------------------------------------------


def test_the_example_trace_has_all_three_kinds_with_their_shapes():
    jobs = {j.name: j for j in load_user_csv(EXAMPLE)}
    assert {j.kind for j in jobs.values()} == set(SageMakerKind)
    sweep = jobs["sweep-lr"]
    assert (sweep.kind, sweep.trials, sweep.pods, sweep.strategy, sweep.waves) == (TUNING, 8, 4, Strategy.RANDOM, 2)
    assert sweep.run_seconds == 2 * H and sweep.gpu_seconds == 8 * H  # 2 waves of 1 h; 8 trials x 1 GPU x 1 h
    assert jobs["sweep-grid"].strategy == Strategy.GRID and jobs["sweep-arch"].strategy == Strategy.BAYESIAN
    assert (jobs["score-batch"].kind, jobs["score-batch"].pods, jobs["score-batch"].trials) == (TRANSFORM, 2, 1)
    assert jobs["finetune-a"].kind == SageMakerKind.TRAINING  # an empty kind is training


def row_problems(tmp_path, rows: str) -> dict[int, tuple[str, str]]:
    path = tmp_path / "t.csv"
    path.write_text("arrival_s,gpus,duration_s,pods,kind,trials,strategy\n" + rows)
    with pytest.raises(InputError) as exc:
        load_user_csv(path)
    return {i.line: (i.problem, i.fix) for i in exc.value.issues if i.line is not None}


def test_bad_kind_values_name_the_row_the_column_and_the_fix(tmp_path):
    problems = row_problems(tmp_path, "0,1,60,1,Tune,,\n0,1,60,2,transform,3,\n0,1,60,2,tuning,,\n"
                                      "0,1,60,2,tuning,0,\n0,1,60,2,tuning,4,Sobol\n0,1,60,2,tuning,4,grid\n")
    assert set(problems) == {2, 3, 4, 5, 6}  # line 7 (grid, any case) is good
    assert problems[2] == ("kind='Tune' is not a kind of Job", "write training, transform or tuning (empty: training)")
    assert problems[3][0] == "trials given on a transform row; only a tuning sweep has them"
    assert "trials is empty" in problems[4][0] and "pods is how many run at once" in problems[4][1]
    assert problems[5][0] == "trials='0' must be at least 1"
    assert problems[6] == ("strategy='Sobol' is not a tuning strategy",
                           "write one of Random, Grid, Bayesian, Hyperband (empty: Random)")


# --- the engine, by hand -----------------------------------------------------------------------------


def test_a_bursting_sweep_pays_each_trial_and_ends_after_its_waves():
    """8 trials, 4 at once, 1 h each, on-demand with a 10-minute start-up: each trial is a training
    job of its own, so 8 x (600 s + 1 h) at the 1-GPU type's price, over 2 waves of (600 s + 1 h)."""
    cloud = CloudModel(startup_seconds=600, spot="none")
    sweep = TraceJob(1, 60.0, 1, 1 * H, 4, name="sweep", kind=TUNING, trials=8)
    sim, r = run([hog(), sweep], baseline("no-wait"), cloud)
    s = r["sweep"]
    assert (s.placement, s.instance_type) == ("SageMakerOnDemand", "ml.g4dn.xlarge")
    assert s.start == 60.0 and s.finish == pytest.approx(60.0 + 2 * (600 + H))
    assert s.on_demand_usd == pytest.approx(8 * (600 + H) / H * G4DN_XLARGE)  # $6.87
    summary = summarize("no-wait", sim, list(r.values()))
    assert summary.cloud_gpu_hours == pytest.approx(8.0)  # the trials' work, 8 x 1 GPU x 1 h
    assert summary.slowdown_mean == pytest.approx((1 + (2 * (600 + H)) / (2 * H)) / 2)  # against 2 waves locally


def test_an_uneven_sweep_runs_a_short_last_wave_and_pays_only_its_trials():
    cloud = CloudModel(startup_seconds=0, spot="none")
    sweep = TraceJob(1, 0.0, 1, 1 * H, 4, name="sweep", kind=TUNING, trials=5)
    _, r = run([hog(), sweep], baseline("no-wait"), cloud)
    assert r["sweep"].finish == pytest.approx(2 * H)  # waves of 4 and 1
    assert r["sweep"].cloud_usd == pytest.approx(5 * G4DN_XLARGE)  # 5 trials, not 2 full waves of 4


def test_a_sweep_on_the_cluster_holds_its_pods_for_its_waves():
    """Locally the core holds parallelism x GPUs for waves x trial: a 2-GPU Job behind a sweep of
    8 two-GPU trials, 4 at once (all 8 GPUs), starts when both waves are done."""
    sweep = TraceJob(0, 0.0, 2, 1 * H, 4, name="sweep", kind=TUNING, trials=8)
    late = TraceJob(1, 60.0, 2, 0.5 * H, name="late")
    sim, r = run([sweep, late], baseline("local-only"), CloudModel(startup_seconds=0, spot="none"))
    assert (r["sweep"].start, r["sweep"].finish) == (0.0, 2 * H)
    assert (r["late"].start, r["late"].finish) == (2 * H, 2.5 * H)
    assert summarize("local-only", sim, list(r.values())).local_gpu_hours == pytest.approx(8 * 2 + 1)


def test_a_hyperband_sweep_bursts_even_when_the_cluster_is_free_and_a_bayesian_one_runs_there():
    cloud = CloudModel(startup_seconds=0, spot="none")
    hyperband = TraceJob(0, 0.0, 1, 1 * H, 2, name="hyperband", kind=TUNING, trials=4, strategy=Strategy.HYPERBAND)
    _, r = run([hyperband], baseline("no-wait"), cloud)
    assert (r["hyperband"].placement, r["hyperband"].reason) == ("SageMakerOnDemand", "ForcedCloud")
    bayes = TraceJob(0, 0.0, 1, 1 * H, 2, name="bayes", kind=TUNING, trials=4, strategy=Strategy.BAYESIAN)
    _, r = run([bayes], baseline("no-wait"), cloud)
    assert (r["bayes"].placement, r["bayes"].reason) == ("Local", "LocalCapacityAvailable")


def test_a_spot_sweep_pays_the_spot_price_per_trial():
    cloud = CloudModel(startup_seconds=300, spot="none")
    sweep = TraceJob(0, 0.0, 1, 1 * H, 3, name="sweep", kind=TUNING, trials=6)
    _, r = run([sweep], baseline("always-spot"), cloud)
    assert r["sweep"].placement == "SageMakerSpot"
    assert r["sweep"].spot_usd == pytest.approx(6 * (300 + H) / H * G4DN_XLARGE_SPOT)
    assert r["sweep"].finish == pytest.approx(2 * (300 + H))


class OneInterruption:
    """Spot capacity always there, one interruption at `at` (then none)."""

    def __init__(self, at: float):
        self.at = at

    def available(self, t: float) -> bool:
        return True

    def next_change(self, t: float) -> float:
        return float("inf")

    def next_interruption(self, t: float) -> float:
        at, self.at = self.at, float("inf")
        return at if at > t else float("inf")


@pytest.mark.parametrize("checkpointable", [True, False])
def test_an_interrupted_trial_pays_the_restart_and_keeps_its_progress_only_when_checkpointed(checkpointable):
    """Two trials one at a time, start-up 100 s, 1,000 s each, $1/s, restart 50 s; trial 0 is
    interrupted at 600 s, after 500 s of work."""
    shape = SweepShape(2, 1, 1000.0, 100.0, 1.0, True, checkpointable, 50.0)
    out = run_sweep(shape, 0.0, lambda i: OneInterruption(600.0 if i == 0 else float("inf")))
    first = 600 + 50 + (500 if checkpointable else 1000)  # the rest of its work, or all of it again
    assert out.end == pytest.approx(first + 100 + 1000)
    assert out.usd == pytest.approx(out.end)  # billed throughout, one instance at a time
    assert out.wasted_usd == pytest.approx(100 + 50 + 100 + (0 if checkpointable else 500))
    assert out.preemptions == 1


def test_a_transform_burst_pays_the_transform_price_on_demand_after_its_own_start_up():
    """Two instances for 1 h after a 5-minute transform start-up (training's is 10 minutes), at
    the transform price, on on-demand even when the Job could run on spot."""
    cloud = CloudModel(startup_seconds=600, spot="none", transform_startup_seconds=300)
    xf = TraceJob(1, 60.0, 1, 1 * H, 2, checkpointable=True, name="xf", kind=TRANSFORM)
    sim, r = run([hog(), xf], baseline("no-wait"), cloud)
    assert (r["xf"].placement, r["xf"].instance_type) == ("SageMakerOnDemand", "ml.g4dn.xlarge")
    assert r["xf"].finish == pytest.approx(60.0 + 300 + H)
    assert r["xf"].on_demand_usd == pytest.approx(2 * (300 + H) / H * G4DN_XLARGE_TRANSFORM)
    assert summarize("no-wait", sim, list(r.values())).start_mean_hours == pytest.approx(300 / H / 2)


# --- the report ----------------------------------------------------------------------------------


def test_the_report_has_a_row_per_kind_beside_the_totals():
    cloud = CloudModel(startup_seconds=600, spot="none", transform_startup_seconds=300)
    jobs = [hog(), TraceJob(1, 60.0, 1, 1 * H, 4, name="sweep", kind=TUNING, trials=8),
            TraceJob(2, 120.0, 1, 1 * H, 2, name="xf", kind=TRANSFORM)]
    sim, r = run(jobs, baseline("no-wait"), cloud)
    summary = summarize("no-wait", sim, list(r.values()))
    kinds = {k.kind: k for k in summary.kinds}
    assert list(kinds) == ["training", "transform", "tuning"]
    sweep_usd, xf_usd = 8 * (600 + H) / H * G4DN_XLARGE, 2 * (300 + H) / H * G4DN_XLARGE_TRANSFORM
    assert (kinds["training"].jobs, kinds["training"].local_jobs, kinds["training"].bursts) == (1, 1, 0)
    assert (kinds["tuning"].local_jobs, kinds["tuning"].bursts) == (0, 1)
    assert kinds["tuning"].cloud_usd == pytest.approx(sweep_usd)
    assert kinds["tuning"].jct_mean_hours == pytest.approx(2 * (600 + H) / H)
    assert kinds["transform"].cloud_usd == pytest.approx(xf_usd)
    assert kinds["transform"].jct_mean_hours == pytest.approx((300 + H) / H)
    assert kinds["training"].wait_mean_hours == 0 and kinds["training"].jct_mean_hours == 2.0
    assert summary.cloud_usd == pytest.approx(sweep_usd + xf_usd)
    table = render([summary])
    assert "  tuning Jobs (local / burst)" in table and f"${sweep_usd:,.2f}" in table
    assert summary.as_dict()["kinds"][2]["kind"] == "tuning"
    assert jobs_csv(list(r.values())).splitlines()[0].endswith(",not_allowed,kind,trials")


def test_a_training_only_report_has_no_rows_per_kind():
    sim, r = run([hog(1.0), TraceJob(1, 0.0, 4, H, name="b")], baseline("no-wait"), CloudModel(spot="none"))
    summary = summarize("no-wait", sim, list(r.values()))
    assert summary.kinds == () and "kinds" not in summary.as_dict()
    assert "by kind" not in render([summary])
    assert jobs_csv(list(r.values())).splitlines()[0].endswith(",not_allowed")


def test_cli_runs_the_example_trace_and_reports_each_kind(capsys, tmp_path):
    args = ["sim", "--trace", f"csv:{EXAMPLE}", "--cluster", "2x8", "--policy", str(TRANSFORM_POLICY),
            "--no-progress", "--transform-startup", "300"]
    assert main([*args, "-o", "json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["scenario"]["transform_startup_seconds"] == 300
    kinds = {k["kind"]: k for k in data["results"][0]["kinds"]}
    assert {k: v["jobs"] for k, v in kinds.items()} == {"training": 4, "transform": 3, "tuning": 3}
    assert sum(v["cloud_usd"] for v in kinds.values()) == pytest.approx(data["results"][0]["cloud_usd"], abs=1e-5)
    assert all(v["local_jobs"] + v["bursts"] == v["jobs"] for v in kinds.values())
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "by kind of Job" in out and "a transform burst, 300 s" in out
    assert main([*args, "--hindsight", "5"]) == 1
    assert "the oracle schedules training Jobs only" in capsys.readouterr().err


# --- the timeline plot ---------------------------------------------------------------------------------


def test_the_timeline_stacks_each_kind_and_the_bands_add_up_to_the_engines_samples():
    policy = load_policy(TRANSFORM_POLICY.read_text(), str(TRANSFORM_POLICY))
    sim, records = simulate(load_user_csv(EXAMPLE), SimConfig(parse_cluster("2x8"), policy, CloudModel(), 60.0, 0))
    last = {t: rest for t, *rest in sim.samples}  # each instant's value after all that happened at it
    times = sorted(last)
    bands = [kind_series([r for r in records if r.trace.kind == k], times) for k in SageMakerKind]
    for panel in range(3):
        added = [sum(band[panel][i] for band in bands) for i in range(len(times))]
        assert added == pytest.approx([last[t][panel] for t in times])
    fig = timeline_figure(sim)
    assert [t.get_text() for t in fig.axes[0].get_legend().get_texts()] == ["training", "batch transform",
                                                                            "tuning sweeps"]
    training_only, _ = simulate([hog()], SimConfig((Node("n0", 8),), baseline("no-wait"), CloudModel(), 60.0, 0))
    assert timeline_figure(training_only).axes[0].get_legend() is None
