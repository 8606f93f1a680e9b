"""The annotations of a hyperparameter sweep (spillway.io/sagemaker-kind: tuning), read and checked.

A sweep is an Indexed Job whose pods are its trials (completions: the most trials; parallelism:
the most at once). Its tuning spec (tuning_spec.py) is YAML, inline in spillway.io/tuning-spec
or in a ConfigMap named by spillway.io/tuning-spec-configmap (`name`, reading the key
tuning.yaml, or `name/key`). Reading a ConfigMap is I/O: the caller passes the ConfigMaps it
has (the controller those of the Job's namespace, `spillway explain` those in the same file).
"""

from __future__ import annotations

from typing import Any, Callable, Mapping

import yaml

from . import constants as C
from .constants import Mode, SageMakerKind
from .transform_annotations import entrypoint_untranslatable
from .tuning_spec import TuningSpec, read_tuning_spec

Bad = Callable[[str, str, str], None]  # bad(path, problem, fix)
ConfigMaps = Mapping[str, Mapping[str, str]]  # name -> data


def _path(key: str) -> str:
    return f'metadata.annotations["{key}"]'


def read_tuning_annotations(ann: dict[str, str], kind: SageMakerKind, *, trials: int, indexed: bool,
                            config_maps: ConfigMaps | None, out: dict[str, Any], bad: Bad) -> None:
    """The tuning spec of a sweep (out["tuning"], out["trials"]); tuning annotations on any other
    Job, and what a sweep cannot be, refused with the fix. config_maps None: the cluster cannot
    be read here, and a spec in a ConfigMap is left unread (out gets no "tuning")."""
    if kind != SageMakerKind.TUNING:
        for key in C.TUNING_ONLY_ANNOTATIONS:
            if key in ann:
                bad(_path(key), "applies only to hyperparameter tuning Jobs",
                    f"set {C.SAGEMAKER_KIND}: tuning, or remove {key}")
        return
    if not indexed:
        bad("spec.completionMode", "a sweep's pods are its trials, and trial i is the pod of index i",
            "set completionMode: Indexed (completions: the most trials, parallelism: the most at once)")
    text, where = _spec_text(ann, config_maps, bad)
    if text is None:
        return
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        bad(where, f"not YAML: {str(exc).splitlines()[0]}", "fix the YAML (a block scalar `|` keeps it readable)")
        return
    spec = read_tuning_spec(data, where, trials, bad)
    if spec is None:
        return
    out["tuning"], out["trials"] = spec, trials
    _check_local(ann, spec, bad)


def _spec_text(ann: dict[str, str], config_maps: ConfigMaps | None, bad: Bad) -> tuple[str | None, str]:
    inline, ref = ann.get(C.TUNING_SPEC), ann.get(C.TUNING_SPEC_CONFIGMAP)
    if inline is not None and ref is not None:
        bad(_path(C.TUNING_SPEC_CONFIGMAP), f"the spec is given twice ({C.TUNING_SPEC} too)", "keep one of them")
        return None, ""
    if inline is not None:
        return inline, _path(C.TUNING_SPEC)
    if ref is None:
        bad(_path(C.TUNING_SPEC), "missing: a sweep needs its objective, strategy and parameter ranges",
            f"set {C.TUNING_SPEC} (YAML), or {C.TUNING_SPEC_CONFIGMAP} to a ConfigMap holding it")
        return None, ""
    name, _, key = ref.strip().partition("/")
    key = key or C.TUNING_SPEC_KEY
    where = f'ConfigMap {name} data["{key}"]'
    if not name:
        bad(_path(C.TUNING_SPEC_CONFIGMAP), f"{ref!r} names no ConfigMap", "write name or name/key")
        return None, where
    if config_maps is None:
        # Read where the cluster cannot be (the admission webhook): the reference's form is
        # checked here, the ConfigMap itself when the controller reads the Job.
        return None, where
    data = config_maps.get(name)
    if data is None:
        bad(_path(C.TUNING_SPEC_CONFIGMAP), f"no ConfigMap {name} in the Job's namespace",
            f"create it (kubectl create configmap {name} --from-file={key}=tuning.yaml); spillway explain "
            "reads it from the Job's file, as another document")
        return None, where
    if key not in data:
        bad(_path(C.TUNING_SPEC_CONFIGMAP), f"ConfigMap {name} has no key {key}",
            f"use one of {', '.join(sorted(data)) or '(it is empty)'} as {name}/<key>")
        return None, where
    return data[key], where


def _check_local(ann: dict[str, str], spec: TuningSpec, bad: Bad) -> None:
    """A Hyperband sweep stops trials early: only SageMaker's tuner runs one."""
    if not spec.strategy.runs_locally and (ann.get(C.MODE) or "").strip().lower() == Mode.LOCAL.value:
        bad(_path(C.MODE), f"a {spec.strategy.value} sweep runs only on SageMaker (its tuner stops trials "
            "early; Spillway runs Random, Grid and Bayesian sweeps on the cluster)",
            "use strategy: Bayesian, Random or Grid to keep it local, or mode auto or cloud")



def tuning_untranslatable(command: Any, args: Any) -> str | None:
    """A tuning job's training definition runs its image's own entrypoint: it has no
    ContainerEntrypoint or ContainerArguments, on any emit target."""
    return entrypoint_untranslatable(command, args, "a hyperparameter tuning job's training definition",
                                     "build an image that trains on its own")
