"""Switchyard's Redis transport: schedule actions as RQ jobs, run them with a lean, reliable
consumer, on pooled connections (or an embedded Redis when none is configured)."""

from __future__ import annotations

from ._connection import get_connection, redact_url, redis_url
from ._consumer import Consumer
from ._dispatch import dispatch
from ._errors import (
    ActionTimeoutError,
    JobError,
    JobFailedError,
    JobNotFoundError,
    PayloadTooLargeError,
    RedisUnavailableError,
    ResultTimeoutError,
    TransportError,
)
from ._handle import JobHandle
from ._observe import JobObserver, JobReport
from ._recovery import QueueStats, queue_stats, recover_orphans
from ._schedule import Call, route, schedule_action, schedule_many
from ._serializer import JSONSerializer
from ._stats import JobStats, publish_pool_stats

__all__ = [
    "ActionTimeoutError",
    "Call",
    "Consumer",
    "JSONSerializer",
    "JobError",
    "JobFailedError",
    "JobHandle",
    "JobNotFoundError",
    "JobObserver",
    "JobReport",
    "JobStats",
    "PayloadTooLargeError",
    "QueueStats",
    "RedisUnavailableError",
    "ResultTimeoutError",
    "TransportError",
    "dispatch",
    "get_connection",
    "publish_pool_stats",
    "queue_stats",
    "recover_orphans",
    "redact_url",
    "redis_url",
    "route",
    "schedule_action",
    "schedule_many",
]
