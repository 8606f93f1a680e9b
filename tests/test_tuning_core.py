"""Hyperparameter sweeps in the pure core: an Indexed Job annotated spillway.io/sagemaker-kind: tuning
is read with its tuning spec (inline or from a ConfigMap), decided for the sweep as a whole, priced
as trials x (start-up + trial) on SageMaker, emitted as CreateHyperParameterTuningJob or the ACK and
legacy HyperParameterTuningJobs (each passing its real CRD strictly), and its trials on the cluster
are drawn per index, deterministically."""

from __future__ import annotations

import copy
import json
import math
from importlib import resources

import pytest
import yaml

from policies import Placement, Reason, decide, job_from_manifest
from policies import constants as C
from policies.decide import create_tuning_job_request, tuning_job_name, tuning_job_resource
from policies.model import (EmitTarget, InputError, RangeKind, SageMakerKind, Strategy, default_catalog, hp_variable,
                            trial_environment, trial_hyperparameters)
from scheduler.cli import main
from sim.sandbox.validation import validate
from tests.crds import crd_type
from tests.builders import BUCKET, cluster, policy

EXAMPLE = yaml.safe_load(resources.files("policies").joinpath("examples/tuning-job.yaml").read_text())
UID = "6f1c2d3e-0000-4000-8000-0000000000b1"
L4_POLICY = {"allowedInstanceTypes": ["ml.g6.*"]}


def example(spec: dict | None = None, **annotations: str | None) -> dict:
    m = copy.deepcopy(EXAMPLE)
    m["metadata"].update(namespace="ml", uid=UID)
    ann = m["metadata"]["annotations"]
    for key in (C.INPUT_S3_URI, C.OUTPUT_S3_URI, C.CHECKPOINT_S3_URI):
        ann[key] = ann[key].replace("s3://spillway-example/", BUCKET)
    if spec is not None:
        ann[C.TUNING_SPEC] = yaml.safe_dump(spec)
    for key, value in annotations.items():
        if value is None:
            ann.pop(key, None)
        else:
            ann[key] = value
    return m


def spec_of(**changes) -> dict:
    spec = yaml.safe_load(EXAMPLE["metadata"]["annotations"][C.TUNING_SPEC])
    spec.update(changes)
    return spec


def burst(manifest: dict, emit: str = "ack", busy: bool = True, **sm):
    j = job_from_manifest(manifest)
    snap = cluster().nodes(1, 4, product=None)
    if busy:
        snap = snap.busy("n0", 4, until_hours=20)
    return j, decide(j, snap.build(), policy(sageMaker={**L4_POLICY, "emit": emit, **sm}))



def issues_of(manifest: dict, config_maps=None) -> list[str]:
    with pytest.raises(InputError) as err:
        job_from_manifest(manifest, config_maps=config_maps)
    return [f"{i.path}: {i.problem} -> {i.fix}" for i in err.value.issues]


# --- reading -----------------------------------------------------------------------------------------


def test_the_example_reads_as_a_sweep_of_its_completions_at_its_parallelism():
    j = job_from_manifest(example())
    assert (j.sagemaker_kind, j.trials, j.pods, j.waves) == (SageMakerKind.TUNING, 16, 4, 4)
    spec = j.tuning
    assert (spec.metric, spec.objective.value, spec.strategy, spec.seed) == ("validation:accuracy", "Maximize",
                                                                            Strategy.RANDOM, 7)
    assert [(p.name, p.kind) for p in spec.parameters] == [
        ("learning_rate", RangeKind.CONTINUOUS), ("batch_size", RangeKind.INTEGER), ("optimizer", RangeKind.CATEGORICAL)]
    assert spec.static == (("epochs", "12"),)
    assert j.untranslatable is None


