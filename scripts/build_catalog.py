"""Build policies/data/instance_catalog.csv from the raw price and Spot Advisor data.

Run from the repository root with the shared data beside it:
    python scripts/build_catalog.py ../shared/data
The output is committed; the product reads only the CSV, never ../shared.
"""

from __future__ import annotations

import csv
import gzip
import sys
from pathlib import Path

# Accelerator family as NVIDIA GPU feature discovery names it (nvidia.com/gpu.product),
# so a Job's node selector maps onto a SageMaker type.
FAMILY = {
    ("NVIDIA V100", 16): "V100-16GB",
    ("NVIDIA V100", 32): "V100-32GB",
    ("NVIDIA A100", 40): "A100-40GB",
    ("NVIDIA A100", 80): "A100-80GB",
    ("NVIDIA H100", 80): "H100-80GB",
    ("NVIDIA T4", 16): "T4",
    ("NVIDIA A10G", 24): "A10G",
    ("NVIDIA L4", 24): "L4",
    ("NVIDIA L40S", 48): "L40S",
    ("AWS Trainium", 32): "Trainium",
}
# Spot Advisor bucket -> assumed monthly interruption probability (bucket midpoints; the
# open-ended ">20%" bucket is taken as 30%, as shared/data/aws_spot_advisor/README.md suggests).
BUCKET_MONTHLY_RATE = {0: 0.025, 1: 0.075, 2: 0.125, 3: 0.175, 4: 0.30}
# SageMaker/EC2 price ratio of the sourced sizes (g5, g6 family ratio 1.25; p4d and p5 1.15,
# from 37.688/32.7726 and 113.068/98.32 in the source that predates the 2025 P4/P5 cut).
P_FAMILY_RATIO = 1.15
G_FAMILY_RATIO = 1.25

# Types SageMaker trains on that the shared price file lacks. EC2 on-demand prices are
# AWS list prices recalled for us-east-1 (not in a stored source): flagged as estimates.
EXTRA = [
    # sm type, ec2 type, accelerator, count, mem each, vcpus, mem_gib, ec2 usd/h, ratio
    ("ml.p4de.24xlarge", "p4de.24xlarge", "NVIDIA A100", 8, 80, 96, 1152, 27.447, P_FAMILY_RATIO),
    ("ml.g6e.xlarge", "g6e.xlarge", "NVIDIA L40S", 1, 48, 4, 32, 1.861, G_FAMILY_RATIO),
    ("ml.g6e.2xlarge", "g6e.2xlarge", "NVIDIA L40S", 1, 48, 8, 64, 2.24208, G_FAMILY_RATIO),
    ("ml.g6e.4xlarge", "g6e.4xlarge", "NVIDIA L40S", 1, 48, 16, 128, 3.00424, G_FAMILY_RATIO),
    ("ml.g6e.8xlarge", "g6e.8xlarge", "NVIDIA L40S", 1, 48, 32, 256, 4.52856, G_FAMILY_RATIO),
    ("ml.g6e.12xlarge", "g6e.12xlarge", "NVIDIA L40S", 4, 48, 48, 384, 10.49264, G_FAMILY_RATIO),
    ("ml.g6e.16xlarge", "g6e.16xlarge", "NVIDIA L40S", 1, 48, 64, 512, 7.57719, G_FAMILY_RATIO),
    ("ml.g6e.24xlarge", "g6e.24xlarge", "NVIDIA L40S", 4, 48, 96, 768, 15.06559, G_FAMILY_RATIO),
    ("ml.g6e.48xlarge", "g6e.48xlarge", "NVIDIA L40S", 8, 48, 192, 1536, 30.13118, G_FAMILY_RATIO),
]
# SageMaker batch transform prices per instance-hour. The shared price data has none, and the
# stored corpora hold no AWS price list for transform, nor a statement that transform is billed
# at the training or hosting rate. The only transform prices stated per type that were found:
# github.com/amogkam/batch-inference-benchmarks issue #3 (2023-07-11), on a SageMaker Batch
# Transform benchmark: "4 x ml.g4dn.xlarge are ~40% cheaper than 1 x ml.g4dn.12xlarge ($0.736 vs
# $4.89 per hour for compute only)". Region not stated there; taken as us-east-1, and reused
# for us-west-2 as the training prices are. Every other type has no transform price: it is not
# offered to transform bursts until a policy prices it (spec.sageMaker.prices.<type>.transformUsdPerHour).
TRANSFORM_SOURCE = "sourced_github_amogkam/batch-inference-benchmarks#3"
TRANSFORM_USD_PER_HOUR = {"ml.g4dn.xlarge": 0.736, "ml.g4dn.12xlarge": 4.89}
REGIONS = ("us-east-1", "us-west-2")
COLUMNS = [
    "instance_type", "region", "accelerator", "gpu_family", "accel_count", "accel_mem_gib",
    "vcpus", "mem_gib", "on_demand_usd_per_hour", "on_demand_basis", "spot_savings_pct",
    "spot_usd_per_hour", "interrupt_band", "interrupt_monthly_rate", "spot_basis",
    "transform_usd_per_hour", "transform_basis",
]


