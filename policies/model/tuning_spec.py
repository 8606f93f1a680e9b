"""The tuning spec of a hyperparameter sweep (spillway.io/sagemaker-kind: tuning), read and checked.

A sweep is an Indexed Job whose pods are trials: `completions` is the most trials, `parallelism`
the most at once. What SageMaker's CreateHyperParameterTuningJob needs beyond that, the Job says
in YAML, in the annotation spillway.io/tuning-spec or in a ConfigMap the annotation
spillway.io/tuning-spec-configmap names (for a long spec):

    objective: {metric: validation:loss, regex: 'val_loss=([0-9.eE+-]+)', type: Minimize}
    strategy: Random          # Random | Grid | Bayesian | Hyperband
    seed: 7                   # Random's draws (and SageMaker's RandomSeed)
    parameters:
      learning_rate: {type: continuous, min: 1.0e-5, max: 0.1, scaling: Logarithmic}
      batch_size: {type: integer, min: 16, max: 256}
      optimizer: {type: categorical, values: [sgd, adam]}
    static: {epochs: "10"}    # passed to every trial as it is

Each mistake is reported with its path and the fix, so the admission webhook refuses a bad spec
at `kubectl apply`, as it refuses any bad annotation. The rules are SageMaker's, so a spec that
passes here is one SageMaker accepts: a Grid search has only categorical ranges and runs every
combination once (so `completions` must be their number), a logarithmic range starts above 0,
a reverse-logarithmic one is continuous within [0, 1).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from enum import Enum
from typing import Any, Callable

Bad = Callable[[str, str, str], None]  # bad(path, problem, fix)


class Strategy(str, Enum):
    RANDOM = "Random"
    GRID = "Grid"
    BAYESIAN = "Bayesian"
    HYPERBAND = "Hyperband"

    @property
    def drawn_per_index(self) -> bool:
        """Random and Grid trials are drawn per index, with no other trial's result: the same
        values every time, which `spillway explain` can list before the sweep runs."""
        return self in (Strategy.RANDOM, Strategy.GRID)

    @property
    def runs_locally(self) -> bool:
        """Whether the sweep may run on the cluster: Random and Grid drawn per index, Bayesian
        asked of Optuna as earlier trials finish. Hyperband stops trials early, which only
        SageMaker's tuner does here."""
        return self != Strategy.HYPERBAND


class ObjectiveType(str, Enum):
    MINIMIZE = "Minimize"
    MAXIMIZE = "Maximize"


class RangeKind(str, Enum):
    CONTINUOUS = "continuous"
    INTEGER = "integer"
    CATEGORICAL = "categorical"


class Scaling(str, Enum):
    AUTO = "Auto"
    LINEAR = "Linear"
    LOGARITHMIC = "Logarithmic"
    REVERSE_LOGARITHMIC = "ReverseLogarithmic"


@dataclass(frozen=True)
class ParameterRange:
    name: str
    kind: RangeKind
    low: float = 0.0  # continuous and integer
    high: float = 0.0
    scaling: Scaling = Scaling.AUTO
    values: tuple[str, ...] = ()  # categorical


@dataclass(frozen=True)
class TuningSpec:
    metric: str
    regex: str
    objective: ObjectiveType
    strategy: Strategy
    parameters: tuple[ParameterRange, ...]
    static: tuple[tuple[str, str], ...] = ()
    seed: int = 0

    @property
    def grid_size(self) -> int:
        """How many combinations a Grid search runs (each once)."""
        return math.prod(len(p.values) for p in self.parameters if p.kind == RangeKind.CATEGORICAL)


_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.:-]{0,255}$")
_KEYS = ("objective", "strategy", "seed", "parameters", "static")


