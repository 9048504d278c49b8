"""The webhooks actions: ``webhooks.sign_payload``, ``webhooks.verify_signature``,
``webhooks.deliver``, ``webhooks.generate_secret``."""

from __future__ import annotations

import secrets as random_secrets
import time
import uuid
from typing import Annotated, Any, Final, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, HttpUrl
from switchyard import action

from acme_webhooks._delivery import deliver as post_with_retries
from acme_webhooks._signing import SIGNATURE_HEADER, canonical_body, sign, verify

MAX_BODY: Final = 256 * 1024


def _fits(payload: dict[str, Any]) -> dict[str, Any]:
    size = len(canonical_body(payload))
    if size > MAX_BODY:
        raise ValueError(f"serializes to {size} bytes, more than the limit of {MAX_BODY}")
    return payload


Secret = Annotated[str, Field(min_length=16, max_length=256)]
Payload = Annotated[dict[str, Any], AfterValidator(_fits)]
Timestamp = Annotated[int, Field(ge=0, le=253_402_300_799)]  # up to year 9999
EventId = Annotated[str, Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9_.:-]+$")]


class SignPayloadIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    payload: Payload
    secret: Secret
    timestamp: Timestamp | None = Field(default=None, description="unix seconds; default now")


class SignPayloadOut(BaseModel):
    body: str
    timestamp: int
    header_name: str
    header_value: str


@action(
    "webhooks.sign_payload",
    description="Serialize a JSON payload and sign it: t=<time>,v1=<HMAC-SHA256>.",
)
def sign_payload(data: SignPayloadIn) -> SignPayloadOut:
    body = canonical_body(data.payload)
    timestamp = data.timestamp if data.timestamp is not None else int(time.time())
    return SignPayloadOut(
        body=body.decode("utf-8"),
        timestamp=timestamp,
        header_name=SIGNATURE_HEADER,
        header_value=sign(data.secret, body, timestamp),
    )


class VerifySignatureIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    body: str = Field(max_length=MAX_BODY)
    header: str = Field(min_length=1, max_length=2048)
    secrets: list[Secret] = Field(min_length=1, max_length=5)
    tolerance_seconds: int = Field(default=300, ge=1, le=86_400)
    max_skew_seconds: int = Field(default=60, ge=0, le=3_600)
    now: Timestamp | None = Field(default=None, description="unix seconds; default now")


class VerifySignatureOut(BaseModel):
    valid: bool
    reason: Literal["ok", "malformed_header", "bad_signature", "too_old", "from_future"]
    timestamp: int | None
    age_seconds: int | None


@action(
    "webhooks.verify_signature",
    description="Verify a signature header against a body and secrets, within a replay window.",
)
def verify_signature(data: VerifySignatureIn) -> VerifySignatureOut:
    now = data.now if data.now is not None else int(time.time())
    verdict, timestamp = verify(
        data.header,
        data.body.encode("utf-8"),
        data.secrets,
        now=now,
        tolerance=data.tolerance_seconds,
        max_skew=data.max_skew_seconds,
    )
    return VerifySignatureOut(
        valid=verdict == "ok",
        reason=verdict.value,
        timestamp=timestamp,
        age_seconds=None if timestamp is None else now - timestamp,
    )


class DeliverIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: HttpUrl = Field(description="http or https")
    payload: Payload
    secret: Secret
    event_id: EventId | None = Field(default=None, description="default: a new UUID")
    headers: dict[
        Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9-]+$")],
        Annotated[str, Field(max_length=1024)],
    ] = Field(default_factory=dict, max_length=20)
    max_attempts: int = Field(default=5, ge=1, le=10)
    backoff_seconds: float = Field(default=1.0, ge=0.0, le=60.0)
    max_backoff_seconds: float = Field(default=60.0, ge=0.0, le=600.0)
    timeout_seconds: float = Field(default=10.0, gt=0.0, le=60.0)


class AttemptOut(BaseModel):
    attempt: int
    status_code: int | None
    error: str | None
    elapsed_ms: float
    waited_seconds: float


class DeliverOut(BaseModel):
    delivered: bool
    event_id: str
    status_code: int | None
    attempts: list[AttemptOut]


@action(
    "webhooks.deliver",
    description="POST a signed payload; retry timeouts, 429 and 5xx with exponential backoff.",
    idempotent=False,
    io_bound=True,  # it waits on the receiver: the worker runs it in its thread pool
)
def deliver(data: DeliverIn) -> DeliverOut:
    event_id = data.event_id or uuid.uuid4().hex
    result = post_with_retries(
        str(data.url),
        canonical_body(data.payload),
        secret=data.secret,
        event_id=event_id,
        max_attempts=data.max_attempts,
        backoff=data.backoff_seconds,
        max_backoff=data.max_backoff_seconds,
        timeout=data.timeout_seconds,
        headers=data.headers,
    )
    return DeliverOut(
        delivered=result.delivered,
        event_id=event_id,
        status_code=result.status_code,
        attempts=[
            AttemptOut(
                attempt=a.number,
                status_code=a.status_code,
                error=a.error,
                elapsed_ms=a.elapsed_ms,
                waited_seconds=a.waited_s,
            )
            for a in result.attempts
        ],
    )


class GenerateSecretIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    entropy_bytes: int = Field(default=32, ge=16, le=64)


class GenerateSecretOut(BaseModel):
    secret: str


@action(
    "webhooks.generate_secret",
    description="A new random signing secret, whsec_<url-safe base64>.",
    idempotent=False,
)
def generate_secret(data: GenerateSecretIn) -> GenerateSecretOut:
    return GenerateSecretOut(secret="whsec_" + random_secrets.token_urlsafe(data.entropy_bytes))
