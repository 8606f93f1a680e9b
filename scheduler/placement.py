"""Pin a Local decision's pods to the nodes it was given.

The core places a Job on named nodes (and a gang across several, all or nothing); kube-scheduler
knows nothing of that plan, and on its own would spread the pods, or put them where a later
decision counts on free GPUs. So the un-suspend carries a required node affinity on the nodes'
names (`matchFields` on metadata.name, as the DaemonSet controller pins its pods): Kubernetes lets
a suspended Job that never started change its pod template's scheduling directives (KEP-2926).

A gang spread over several nodes is pinned to that set; which of its pods lands on which node of
the set is the scheduler's choice (one pod template cannot name a node per pod).
"""

from __future__ import annotations

import copy


def pin_to_nodes(template_spec: dict, nodes: tuple[str, ...]) -> dict:
    """The `spec.template.spec` merge patch that keeps the pods on `nodes`, ANDed with every
    required node-affinity term the template already has."""
    pin = {"key": "metadata.name", "operator": "In", "values": sorted(set(nodes))}
    affinity = copy.deepcopy((template_spec.get("affinity") or {}).get("nodeAffinity") or {})
    required = affinity.get("requiredDuringSchedulingIgnoredDuringExecution") or {}
    terms = required.get("nodeSelectorTerms") or [{}]
    pinned = [{**term, "matchFields": [f for f in term.get("matchFields") or [] if f != pin] + [pin]} for term in terms]
    return {"affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
        "nodeSelectorTerms": pinned}}}}