@pytest.mark.parametrize("change, found", [
    (dict(strategy="Grid"), "a Grid search takes only categorical ranges; batch_size, learning_rate are not"),
    (dict(strategy="Annealing"), "unknown value 'Annealing' -> use one of Random, Grid, Bayesian, Hyperband"),
    (dict(objective={"metric": "acc", "regex": "acc=[0-9.]+", "type": "Maximize"}), "has 0 capture groups"),
    (dict(objective={"metric": "acc", "regex": "acc=(", "type": "Maximize"}), "not a regular expression"),
    (dict(objective={"metric": "acc", "regex": "acc=([0-9.]+)", "type": "Biggest"}), "objective.type: unknown value"),
    (dict(parameters={"lr": {"type": "continuous", "min": 0, "max": 1, "scaling": "Logarithmic"}}),
     "a logarithmic range must start above 0 -> raise min above 0, or use Linear"),
    (dict(parameters={"lr": {"type": "continuous", "min": 0.5, "max": 0.1}}), "min 0.5 is not below max 0.1"),
    (dict(parameters={"layers": {"type": "integer", "min": 1.5, "max": 4}}), "layers.min: expected an integer"),
    (dict(parameters={"opt": {"type": "categorical", "values": ["sgd", "sgd"]}}), "lists a value twice"),
    (dict(parameters={}), "a tuning job searches at least one hyperparameter"),
    (dict(static={"learning_rate": 1}), "static.learning_rate: is also a searched parameter"),
    (dict(budget=3), "budget: unknown field -> use objective, strategy, seed, parameters, static"),
])
def test_a_bad_tuning_spec_names_the_field_and_the_fix(change, found):
    problems = issues_of(example(spec_of(**change)))
    assert any(found in p for p in problems), problems
    assert all(p.startswith(f'metadata.annotations["{C.TUNING_SPEC}"]') for p in problems), problems


def test_a_grid_runs_each_combination_once_so_completions_must_be_their_number():
    grid = dict(strategy="Grid", parameters={"lr": {"type": "categorical", "values": [0.1, 0.01, 0.001]},
                                             "opt": {"type": "categorical", "values": ["sgd", "adamw"]}})
    problems = issues_of(example(spec_of(**grid)))
    assert any("runs each of its 6 combinations once, but completions is 16 -> set spec.completions: 6" in p
               for p in problems), problems
    m = example(spec_of(**grid))
    m["spec"]["completions"] = 6
    assert job_from_manifest(m).tuning.grid_size == 6


def test_a_sweep_must_be_indexed_and_tuning_annotations_belong_to_sweeps():
    m = example()
    del m["spec"]["completionMode"]
    assert any(p.startswith("spec.completionMode: a sweep's pods are its trials") for p in issues_of(m))
    training = example(**{C.SAGEMAKER_KIND: None})
    assert any(f'["{C.TUNING_SPEC}"]: applies only to hyperparameter tuning Jobs' in p for p in issues_of(training))


def test_the_spec_may_live_in_a_configmap_of_the_jobs_namespace():
    text = EXAMPLE["metadata"]["annotations"][C.TUNING_SPEC]
    m = example(**{C.TUNING_SPEC: None, C.TUNING_SPEC_CONFIGMAP: "sweep-spec"})
    assert job_from_manifest(m, config_maps={"sweep-spec": {"tuning.yaml": text}}).tuning.seed == 7
    keyed = example(**{C.TUNING_SPEC: None, C.TUNING_SPEC_CONFIGMAP: "sweeps/resnet"})
    assert job_from_manifest(keyed, config_maps={"sweeps": {"resnet": text}}).trials == 16
    assert any("no ConfigMap sweep-spec in the Job's namespace" in p for p in issues_of(m, {}))
    assert any("ConfigMap sweeps has no key resnet -> use one of other.yaml as sweeps/<key>" in p
               for p in issues_of(keyed, {"sweeps": {"other.yaml": text}}))
    assert job_from_manifest(m).tuning is None  # the webhook cannot read the cluster: the form alone is checked
    assert any("names no ConfigMap" in p for p in issues_of(example(**{C.TUNING_SPEC: None,
                                                                     C.TUNING_SPEC_CONFIGMAP: "/x"})))
    both = example(**{C.TUNING_SPEC_CONFIGMAP: "sweep-spec"})
    assert any("the spec is given twice" in p for p in issues_of(both, {"sweep-spec": {"tuning.yaml": text}}))


