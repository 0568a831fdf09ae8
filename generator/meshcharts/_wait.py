"""The one polling loop: a condition, a wall-clock deadline in seconds, and an error that names what was awaited."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

from meshcharts.errors import MeshchartsError, WaitTimeout

T = TypeVar("T")


def wait_for(
    condition: Callable[[], T | None],
    *,
    what: str,
    timeout: float,
    interval: float = 0.1,
    describe: Callable[[], str] | None = None,
    error: type[MeshchartsError] = WaitTimeout,
) -> T:
    """Call `condition` every `interval` seconds until it returns something truthy, and return that.

    After `timeout` seconds of wall clock, raise `error` (the caller's own error family) saying
    "timed out after Ns waiting for WHAT" and, from `describe`, the last state seen. `condition` ends
    the wait early by raising: a process that exited will not start answering later.
    """
    deadline = time.monotonic() + timeout
    while True:
        result = condition()
        if result:
            return result
        if time.monotonic() >= deadline:
            state = describe() if describe else ""
            raise error(f"timed out after {timeout:g}s waiting for {what}" + (f"; {state}" if state else ""))
        time.sleep(interval)
