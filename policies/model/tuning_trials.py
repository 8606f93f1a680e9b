"""What trial i of a sweep is given on the cluster: its hyperparameters, as SageMaker passes them.

SageMaker hands a training container its hyperparameters twice: as the JSON file
/opt/ml/input/config/hyperparameters.json (every value a string) and, through its training
toolkit, as SM_HP_<NAME> variables (SM_HPS holds them all as JSON). A trial on the cluster gets
both, the same way, so one image runs alike on the cluster and on SageMaker.

Random and Grid are drawn per index, from the index alone (and the spec's seed): the trial that
runs again after its pod failed gets the same values, and `spillway explain` shows the values
the cluster will use. Grid walks the combinations in the order the spec lists its values, the
last parameter fastest. Random draws each range as its scaling says (Auto is Linear here), from
a uniform number that is a hash of (seed, index, name): no generator, no state, the same draw on
every machine and Python version.
"""

from __future__ import annotations

import hashlib
import json
import math
import re

from .tuning_spec import ParameterRange, RangeKind, Scaling, Strategy, TuningSpec

HYPERPARAMETERS_DIR = "/opt/ml/input/config"
HYPERPARAMETERS_FILE = "hyperparameters.json"


def trial_hyperparameters(spec: TuningSpec, index: int) -> dict[str, str]:
    """Trial `index`'s hyperparameters (the static ones first), as strings; Random and Grid only."""
    if not spec.strategy.drawn_per_index:
        raise ValueError(f"{spec.strategy.value} trials are chosen as earlier trials finish, not drawn per index")
    if index < 0:
        raise ValueError(f"a trial index is >= 0, got {index}")
    values = dict(spec.static)
    if spec.strategy == Strategy.GRID:
        values.update(_grid_point(spec.parameters, index))
    else:
        values.update((p.name, _draw(p, _uniform(spec.seed, index, p.name))) for p in spec.parameters)
    return values


def _grid_point(parameters: tuple[ParameterRange, ...], index: int) -> dict[str, str]:
    out: dict[str, str] = {}
    rest = index
    for p in reversed(parameters):
        rest, i = divmod(rest, len(p.values))
        out[p.name] = p.values[i]
    if rest:
        raise ValueError(f"trial {index} is past the grid's {math.prod(len(p.values) for p in parameters)} combinations")
    return {p.name: out[p.name] for p in parameters}


def _uniform(seed: int, index: int, name: str) -> float:
    """A number in [0, 1), the same for the same (seed, index, name)."""
    digest = hashlib.sha256(f"spillway-trial/{seed}/{index}/{name}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2.0**64


def _draw(p: ParameterRange, u: float) -> str:
    if p.kind == RangeKind.CATEGORICAL:
        return p.values[min(int(u * len(p.values)), len(p.values) - 1)]
    if p.scaling == Scaling.LOGARITHMIC:
        high = p.high + 1 if p.kind == RangeKind.INTEGER else p.high
        x = math.exp(math.log(p.low) + u * (math.log(high) - math.log(p.low)))
    elif p.scaling == Scaling.REVERSE_LOGARITHMIC:  # dense near 1: 1 - x is log-uniform
        x = 1 - math.exp(math.log(1 - p.low) + u * (math.log(1 - p.high) - math.log(1 - p.low)))
    else:
        x = p.low + u * ((p.high + 1 if p.kind == RangeKind.INTEGER else p.high) - p.low)
    if p.kind == RangeKind.INTEGER:
        return str(min(int(math.floor(x)), int(p.high)))
    return f"{min(max(x, p.low), p.high):.6g}"  # as a person writes it: 0.000260613, not 17 digits


def hp_variable(name: str) -> str:
    """SM_HP_<NAME>: the toolkit's upper-cased name; what a variable name cannot hold becomes _."""
    return "SM_HP_" + re.sub(r"[^A-Z0-9_]", "_", name.upper())


def trial_environment(values: dict[str, str]) -> list[tuple[str, str]]:
    """The variables a trial's container gets: SM_HPS, then SM_HP_<NAME> per hyperparameter."""
    return [("SM_HPS", json.dumps(values, sort_keys=True)), *((hp_variable(k), v) for k, v in values.items())]


def hyperparameters_json(values: dict[str, str]) -> str:
    return json.dumps(values, sort_keys=True)