def test_a_hyperband_sweep_kept_local_is_refused_because_only_sagemaker_runs_one():
    m = example(spec_of(strategy="Hyperband"), **{C.MODE: "local"})
    assert any("a Hyperband sweep runs only on SageMaker (its tuner stops trials early" in p
               and "use strategy: Bayesian, Random or Grid" in p for p in issues_of(m))
    assert job_from_manifest(example(spec_of(strategy="Bayesian"), **{C.MODE: "local"})).tuning.strategy == \
        Strategy.BAYESIAN  # Optuna chooses its trials on the cluster


# --- trials on the cluster -----------------------------------------------------------------------------


def test_random_trials_are_drawn_per_index_the_same_every_time_within_their_ranges():
    spec = job_from_manifest(example()).tuning
    trials = [trial_hyperparameters(spec, i) for i in range(200)]
    assert trials == [trial_hyperparameters(spec, i) for i in range(200)]  # a rerun pod gets the same values
    assert len({t["learning_rate"] for t in trials}) == 200
    lrs = [float(t["learning_rate"]) for t in trials]
    assert all(1e-4 <= x <= 0.3 for x in lrs)
    # Logarithmic: about as many draws below the range's geometric middle as above it.
    middle = math.sqrt(1e-4 * 0.3)
    assert 70 <= sum(x < middle for x in lrs) <= 130
    assert all(64 <= int(t["batch_size"]) <= 512 and t["optimizer"] in ("sgd", "adamw") for t in trials)
    assert {t["optimizer"] for t in trials} == {"sgd", "adamw"}
    assert all(t["epochs"] == "12" for t in trials)
    other_seed = job_from_manifest(example(spec_of(seed=8))).tuning
    assert trial_hyperparameters(other_seed, 0) != trials[0]


def test_a_grid_walks_every_combination_once_last_parameter_fastest():
    grid = spec_of(strategy="Grid", parameters={"lr": {"type": "categorical", "values": [0.1, 0.01, 0.001]},
                                                "opt": {"type": "categorical", "values": ["sgd", "adamw"]}})
    m = example(grid)
    m["spec"]["completions"] = 6
    spec = job_from_manifest(m).tuning
    points = [(t["lr"], t["opt"]) for t in (trial_hyperparameters(spec, i) for i in range(6))]
    assert points[:3] == [("0.1", "sgd"), ("0.1", "adamw"), ("0.01", "sgd")]
    assert len(set(points)) == 6
    with pytest.raises(ValueError, match="past the grid's 6 combinations"):
        trial_hyperparameters(spec, 6)


def test_a_trial_gets_its_values_as_the_sagemaker_toolkit_names_them():
    spec = job_from_manifest(example()).tuning
    values = trial_hyperparameters(spec, 3)
    env = dict(trial_environment(values))
    assert json.loads(env["SM_HPS"]) == values
    assert env["SM_HP_LEARNING_RATE"] == values["learning_rate"] and env["SM_HP_EPOCHS"] == "12"
    assert hp_variable("lr.decay-rate") == "SM_HP_LR_DECAY_RATE"
    bayes = job_from_manifest(example(spec_of(strategy="Bayesian"))).tuning
    with pytest.raises(ValueError, match="chosen as earlier trials finish, not drawn per index"):
        trial_hyperparameters(bayes, 0)


# --- the decision --------------------------------------------------------------------------------------


