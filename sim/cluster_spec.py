"""The cluster shorthand both the simulator and the sandbox take: NODESxGPUS[:GPU_PRODUCT], comma-separated."""

from __future__ import annotations

from policies.model import gpu_family_of_product


def node_groups(text: str) -> list[tuple[int, int, str | None]]:
    """'4x8:NVIDIA-A100-SXM4-80GB,2x4' -> [(4, 8, 'NVIDIA-A100-SXM4-80GB'), (2, 4, None)].

    A product is the node's nvidia.com/gpu.product label; one that maps to no known GPU family is
    refused, since Jobs that select it could never be matched to a SageMaker type."""
    groups = []
    for group in text.split(","):
        shape, _, product = group.strip().partition(":")
        count, _, gpus = shape.partition("x")
        try:
            n, g = int(count), int(gpus)
        except ValueError:
            raise ValueError(f"expected NODESxGPUS[:PRODUCT], got {group!r}") from None
        if n < 0 or g < 0:
            raise ValueError(f"expected non-negative counts, got {group!r}")
        if product and gpu_family_of_product(product) is None:
            raise ValueError(f"unknown GPU product {product!r} in {group.strip()!r}; write an nvidia.com/gpu.product "
                             "label, e.g. NVIDIA-A100-SXM4-80GB, NVIDIA-H100-80GB-HBM3, NVIDIA-A10G or NVIDIA-L4")
        groups.append((n, g, product or None))
    if not any(n for n, _, _ in groups):
        raise ValueError(f"{text!r} has no nodes; give at least one, e.g. 4x8")
    return groups
