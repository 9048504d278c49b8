"""The audit actions: an append-only, hash-chained log that detects tampering.

The log is a JSON Lines file: ``$ACME_AUDIT_LOG`` of the process that runs the action (the
worker's configuration), else ``<tempdir>/acme/audit.jsonl``. No input names a file: whoever
schedules a job cannot choose what the worker writes. Nothing is opened at import time.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Annotated, Any, Final, Literal

from pydantic import BaseModel, ConfigDict, Field, JsonValue, field_validator
from switchyard import action

from acme_audit._chain import GENESIS, parse_line, walk
from acme_audit._log import append as _append
from acme_audit._log import last_entry, reading, resolve_log_path

MAX_DATA_BYTES: Final = 64 * 1024

Reason = Literal[
    "malformed", "sequence_gap", "broken_link", "hash_mismatch", "truncated", "anchor_mismatch"
]

Actor = Annotated[str, Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9_.:@+-]+$")]
EventName = Annotated[
    str,
    Field(
        min_length=1,
        max_length=128,
        pattern=r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)*$",
        description="what happened, dotted lowercase, e.g. 'user.login'",
    ),
]
Hash = Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]


class _Input(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Entry(BaseModel):
    seq: int
    at: datetime
    actor: str
    action: str
    target: str | None
    data: dict[str, JsonValue]
    prev: str
    hash: str


class AppendIn(_Input):
    actor: Actor
    action: EventName
    target: str | None = Field(None, min_length=1, max_length=256)
    data: dict[str, JsonValue] = Field(default_factory=dict)

    @field_validator("data")
    @classmethod
    def _small_finite_json(cls, value: dict[str, JsonValue]) -> dict[str, JsonValue]:
        try:
            size = len(json.dumps(value, allow_nan=False).encode("utf-8"))
        except ValueError:
            raise ValueError("must be plain JSON: NaN and infinity are not allowed") from None
        if size > MAX_DATA_BYTES:
            raise ValueError(f"is {size} bytes as JSON; at most {MAX_DATA_BYTES} allowed")
        return value


class ReadIn(_Input):
    after_seq: int = Field(0, ge=0, description="only entries with a larger sequence number")
    limit: int = Field(100, ge=1, le=1000)
    actor: Actor | None = None
    action: EventName | None = None


class ReadOut(BaseModel):
    entries: list[Entry]
    next_after_seq: int | None = Field(description="pass as after_seq for the next page")


class Anchor(BaseModel):
    """A head recorded earlier (e.g. by audit.head, kept elsewhere): proves nothing was cut."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    seq: int = Field(ge=1)
    hash: Hash


class VerifyChainIn(_Input):
    anchor: Anchor | None = None


class VerifyChainOut(BaseModel):
    valid: bool
    entries: int = Field(description="entries checked and found sound")
    head_seq: int
    head_hash: str
    reason: Reason | None = None
    line: int | None = Field(None, description="line of the first bad entry")
    seq: int | None = Field(None, description="sequence number of the first bad entry")


class HeadIn(_Input):
    pass


class HeadOut(BaseModel):
    seq: int = Field(description="0 for an empty log")
    hash: str
    at: datetime | None


@action(
    "audit.append",
    description="Append an entry chained to the previous one by SHA-256.",
    idempotent=False,
)
def append(data: AppendIn) -> Entry:
    entry = _append(
        resolve_log_path(),
        actor=data.actor,
        action=data.action,
        target=data.target,
        data=data.data,
    )
    return Entry.model_validate(entry)


@action("audit.read", description="Entries after a sequence number, filtered by actor/action.")
def read(data: ReadIn) -> ReadOut:
    found: list[Entry] = []
    more = False
    with reading(resolve_log_path()) as lines:
        for line in lines:
            raw: dict[str, Any] | None = parse_line(line)
            if raw is None or raw["seq"] <= data.after_seq:
                continue
            if data.actor is not None and raw["actor"] != data.actor:
                continue
            if data.action is not None and raw["action"] != data.action:
                continue
            if len(found) == data.limit:
                more = True
                break
            found.append(Entry.model_validate(raw))
    return ReadOut(entries=found, next_after_seq=found[-1].seq if more else None)


@action(
    "audit.verify_chain",
    description="Recompute every hash and link; report the first tampered entry, or truncation.",
)
def verify_chain(data: VerifyChainIn) -> VerifyChainOut:
    keep = frozenset() if data.anchor is None else frozenset({data.anchor.seq})
    with reading(resolve_log_path()) as lines:
        result = walk(lines, keep=keep)
    out = VerifyChainOut(
        valid=result.first_break is None,
        entries=result.count,
        head_seq=result.head_seq,
        head_hash=result.head_hash,
    )
    if result.first_break is not None:
        broken = result.first_break
        return out.model_copy(
            update={"reason": broken.problem, "line": broken.line, "seq": broken.seq}
        )
    if data.anchor is not None:
        seen = result.hashes_at.get(data.anchor.seq)
        if seen is None:
            return out.model_copy(update={"valid": False, "reason": "truncated"})
        if seen != data.anchor.hash:
            return out.model_copy(
                update={"valid": False, "reason": "anchor_mismatch", "seq": data.anchor.seq}
            )
    return out


@action("audit.head", description="The last entry's sequence number and hash, to keep as anchor.")
def head(data: HeadIn) -> HeadOut:
    last = last_entry(resolve_log_path())
    if last is None:
        return HeadOut(seq=0, hash=GENESIS, at=None)
    return HeadOut(seq=last["seq"], hash=last["hash"], at=last["at"])
