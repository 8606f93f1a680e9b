"""The three patch types an API server takes."""

from __future__ import annotations

import copy

import jsonpatch

# Lists that strategic merge patch merges by a key instead of replacing (the ones controllers touch).
MERGE_KEYS = {"containers": "name", "initContainers": "name", "env": "name", "ports": "containerPort",
              "volumes": "name", "volumeMounts": "mountPath", "conditions": "type", "ownerReferences": "uid",
              "imagePullSecrets": "name"}
# Lists of plain values that strategic merge patch unions (the patch's first), as Kubernetes does
# for metadata.finalizers. Others (tolerations among them) are replaced whole.
UNION_LISTS = {"finalizers"}


def merge_patch(target, patch):
    """RFC 7386: objects merge, null deletes, everything else replaces."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    out = copy.deepcopy(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            out.pop(key, None)
        else:
            out[key] = merge_patch(out.get(key), value)
    return out


def strategic_merge_patch(target, patch, field: str = ""):
    if isinstance(patch, list) and field in UNION_LISTS and isinstance(target, list):
        return list(patch) + [v for v in target if v not in patch]
    if isinstance(patch, list) and field in MERGE_KEYS and isinstance(target, list):
        key = MERGE_KEYS[field]
        out = copy.deepcopy(target)
        for item in patch:
            if isinstance(item, dict) and key in item:
                if item.get("$patch") == "delete":
                    out = [o for o in out if not (isinstance(o, dict) and o.get(key) == item[key])]
                    continue
                for i, existing in enumerate(out):
                    if isinstance(existing, dict) and existing.get(key) == item[key]:
                        out[i] = strategic_merge_patch(existing, item)
                        break
                else:
                    out.append(copy.deepcopy(item))
            else:
                out.append(copy.deepcopy(item))
        return out
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    merged = copy.deepcopy(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if key.startswith("$"):
            continue
        if value is None:
            merged.pop(key, None)
        else:
            merged[key] = strategic_merge_patch(merged.get(key), value, key)
    return merged


def json_patch(target, operations):
    return jsonpatch.apply_patch(target, operations)


class PatchError(ValueError):
    pass


def apply(content_type: str, target: dict, body) -> dict:
    kind = content_type.split(";")[0].strip()
    if kind == "application/merge-patch+json":
        return merge_patch(target, body)
    if kind == "application/strategic-merge-patch+json":
        return strategic_merge_patch(target, body)
    if kind == "application/json-patch+json":
        try:
            return json_patch(target, body)
        except (jsonpatch.JsonPatchException, jsonpatch.JsonPointerException, TypeError) as exc:
            raise PatchError(str(exc)) from None
    if kind == "application/apply-patch+yaml":
        raise PatchError("server-side apply is not supported by the sandbox; use kubectl apply (client-side)")
    raise PatchError(f"unsupported patch type {kind!r}")
