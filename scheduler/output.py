"""Rendering for the terminal and for other tools: aligned tables, JSON, YAML."""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from typing import Any

import yaml

from policies.model import finite_or_none


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    cells = [[str(h) for h in headers]] + [["" if c is None else str(c) for c in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def emit(data: Any, fmt: str, stream=None) -> None:
    stream = stream or sys.stdout
    data = finite_or_none(data)
    if fmt == "json":
        stream.write(json.dumps(data, indent=2, sort_keys=False) + "\n")
    elif fmt == "yaml":
        stream.write(yaml.safe_dump(data, sort_keys=False, width=100))
    else:
        raise ValueError(fmt)


def money(x: float | None) -> str:
    return "-" if x is None else f"${x:,.2f}"


def duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    if seconds != seconds or seconds in (float("inf"), float("-inf")):
        return "never"
    sign = "-" if seconds < 0 else ""
    seconds = abs(seconds)
    h, rem = divmod(int(round(seconds)), 3600)
    m = rem // 60
    return f"{sign}{h}h{m:02d}m" if h else f"{sign}{m}m"
