"""The cluster shorthand both the simulator and the sandbox take: NODESxGPUS[:GPU_PRODUCT], comma-separated."""

from __future__ import annotations


def node_groups(text: str) -> list[tuple[int, int, str | None]]:
    """'4x8:NVIDIA-A100-SXM4-80GB,2x4' -> [(4, 8, 'NVIDIA-A100-SXM4-80GB'), (2, 4, None)]."""
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
        groups.append((n, g, product or None))
    return groups
