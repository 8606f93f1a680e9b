"""Label and field selectors, as list and watch take them."""

from __future__ import annotations

import re
from typing import Any, Callable

_SET = re.compile(r"^\s*([\w./-]+)\s+(in|notin)\s+\(([^)]*)\)\s*$")


class SelectorError(ValueError):
    pass


def _split_terms(text: str) -> list[str]:
    terms, depth, cur = [], 0, ""
    for ch in text:
        depth += ch == "("
        depth -= ch == ")"
        if ch == "," and depth == 0:
            terms.append(cur)
            cur = ""
        else:
            cur += ch
    if cur.strip():
        terms.append(cur)
    return [t.strip() for t in terms if t.strip()]


def label_matcher(text: str | None) -> Callable[[dict], bool]:
    if not text:
        return lambda labels: True
    tests = []
    for term in _split_terms(text):
        m = _SET.match(term)
        if m:
            key, op, values = m.group(1), m.group(2), {v.strip() for v in m.group(3).split(",") if v.strip()}
            tests.append((lambda k, vs, neg: lambda l: (l.get(k) in vs) != neg)(key, values, op == "notin"))
        elif "!=" in term:
            k, v = (s.strip() for s in term.split("!=", 1))
            tests.append((lambda k, v: lambda l: l.get(k) != v)(k, v))
        elif "=" in term:
            k, v = (s.strip() for s in term.replace("==", "=").split("=", 1))
            tests.append((lambda k, v: lambda l: l.get(k) == v)(k, v))
        elif term.startswith("!"):
            k = term[1:].strip()
            tests.append((lambda k: lambda l: k not in l)(k))
        elif re.match(r"^[\w./-]+$", term):
            tests.append((lambda k: lambda l: k in l)(term))
        else:
            raise SelectorError(f"unable to parse requirement: {term!r}")
    return lambda labels: all(t(labels) for t in tests)


def field_matcher(text: str | None) -> Callable[[dict], bool]:
    if not text:
        return lambda obj: True
    tests = []
    for term in _split_terms(text):
        neg = "!=" in term
        path, _, value = term.partition("!=" if neg else "=")
        path, value = path.strip(), value.lstrip("=").strip()
        if not path:
            raise SelectorError(f"invalid field selector: {term!r}")
        tests.append((lambda p, v, n: lambda o: (str(_dig(o, p)) == v) != n)(path, value, neg))
    return lambda obj: all(t(obj) for t in tests)


def _dig(obj: dict, path: str):
    node: Any = obj
    for part in path.split("."):
        if not isinstance(node, dict):
            return ""
        node = node.get(part)
    return "" if node is None else node


def node_fits(pod_spec: dict, node: dict) -> bool:
    """kube-scheduler's TaintToleration and NodeAffinity filters: every NoSchedule and NoExecute
    taint of the node tolerated; the pod's nodeSelector, and one of its required node-affinity
    terms (matchExpressions on the node's labels, matchFields on its name)."""
    tolerations = pod_spec.get("tolerations") or []
    if any(t.get("effect") in ("NoSchedule", "NoExecute") and not any(tolerates(o, t) for o in tolerations)
           for t in (node.get("spec") or {}).get("taints") or []):
        return False
    labels = node["metadata"].get("labels") or {}
    if any(labels.get(k) != v for k, v in (pod_spec.get("nodeSelector") or {}).items()):
        return False
    required = (((pod_spec.get("affinity") or {}).get("nodeAffinity") or {})
                .get("requiredDuringSchedulingIgnoredDuringExecution") or {})
    terms = required.get("nodeSelectorTerms")
    if not terms:
        return True
    fields = {"metadata.name": node["metadata"]["name"]}
    return any(term and all(requirement_holds(r, labels) for r in term.get("matchExpressions") or [])
               and all(requirement_holds(r, fields) for r in term.get("matchFields") or []) for term in terms)


def requirement_holds(r: dict, values: dict) -> bool:
    """One matchExpressions (or matchFields) entry against labels (or fields)."""
    key, op, wanted = r.get("key"), r.get("operator"), r.get("values") or []
    have = values.get(key)
    if op == "In":
        return have in wanted
    if op == "NotIn":
        return have not in wanted
    if op == "Exists":
        return key in values
    if op == "DoesNotExist":
        return key not in values
    if op in ("Gt", "Lt") and have is not None and wanted:
        try:
            return int(have) > int(wanted[0]) if op == "Gt" else int(have) < int(wanted[0])
        except ValueError:
            return False
    return False


def tolerates(toleration: dict, taint: dict) -> bool:
    """A toleration matches a taint: its key (none: every key, with operator Exists), its value
    (operator Equal, the default) and its effect (none: every effect)."""
    if toleration.get("effect") and toleration["effect"] != taint.get("effect"):
        return False
    if not toleration.get("key"):
        return toleration.get("operator") == "Exists"
    if toleration["key"] != taint.get("key"):
        return False
    return toleration.get("operator") == "Exists" or toleration.get("value", "") == taint.get("value", "")
