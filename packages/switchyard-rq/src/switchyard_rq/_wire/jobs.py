"""A Switchyard job as RQ stores it: building the hash, and reading a job's data back safely.

RQ keeps ``data`` = serializer.dumps((func_name, instance, args, kwargs)), zlib-compressed; RQ
reads uncompressed data too, so Switchyard writes the JSON plainly and reads both. Reading is the
trust boundary: whoever can write to Redis controls these bytes, so the reader checks the size
before and while decompressing, the shape, the function name and the types, and never imports.
"""

from __future__ import annotations

import json
import math
import zlib
from datetime import UTC, datetime
from typing import Final, final

from switchyard import ActionPolicy

from switchyard_rq._settings import TransportSettings
from switchyard_rq._wire.keys import DISPATCHER, PRIORITY_CODE
from switchyard_rq._wire.resp import bulk

__all__ = ["BadJobError", "JobShape", "decode_job_data", "job_shape", "utcformat"]

_DATA_HEAD: Final = '["' + DISPATCHER + '",null,['


class BadJobError(Exception):
    """A job this worker refuses to run; the message says why (stored as the job's failure)."""


def utcformat(moment: datetime) -> str:
    """RQ's timestamp format (``2026-11-28T23:19:48.680001Z``)."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def encode_data(action: str, payload: str) -> bytes:
    """The job's ``data`` field: ``["switchyard_rq.dispatch", null, [action, payload], {}]``."""
    return (_DATA_HEAD + json.dumps(action) + "," + json.dumps(payload) + "],{}]").encode()


@final
class JobShape:
    """The hash fields that every job of one action on one queue shares (status, origin, TTLs,
    timeout, retry policy), with their RESP encoding packed once: a job adds only its data, its
    timestamps and (maybe) a trace context. Built by :func:`job_shape`, which caches them."""

    __slots__ = ("action", "fields", "packed", "priority", "scheduled")

    def __init__(
        self, action: str, fields: dict[str, str | int], *, scheduled: bool, priority: str
    ) -> None:
        self.action = action
        self.priority = priority
        self.fields = fields
        self.scheduled = scheduled
        self.packed = b"".join(bulk(name) + bulk(value) for name, value in fields.items())

    def mapping(
        self, payload: str, created_at: str, trace: str | None, flow: str | None = None
    ) -> dict[str, str | bytes | int]:
        """The whole ``rq:job:<id>`` hash of one job, with RQ's field names and formats."""
        mapping: dict[str, str | bytes | int] = {
            "data": encode_data(self.action, payload),
            "created_at": created_at,
            **self.fields,
        }
        if trace is not None:
            mapping["sy_trace"] = trace  # the caller's trace context: the worker continues it
        if flow is not None:
            mapping["sy_flow"] = flow  # the job's limiters (see _wire/flow.py)
        return mapping

    def hset(
        self, job_key: str, payload: str, stamp: bytes, trace: str | None, flow: str | None
    ) -> bytes:
        """``HSET rq:job:<id> ...`` for one job, packed; ``stamp`` is ``bulk(created_at)``."""
        count = len(self.fields) + 3
        head = b"%b$4\r\ndata\r\n%b$10\r\ncreated_at\r\n%b" % (
            bulk(job_key),
            bulk(encode_data(self.action, payload)),
            stamp,
        )
        if trace is not None:
            count += 1
            head += b"$8\r\nsy_trace\r\n%b" % bulk(trace)
        if flow is not None:
            count += 1
            head += b"$7\r\nsy_flow\r\n%b" % bulk(flow)
        return b"*%d\r\n$4\r\nHSET\r\n%b%b" % (2 * count, head, self.packed)


_SHAPES: dict[tuple[object, ...], JobShape] = {}
_DEFAULTS: Final = TransportSettings()


