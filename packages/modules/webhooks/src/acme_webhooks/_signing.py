"""Webhook signatures: ``Acme-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256>``.

The HMAC covers ``b"<t>." + body``, so a captured request cannot be replayed with a new
timestamp; the receiver rejects timestamps outside its window. A header may carry several
``v1`` signatures (one per secret while a secret is being rotated); unknown schemes are ignored.
"""

from __future__ import annotations

import enum
import hashlib
import hmac
import json
import re
from collections.abc import Mapping, Sequence
from typing import Any, Final

SIGNATURE_HEADER: Final = "Acme-Signature"
SCHEME: Final = "v1"
_HEX64: Final = re.compile(r"^[0-9a-f]{64}$")


class Verdict(enum.StrEnum):
    """The outcome of verifying a signature; each failure has its own reason."""

    OK = "ok"
    MALFORMED_HEADER = "malformed_header"
    BAD_SIGNATURE = "bad_signature"
    TOO_OLD = "too_old"
    FROM_FUTURE = "from_future"


def canonical_body(payload: Mapping[str, Any]) -> bytes:
    """The bytes sent for a JSON payload: compact, keys sorted, UTF-8."""
    text = json.dumps(payload, separators=(",", ":"), sort_keys=True, ensure_ascii=False)
    return text.encode("utf-8")


def compute_signature(secret: str, timestamp: int, body: bytes) -> str:
    """The hex HMAC-SHA256 of ``b"<timestamp>." + body`` under ``secret``."""
    message = str(timestamp).encode("ascii") + b"." + body
    return hmac.new(secret.encode("utf-8"), message, hashlib.sha256).hexdigest()


def sign(secret: str, body: bytes, timestamp: int) -> str:
    """The signature header value for ``body`` sent at ``timestamp``."""
    return f"t={timestamp},{SCHEME}={compute_signature(secret, timestamp, body)}"


def _parse(header: str) -> tuple[int, list[str]] | None:
    timestamp: int | None = None
    signatures: list[str] = []
    for item in header.split(","):
        key, eq, value = item.strip().partition("=")
        if not eq or not key:
            return None
        if key == "t":
            if timestamp is not None or not value.isdigit() or len(value) > 12:
                return None
            timestamp = int(value)
        elif key == SCHEME:
            if not _HEX64.match(value):
                return None
            signatures.append(value)
    if timestamp is None or not signatures:
        return None
    return timestamp, signatures


def verify(
    header: str,
    body: bytes,
    secrets: Sequence[str],
    *,
    now: int,
    tolerance: int = 300,
    max_skew: int = 60,
) -> tuple[Verdict, int | None]:
    """Check ``header`` against ``body``: the verdict and the header's timestamp (if any).

    The signature is checked first (constant-time, against every secret), so a forged request
    is always ``bad_signature`` whatever its timestamp. Then the timestamp must be at most
    ``tolerance`` seconds old and at most ``max_skew`` seconds ahead of ``now``.
    """
    parsed = _parse(header)
    if parsed is None:
        return Verdict.MALFORMED_HEADER, None
    timestamp, signatures = parsed
    expected = [compute_signature(secret, timestamp, body) for secret in secrets]
    # Compare every pair, without stopping early, so timing says nothing about which matched.
    matched = False
    for candidate in signatures:
        for want in expected:
            matched |= hmac.compare_digest(candidate, want)
    if not matched:
        return Verdict.BAD_SIGNATURE, timestamp
    if now - timestamp > tolerance:
        return Verdict.TOO_OLD, timestamp
    if timestamp - now > max_skew:
        return Verdict.FROM_FUTURE, timestamp
    return Verdict.OK, timestamp
