"""HMAC-SHA256 signed tokens: ``v1.<payload base64url>.<signature base64url>``.

The payload is compact JSON with the subject (``sub``), audience (``aud``), issue and expiry
times in Unix seconds (``iat``, ``exp``) and a random id (``jti``). The signature covers
``v1.<payload>``, so the version prefix cannot be swapped either.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import os
import re
import secrets
from dataclasses import dataclass
from typing import Final, Literal

VERSION: Final = "v1"
SECRET_ENV: Final = "ACME_AUTH_SECRET"
MIN_SECRET_LENGTH: Final = 32
_B64URL: Final = re.compile(r"[A-Za-z0-9_-]+")

Reason = Literal["malformed", "tampered", "expired", "not_yet_valid", "wrong_audience"]


class MissingSecretError(RuntimeError):
    """No signing secret in the input and none in the environment."""

    def __init__(self) -> None:
        super().__init__(
            f"no token signing secret: pass 'secret' in the input or set {SECRET_ENV} "
            f"(at least {MIN_SECRET_LENGTH} characters)"
        )


def signing_secret(explicit: str | None) -> bytes:
    """The secret from the input, else from ``ACME_AUTH_SECRET``; never logged or echoed."""
    secret = explicit if explicit is not None else os.environ.get(SECRET_ENV)
    if secret is None or len(secret) < MIN_SECRET_LENGTH:
        raise MissingSecretError
    return secret.encode("utf-8")


@dataclass(frozen=True, slots=True)
class Claims:
    sub: str
    aud: str
    iat: int
    exp: int
    jti: str


@dataclass(frozen=True, slots=True)
class Verdict:
    reason: Reason | None
    claims: Claims | None


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _sign(secret: bytes, signed_part: str) -> bytes:
    return hmac.new(secret, signed_part.encode("ascii"), hashlib.sha256).digest()


def issue(secret: bytes, *, sub: str, aud: str, iat: int, ttl: int) -> tuple[str, Claims]:
    claims = Claims(sub=sub, aud=aud, iat=iat, exp=iat + ttl, jti=secrets.token_urlsafe(12))
    payload = json.dumps(
        {
            "sub": claims.sub,
            "aud": claims.aud,
            "iat": claims.iat,
            "exp": claims.exp,
            "jti": claims.jti,
        },
        separators=(",", ":"),
        sort_keys=True,
    )
    signed_part = f"{VERSION}.{_b64(payload.encode('utf-8'))}"
    return f"{signed_part}.{_b64(_sign(secret, signed_part))}", claims


def _claims(payload: bytes) -> Claims | None:
    try:
        raw = json.loads(payload)
    except (UnicodeDecodeError, json.JSONDecodeError):
        return None
    if not isinstance(raw, dict):
        return None
    sub, aud, iat, exp, jti = (raw.get(k) for k in ("sub", "aud", "iat", "exp", "jti"))
    if not (isinstance(sub, str) and isinstance(aud, str) and isinstance(jti, str)):
        return None
    if type(iat) is not int or type(exp) is not int:
        return None
    return Claims(sub=sub, aud=aud, iat=iat, exp=exp, jti=jti)


def verify(secret: bytes, token: str, *, audience: str, now: int, leeway: int) -> Verdict:
    """Check structure, then signature, then time, then audience; first failure wins."""
    parts = token.split(".")
    if len(parts) != 3 or parts[0] != VERSION or not all(map(_B64URL.fullmatch, parts[1:])):
        return Verdict("malformed", None)
    try:
        payload, signature = _unb64(parts[1]), _unb64(parts[2])
    except (binascii.Error, ValueError):
        return Verdict("malformed", None)
    if not hmac.compare_digest(signature, _sign(secret, f"{parts[0]}.{parts[1]}")):
        return Verdict("tampered", None)
    claims = _claims(payload)
    if claims is None:
        return Verdict("malformed", None)
    if now >= claims.exp + leeway:
        return Verdict("expired", claims)
    if claims.iat > now + leeway:
        return Verdict("not_yet_valid", claims)
    if not hmac.compare_digest(claims.aud.encode("utf-8"), audience.encode("utf-8")):
        return Verdict("wrong_audience", claims)
    return Verdict(None, claims)