def test_the_sweep_is_weighed_whole_waves_locally_and_trials_priced_on_sagemaker():
    j, d = burst(example())
    ev = d.evidence
    assert ev.runtime_estimate_seconds == 4 * 45 * 60  # 4 waves of a 45-minute trial
    assert "45 min a trial, x 4 waves of 4 trials" in ev.runtime_source
    g6 = default_catalog().get("ml.g6.xlarge", "us-east-1")
    od = next(o for o in ev.options if o.placement == Placement.SAGEMAKER_ON_DEMAND)
    startup = 420
    assert od.expected_usd == pytest.approx(16 * g6.on_demand_usd_per_hour * (startup + 2700) / 3600)
    assert od.committed_usd == pytest.approx(16 * g6.on_demand_usd_per_hour * (startup + 2 * 2700) / 3600)
    assert od.end_time - ev.now == pytest.approx(4 * (startup + 2700))
    assert d.placement.is_cloud and d.launch.kind == SageMakerKind.TUNING and d.launch.instance_count == 1
    assert d.launch.max_runtime_seconds == 2 * 2700  # the cap is a trial's
    assert "sweep of 16 trials (12.0 GPU-hours) in 4 waves of 45 min" in d.message
    assert "hyperparameter tuning: 16 managed spot trials, 4 at once" in d.message


def test_a_sweep_runs_locally_when_its_parallelism_fits_now():
    _, d = burst(example(), busy=False)
    assert d.placement == Placement.LOCAL
    assert "sweep of 16 trials" in d.message


def test_a_sweep_with_a_deadline_runs_its_trials_on_demand_and_says_why():
    j, d = burst(example(**{C.DEADLINE: "2026-12-30T00:00:00Z"}))
    assert not any(o.placement == Placement.SAGEMAKER_SPOT for o in d.evidence.options)
    assert d.placement == Placement.SAGEMAKER_ON_DEMAND


def test_a_hyperband_sweep_runs_only_on_sagemaker_even_when_gpus_are_free():
    _, d = burst(example(spec_of(strategy="Hyperband")), busy=False)
    assert d.placement.is_cloud and d.reason == Reason.FORCED_CLOUD
    assert "a Hyperband sweep runs only on SageMaker (its tuner stops trials early" in d.message


def test_a_bayesian_sweep_is_decided_as_a_random_one_is():
    for busy in (False, True):
        _, bayes = burst(example(spec_of(strategy="Bayesian")), busy=busy)
        _, rand = burst(example(), busy=busy)
        assert (bayes.placement, bayes.reason) == (rand.placement, rand.reason)
    _, local = burst(example(spec_of(strategy="Bayesian"), **{C.MODE: "local"}), busy=False)
    assert local.placement == Placement.LOCAL and local.reason == Reason.FORCED_LOCAL


def test_what_a_target_cannot_carry_keeps_the_sweep_from_bursting():
    m = example()
    m["spec"]["template"]["spec"]["containers"][0]["env"] = [{"name": "WANDB_MODE", "value": "offline"}]
    _, d = burst(m, emit="ack")
    assert d.reason == Reason.NOT_TRANSLATABLE and "emit: api" in d.evidence.blocked
    _, d = burst(m, emit="api")
    assert d.placement.is_cloud
    m["spec"]["template"]["spec"]["containers"][0]["command"] = ["python", "train.py"]
    _, d = burst(m, emit="api")
    assert d.reason == Reason.NOT_TRANSLATABLE and "no field for it" in d.evidence.blocked


# --- emission -------------------------------------------------------------------------------------------


def test_the_request_carries_the_sweep_shape_objective_and_ranges():
    j, d = burst(example(), emit="api")
    request = create_tuning_job_request(j, d.launch, tuning_job_name(j))
    config, definition = request["HyperParameterTuningJobConfig"], request["TrainingJobDefinition"]
    assert len(request["HyperParameterTuningJobName"]) <= 32
    assert config["ResourceLimits"] == {"MaxNumberOfTrainingJobs": 16, "MaxParallelTrainingJobs": 4}
    assert config["HyperParameterTuningJobObjective"] == {"Type": "Maximize", "MetricName": "validation:accuracy"}
    assert config["ParameterRanges"]["ContinuousParameterRanges"] == [
        {"Name": "learning_rate", "MinValue": "0.0001", "MaxValue": "0.3", "ScalingType": "Logarithmic"}]
    assert config["RandomSeed"] == 7
    assert definition["AlgorithmSpecification"]["MetricDefinitions"] == [
        {"Name": "validation:accuracy", "Regex": "val_acc=([0-9.]+)"}]
    assert definition["StaticHyperParameters"] == {"epochs": "12"}
    assert definition["ResourceConfig"]["InstanceCount"] == 1 and definition["EnableManagedSpotTraining"] is True
    assert tuning_job_name(j) == tuning_job_name(job_from_manifest(example()))  # from the UID: one name, ever


