"""The auth actions: scrypt password hashes and HMAC-signed tokens.

Token signing secret: the ``secret`` input field when given, else the ``ACME_AUTH_SECRET``
environment variable (at least 32 characters either way). It is a ``SecretStr``, so it prints as
``**********`` in reprs, logs and error messages, and no output model carries it.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Annotated, Final

from pydantic import (
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    SecretStr,
    ValidationInfo,
    field_validator,
)
from switchyard import Context, action

from acme_auth import _passwords, _tokens

DEFAULT_N: Final = 2**14
DEFAULT_R: Final = 8
DEFAULT_P: Final = 1

Subject = Annotated[str, Field(min_length=1, max_length=256, pattern=r"^[A-Za-z0-9_.:@+-]+$")]
Audience = Annotated[str, Field(min_length=1, max_length=128, pattern=r"^[a-z0-9][a-z0-9._:/-]*$")]
MASK: Final = "**********"  # what pydantic writes for a SecretStr in JSON


def _not_masked(value: object) -> object:
    if value == MASK:
        raise ValueError(
            "arrived masked: a secret is never serialized (so never queued through Redis); "
            f"leave 'secret' out and set {_tokens.SECRET_ENV} where the action runs"
        )
    return value


Secret = Annotated[
    SecretStr,
    BeforeValidator(_not_masked),
    Field(min_length=_tokens.MIN_SECRET_LENGTH, max_length=1024, description="signing secret"),
]


class _Input(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class HashPasswordIn(_Input):
    password: str = Field(min_length=8, max_length=1024)
    n: int = Field(DEFAULT_N, ge=2, le=2**_passwords.MAX_LOG2_N, description="scrypt CPU cost")
    r: int = Field(DEFAULT_R, ge=1, le=_passwords.MAX_R, description="scrypt block size")
    p: int = Field(DEFAULT_P, ge=1, le=_passwords.MAX_P, description="scrypt parallelism")

    @field_validator("n")
    @classmethod
    def _power_of_two(cls, n: int) -> int:
        if n & (n - 1):
            raise ValueError(f"must be a power of two, got {n}")
        return n

    @field_validator("r")
    @classmethod
    def _memory_bound(cls, r: int, info: ValidationInfo) -> int:
        n = info.data.get("n")
        if isinstance(n, int):
            _passwords.check_cost(n, r, 1)
        return r


class HashPasswordOut(BaseModel):
    hash: str


class VerifyPasswordIn(_Input):
    password: str = Field(min_length=1, max_length=1024)
    hash: str = Field(min_length=1, max_length=300)

    @field_validator("hash")
    @classmethod
    def _well_formed(cls, value: str) -> str:
        _passwords.parse(value)
        return value


class VerifyPasswordOut(BaseModel):
    valid: bool
    needs_rehash: bool = Field(description="true when the hash uses weaker than default costs")


class IssueTokenIn(_Input):
    subject: Subject
    audience: Audience
    ttl_seconds: int = Field(3600, ge=1, le=30 * 24 * 3600)
    secret: Secret | None = None


class IssueTokenOut(BaseModel):
    token: str
    token_id: str
    subject: str
    audience: str
    issued_at: datetime
    expires_at: datetime


class VerifyTokenIn(_Input):
    token: str = Field(min_length=1, max_length=4096)
    audience: Audience
    leeway_seconds: int = Field(0, ge=0, le=300)
    at: AwareDatetime | None = Field(None, description="verify as of this instant; default now")
    secret: Secret | None = None


class VerifyTokenOut(BaseModel):
    valid: bool
    reason: _tokens.Reason | None = None
    subject: str | None = None
    audience: str | None = None
    expires_at: datetime | None = None


def _secret(value: SecretStr | None) -> bytes:
    return _tokens.signing_secret(None if value is None else value.get_secret_value())


def _utc(seconds: int) -> datetime:
    return datetime.fromtimestamp(seconds, tz=UTC)


@action("auth.hash_password", description="Hash a password with scrypt and a random salt.")
def hash_password(data: HashPasswordIn) -> HashPasswordOut:
    hashed = _passwords.hash_password(data.password, n=data.n, r=data.r, p=data.p)
    return HashPasswordOut(hash=hashed.encode())


@action(
    "auth.verify_password",
    description="Check a password against a hash from auth.hash_password, in constant time.",
)
def verify_password(data: VerifyPasswordIn) -> VerifyPasswordOut:
    stored = _passwords.parse(data.hash)
    weaker = stored.n < DEFAULT_N or stored.r < DEFAULT_R or len(stored.key) < _passwords.KEY_BYTES
    return VerifyPasswordOut(
        valid=_passwords.verify_password(data.password, stored), needs_rehash=weaker
    )


@action(
    "auth.issue_token",
    description="Issue an HMAC-SHA256 signed token for a subject and audience, with an expiry.",
    idempotent=False,
)
def issue_token(data: IssueTokenIn, ctx: Context) -> IssueTokenOut:
    token, claims = _tokens.issue(
        _secret(data.secret),
        sub=data.subject,
        aud=data.audience,
        iat=int(time.time()),
        ttl=data.ttl_seconds,
    )
    ctx.logger.info("issued token %s for audience %s", claims.jti, claims.aud)
    return IssueTokenOut(
        token=token,
        token_id=claims.jti,
        subject=claims.sub,
        audience=claims.aud,
        issued_at=_utc(claims.iat),
        expires_at=_utc(claims.exp),
    )


@action(
    "auth.verify_token",
    description="Verify a token's signature, expiry and audience; say why when it is invalid.",
)
def verify_token(data: VerifyTokenIn) -> VerifyTokenOut:
    now = int(data.at.timestamp()) if data.at is not None else int(time.time())
    verdict = _tokens.verify(
        _secret(data.secret),
        data.token,
        audience=data.audience,
        now=now,
        leeway=data.leeway_seconds,
    )
    claims = verdict.claims
    return VerifyTokenOut(
        valid=verdict.reason is None,
        reason=verdict.reason,
        subject=None if claims is None else claims.sub,
        audience=None if claims is None else claims.aud,
        expires_at=None if claims is None else _utc(claims.exp),
    )
