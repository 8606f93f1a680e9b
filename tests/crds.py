"""The bundled SageMaker CRDs (ACK, then the legacy operator's), as the sandbox's validator reads
them: what emitted resources are checked against, with fieldValidation=Strict."""

from __future__ import annotations

from sim.sandbox.apiserver import bundled_crds
from sim.sandbox.resources import types_from_crd


def crd_type(kind: str, group: str | None = None):
    """The resource type of the CRD of this kind (in this API group, when two groups have the kind)."""
    for crd in bundled_crds():
        if crd["spec"]["names"]["kind"] == kind and group in (None, crd["spec"]["group"]):
            return types_from_crd(crd)[0]
    raise AssertionError(f"no bundled CRD of kind {kind}" + (f" in {group}" if group else ""))
