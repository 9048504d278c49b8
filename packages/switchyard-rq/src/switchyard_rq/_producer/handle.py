"""JobHandle: a scheduled job's id, status, validated result, error, and cancel."""

from __future__ import annotations

import json
import time
from base64 import b64decode
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Final

import redis
from switchyard import Registry, default_registry

from switchyard_rq._errors import JobError, JobFailedError, JobNotFoundError, ResultTimeoutError
from switchyard_rq._wire import keys
from switchyard_rq._wire.admin import CANCEL, REQUEUE
from switchyard_rq._wire.connection import get_connection, redis_errors
from switchyard_rq._wire.jobs import BadJobError, decode_job_data

if TYPE_CHECKING:
    from pydantic import BaseModel

__all__ = ["JobHandle"]

_POLL: Final = 1.0  # re-check the job's status at least this often while waiting
_FAILED: Final = frozenset({"failed", "canceled", "stopped"})
_ACTION_LIMIT: Final = 64 * 1024 * 1024


def _entries(reply: Any) -> list[tuple[bytes, dict[bytes, bytes]]]:
    """The entries of a one-stream XREAD reply (RESP2 list or RESP3 map)."""
    if not reply:
        return []
    if isinstance(reply, dict):
        return list(next(iter(reply.values()), []))
    return list(reply[0][1])


def _text(raw: Any) -> str:
    return raw.decode(errors="replace") if isinstance(raw, bytes) else str(raw)


