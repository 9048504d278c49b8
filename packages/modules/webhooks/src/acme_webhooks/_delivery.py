"""Webhook delivery over httpx: POST, retry transient failures with exponential backoff.

Retried: connection errors and timeouts, 408, 425, 429 and 5xx responses. Not retried: any other
status, which says the receiver will not take this request as it is. Every attempt is signed
afresh (a new timestamp), and carries the same event id so that receivers can drop duplicates.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Final

import httpx

from acme_webhooks._signing import SIGNATURE_HEADER, sign

RETRY_STATUSES: Final = frozenset({408, 425, 429})
USER_AGENT: Final = "acme-webhooks/0.1"


@dataclass(frozen=True, slots=True)
class Attempt:
    number: int
    status_code: int | None
    error: str | None
    elapsed_ms: float
    waited_s: float  # the backoff slept before this attempt


@dataclass(frozen=True, slots=True)
class Delivery:
    delivered: bool
    attempts: tuple[Attempt, ...] = field(default_factory=tuple)

    @property
    def status_code(self) -> int | None:
        return self.attempts[-1].status_code if self.attempts else None


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("retry-after", "")
    return float(value) if value.isdigit() else None


def deliver(
    url: str,
    body: bytes,
    *,
    secret: str,
    event_id: str,
    max_attempts: int = 5,
    backoff: float = 1.0,
    max_backoff: float = 60.0,
    timeout: float = 10.0,
    headers: Mapping[str, str] | None = None,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.time,
) -> Delivery:
    """POST ``body`` to ``url`` until a 2xx, a non-retryable answer, or ``max_attempts``.

    The wait before attempt n+1 is ``backoff * 2**(n-1)`` seconds, or the response's
    ``Retry-After`` seconds when that is larger, capped at ``max_backoff``.
    """
    attempts: list[Attempt] = []
    wait = 0.0
    with httpx.Client(timeout=timeout, follow_redirects=False) as client:
        for number in range(1, max_attempts + 1):
            if wait > 0:
                sleep(wait)
            send_headers = {
                "Content-Type": "application/json",
                "User-Agent": USER_AGENT,
                **(headers or {}),
                SIGNATURE_HEADER: sign(secret, body, int(clock())),
                "Acme-Event-Id": event_id,
                "Acme-Delivery-Attempt": str(number),
            }
            started = time.perf_counter()
            retry_after: float | None = None
            try:
                response = client.post(url, content=body, headers=send_headers)
            except httpx.TransportError as exc:
                status: int | None = None
                error: str | None = (
                    f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
                )
                retryable = True
            else:
                status, error = response.status_code, None
                retryable = status in RETRY_STATUSES or status >= 500
                retry_after = _retry_after(response)
            elapsed = (time.perf_counter() - started) * 1000
            attempts.append(Attempt(number, status, error, round(elapsed, 3), wait))
            if status is not None and 200 <= status < 300:
                return Delivery(True, tuple(attempts))
            if not retryable:
                break
            wait = min(max(backoff * 2 ** (number - 1), retry_after or 0.0), max_backoff)
    return Delivery(False, tuple(attempts))
