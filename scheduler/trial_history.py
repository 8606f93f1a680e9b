"""The finished trials of a Bayesian sweep on the cluster: recorded by the controller, read by
the pod webhook.

- The controller (`unrecorded`, `harvested`): each cycle, a sweep placed Local whose strategy is
  Bayesian has its Succeeded trial pods read; a pod whose index is not on the Job yet has its
  log read, its objective found by the spec's regex (the last match), and its values and
  objective are written on the Job (spillway.io/trial-results). The Job is the record: a
  controller that restarts reads what is there and goes on with the rest.
- The pod webhook (`bayesian_trial_values`): as the Job controller creates the pod of index i,
  the webhook reads the Job and asks Optuna (bayesian_trials.py) given the recorded trials. The
  Job controller creates a pod as soon as another one succeeded, before the controller could
  record it; so the webhook first looks at the Job's Succeeded pods, and refuses the pod while
  one of them is not recorded yet ("waits for trial k's objective"). The Job controller tries
  again (at once when the Job changes, as the record changes it), and trial i is asked with
  every trial that had finished: the same history, whoever is fast.
"""

from __future__ import annotations

import json
from typing import Callable

from policies import constants as C
from policies.model import (Placement, TrialResult, TuningSpec, objective_from_log, read_trial_results,
                            trial_results_text)

from .bayesian_trials import suggest_trial

COMPLETION_INDEX = "batch.kubernetes.io/job-completion-index"
CONTROLLER_UID = "batch.kubernetes.io/controller-uid"  # the Job controller's label on each pod it makes

ReadJob = Callable[[str, str], "dict | None"]  # (namespace, name) -> the Job, or None if there is none
SucceededPods = Callable[[str, str], list]  # (namespace, Job UID) -> the Job's Succeeded pods
ReadLog = Callable[[str, str], str]  # (namespace, pod) -> its log; raises UnreadableLog if it never will be


class UnreadableLog(Exception):
    """A finished trial's log cannot be read, and will not be (its node keeps none, say)."""


def index_of(pod: dict) -> int | None:
    text = ((pod.get("metadata") or {}).get("annotations") or {}).get(COMPLETION_INDEX)
    return int(text) if text is not None and text.isdigit() else None


def recorded(job: dict) -> tuple[TrialResult, ...]:
    return read_trial_results(((job.get("metadata") or {}).get("annotations") or {}).get(C.TRIAL_RESULTS))


def unrecorded(job: dict, succeeded: list[dict]) -> list[dict]:
    """The Job's Succeeded trial pods whose index has no result on the Job yet, by index."""
    have = {r.index for r in recorded(job)}
    out = {i: p for p in succeeded if (i := index_of(p)) is not None and i not in have}
    return [out[i] for i in sorted(out)]


def placed_on_the_cluster(job: dict) -> bool:
    """A sweep whose trials run here: not (yet) a burst, whose pods only mirror SageMaker's trials."""
    placement = ((job.get("metadata") or {}).get("annotations") or {}).get(C.DECISION_PLACEMENT)
    return placement not in (Placement.SAGEMAKER_SPOT.value, Placement.SAGEMAKER_ON_DEMAND.value)


# --- the controller ------------------------------------------------------------------------------


def harvested(job: dict, spec: TuningSpec, pods: list[dict], read_log: ReadLog) -> str | None:
    """The Job's spillway.io/trial-results with these unrecorded Succeeded pods added (each
    one's values and the objective its log shows), or None if there is nothing to add. A log
    that cannot be read yet raises (the next cycle tries again); one that never will be is
    recorded without an objective, so that the sweep goes on."""
    if not pods:
        return None
    results = {r.index: r for r in recorded(job)}
    for pod in pods:
        meta = pod["metadata"]
        index = index_of(pod)
        if index is None or index in results:
            continue
        values = _values_of(pod)
        try:
            objective, note = objective_from_log(spec, read_log(meta.get("namespace") or "", meta["name"]))
        except UnreadableLog as exc:
            objective, note = None, f"its log cannot be read: {exc}"
        results[index] = TrialResult(index, meta["name"], values, objective, note)
    return trial_results_text(list(results.values()))


def _values_of(pod: dict) -> dict[str, str]:
    text = ((pod.get("metadata") or {}).get("annotations") or {}).get(C.TRIAL_HYPERPARAMETERS) or "{}"
    try:
        data = json.loads(text)
    except ValueError:
        return {}
    return {str(k): str(v) for k, v in data.items()} if isinstance(data, dict) else {}


# --- the pod webhook -----------------------------------------------------------------------------


def owner_job(pod: dict) -> tuple[str, str] | None:
    """(name, UID) of the Job that made the pod (its controller owner reference)."""
    for ref in (pod.get("metadata") or {}).get("ownerReferences") or []:
        if ref.get("controller") and ref.get("kind") == "Job":
            return ref.get("name") or "", ref.get("uid") or ""
    return None


def bayesian_trial_values(pod: dict, namespace: str, spec: TuningSpec, index: int, read_job: ReadJob | None,
                          succeeded_pods: SucceededPods | None) -> tuple[dict[str, str], str] | str | None:
    """Trial `index`'s values asked of Optuna given the Job's finished trials, with the indexes
    of those that taught it (the pod's spillway.io/trial-asked-with); None when the pod gets
    none (its sweep burst: SageMaker's tuner chooses the trials); or why it cannot have them yet."""
    owner = owner_job(pod)
    if owner is None:
        return f"trial {index} of a Bayesian sweep names no Job as its owner: its values come from the Job's finished trials"
    if read_job is None or succeeded_pods is None:
        return "this webhook cannot read Jobs: a Bayesian sweep's trials are chosen from its Job's finished trials"
    name, uid = owner
    try:
        job = read_job(namespace, name)
        if job is None:
            return f"Job {namespace}/{name} is not there: a Bayesian trial's values come from its finished trials"
        if not placed_on_the_cluster(job):
            return None
        waiting = unrecorded(job, succeeded_pods(namespace, uid))
    except Exception as exc:  # noqa: BLE001 - any failure to read is the refusal's reason
        return f"cannot read Job {namespace}/{name} or its pods ({exc}): trial {index} is chosen from its finished trials"
    if waiting:
        indexes = ", ".join(str(index_of(p)) for p in waiting)
        trials = "trial" if len(waiting) == 1 else "trials"
        return (f"trial {index} waits for the objective of finished {trials} {indexes}, which the controller reads from "
                f"its log onto the Job ({C.TRIAL_RESULTS}); the Job controller creates the pod again")
    finished = recorded(job)
    taught = ",".join(str(r.index) for r in finished if r.objective is not None)
    return suggest_trial(spec, index, finished), taught
