"""The finished trials of a sweep on the cluster, as they are kept on its Job.

A Bayesian sweep's next trial is chosen from the ones that finished, so their results must
outlive any process: the controller reads each finished trial pod's objective from its log and
records it on the Job, in the annotation spillway.io/trial-results (JSON, one entry per index):

    [{"index": 0, "pod": "sweep-0-x7k2q", "values": {"lr": "0.0031", "epochs": "12"},
      "objective": 0.8812},
     {"index": 1, "pod": "sweep-1-p2m9d", "values": {...}, "objective": null,
      "note": "no match of val_acc=([0-9.]+) in its log"}]

`objective` is null when the log has no match (or an unreadable number): such a trial is kept,
so that it is not read again, but it teaches the search nothing. The objective is the last
match of the spec's regex in the log, its one capture group, as SageMaker reads a training job's
final metric.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from typing import Any

from .tuning_spec import TuningSpec


@dataclass(frozen=True)
class TrialResult:
    index: int
    pod: str
    values: dict[str, str] = field(default_factory=dict)  # as the trial got them (static ones too)
    objective: float | None = None
    note: str = ""  # why objective is None


def objective_from_log(spec: TuningSpec, log: str) -> tuple[float | None, str]:
    """The last match of the spec's regex in a trial's log, as a number; or None and why not."""
    matches = list(re.finditer(spec.regex, log))
    if not matches:
        return None, f"no match of {spec.regex} in its log"
    text = matches[-1].group(1)
    try:
        value = float(text)
    except (TypeError, ValueError):
        return None, f"the last match of {spec.regex} in its log, {text!r}, is not a number"
    if not math.isfinite(value):
        return None, f"the last match of {spec.regex} in its log is {text}"
    return value, ""


def read_trial_results(text: str | None) -> tuple[TrialResult, ...]:
    """The results recorded on a Job, by index; what does not parse is left out (the
    controller writes the annotation: anything else in it is not its)."""
    try:
        data: Any = json.loads(text) if text else []
    except ValueError:
        return ()
    out: dict[int, TrialResult] = {}
    for item in data if isinstance(data, list) else []:
        result = _result(item)
        if result is not None:
            out[result.index] = result
    return tuple(out[i] for i in sorted(out))


def _result(item: Any) -> TrialResult | None:
    if not isinstance(item, dict):
        return None
    index, pod, values, objective = item.get("index"), item.get("pod"), item.get("values"), item.get("objective")
    if isinstance(index, bool) or not isinstance(index, int) or index < 0 or not isinstance(pod, str):
        return None
    if not isinstance(values, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in values.items()):
        return None
    if objective is not None and (isinstance(objective, bool) or not isinstance(objective, (int, float))):
        return None
    return TrialResult(index, pod, dict(values), None if objective is None else float(objective),
                       str(item.get("note") or ""))


def trial_results_text(results: tuple[TrialResult, ...] | list[TrialResult]) -> str:
    """The annotation's JSON, by index, compact (a Job's annotations hold 256 KiB in all: about
    a thousand trials of a few hyperparameters)."""
    out = []
    for r in sorted(results, key=lambda r: r.index):
        entry: dict[str, Any] = {"index": r.index, "pod": r.pod, "values": r.values, "objective": r.objective}
        if r.note:
            entry["note"] = r.note
        out.append(entry)
    return json.dumps(out, separators=(",", ":"), sort_keys=False)
