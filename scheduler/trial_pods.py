"""A sweep's trials on the cluster get their hyperparameters as SageMaker passes them.

SageMaker gives a training container its hyperparameters as /opt/ml/input/config/
hyperparameters.json and, through its training toolkit, as SM_HP_<NAME> variables (and SM_HPS).
A pod template is one for every index, so the values of trial i are put on the pod of index i
as it is created, by the admission webhook, in two steps:

1. The Job's CREATE (`sweep_template_patch`): a Random, Grid or Bayesian sweep's pod template gets the
   label spillway.io/trial (what the pod webhook selects) and the tuning spec's text as an
   annotation: read from the ConfigMap now if the Job names one, so a later edit of the
   ConfigMap never changes a sweep half-way through.
2. Each pod's CREATE (`trial_pod_patch`): the Job controller has written the pod's index
   (batch.kubernetes.io/job-completion-index); the webhook draws that trial's values
   (policies.model.trial_hyperparameters: the same for the same index, every time), or for a
   Bayesian sweep asks Optuna given the Job's finished trials (trial_history.py), writes them
   as the pod's annotation spillway.io/trial-hyperparameters, projects that annotation as
   hyperparameters.json through a downwardAPI volume at /opt/ml/input/config, and adds the
   SM_HP_ variables to each container. A variable the container already sets is left as it is.

A pod whose values cannot be drawn is refused, with the reason: a trial never runs without its
hyperparameters (the Job controller retries the pod, and `kubectl describe job` shows why).
"""

from __future__ import annotations

from typing import Any, Callable

import yaml

from policies import constants as C
from policies.model import (HYPERPARAMETERS_DIR, HYPERPARAMETERS_FILE, SageMakerKind, Strategy, TuningSpec,
                            hyperparameters_json, read_tuning_spec, trial_environment, trial_hyperparameters)

from .trial_history import (COMPLETION_INDEX, ReadJob, SucceededPods, bayesian_trial_values, placed_on_the_cluster,
                            recorded)

TRIAL_LABEL = C.TRIAL_LABEL  # "true" on a local-capable sweep's pods: the pod webhook's selector
VOLUME = "spillway-hyperparameters"

ReadConfigMap = Callable[[str, str], "dict | None"]  # (namespace, name) -> the ConfigMap, or None


def _pointer(key: str) -> str:
    return key.replace("~", "~0").replace("/", "~1")


def sweep_template_patch(job: dict, namespace: str, read_config_map: ReadConfigMap | None) -> list[dict]:
    """JSON patch operations for a sweep's CREATE: label its pod template, and put the spec's
    text on it. None for anything else, and for a Hyperband sweep (SageMaker's tuner runs its
    trials; it never runs on the cluster)."""
    ann = (job.get("metadata") or {}).get("annotations") or {}
    if (ann.get(C.SAGEMAKER_KIND) or "").strip().lower() != SageMakerKind.TUNING.value:
        return []
    text = _spec_text(ann, namespace, read_config_map)
    spec = _parse(text) if text is not None else None
    if text is None or spec is None or not spec.strategy.runs_locally:
        return []  # the validating webhook (or the controller) names what is wrong with it
    template = (job.get("spec") or {}).get("template") or {}
    meta = template.get("metadata")
    if meta is None:
        return [{"op": "add", "path": "/spec/template/metadata",
                 "value": {"labels": {TRIAL_LABEL: "true"}, "annotations": {C.TUNING_SPEC: text}}}]
    ops: list[dict] = []
    for field, key, value in (("labels", TRIAL_LABEL, "true"), ("annotations", C.TUNING_SPEC, text)):
        if meta.get(field) is None:
            ops.append({"op": "add", "path": f"/spec/template/metadata/{field}", "value": {key: value}})
        else:
            ops.append({"op": "add", "path": f"/spec/template/metadata/{field}/{_pointer(key)}", "value": value})
    return ops


def tuning_config_maps(job: dict, namespace: str, read_config_map: ReadConfigMap | None
                       ) -> dict[str, dict[str, str]] | None:
    """The ConfigMap a sweep's spec is in, as job_from_manifest takes it (name -> data); None
    when the cluster cannot be read (the reference's form alone is then checked)."""
    if read_config_map is None:
        return None
    ref = ((job.get("metadata") or {}).get("annotations") or {}).get(C.TUNING_SPEC_CONFIGMAP)
    name = (ref or "").strip().partition("/")[0]
    found = read_config_map(namespace, name) if name else None
    return {name: dict(found.get("data") or {})} if found is not None else {}


def _spec_text(ann: dict[str, str], namespace: str, read_config_map: ReadConfigMap | None) -> str | None:
    if C.TUNING_SPEC in ann:
        return ann[C.TUNING_SPEC]
    maps = tuning_config_maps({"metadata": {"annotations": ann}}, namespace, read_config_map) or {}
    key = (ann.get(C.TUNING_SPEC_CONFIGMAP) or "").strip().partition("/")[2] or C.TUNING_SPEC_KEY
    return next((data.get(key) for data in maps.values()), None)


