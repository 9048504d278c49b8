"""What an operator sees of jobs: one job described, the failed jobs with their errors. Read by
``switchyard jobs show|failed`` and by the gateway's API and dashboard."""

from __future__ import annotations

import json
from typing import Any

import redis

from switchyard_rq._errors import JobFailedError, JobNotFoundError
from switchyard_rq._producer.handle import JobHandle
from switchyard_rq._wire import keys
from switchyard_rq._wire.cluster import is_cluster, plain_queue, wire_queue
from switchyard_rq._wire.connection import get_connection, redis_errors

__all__ = ["describe_job", "failed_jobs"]


def _text(raw: Any) -> str:
    return raw.decode(errors="replace") if isinstance(raw, bytes) else str(raw or "")


def describe_job(handle: JobHandle) -> dict[str, Any]:
    """A job as JSON-able data: id, action, status, queue, attempts, its times, its last
    ``progress`` report and ``workflow``, its ``error`` (failed or canceled) or ``result``
    (finished).
    JobNotFoundError when Redis has no such job."""
    client = handle.connection
    with redis_errors(client):
        raw = client.hgetall(keys.job(handle.id))
    if not raw:
        raise JobNotFoundError(handle.id)
    fields = {_text(k): _text(v) for k, v in raw.items() if _text(k) != "data"}
    info: dict[str, Any] = {
        "id": handle.id,
        "action": handle.action,
        "status": fields.get("status", ""),
        "queue": fields.get("origin", ""),
        "attempts": int(fields.get("sy_attempt") or 0),
    }
    if fields.get("retries_left"):
        info["retries_left"] = int(fields["retries_left"])
    if info["status"] not in ("scheduled", "deferred") and not fields.get("enqueued_at"):
        fields["enqueued_at"] = fields.get("created_at", "")  # queued when created
    for field in ("created_at", "enqueued_at", "started_at", "ended_at", "worker_name"):
        if fields.get(field):
            info[field] = fields[field]
    progress = handle.progress()
    if progress is not None:
        info["progress"] = progress.to_dict()
    if fields.get("sy_wf"):
        info["workflow"] = fields["sy_wf"]
    error = handle.error
    if error is not None:
        info["error"] = error.to_dict()
    if info["status"] == "finished":
        info["result"] = json.loads(handle.result(timeout=0).model_dump_json())
    return info


def failed_jobs(
    queue: str | None = None, *, limit: int = 50, connection: redis.Redis | None = None
) -> list[dict[str, Any]]:
    """The most recently failed jobs (of ``queue``, else of every known queue), newest first per
    queue, at most ``limit``: each ``{"id", "queue", "action", "error"}`` (the error as
    :meth:`JobError.to_dict`)."""
    client = connection or get_connection()
    limit = max(limit, 1)
    with redis_errors(client):
        if queue:
            queues = [wire_queue(queue, is_cluster(client))]
        else:
            queues = sorted(
                _text(k).removeprefix(keys.QUEUE_PREFIX) for k in client.smembers(keys.QUEUES_SET)
            )
        rows: list[dict[str, Any]] = []
        for name in queues:
            for job_id in client.zrevrange(keys.FAILED + name, 0, limit - 1):
                handle = JobHandle(_text(job_id), connection=client)
                try:
                    error = handle.error
                    action = handle.action
                except (JobNotFoundError, JobFailedError):
                    continue  # expired, or not a Switchyard job
                rows.append(
                    {
                        "id": handle.id,
                        "queue": plain_queue(name),
                        "action": action,
                        "error": error.to_dict() if error else None,
                    }
                )
    return rows[:limit]
