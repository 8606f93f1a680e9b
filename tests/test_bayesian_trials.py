"""A Bayesian sweep on the cluster: Optuna's TPE asked for trial i given the finished trials
recorded on the Job (deterministic for the same history, within the spec's ranges), and the
records themselves (each trial's objective, the last match of the spec's regex in its log)."""

from __future__ import annotations

import math

import pytest

from policies.model import (TrialResult, TuningSpec, objective_from_log, read_trial_results, read_tuning_spec,
                            trial_results_text)
from scheduler.bayesian_trials import suggest_trial


def spec_of(objective_type: str = "Minimize", seed: int = 7, **parameters: dict) -> TuningSpec:
    problems: list[str] = []
    spec = read_tuning_spec({
        "objective": {"metric": "loss", "regex": r"loss=([0-9.eE+-]+)", "type": objective_type},
        "strategy": "Bayesian", "seed": seed, "static": {"epochs": 3},
        "parameters": parameters or {
            "lr": {"type": "continuous", "min": 1e-5, "max": 0.3, "scaling": "Logarithmic"},
            "batch": {"type": "integer", "min": 16, "max": 512, "scaling": "Logarithmic"},
            "layers": {"type": "integer", "min": 1, "max": 4},
            "momentum": {"type": "continuous", "min": 0.9, "max": 0.9999, "scaling": "ReverseLogarithmic"},
            "dropout": {"type": "continuous", "min": 0.0, "max": 0.5},
            "optimizer": {"type": "categorical", "values": ["sgd", "adamw", "lion"]}}},
        "spec", 12, lambda path, problem, fix: problems.append(f"{path}: {problem}"))
    assert spec is not None, problems
    return spec


def history(spec: TuningSpec, n: int, objective=lambda values: float(values["lr"])) -> list[TrialResult]:
    """n finished trials, each asked given the ones before it (as the webhook asks)."""
    out: list[TrialResult] = []
    for i in range(n):
        values = suggest_trial(spec, i, out)
        out.append(TrialResult(i, f"sweep-{i}-x", values, objective(values)))
    return out


def in_range(spec: TuningSpec, values: dict[str, str]) -> None:
    for p in spec.parameters:
        text = values[p.name]
        if p.kind.value == "categorical":
            assert text in p.values
        elif p.kind.value == "integer":
            assert str(int(text)) == text and p.low <= int(text) <= p.high
        else:
            assert p.low <= float(text) <= p.high


def test_the_same_history_asks_the_same_values_and_another_index_others():
    spec = spec_of()
    done = history(spec, 12)  # past TPE's 10 random start-up trials: the model is asked too
    assert suggest_trial(spec, 12, done) == suggest_trial(spec, 12, list(done))
    assert suggest_trial(spec, 12, done) != suggest_trial(spec, 13, done)
    assert suggest_trial(spec, 12, done) != suggest_trial(spec, 12, done[:11]), "the history is what it learns from"
    assert suggest_trial(spec_of(seed=8), 0, []) != suggest_trial(spec, 0, [])


def test_every_value_is_within_its_range_as_sagemaker_passes_it():
    spec = spec_of()
    done = history(spec, 16)
    for trial in done:
        in_range(spec, trial.values)
        assert trial.values["epochs"] == "3", "static values go to every trial"
        assert list(trial.values) == ["epochs", "lr", "batch", "layers", "momentum", "dropout", "optimizer"]
    # Logarithmic ranges are searched on a log scale: draws reach the low decades.
    assert min(float(t.values["lr"]) for t in done) < 1e-3
    # ReverseLogarithmic is dense near 1: 1 - x is log-uniform over [1e-4, 0.1].
    assert any(float(t.values["momentum"]) > 0.99 for t in done)


def test_tpe_follows_the_objectives_direction_once_past_its_random_start():
    lr = {"type": "continuous", "min": 1e-5, "max": 1.0, "scaling": "Logarithmic"}

    def median_of_last_ten(objective_type: str) -> float:
        done = history(spec_of(objective_type, lr=lr), 30)  # the objective is lr itself
        return sorted(float(t.values["lr"]) for t in done[20:])[5]

    assert median_of_last_ten("Minimize") < 1e-3 < 0.1 < median_of_last_ten("Maximize")


def test_a_trial_without_an_objective_or_out_of_range_teaches_nothing():
    spec = spec_of()
    done = history(spec, 11)
    unknown = TrialResult(11, "sweep-11-x", dict(done[0].values), None, "no match of loss=... in its log")
    foreign = TrialResult(12, "sweep-12-x", {**done[0].values, "lr": "7"}, 0.0)
    assert suggest_trial(spec, 13, [*done, unknown, foreign]) == suggest_trial(spec, 13, done)


def test_the_objective_is_the_last_match_of_the_regex_in_the_log():
    spec = spec_of()
    assert objective_from_log(spec, "epoch 1 loss=0.9\nepoch 2 loss=0.41\ndone\n") == (0.41, "")
    assert objective_from_log(spec, "loss=1e-3") == (0.001, "")
    value, why = objective_from_log(spec, "no metric here")
    assert value is None and "no match of loss=([0-9.eE+-]+) in its log" in why
    value, why = objective_from_log(spec, "loss=1.2.3")
    assert value is None and "'1.2.3', is not a number" in why


def test_the_records_round_trip_and_ignore_what_is_not_theirs():
    results = [TrialResult(1, "s-1", {"lr": "0.01"}, None, "no match"), TrialResult(0, "s-0", {"lr": "0.1"}, 0.5)]
    text = trial_results_text(results)
    assert [r.index for r in read_trial_results(text)] == [0, 1]
    assert read_trial_results(text) == tuple(sorted(results, key=lambda r: r.index))
    assert read_trial_results("not json") == () and read_trial_results(None) == ()
    assert read_trial_results('[{"index": -1, "pod": "x", "values": {}}, {"index": 2, "pod": "y", "values": {}, '
                              '"objective": 0.25}, "junk"]') == (TrialResult(2, "y", {}, 0.25),)
    assert not math.isnan(read_trial_results(text)[0].objective or 0.0)


def test_a_negative_index_is_refused():
    with pytest.raises(ValueError, match="a trial index is >= 0"):
        suggest_trial(spec_of(), -1, [])
