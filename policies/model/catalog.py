"""The instance catalog: SageMaker GPU training types, their hardware and their prices (training,
managed spot, and batch transform where a price is known).

Loaded once from the CSV shipped in the package (see data/PROVENANCE.md); a policy can
override any price. Reading package data is the only file access in policies/, and it
does not depend on the machine, the clock or the network.
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass, replace
from functools import lru_cache
from importlib import resources

HOURS_PER_MONTH = 730.0


@dataclass(frozen=True, slots=True)
class InstanceType:
    name: str  # ml.g5.12xlarge
    region: str
    accelerator: str  # NVIDIA A10G
    gpu_family: str  # A10G, A100-80GB, ... (see gpu_family_of_product)
    accel_count: int
    accel_mem_gib: int
    vcpus: int
    mem_gib: int
    on_demand_usd_per_hour: float
    on_demand_basis: str
    spot_usd_per_hour: float
    spot_basis: str
    interrupt_band: str
    interrupt_monthly_rate: float
    # SageMaker batch transform, per instance-hour (None: no price known, so no transform burst on it).
    transform_usd_per_hour: float | None = None
    transform_basis: str = ""

    @property
    def is_nvidia(self) -> bool:
        return self.accelerator.startswith("NVIDIA")

    @property
    def interruptions_per_hour(self) -> float:
        """Poisson rate that gives the advisor's monthly interruption probability."""
        return -math.log1p(-min(self.interrupt_monthly_rate, 0.999)) / HOURS_PER_MONTH


@dataclass(frozen=True, slots=True)
class Catalog:
    types: tuple[InstanceType, ...]

    def in_region(self, region: str) -> "Catalog":
        return Catalog(tuple(t for t in self.types if t.region == region))

    def get(self, name: str, region: str) -> InstanceType | None:
        for t in self.types:
            if t.name == name and t.region == region:
                return t
        return None

    def names(self) -> list[str]:
        return sorted({t.name for t in self.types})

    def regions(self) -> list[str]:
        return sorted({t.region for t in self.types})

    def with_prices(self, overrides: dict[str, tuple[float | None, float | None]]) -> "Catalog":
        """Return a catalog whose prices are replaced: {type: (on_demand, spot)}; None keeps."""
        out = []
        for t in self.types:
            od, spot = overrides.get(t.name, (None, None))
            if od is not None:
                ratio = t.spot_usd_per_hour / t.on_demand_usd_per_hour if spot is None else None
                t = replace(t, on_demand_usd_per_hour=od, on_demand_basis="policy override")
                if ratio is not None:  # keep the advisor's discount on the new price
                    t = replace(t, spot_usd_per_hour=round(od * ratio, 6))
            if spot is not None:
                t = replace(t, spot_usd_per_hour=spot, spot_basis="policy override")
            out.append(t)
        return Catalog(tuple(out))

    def with_transform_prices(self, overrides: dict[str, float]) -> "Catalog":
        """Return a catalog whose batch transform prices are replaced: {type: usd per hour}."""
        return Catalog(tuple(replace(t, transform_usd_per_hour=overrides[t.name], transform_basis="policy override")
                             if t.name in overrides else t for t in self.types))


@lru_cache(maxsize=1)
def default_catalog() -> Catalog:
    text = resources.files("policies").joinpath("data/instance_catalog.csv").read_text()
    rows = csv.DictReader(text.splitlines())
    return Catalog(
        tuple(
            InstanceType(
                name=r["instance_type"],
                region=r["region"],
                accelerator=r["accelerator"],
                gpu_family=r["gpu_family"],
                accel_count=int(r["accel_count"]),
                accel_mem_gib=int(r["accel_mem_gib"]),
                vcpus=int(r["vcpus"]),
                mem_gib=int(r["mem_gib"]),
                on_demand_usd_per_hour=float(r["on_demand_usd_per_hour"]),
                on_demand_basis=r["on_demand_basis"],
                spot_usd_per_hour=float(r["spot_usd_per_hour"]),
                spot_basis=r["spot_basis"],
                interrupt_band=r["interrupt_band"],
                interrupt_monthly_rate=float(r["interrupt_monthly_rate"]),
                transform_usd_per_hour=float(r["transform_usd_per_hour"]) if r["transform_usd_per_hour"] else None,
                transform_basis=r["transform_basis"],
            )
            for r in rows
        )
    )


# NVIDIA GPU feature discovery product names (nvidia.com/gpu.product) -> catalog family.
# Matched as substrings of the upper-cased label, most specific first.
_PRODUCT_PATTERNS: tuple[tuple[tuple[str, ...], str], ...] = (
    (("H100",), "H100-80GB"),
    (("A100", "80GB"), "A100-80GB"),
    (("A100",), "A100-40GB"),
    (("V100", "32GB"), "V100-32GB"),
    (("V100",), "V100-16GB"),
    (("L40S",), "L40S"),
    (("A10G",), "A10G"),
    (("L4",), "L4"),
    (("T4",), "T4"),
)


def gpu_family_of_product(product: str) -> str | None:
    """Map e.g. 'NVIDIA-A100-SXM4-80GB' to 'A100-80GB'; None when the product is unknown."""
    upper = product.upper()
    for needles, family in _PRODUCT_PATTERNS:
        if all(n in upper for n in needles):
            if needles == ("L4",) and "L40" in upper:
                continue
            return family
    return None