class JobHandle:
    """A job in Redis, by id. Cheap to create; every property reads Redis afresh.

    ``status`` is RQ's: queued, scheduled, started, finished, failed, canceled (or deferred,
    stopped for jobs made by other RQ tools).
    """

    __slots__ = ("_action", "_connection", "_registry", "id")

    def __init__(
        self,
        id: str,
        *,
        connection: redis.Redis | None = None,
        registry: Registry | None = None,
    ) -> None:
        self.id = id
        self._connection = connection
        self._registry = registry
        self._action: str | None = None

    @classmethod
    def fetch(
        cls,
        id: str,
        *,
        connection: redis.Redis | None = None,
        registry: Registry | None = None,
    ) -> JobHandle:
        """The handle of job ``id``; JobNotFoundError if Redis has no such job."""
        handle = cls(id, connection=connection, registry=registry)
        client = handle.connection
        with redis_errors(client):
            if not client.exists(keys.job(id)):
                raise JobNotFoundError(id)
        return handle

    def __repr__(self) -> str:
        return f"JobHandle({self.id!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, JobHandle) and other.id == self.id

    def __hash__(self) -> int:
        return hash(self.id)

    @property
    def connection(self) -> redis.Redis:
        if self._connection is None:
            self._connection = get_connection()
        return self._connection

    @property
    def registry(self) -> Registry:
        if self._registry is None:
            self._registry = default_registry()
        return self._registry

    @property
    def status(self) -> str:
        """The job's status now; JobNotFoundError once it expired (or never existed)."""
        with redis_errors(self.connection):
            raw = self.connection.hget(keys.job(self.id), "status")
        if raw is None:
            raise JobNotFoundError(self.id)
        return _text(raw)

    @property
    def action(self) -> str:
        """The name of the action this job calls (read from the job's data)."""
        if self._action is None:
            with redis_errors(self.connection):
                data = self.connection.hget(keys.job(self.id), "data")
            if data is None:
                raise JobNotFoundError(self.id)
            raw = data if isinstance(data, bytes) else str(data).encode()
            try:
                self._action = decode_job_data(raw, limit=_ACTION_LIMIT)[0]
            except BadJobError as exc:
                raise JobFailedError(self.id, JobError("BadJobError", str(exc))) from None
        return self._action

    @property
    def error(self) -> JobError | None:
        """Why the job failed (or was canceled); None while it has not."""
        with redis_errors(self.connection):
            status, stored, exc_info, description = self.connection.hmget(
                keys.job(self.id), "status", "sy_error", "exc_info", "description"
            )
        if status is None:
            raise JobNotFoundError(self.id)
        state = _text(status)
        if state == "canceled":
            action = _text(description) if description else None
            return JobError("JobCanceledError", "the job was canceled before it ran", action)
        if state not in {"failed", "stopped"}:
            return None
        if stored:
            return JobError.from_json(stored)
        message = _text(exc_info).strip() if exc_info else f"job {state}"
        return JobError("Error", message.splitlines()[-1] if message else state)

    def cancel(self) -> bool:
        """Cancel a queued or scheduled job: True if it will not run, False if it already ran or
        is running (a running job is not interrupted)."""
        now = datetime.now(UTC)
        with redis_errors(self.connection):
            answer = CANCEL(
                self.connection,
                [keys.job(self.id)],
                [self.id, now.strftime("%Y-%m-%dT%H:%M:%S.%fZ"), now.timestamp()],
            )
        if int(answer) < 0:
            raise JobNotFoundError(self.id)
        return int(answer) == 1

    def requeue(self) -> bool:
        """Put a failed (or canceled) job back on its queue, as ``rq requeue`` does: True if it
        was requeued, False if it had not failed."""
        now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        with redis_errors(self.connection):
            answer = REQUEUE(self.connection, [keys.job(self.id)], [self.id, now])
        if int(answer) < 0:
            raise JobNotFoundError(self.id)
        return int(answer) == 1

    def result(self, timeout: float | None = None) -> BaseModel:
        """Wait for the job (at most ``timeout`` seconds; None waits as long as it takes) and
        return its output model, validated. Raises JobFailedError (with ``.error``),
        ResultTimeoutError, JobNotFoundError. A finished job's result costs one round trip."""
        if timeout is not None and timeout < 0:
            raise ValueError("timeout must be >= 0 seconds (or None to wait as long as it takes)")
        deadline = None if timeout is None else time.monotonic() + timeout
        client = self.connection
        stream = keys.results(self.id)
        with redis_errors(client), client.pipeline(transaction=False) as pipe:
            pipe.xrevrange(stream, count=1)
            pipe.hmget(keys.job(self.id), "status", "description")
            latest, (status, description) = pipe.execute()
        last = "0-0"
        if latest:
            entry_id, fields = latest[0]
            if fields.get(b"type") == b"1":
                return self._validated(fields.get(b"return_value"), description)
            last = _text(entry_id)
        state = _text(status) if status is not None else None
        while True:
            if state is None and not latest:
                raise JobNotFoundError(self.id)
            if state in _FAILED:
                raise JobFailedError(self.id, self.error or JobError("Error", f"job {state}"))
            if deadline is not None and time.monotonic() >= deadline:
                raise ResultTimeoutError(self.id, timeout or 0.0, state or "unknown")
            remaining = _POLL if deadline is None else min(_POLL, deadline - time.monotonic())
            with redis_errors(client):
                block = max(int(remaining * 1000), 1) if remaining > 0 else None
                latest = _entries(client.xread({stream: last}, block=block))
                if latest:
                    entry_id, fields = latest[-1]
                    if fields.get(b"type") == b"1":
                        return self._validated(fields.get(b"return_value"), description)
                    last = _text(entry_id)
                status, description = client.hmget(keys.job(self.id), "status", "description")
            state = _text(status) if status is not None else None

    def _validated(self, raw: bytes | None, description: bytes | None = None) -> BaseModel:
        """The output model of a stored result (the action read from the job's description,
        else from its data)."""
        # Switchyard writes the action's name as the description; RQ's own jobs carry a call's
        # repr there: their action comes from their data
        name = _text(description) if description and b"(" not in description else self.action
        action = self.registry.resolve(name)
        if raw is None:
            return action.validate_output(None)
        value = json.loads(b64decode(raw))
        # The dispatcher's return value is the output model's JSON text.
        data = json.loads(value) if isinstance(value, str) else value
        return action.validate_output(data)


class CachedHandle(JobHandle):
    """What ``schedule_action`` returns for a cached result: finished already, no job in Redis
    (its id is ``cached:`` and the action's name)."""

    __slots__ = ("_output",)

    def __init__(self, action: str, output: BaseModel, *, registry: Registry | None = None) -> None:
        super().__init__(f"cached:{action}", registry=registry)
        self._action = action
        self._output = output

    def __repr__(self) -> str:
        return f"CachedHandle({type(self._output).__name__})"

    @property
    def status(self) -> str:
        return "finished"

    @property
    def error(self) -> JobError | None:
        return None

    def cancel(self) -> bool:
        return False

    def requeue(self) -> bool:
        return False

    def result(self, timeout: float | None = None) -> BaseModel:
        return self._output
