"""Waiting for an event in tests: poll until something is true, never sleep and hope."""

from __future__ import annotations

import time


def wait_for(check, timeout: float = 15.0, step: float = 0.02, what: str = "the condition"):
    """Poll check() until it returns something truthy, and return that; fail after timeout seconds."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        value = check()
        if value:
            return value
        time.sleep(step)
    raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
