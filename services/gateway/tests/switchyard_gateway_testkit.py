"""switchyard-gateway's test kit: helpers the test modules share (a uniquely named module, so
that no other package's tests can shadow it)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any


def wait_for(
    predicate: Callable[[], Any], timeout: float = 20.0, what: str = "the condition"
) -> Any:
    """``predicate()``'s first truthy value, polled every 50 ms for up to ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)
