"""What a real API server refuses with 422 Invalid: the Job API rules the controller relies on,
and custom resources against their CRD's openAPIV3Schema."""

from __future__ import annotations

import re

import jsonschema

from .resources import ResourceType

NAME = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")


def cause(field: str, reason: str, message: str) -> dict:
    return {"reason": reason, "message": message, "field": field}


def validate(rtype: ResourceType, obj: dict, *, strict: bool = False) -> list[dict]:
    causes = []
    name = (obj.get("metadata") or {}).get("name") or ""
    if not name:
        causes.append(cause("metadata.name", "FieldValueRequired", "Required value: name or generateName is required"))
    elif len(name) > 253 or not NAME.match(name):
        causes.append(cause("metadata.name", "FieldValueInvalid",
                            f'Invalid value: "{name}": a lowercase RFC 1123 subdomain must consist of lower case '
                            "alphanumeric characters, '-' or '.'"))
    if rtype.group == "batch" and rtype.kind == "Job":
        causes += _job(obj)
        if len(name) > 63:  # its pods carry it in the job-name label, whose values stop at 63
            causes.append(cause("spec.template.labels", "FieldValueInvalid",
                                f'Invalid value: "{name}": must be no more than 63 bytes'))
    if rtype.schema is not None:
        for err in sorted(_validator(id(rtype.schema), rtype.schema, strict).iter_errors(_without_meta(obj)),
                          key=lambda e: list(e.absolute_path)):
            field = ".".join(str(p) for p in err.absolute_path)
            reason = "FieldValueRequired" if err.validator == "required" else (
                "FieldValueTypeInvalid" if err.validator == "type" else "FieldValueInvalid")
            causes.append(cause(field or "<root>", reason, err.message))
    return causes


_VALIDATORS: dict[tuple[int, bool], tuple[dict, jsonschema.Draft7Validator]] = {}


def _validator(key: int, schema: dict, strict: bool) -> jsonschema.Draft7Validator:
    """A CRD's validator, built once (its schema never changes once served)."""
    known = _VALIDATORS.get((key, strict))
    if known is None or known[0] is not schema:
        known = _VALIDATORS[(key, strict)] = (schema, jsonschema.Draft7Validator(_strict(schema) if strict else schema))
    return known[1]


def _without_meta(obj: dict) -> dict:
    return {k: v for k, v in obj.items() if k not in ("metadata",)}


def _strict(schema):
    """fieldValidation=Strict: unknown fields are errors instead of being dropped."""
    if isinstance(schema, dict):
        out = {k: _strict(v) for k, v in schema.items()}
        if "properties" in out and "additionalProperties" not in out and not out.get(
                "x-kubernetes-preserve-unknown-fields"):
            out["additionalProperties"] = False
        return out
    if isinstance(schema, list):
        return [_strict(v) for v in schema]
    return schema


def _job(obj: dict) -> list[dict]:
    causes = []
    spec = obj.get("spec")
    if not isinstance(spec, dict):
        return [cause("spec", "FieldValueRequired", "Required value")]
    for key in ("parallelism", "completions", "backoffLimit", "activeDeadlineSeconds"):
        value = spec.get(key)
        if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 0):
            causes.append(cause(f"spec.{key}", "FieldValueInvalid",
                                f"Invalid value: {value!r}: must be greater than or equal to 0"))
    mode = spec.get("completionMode")
    if mode not in (None, "NonIndexed", "Indexed"):
        causes.append(cause("spec.completionMode", "FieldValueNotSupported",
                            f'Unsupported value: "{mode}": supported values: "NonIndexed", "Indexed"'))
    if mode == "Indexed" and spec.get("completions") is None:
        causes.append(cause("spec.completions", "FieldValueRequired",
                            "Required value: when completion mode is Indexed"))
    pod = ((spec.get("template") or {}).get("spec")) if isinstance(spec.get("template"), dict) else None
    if not isinstance(pod, dict):
        return causes + [cause("spec.template.spec", "FieldValueRequired", "Required value")]
    restart = pod.get("restartPolicy")
    if restart not in ("Never", "OnFailure"):
        causes.append(cause("spec.template.spec.restartPolicy", "FieldValueNotSupported" if restart else
                            "FieldValueRequired", f'Unsupported value: "{restart or ""}": supported values: '
                            '"OnFailure", "Never"'))
    containers = pod.get("containers")
    if not isinstance(containers, list) or not containers:
        causes.append(cause("spec.template.spec.containers", "FieldValueRequired", "Required value"))
        return causes
    for i, c in enumerate(containers):
        causes += _container(i, c)
    return causes


def _container(i: int, c) -> list[dict]:
    """A pod template's container i: an object with a name, an image and well-formed quantities."""
    if not isinstance(c, dict):
        return [cause(f"spec.template.spec.containers[{i}]", "FieldValueInvalid", "must be an object")]
    causes = []
    for key in ("name", "image"):
        if not c.get(key):
            causes.append(cause(f"spec.template.spec.containers[{i}].{key}", "FieldValueRequired",
                                "Required value"))
    for part in ("limits", "requests"):
        for res, qty in (((c.get("resources") or {}).get(part)) or {}).items():
            if not re.match(r"^[0-9]+(\.[0-9]+)?(m|k|Ki|M|Mi|G|Gi|T|Ti|P|Pi|E|Ei)?$", str(qty)):
                causes.append(cause(f"spec.template.spec.containers[{i}].resources.{part}[{res}]",
                                    "FieldValueInvalid", f'Invalid value: "{qty}": quantities must match the '
                                    "regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'"))
    return causes


# What Kubernetes (1.27+, KEP-2926) lets change in a Job's pod template while the Job is suspended
# and has never started: scheduling directives, labels and annotations.
MUTABLE_WHILE_SUSPENDED = {"spec": ("nodeSelector", "affinity", "tolerations", "schedulingGates"),
                           "metadata": ("labels", "annotations")}


def job_spec_immutable_changes(old: dict, new: dict) -> list[dict]:
    """spec.template may not change, except its scheduling directives, labels and annotations on
    a Job that is suspended and never started (no status.startTime), as in Kubernetes >= 1.27; the
    same update may un-suspend it. spec.completions is immutable; spec.managedBy too."""
    causes = []
    o, n = old.get("spec") or {}, new.get("spec") or {}
    for key in ("completions", "completionMode", "managedBy"):
        if o.get(key) != n.get(key) and key in o:
            causes.append(cause(f"spec.{key}", "FieldValueInvalid", "field is immutable"))
    old_template, new_template = o.get("template") or {}, n.get("template") or {}
    if old_template != new_template:
        never_started = o.get("suspend") and not (old.get("status") or {}).get("startTime")
        if not never_started or _without_directives(old_template) != _without_directives(new_template):
            causes.append(cause("spec.template", "FieldValueInvalid",
                                "field is immutable (only the scheduling directives, labels and annotations of a "
                                "suspended Job that never started may change)"))
    return causes


def _without_directives(template: dict) -> dict:
    out = {part: {k: v for k, v in (template.get(part) or {}).items() if k not in keys}
           for part, keys in MUTABLE_WHILE_SUSPENDED.items()}
    return {**template, **out}