@pytest.mark.parametrize("emit, kind", [("ack", "HyperParameterTuningJob"), ("legacy", "HyperparameterTuningJob")])
def test_every_emitted_resource_passes_its_crd_strictly(emit, kind):
    j, d = burst(example(), emit=emit)
    cr = tuning_job_resource(j, d.launch, tuning_job_name(j), EmitTarget(emit))
    assert cr["kind"] == kind
    assert validate(crd_type(kind), cr, strict=True) == []
    grid = spec_of(strategy="Grid", parameters={"opt": {"type": "categorical", "values": ["sgd", "adamw"]}})
    m = example(grid)
    m["spec"]["completions"] = 2
    j, d = burst(m, emit=emit)
    assert validate(crd_type(kind), tuning_job_resource(j, d.launch, tuning_job_name(j), EmitTarget(emit)),
                    strict=True) == []


def test_a_misspelt_objective_type_is_what_strict_validation_catches():
    j, d = burst(example(), emit="ack")
    cr = tuning_job_resource(j, d.launch, tuning_job_name(j), EmitTarget.ACK)
    objective = cr["spec"]["hyperParameterTuningJobConfig"]["hyperParameterTuningJobObjective"]
    objective["type"] = objective.pop("type_")
    assert validate(crd_type("HyperParameterTuningJob"), cr, strict=True) != []


def test_spillway_explain_on_the_example_shows_the_tuning_job_and_the_trials(capsys):
    path = str(resources.files("policies").joinpath("examples/tuning-job.yaml"))
    assert main(["explain", path]) == 0
    out = capsys.readouterr().out
    assert "kind: HyperParameterTuningJob" in out and "maxParallelTrainingJobs: 4" in out
    assert "Trials     16, 4 at once" in out and "(... and 8 more; -o json lists every trial)" in out
    assert main(["explain", path, "-o", "json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert validate(crd_type("HyperParameterTuningJob"), shown["emits"][0], strict=True) == []
    assert len(shown["trials"]) == 16 and shown["trials"][0] == trial_hyperparameters(
        job_from_manifest(example()).tuning, 0)


@pytest.mark.parametrize("strategy, words", [
    ("Bayesian", "Trials     16, 4 at once; on the cluster, chosen by Optuna's TPE as earlier trials finish"),
    ("Hyperband", "Trials     16, chosen by SageMaker's Hyperband tuner as earlier trials finish (such a sweep runs "
                  "only on SageMaker)")])
def test_spillway_explain_says_how_a_learning_sweeps_trials_are_chosen_with_no_table(tmp_path, capsys, strategy,
                                                                                       words):
    path = tmp_path / "sweep.yaml"
    path.write_text(yaml.safe_dump(example(spec_of(strategy=strategy))))
    assert main(["explain", str(path)]) == 0
    out = capsys.readouterr().out
    assert words in out and "INDEX" not in out
    assert main(["explain", str(path), "-o", "json"]) == 0
    assert "trials" not in json.loads(capsys.readouterr().out)


def test_explain_reads_the_tuning_spec_from_a_configmap_in_the_same_file(tmp_path, capsys):
    text = EXAMPLE["metadata"]["annotations"][C.TUNING_SPEC]
    job = copy.deepcopy(EXAMPLE)
    del job["metadata"]["annotations"][C.TUNING_SPEC]
    job["metadata"]["annotations"][C.TUNING_SPEC_CONFIGMAP] = "resnet-sweep"
    config_map = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "resnet-sweep"},
                  "data": {"tuning.yaml": text}}
    path = tmp_path / "sweep.yaml"
    path.write_text(yaml.safe_dump_all([config_map, job]))
    assert main(["explain", str(path), "-o", "json"]) == 0
    assert len(json.loads(capsys.readouterr().out)["trials"]) == 16