def _parse(text: str) -> TuningSpec | None:
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError:
        return None
    problems: list[str] = []
    spec = read_tuning_spec(data, C.TUNING_SPEC, None, lambda path, problem, fix: problems.append(problem))
    return None if problems else spec


def bayesian_sweep_on_cluster(job: dict) -> TuningSpec | None:
    """The spec of a Bayesian sweep whose trials run on the cluster and may have results to
    record (running, or finished with fewer results than trials that succeeded); else None."""
    template_meta = ((job.get("spec") or {}).get("template") or {}).get("metadata") or {}
    text = (template_meta.get("annotations") or {}).get(C.TUNING_SPEC)
    if text is None or (job.get("spec") or {}).get("suspend") or not placed_on_the_cluster(job):
        return None
    spec = _parse(text)
    if spec is None or spec.strategy != Strategy.BAYESIAN:
        return None
    status = job.get("status") or {}
    finished = any(c.get("type") in ("Complete", "Failed") and c.get("status") == "True"
                   for c in status.get("conditions") or [])
    return None if finished and len(recorded(job)) >= (status.get("succeeded") or 0) else spec


def trial_pod_patch(pod: dict, namespace: str = "", read_job: ReadJob | None = None,
                    succeeded_pods: SucceededPods | None = None) -> list[dict] | str:
    """JSON patch operations that give a trial pod its values, or why it cannot have them. A
    Bayesian trial's values come from its Job's finished trials: read_job and succeeded_pods
    read them (trial_history.py)."""
    meta = pod.get("metadata") or {}
    ann = meta.get("annotations") or {}
    index_text, text = ann.get(COMPLETION_INDEX), ann.get(C.TUNING_SPEC)
    if text is None:
        return []  # labelled by hand, not by Spillway: nothing to give it
    if index_text is None or not index_text.isdigit():
        return (f"trial pod {meta.get('name') or meta.get('generateName')} has no {COMPLETION_INDEX}: a sweep is an "
                "Indexed Job (completionMode: Indexed), and trial i is the pod of index i")
    spec = _parse(text)
    if spec is None:
        return f"the tuning spec on this pod does not parse; fix {C.TUNING_SPEC} on the Job (spillway explain shows how)"
    if spec.strategy == Strategy.BAYESIAN:
        asked = bayesian_trial_values(pod, namespace or meta.get("namespace") or "", spec, int(index_text),
                                      read_job, succeeded_pods)
        if asked is None or isinstance(asked, str):
            return [] if asked is None else asked
        values, taught = asked
        return _ops(pod, values, {C.TRIAL_ASKED_WITH: taught})
    try:
        values = trial_hyperparameters(spec, int(index_text))
    except ValueError as exc:
        return f"trial {index_text}: {exc}"
    return _ops(pod, values)


def _ops(pod: dict[str, Any], values: dict[str, str], more: dict[str, str] | None = None) -> list[dict]:
    spec = pod.get("spec") or {}
    # The Job controller copies the template's annotations onto its pods: a trial pod has the
    # spec's at least, so /metadata/annotations is there to add to.
    ops: list[dict] = [{"op": "add", "path": f"/metadata/annotations/{_pointer(key)}", "value": value}
                       for key, value in {C.TRIAL_HYPERPARAMETERS: hyperparameters_json(values), **(more or {})}.items()]
    volume = {"name": VOLUME, "downwardAPI": {"items": [{
        "path": HYPERPARAMETERS_FILE,
        "fieldRef": {"fieldPath": f"metadata.annotations['{C.TRIAL_HYPERPARAMETERS}']"}}]}}
    ops.append({"op": "add", "path": "/spec/volumes/-", "value": volume} if spec.get("volumes") is not None
               else {"op": "add", "path": "/spec/volumes", "value": [volume]})
    mount = {"name": VOLUME, "mountPath": HYPERPARAMETERS_DIR, "readOnly": True}
    for i, container in enumerate(spec.get("containers") or []):
        base = f"/spec/containers/{i}"
        taken = {e.get("name") for e in container.get("env") or []}
        env = [{"name": k, "value": v} for k, v in trial_environment(values) if k not in taken]
        if container.get("env") is None:
            ops.append({"op": "add", "path": f"{base}/env", "value": env})
        else:
            ops.extend({"op": "add", "path": f"{base}/env/-", "value": e} for e in env)
        mounts = container.get("volumeMounts")
        if any(m.get("mountPath") == HYPERPARAMETERS_DIR for m in mounts or []):
            continue  # the container mounts something of its own there: its choice stands
        ops.append({"op": "add", "path": f"{base}/volumeMounts", "value": [mount]} if mounts is None
                   else {"op": "add", "path": f"{base}/volumeMounts/-", "value": mount})
    return ops
