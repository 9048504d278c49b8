"""The transport's error types and the error record of a failed job.

Every error subclasses :class:`switchyard.SwitchyardError`, reads as one line for people (what,
where, what next) and carries its fields as attributes.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Final, final

from redis.exceptions import AuthenticationError, AuthorizationError
from redis.sentinel import MasterNotFoundError
from switchyard import SwitchyardError

__all__ = [
    "REFUSED",
    "ActionTimeoutError",
    "JobError",
    "JobFailedError",
    "JobNotFoundError",
    "PayloadTooLargeError",
    "RedisUnavailableError",
    "ResultTimeoutError",
    "TransportError",
    "WorkflowError",
    "WorkflowFailedError",
    "WorkflowNotFoundError",
]


@final
@dataclass(frozen=True, slots=True)
class JobError:
    """Why a job failed: the error's ``type`` (class name), its ``message``, the ``action``."""

    type: str
    message: str
    action: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"type": self.type, "message": self.message, "action": self.action}

    def to_json(self) -> str:
        return json.dumps(self.to_dict())

    @classmethod
    def from_json(cls, text: str | bytes) -> JobError:
        """Read a stored record; anything unreadable becomes a plain message, never an error."""
        try:
            raw = json.loads(text)
        except ValueError:
            raw = None
        if not isinstance(raw, dict):
            body = text.decode(errors="replace") if isinstance(text, bytes) else text
            return cls(type="Error", message=body)
        action = raw.get("action")
        return cls(
            type=str(raw.get("type") or "Error"),
            message=str(raw.get("message") or ""),
            action=action if isinstance(action, str) else None,
        )

    def __str__(self) -> str:
        return f"{self.type}: {self.message}"


class TransportError(SwitchyardError):
    """Base class of the errors raised by switchyard_rq."""


#: Redis refused the credentials (they are ConnectionErrors too): retrying cannot help.
REFUSED: Final = (AuthenticationError, AuthorizationError)


@final
class RedisUnavailableError(TransportError):
    """Redis could not be reached (or refused us) after the retries; ``url`` has no password.
    ``refused`` is True when the server refused the credentials (retrying will not help)."""

    def __init__(self, url: str, cause: BaseException) -> None:
        self.refused = isinstance(cause, REFUSED)
        hint = (
            "check the user and password in SWITCHYARD_REDIS_URL or [tool.switchyard] redis-url"
            if self.refused
            else "is the server running? check SWITCHYARD_REDIS_URL or [tool.switchyard] redis-url"
        )
        verb = "Redis refused the credentials for" if self.refused else "cannot reach Redis at"
        super().__init__(f"{verb} {url}: {_said(cause)} ({hint})")
        self.url = url
        self.cause = cause

    def to_dict(self) -> dict[str, Any]:
        return {**super().to_dict(), "url": self.url, "refused": self.refused}


def _said(cause: BaseException) -> str:
    """What ``cause`` says, in one short line (redis-py's Sentinel errors embed a client's
    repr)."""
    if isinstance(cause, MasterNotFoundError):
        return ("no sentinel answered with the master's address (are the sentinels up, and is "
                "the service name the one they monitor?)")  # fmt: skip
    return str(cause)


@final
class NotReplicatedError(TransportError):
    """Durable scheduling (``SWITCHYARD_REDIS_WAIT_REPLICAS``) was asked for, and fewer
    replicas than that confirmed the jobs in time: they are on the master, and a failover now
    could lose them. Scheduling again with the same idempotency key is safe."""


@final
class PayloadTooLargeError(TransportError):
    """A job's payload is larger than ``max_payload_bytes`` (config ``max-payload-bytes``)."""

    def __init__(self, action: str | None, size: int, limit: int) -> None:
        super().__init__(
            f"payload of {action or 'job'} is {size} bytes, over the limit of {limit} bytes "
            "(raise [tool.switchyard] max-payload-bytes or pass a reference instead of the data)",
            action=action,
        )
        self.size = size
        self.limit = limit

    def to_dict(self) -> dict[str, Any]:
        return {**super().to_dict(), "size": self.size, "limit": self.limit}


@final
class JobNotFoundError(TransportError):
    """No job with this id exists (never scheduled, or its result's TTL ran out)."""

    def __init__(self, job_id: str) -> None:
        super().__init__(
            f"no job {job_id!r} in Redis (wrong id, or it expired: results are kept for a TTL)"
        )
        self.job_id = job_id


@final
class JobFailedError(TransportError):
    """``JobHandle.result()`` of a job that failed (or was canceled); ``error`` says why."""

    def __init__(self, job_id: str, error: JobError) -> None:
        super().__init__(f"job {job_id} failed: {error}", action=error.action)
        self.job_id = job_id
        self.error = error

    def to_dict(self) -> dict[str, Any]:
        return {**super().to_dict(), "job_id": self.job_id, "error": self.error.to_dict()}


@final
class ResultTimeoutError(TransportError):
    """``JobHandle.result(timeout)`` waited ``timeout`` seconds and the job had not finished."""

    def __init__(self, job_id: str, timeout: float, status: str) -> None:
        super().__init__(
            f"job {job_id} has no result after {timeout:g} s (status: {status}; "
            "is a worker running for its queue? see `switchyard jobs show ID`)"
        )
        self.job_id = job_id
        self.timeout = timeout
        self.status = status


@final
class ActionTimeoutError(TransportError):
    """A handler ran past its action's ``timeout``; the consumer interrupted it."""

    def __init__(self, action: str, timeout: float) -> None:
        super().__init__(f"{action} timed out after {timeout:g} s", action=action)
        self.timeout = timeout


@final
class WorkflowError(TransportError):
    """A workflow that cannot run as defined (an unknown action, a step whose input cannot take
    the previous step's output, bad data), raised before anything is enqueued; ``step`` is the
    position (1-based) of the step it concerns, if any."""

    def __init__(self, message: str, *, step: int | None = None, action: str | None = None) -> None:
        where = f"workflow step {step}" + (f" ({action})" if action else "") if step else "workflow"
        super().__init__(f"{where}: {message}", action=action)
        self.step = step

    def to_dict(self) -> dict[str, Any]:
        return {**super().to_dict(), "step": self.step}


@final
class WorkflowFailedError(TransportError):
    """``WorkflowHandle.result()`` of a workflow that failed or was canceled: ``error`` is the
    error of the step that broke it (``job_id``), or the cancellation's."""

    def __init__(self, workflow_id: str, status: str, error: JobError, job_id: str | None) -> None:
        step = f" (step {job_id})" if job_id else ""
        super().__init__(f"workflow {workflow_id} {status}{step}: {error}", action=error.action)
        self.workflow_id = workflow_id
        self.status = status
        self.error = error
        self.job_id = job_id

    def to_dict(self) -> dict[str, Any]:
        return {
            **super().to_dict(),
            "workflow_id": self.workflow_id,
            "status": self.status,
            "job_id": self.job_id,
            "error": self.error.to_dict(),
        }


@final
class WorkflowNotFoundError(TransportError):
    """No workflow with this id in Redis (never scheduled here, or expired after it ended)."""

    def __init__(self, workflow_id: str) -> None:
        super().__init__(
            f"no workflow {workflow_id} in Redis (never scheduled there, or expired after it ended)"
        )
        self.workflow_id = workflow_id