def main(shared: Path, out: Path) -> None:
    advisor = {}
    with gzip.open(shared / "aws_spot_advisor/spot_advisor_linux.csv.gz", "rt") as fh:
        for row in csv.DictReader(fh):
            if row["snapshot"] == "2025-06":
                advisor[(row["region"], row["instance_type"])] = row
    base = {}
    with open(shared / "cloud_prices/sagemaker_gpu_prices.csv") as fh:
        for row in csv.DictReader(fh):
            base[(row["sm_instance_type"], row["region"])] = row
    rows = []
    types = sorted({t for t, _ in base} | {e[0] for e in EXTRA})
    for sm_type in types:
        for region in REGIONS:
            rows.append(_row(sm_type, region, base, advisor))
    with open(out, "w", newline="") as fh:
        writer = csv.DictWriter(fh, COLUMNS, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    print(f"wrote {len(rows)} rows to {out}")


def _row(sm_type: str, region: str, base: dict, advisor: dict) -> dict:
    src = base.get((sm_type, region)) or base.get((sm_type, "us-east-1"))
    if src is not None:
        ec2_type, accel = src["ec2_instance_type"], src["accelerator"]
        count, mem_each = int(src["accel_count"]), float(src["accel_mem_gib_each"])
        vcpus, mem_gib = int(src["vcpus"]), int(src["mem_gib"])
        price, basis = float(src["sm_od_usd_hr"]), src["sm_price_basis"]
        if (sm_type, region) not in base:
            basis = f"{basis}; us-east-1 value reused"
        if src["ec2_od_usd_hr_in_source_A"] and sm_type.startswith(("ml.p4d.", "ml.p5.")):
            # The sourced value predates the 2025 P4/P5 price cut: rescale it to today's EC2 price.
            ratio = price / float(src["ec2_od_usd_hr_in_source_A"])
            price = round(float(src["ec2_od_usd_hr"]) * ratio, 4)
            basis = f"estimate_post_2025_cut (ec2 {src['ec2_od_usd_hr']} x {ratio:.3f})"
    else:
        extra = next(e for e in EXTRA if e[0] == sm_type)
        _, ec2_type, accel, count, mem_each, vcpus, mem_gib, ec2_price, ratio = extra
        price = round(ec2_price * ratio, 4)
        basis = f"estimate_unsourced_ec2_price (ec2 {ec2_price} x {ratio})"
    adv = advisor.get((region, ec2_type))
    if adv is not None:
        savings = int(adv["savings_pct"])
        band, bucket = adv["interrupt_label"], int(adv["interrupt_bucket"])
        spot_basis = "estimate_spot_advisor_2025-06"
    else:
        savings, band, bucket = 0, ">20%", 4
        spot_basis = "no_advisor_row: spot priced as on-demand"
    return {
        "instance_type": sm_type,
        "region": region,
        "accelerator": accel,
        "gpu_family": FAMILY[(accel, int(mem_each))],
        "accel_count": count,
        "accel_mem_gib": int(mem_each),
        "vcpus": vcpus,
        "mem_gib": mem_gib,
        "on_demand_usd_per_hour": price,
        "on_demand_basis": basis,
        "spot_savings_pct": savings,
        "spot_usd_per_hour": round(price * (1 - max(savings, 0) / 100), 4),
        "interrupt_band": band,
        "interrupt_monthly_rate": BUCKET_MONTHLY_RATE[bucket],
        "spot_basis": spot_basis,
        "transform_usd_per_hour": TRANSFORM_USD_PER_HOUR.get(sm_type, ""),
        "transform_basis": (TRANSFORM_SOURCE + ("" if region == "us-east-1" else "; us-east-1 value reused")
                            if sm_type in TRANSFORM_USD_PER_HOUR else "no_transform_price_found"),
    }


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "../shared/data"),
         Path("policies/data/instance_catalog.csv"))
