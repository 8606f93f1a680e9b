"""Number options for the command line, checked where they are parsed.

A bad number (`--tick -1`, `--sample 2`, `--rate 0`, `1e400`) is an argparse error naming the
option and the allowed range, before any work starts; never a traceback or a silent guess.
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable


def number(minimum: float | None = None, *, above: float | None = None, maximum: float | None = None,
           whole: bool = False) -> Callable[[str], float]:
    """An argparse `type`: a finite number, at least `minimum`, more than `above`, at most `maximum`."""
    def parse(text: str) -> float:
        try:
            value = int(text) if whole else float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a {'whole ' if whole else ''}number, got {text!r}") from None
        if not math.isfinite(value):
            raise argparse.ArgumentTypeError(f"expected a finite number, got {text!r}")
        if minimum is not None and value < minimum:
            raise argparse.ArgumentTypeError(f"must be at least {minimum:g}, got {text}")
        if above is not None and value <= above:
            raise argparse.ArgumentTypeError(f"must be more than {above:g}, got {text}")
        if maximum is not None and value > maximum:
            raise argparse.ArgumentTypeError(f"must be at most {maximum:g}, got {text}")
        return value

    return parse


NON_NEGATIVE = number(0)
SECONDS = NON_NEGATIVE  # a duration
POSITIVE = number(above=0)
COUNT = number(0, whole=True)  # 0 or more
AT_LEAST_ONE = number(1, whole=True)
FRACTION = number(above=0, maximum=1)  # (0, 1]
PORT = number(0, maximum=65535, whole=True)
METRICS_PORT = number(-1, maximum=65535, whole=True)  # -1: off
