"""Each bench's goals, as ranges (bench/thresholds.yaml), checked against the figures of a run.

A bench calls report(NAME, figures) just before it prints its figures as its last line: one line
per goal goes to stderr, and the JSON line stays the figures alone."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import yaml

FILE = Path(__file__).with_name("thresholds.yaml")


def goals(bench: str) -> dict[str, dict[str, Any]]:
    """The goals of one bench: figure path -> {min, max, why}."""
    return (yaml.safe_load(FILE.read_text()) or {}).get(bench) or {}


def figure(figures: dict, path: str) -> Any:
    """The figure at `path` (keys joined by "/"), or None if the run did not measure it."""
    node: Any = figures
    for key in path.split("/"):
        if not isinstance(node, dict) or key not in node:
            return None
        node = node[key]
    return node


def verdict(value: Any, goal: dict[str, Any]) -> str:
    """PASS or FAIL when the figure is a number (or a bool); SKIP when the run did not measure it."""
    if value is None or not isinstance(value, (int, float)):
        return "SKIP"
    low, high = goal.get("min"), goal.get("max")
    inside = (low is None or value >= low) and (high is None or value <= high)
    return "PASS" if inside else "FAIL"


def check(bench: str, figures: dict) -> dict[str, str]:
    """Each goal of `bench`: figure path -> PASS, FAIL or SKIP."""
    return {path: verdict(figure(figures, path), goal) for path, goal in goals(bench).items()}


def report(bench: str, figures: dict) -> bool:
    """check(), one line per goal on stderr; False when a goal failed."""
    verdicts = check(bench, figures)
    for path, goal in goals(bench).items():
        bounds = " .. ".join("" if goal.get(k) is None else f"{goal[k]:g}" for k in ("min", "max"))
        print(f"{verdicts[path]} {bench}: {path} = {figure(figures, path)} (goal {bounds}; {goal.get('why', '')})",
              file=sys.stderr)
    failed = sum(v == "FAIL" for v in verdicts.values())
    print(f"{bench}: {len(verdicts) - failed} goals met or not measured, {failed} missed "
          f"(bench/thresholds.yaml)", file=sys.stderr)
    return failed == 0