def job_shape(
    *,
    action: str,
    queue: str,
    scheduled: bool,
    policy: ActionPolicy,
    settings: TransportSettings,
    priority: str | None = None,
) -> JobShape:
    """The (cached) :class:`JobShape` of a job of ``action`` on ``queue`` under ``policy``
    (``priority`` overrides the policy's).

    Retries follow RQ's ``Retry(max=retries, interval=[...])``: intervals ``backoff * 2**n``.
    """
    key = (action, queue, scheduled, policy, settings, priority)
    shape = _SHAPES.get(key)
    if shape is not None:
        return shape
    # Only what a worker cannot know otherwise: a timeout, and TTLs the action or this producer
    # sets (the worker's own defaults apply to the others), so that a waiting job is small.
    fields: dict[str, str | int] = {
        "status": "scheduled" if scheduled else "queued",
        "origin": queue,
        "description": action,
    }
    if policy.timeout:
        fields["timeout"] = math.ceil(policy.timeout)
    if policy.result_ttl is not None:
        fields["result_ttl"] = policy.result_ttl
    elif settings.result_ttl != _DEFAULTS.result_ttl:
        fields["result_ttl"] = settings.result_ttl
    if settings.failure_ttl != _DEFAULTS.failure_ttl:
        fields["failure_ttl"] = settings.failure_ttl
    retries, backoff = policy.retries, policy.backoff
    if retries > 0:
        fields["retries_left"] = retries
        fields["retry_intervals"] = json.dumps([backoff * 2**n for n in range(retries)])
    if not policy.idempotent:
        fields["sy_idempotent"] = "0"
    code = PRIORITY_CODE[priority or policy.priority]
    if code:
        fields["sy_prio"] = code
    if len(_SHAPES) >= 4096:
        _SHAPES.clear()
    shape = _SHAPES[key] = JobShape(
        action, fields, scheduled=scheduled, priority=priority or policy.priority
    )
    return shape


def decode_job_data(raw: bytes | None, *, limit: int) -> tuple[str, str]:
    """``(action, payload)`` from a job's ``data`` field, or :class:`BadJobError` saying why.

    ``limit`` bounds the payload (its UTF-8 bytes, as at schedule time). The stored and the
    decompressed data may be up to twice that plus 4 KiB (JSON escaping of the payload text);
    decompression stops there, so a zip bomb costs nothing.
    """
    if not raw:
        raise BadJobError("job has no data (its hash was deleted, expired, or never written)")
    room = 2 * limit + 4096
    if len(raw) > room:
        raise BadJobError(f"job data is {len(raw)} bytes, over the limit of {limit} bytes")
    if raw[:1] == b"x":  # zlib header: written by RQ itself (e.g. a job created with rq's API)
        inflater = zlib.decompressobj()
        try:
            text = inflater.decompress(raw, room + 1)
        except zlib.error as exc:
            raise BadJobError(f"job data is not valid zlib data: {exc}") from None
        if len(text) > room or inflater.unconsumed_tail:
            raise BadJobError(f"job data decompresses to more than the limit of {room} bytes")
        raw = text
    try:
        decoded = json.loads(raw.decode() if isinstance(raw, bytes) else raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise BadJobError(f"job data is not valid JSON: {exc}") from None
    if not (isinstance(decoded, list) and len(decoded) == 4):
        raise BadJobError("job data is not [func_name, instance, args, kwargs]")
    func_name, instance, args, kwargs = decoded
    if func_name != DISPATCHER:
        shown = func_name if isinstance(func_name, str) else type(func_name).__name__
        raise BadJobError(
            f"job function {shown[:200]!r} is not {DISPATCHER!r}; Switchyard workers run "
            "nothing else"
        )
    if instance is not None or kwargs not in ({}, None):
        raise BadJobError(f"{DISPATCHER} takes no instance and no keyword arguments")
    if not (
        isinstance(args, list)
        and len(args) == 2
        and isinstance(args[0], str)
        and isinstance(args[1], str)
    ):
        raise BadJobError(f"{DISPATCHER} arguments must be [action_name, payload_json]")
    size = len(args[1].encode())
    if size > limit:
        raise BadJobError(f"payload is {size} bytes, over the limit of {limit} bytes")
    return args[0], args[1]