def read_tuning_spec(data: Any, where: str, trials: int | None, bad: Bad) -> TuningSpec | None:
    """The spec from its parsed YAML; None (with every problem reported) when it is wrong.
    where: how messages name the spec (the annotation, or the ConfigMap's key); trials: the
    Job's completions, which a Grid must match (None: not checked, for a trial pod's copy)."""
    before = [0]

    def note(path: str, problem: str, fix: str) -> None:
        before[0] += 1
        bad(path, problem, fix)

    if not isinstance(data, dict):
        note(where, f"expected a YAML mapping, got {type(data).__name__}",
             "write objective:, strategy: and parameters: (see policies/examples/tuning-job.yaml)")
        return None
    for key in data:
        if key not in _KEYS:
            note(f"{where}: {key}", "unknown field", f"use {', '.join(_KEYS)}")
    metric, regex, objective = _objective(data.get("objective"), f"{where}: objective", note)
    strategy = _enum(data.get("strategy", "Random"), Strategy, f"{where}: strategy", note) or Strategy.RANDOM
    seed = data.get("seed", 0)
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        note(f"{where}: seed", f"expected a non-negative integer, got {seed!r}", "write seed: 7")
        seed = 0
    parameters = _parameters(data.get("parameters"), f"{where}: parameters", note)
    static = _static(data.get("static"), f"{where}: static", {p.name for p in parameters}, note)
    if strategy == Strategy.GRID:
        _check_grid(parameters, trials, f"{where}: strategy", note)
    if before[0] or objective is None:
        return None
    return TuningSpec(metric, regex, objective, strategy, parameters, static, seed)


def _objective(value: Any, where: str, bad: Bad) -> tuple[str, str, ObjectiveType | None]:
    fix = "write objective: {metric: validation:loss, regex: 'val_loss=([0-9.]+)', type: Minimize}"
    if not isinstance(value, dict):
        bad(where, "missing: a tuning job ranks its trials by one metric", fix)
        return "", "", None
    metric, regex = value.get("metric"), value.get("regex")
    if not isinstance(metric, str) or not metric.strip():
        bad(f"{where}.metric", "missing: the objective metric's name", fix)
        metric = ""
    if not isinstance(regex, str) or not regex:
        bad(f"{where}.regex", "missing: the regex that finds the metric in the training log", fix)
        regex = ""
    else:
        try:
            groups = re.compile(regex).groups
        except re.error as exc:
            bad(f"{where}.regex", f"not a regular expression: {exc}", "fix the pattern; quote it in single quotes")
        else:
            if groups != 1:
                bad(f"{where}.regex", f"has {groups} capture groups; the metric's value is the one group",
                    "capture the number alone, e.g. 'val_loss=([0-9.eE+-]+)'")
    kind = _enum(value.get("type"), ObjectiveType, f"{where}.type", bad)
    return str(metric).strip(), str(regex), kind


def _enum(value: Any, enum: type[Enum], where: str, bad: Bad) -> Any:
    found = next((e for e in enum if isinstance(value, str) and e.value.lower() == value.strip().lower()), None)
    if found is None:
        bad(where, f"unknown value {value!r}", f"use one of {', '.join(e.value for e in enum)}")
    return found


def _parameters(value: Any, where: str, bad: Bad) -> tuple[ParameterRange, ...]:
    if not isinstance(value, dict) or not value:
        bad(where, "missing: a tuning job searches at least one hyperparameter",
            "write parameters: {learning_rate: {type: continuous, min: 0.0001, max: 0.1}}")
        return ()
    out = []
    for name, body in value.items():
        path = f"{where}.{name}"
        if not isinstance(name, str) or not _NAME.match(name):
            bad(path, f"{name!r} is not a hyperparameter name", "use letters, digits, _ . : - (a letter first)")
            continue
        if not isinstance(body, dict):
            bad(path, "expected a mapping", "write {type: integer, min: 1, max: 8}")
            continue
        found = _range(name, body, path, bad)
        if found is not None:
            out.append(found)
    return tuple(out)


