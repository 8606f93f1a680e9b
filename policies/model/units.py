"""Parsing of durations, times and quantities as they appear in annotations and manifests."""

from __future__ import annotations

import math
import re
from typing import Any
from datetime import datetime, timezone
from functools import lru_cache

_DURATION = re.compile(r"(\d+(?:\.\d+)?)(d|h|m|s)")
_UNIT_SECONDS = {"d": 86400, "h": 3600, "m": 60, "s": 1}


def parse_duration(text: str | int | float) -> float:
    """'5400', '90m', '1h30m', '2.5h', '1d' -> seconds. Raises ValueError with the accepted forms."""
    if isinstance(text, bool):
        raise ValueError("expected a duration like 5400, 90m or 1h30m, got a boolean")
    if isinstance(text, (int, float)):
        seconds = float(text)
    else:
        raw = str(text).strip()
        try:
            seconds = float(raw)
        except ValueError:
            pos, seconds = 0, 0.0
            for m in _DURATION.finditer(raw):
                if m.start() != pos:
                    break
                seconds += float(m.group(1)) * _UNIT_SECONDS[m.group(2)]
                pos = m.end()
            if pos != len(raw) or not raw:
                raise ValueError(f"expected a duration like 5400, 90m or 1h30m, got {raw!r}") from None
    if not (seconds > 0) or seconds == float("inf"):
        raise ValueError(f"a duration must be positive and finite, got {text!r}")
    return seconds


def parse_time(text: str | datetime) -> float:
    """RFC 3339 ('2026-11-29T08:00:00Z') -> Unix seconds. A time without a zone is refused."""
    if isinstance(text, datetime):
        dt = text
    else:
        raw = str(text).strip()
        try:
            dt = datetime.fromisoformat(raw.replace("Z", "+00:00").replace("z", "+00:00"))
        except ValueError:
            raise ValueError(f"expected an RFC 3339 time like 2026-11-29T08:00:00Z, got {raw!r}") from None
    if dt.tzinfo is None:
        raise ValueError(f"the time {text!s} has no zone; append Z for UTC")
    return dt.timestamp()


def format_micro_time(seconds: float) -> str:
    """RFC 3339 UTC to the microsecond: what Kubernetes' MicroTime fields (a Lease's renewTime) take."""
    micros = round(seconds * 1_000_000)
    return f"{format_time(micros // 1_000_000)[:-1]}.{micros % 1_000_000:06d}Z"


def format_time(seconds: float) -> str:
    """RFC 3339 UTC to the second, as datetime.strftime writes it (fraction dropped).

    Decision messages name times all the time; the date part is looked up once per day."""
    whole = math.floor(round(seconds, 6))  # fromtimestamp rounds to the microsecond first
    day, second = divmod(whole, 86400)
    hour, rest = divmod(second, 3600)
    return f"{_utc_date(day)}T{hour:02d}:{rest // 60:02d}:{rest % 60:02d}Z"


@lru_cache(maxsize=4096)
def _utc_date(day: int) -> str:
    return datetime.fromtimestamp(day * 86400, tz=timezone.utc).strftime("%Y-%m-%d")


def parse_gpu_quantity(value: object) -> int:
    """A Kubernetes quantity for nvidia.com/gpu: whole GPUs only."""
    if isinstance(value, bool):
        raise ValueError("expected a whole number of GPUs, got a boolean")
    if isinstance(value, int):
        n = value
    elif isinstance(value, float) and value.is_integer():
        n = int(value)
    elif isinstance(value, str) and value.strip().isdigit():
        n = int(value.strip())
    else:
        raise ValueError(f"expected a whole number of GPUs like \"1\", got {value!r}")
    if n < 0:
        raise ValueError(f"GPU count cannot be negative, got {n}")
    return n


def next_utc_midnight(now: float) -> float:
    return (now // 86400 + 1) * 86400


def next_utc_month_start(now: float) -> float:
    dt = datetime.fromtimestamp(now, tz=timezone.utc)
    year, month = (dt.year + 1, 1) if dt.month == 12 else (dt.year, dt.month + 1)
    return datetime(year, month, 1, tzinfo=timezone.utc).timestamp()


def finite_or_none(data: Any) -> Any:
    """The same data with every infinite or NaN float replaced by None (null), recursively. JSON has
    no Infinity, and a tool reading `-o json` would choke on it; null means "never" or "unbounded"."""
    if isinstance(data, float):
        return data if math.isfinite(data) else None
    if isinstance(data, dict):
        return {k: finite_or_none(v) for k, v in data.items()}
    if isinstance(data, (list, tuple)):
        return [finite_or_none(v) for v in data]
    return data
