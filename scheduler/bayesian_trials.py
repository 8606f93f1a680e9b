"""A Bayesian sweep's next trial on the cluster, asked of Optuna: the only module that imports it.

SageMaker's Bayesian tuner picks each trial from the trials that finished. On the cluster, the
pod webhook asks Optuna instead, as the Job controller creates the pod of index i: a study is
rebuilt in memory from the finished trials recorded on the Job (spillway.io/trial-results, each
with add_trial), and asked once (ask/tell, with the tell already done by the records). Nothing
lives in the study between two pods: the Job is the history, so a restart loses nothing.

- The sampler is TPE, seeded from (the spec's seed, the index): the same history gives the same
  values. With fewer complete trials than its n_startup_trials (10, Optuna's default), TPE draws
  at random from the ranges, as SageMaker's tuner starts too; it models the objective after that.
- Ranges become Optuna's distributions: continuous as floats, integer as ints, categorical as
  its values (strings, as SageMaker passes them); Logarithmic with log=True (Auto is Linear, as
  for Random). Optuna has no reverse-logarithmic scale, so a ReverseLogarithmic range x in
  [min, max) is searched as 1 - x on a log scale over (1 - max, 1 - min], which is what the
  scale means (dense near 1), and turned back into x.
- A trial whose objective is unknown (no match in its log) is not told: it teaches nothing.
"""

from __future__ import annotations

import hashlib
from typing import Iterable

import optuna
from optuna.distributions import BaseDistribution, CategoricalDistribution, FloatDistribution, IntDistribution

from policies.model import ObjectiveType, ParameterRange, RangeKind, Scaling, TrialResult, TuningSpec

optuna.logging.set_verbosity(optuna.logging.WARNING)  # a study per pod: "A new study created" is noise


def suggest_trial(spec: TuningSpec, index: int, finished: Iterable[TrialResult]) -> dict[str, str]:
    """Trial `index`'s hyperparameters (the static ones first), as strings, asked of TPE given
    the finished trials."""
    if index < 0:
        raise ValueError(f"a trial index is >= 0, got {index}")
    distributions = {p.name: _distribution(p) for p in spec.parameters}
    study = optuna.create_study(
        direction="minimize" if spec.objective == ObjectiveType.MINIMIZE else "maximize",
        sampler=optuna.samplers.TPESampler(seed=_seed(spec.seed, index)))
    for result in finished:
        params = _params(spec.parameters, result.values)
        if result.objective is None or params is None:
            continue
        study.add_trial(optuna.trial.create_trial(params=params, distributions=distributions,
                                                  value=result.objective))
    asked = study.ask(distributions).params
    values = dict(spec.static)
    values.update((p.name, _text(p, asked[p.name])) for p in spec.parameters)
    return values


def _seed(seed: int, index: int) -> int:
    """A seed for trial `index` alone: the same on every machine and Python version."""
    digest = hashlib.sha256(f"spillway-bayesian/{seed}/{index}".encode()).digest()
    return int.from_bytes(digest[:4], "big")


def _distribution(p: ParameterRange) -> BaseDistribution:
    if p.kind == RangeKind.CATEGORICAL:
        return CategoricalDistribution(p.values)
    log = p.scaling == Scaling.LOGARITHMIC
    if p.kind == RangeKind.INTEGER:
        return IntDistribution(int(p.low), int(p.high), log=log)
    if p.scaling == Scaling.REVERSE_LOGARITHMIC:
        return FloatDistribution(1 - p.high, 1 - p.low, log=True)  # searched as 1 - x
    return FloatDistribution(p.low, p.high, log=log)


def _params(parameters: tuple[ParameterRange, ...], values: dict[str, str]) -> dict[str, object] | None:
    """A recorded trial's values as Optuna's params; None if one is missing or out of its range
    (recorded under another spec: not this study's)."""
    out: dict[str, object] = {}
    for p in parameters:
        text = values.get(p.name)
        if text is None:
            return None
        if p.kind == RangeKind.CATEGORICAL:
            if text not in p.values:
                return None
            out[p.name] = text
            continue
        try:
            number = float(text)
        except ValueError:
            return None
        if not p.low <= number <= p.high:
            return None
        if p.kind == RangeKind.INTEGER:
            out[p.name] = int(number)
        elif p.scaling == Scaling.REVERSE_LOGARITHMIC:
            out[p.name] = min(max(1 - number, 1 - p.high), 1 - p.low)
        else:
            out[p.name] = number
    return out


def _text(p: ParameterRange, asked: object) -> str:
    """A value as SageMaker passes it: a string; a float as a person writes it (6 digits)."""
    if p.kind == RangeKind.CATEGORICAL:
        return str(asked)
    if p.kind == RangeKind.INTEGER:
        return str(int(asked))  # type: ignore[call-overload]  # IntDistribution asks ints
    x = float(asked)  # type: ignore[arg-type]  # FloatDistribution asks floats
    if p.scaling == Scaling.REVERSE_LOGARITHMIC:
        x = 1 - x
    return f"{min(max(x, p.low), p.high):.6g}"