def _range(name: str, body: dict[str, Any], path: str, bad: Bad) -> ParameterRange | None:
    kind = _enum(body.get("type"), RangeKind, f"{path}.type", bad)
    if kind is None:
        return None
    allowed = {"type", "values"} if kind == RangeKind.CATEGORICAL else {"type", "min", "max", "scaling"}
    for key in body:
        if key not in allowed:
            bad(f"{path}.{key}", f"not a field of a {kind.value} range", f"use {', '.join(sorted(allowed))}")
    if kind == RangeKind.CATEGORICAL:
        values = body.get("values")
        if not isinstance(values, list) or not values or not all(_scalar(v) for v in values):
            bad(f"{path}.values", "expected a non-empty list of values", "write values: [sgd, adam]")
            return None
        texts = tuple(_text(v) for v in values)
        if len(set(texts)) != len(texts):
            bad(f"{path}.values", "lists a value twice", "list each value once")
            return None
        return ParameterRange(name, kind, values=texts)
    return _numeric_range(name, kind, body, path, bad)


def _numeric_range(name: str, kind: RangeKind, body: dict[str, Any], path: str, bad: Bad) -> ParameterRange | None:
    scaling = _enum(body.get("scaling", "Auto"), Scaling, f"{path}.scaling", bad)
    bounds = []
    for key in ("min", "max"):
        v = body.get(key)
        number = float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else math.nan
        if not math.isfinite(number) or (kind == RangeKind.INTEGER and not number.is_integer()):
            bad(f"{path}.{key}", f"expected {'an integer' if kind == RangeKind.INTEGER else 'a number'}, got {v!r}",
                f"write {key}: {'16' if kind == RangeKind.INTEGER else '0.001'}")
            return None
        bounds.append(number)
    low, high = bounds
    if not low < high:
        bad(path, f"min {body['min']} is not below max {body['max']}", "write min below max")
        return None
    if scaling == Scaling.LOGARITHMIC and low <= 0:
        bad(f"{path}.scaling", "a logarithmic range must start above 0", "raise min above 0, or use Linear")
        return None
    if scaling == Scaling.REVERSE_LOGARITHMIC and (kind != RangeKind.CONTINUOUS or low < 0 or high >= 1):
        bad(f"{path}.scaling", "a reverse-logarithmic range is continuous, within [0, 1)",
            "use it for values such as momentum 0.9-0.999, or use Logarithmic")
        return None
    return ParameterRange(name, kind, low, high, scaling or Scaling.AUTO)


def _static(value: Any, where: str, searched: set[str], bad: Bad) -> tuple[tuple[str, str], ...]:
    if value is None:
        return ()
    if not isinstance(value, dict) or not all(_scalar(v) for v in value.values()):
        bad(where, "expected a mapping of names to values", 'write static: {epochs: "10"}')
        return ()
    for name in value:
        if name in searched:
            bad(f"{where}.{name}", "is also a searched parameter", f"remove {name} from static or from parameters")
    return tuple((str(k), _text(v)) for k, v in value.items())


def _check_grid(parameters: tuple[ParameterRange, ...], trials: int | None, where: str, bad: Bad) -> None:
    numeric = [p.name for p in parameters if p.kind != RangeKind.CATEGORICAL]
    if numeric:
        bad(where, f"a Grid search takes only categorical ranges; {', '.join(numeric)} {'is' if len(numeric) == 1 else 'are'} not",
            "list the values to try (type: categorical), or use strategy: Random")
        return
    size = math.prod(len(p.values) for p in parameters)
    if parameters and trials is not None and size != trials:
        bad(where, f"a Grid search runs each of its {size} combinations once, but completions is {trials}",
            f"set spec.completions: {size}")


def _scalar(v: Any) -> bool:
    return isinstance(v, (str, int, float, bool))


def _text(v: Any) -> str:
    """A value as SageMaker passes hyperparameters: a string (YAML's true is 'true', not 'True')."""
    if isinstance(v, bool):
        return "true" if v else "false"
    return str(v)
