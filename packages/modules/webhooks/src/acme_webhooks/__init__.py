"""Webhooks for Switchyard: HMAC-SHA256 signatures with timestamps, verification with a replay
window, and delivery over httpx with retries and exponential backoff.

The actions live in :mod:`acme_webhooks.actions`. Importing this package imports httpx.
"""

from __future__ import annotations

from acme_webhooks._delivery import Attempt, Delivery, deliver
from acme_webhooks._signing import (
    SIGNATURE_HEADER,
    Verdict,
    canonical_body,
    compute_signature,
    sign,
    verify,
)

__all__ = [
    "SIGNATURE_HEADER",
    "Attempt",
    "Delivery",
    "Verdict",
    "canonical_body",
    "compute_signature",
    "deliver",
    "sign",
    "verify",
]
