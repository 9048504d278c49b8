"""JobHandle: a scheduled job's id, status, validated result, error, progress, and cancel."""

from __future__ import annotations

import json
import time
from base64 import b64decode
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Final, final

import redis
from switchyard import Registry, default_registry

from switchyard_rq._errors import JobError, JobFailedError, JobNotFoundError, ResultTimeoutError
from switchyard_rq._settings import TransportSettings
from switchyard_rq._wire import keys
from switchyard_rq._wire.admin import CANCEL, REQUEUE
from switchyard_rq._wire.connection import get_connection, redis_errors
from switchyard_rq._wire.jobs import BadJobError, decode_job_data

if TYPE_CHECKING:
    from pydantic import BaseModel

__all__ = ["JobHandle", "Progress"]

_POLL: Final = 1.0  # re-check the job's status at least this often while waiting
_FAILED: Final = frozenset({"failed", "canceled", "stopped"})
_ACTION_LIMIT: Final = 64 * 1024 * 1024


def _text(raw: Any) -> str:
    return raw.decode(errors="replace") if isinstance(raw, bytes) else str(raw)


@final
@dataclass(frozen=True, slots=True)
class Progress:
    """A job's last progress report (``ctx.progress(done, total, message)``): ``at`` is when
    the handler made it (unix seconds); ``fraction`` is done/total when there is a total."""

    done: float
    total: float | None
    message: str | None
    at: float

    @property
    def fraction(self) -> float | None:
        return None if not self.total else min(self.done / self.total, 1.0)

    @classmethod
    def from_json(cls, raw: bytes | str) -> Progress | None:
        try:
            found = json.loads(raw)
            return cls(
                float(found["done"]),
                None if found.get("total") is None else float(found["total"]),
                found.get("message"),
                float(found.get("at") or 0.0),
            )
        except (ValueError, TypeError, KeyError):
            return None

    def to_dict(self) -> dict[str, Any]:
        return {"done": self.done, "total": self.total, "message": self.message, "at": self.at}

    def __str__(self) -> str:
        done = f"{self.done:g}" + (f"/{self.total:g}" if self.total else "")
        if self.fraction is not None:
            done += f" ({self.fraction:.0%})"
        return f"{done} {self.message}" if self.message else done


class Bound:
    """What a handle talks to: its Redis client and its registry, each the process default
    unless given, made on first use (JobHandle, WorkflowHandle)."""

    __slots__ = ("_connection", "_registry")
    _connection: redis.Redis | None
    _registry: Registry | None

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


class JobHandle(Bound):
    """A job in Redis, by id. Cheap to create; every property reads Redis afresh.

    ``status`` is RQ's: queued, scheduled, started, finished, failed, canceled (or deferred,
    stopped for jobs made by other RQ tools).
    """

    __slots__ = ("_action", "id")

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
    def status(self) -> str:
        """The job's status now; JobNotFoundError once it expired (or never existed)."""
        with redis_errors(self.connection):
            raw = self.connection.hget(keys.job(self.id), "status")
        if raw is None:
            raise JobNotFoundError(self.id)
        return _text(raw)

    @property
    def action(self) -> str:
        """The name of the action this job calls (its description, else read from its data)."""
        if self._action is None:
            with redis_errors(self.connection):
                data, description = self.connection.hmget(keys.job(self.id), "data", "description")
            if description and b"(" not in description:
                self._action = _text(description)
                return self._action
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
        if state == "canceled" and stored:  # stopped while it ran
            return JobError.from_json(stored)
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
        """Cancel the job: a queued, scheduled or waiting one is canceled at once (it never
        runs); a running one is asked to stop, and its worker tells it within a second
        (``ctx.cancelled`` turns True, an async handler's task is cancelled; a sync handler
        that never looks is stopped at its timeout, if it has one). A job that stops so ends
        as canceled; one that finishes anyway ends as it would have. True if the job was
        canceled or asked to stop, False if it had already ended. A workflow's step that is
        canceled cancels its workflow."""
        now = datetime.now(UTC)
        events = "1" if TransportSettings.from_env().events else "0"
        with redis_errors(self.connection):
            answer = CANCEL(
                self.connection,
                [keys.job(self.id)],
                [self.id, now.strftime("%Y-%m-%dT%H:%M:%S.%fZ"), now.timestamp(), events],
            )
        if int(answer) < 0:
            raise JobNotFoundError(self.id)
        return int(answer) in (1, 2)

    def progress(self) -> Progress | None:
        """The job's last progress report (stored at most twice a second while it runs, and
        with its outcome), or None if it made none yet."""
        with redis_errors(self.connection):
            status, raw = self.connection.hmget(keys.job(self.id), "status", "sy_progress")
        if status is None:
            raise JobNotFoundError(self.id)
        return Progress.from_json(raw) if raw else None

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
        ResultTimeoutError, JobNotFoundError. A finished job's result costs one command (HMGET); a
        waiting one is woken by the job's outcome (published when it is stored)."""
        if timeout is not None and timeout < 0:
            raise ValueError("timeout must be >= 0 seconds (or None to wait as long as it takes)")
        deadline = None if timeout is None else time.monotonic() + timeout
        client = self.connection
        with redis_errors(client):
            found = read_outcome(client, self.id)
            if found.done:
                return self._outcome(found)
            with client.pubsub(ignore_subscribe_messages=True) as pubsub:  # type: ignore[no-untyped-call]
                pubsub.subscribe(keys.DONE_CHANNEL + self.id)
                while True:
                    found = read_outcomes(client, [self.id])[0]  # after subscribing: none missed
                    if found.done:
                        return self._outcome(found)
                    if deadline is not None and time.monotonic() >= deadline:
                        raise ResultTimeoutError(self.id, timeout or 0.0, found.status or "unknown")
                    left = _POLL if deadline is None else min(_POLL, deadline - time.monotonic())
                    pubsub.get_message(timeout=max(left, 0.001))

    def _outcome(self, found: Stored) -> BaseModel:
        """The output model of a job that ended, or the error it ended with."""
        if found.status is None and found.result is None and found.rq_value is None:
            raise JobNotFoundError(self.id)
        if found.result is not None:
            return self._validated_json(found.result, found.description)
        if found.rq_value is not None:
            return self._validated(found.rq_value, found.description)
        if found.status == "finished":  # run by a stock RQ worker whose result stream expired
            raise JobNotFoundError(self.id)
        raise JobFailedError(self.id, self.error or JobError("Error", f"job {found.status}"))

    def _action_of(self, description: bytes | None) -> Any:
        # Switchyard writes the action's name as the description; RQ's own jobs carry a call's
        # repr there: their action comes from their data
        name = _text(description) if description and b"(" not in description else self.action
        return self.registry.resolve(name)

    def _validated_json(self, raw: bytes, description: bytes | None) -> BaseModel:
        """The output model of a result stored as the model's JSON (``sy_result``)."""
        return self._action_of(description).validate_output(json.loads(raw))  # type: ignore[no-any-return]

    def _validated(self, raw: bytes | None, description: bytes | None = None) -> BaseModel:
        """The output model of a result in RQ's result stream (base64 of the JSON text)."""
        action = self._action_of(description)
        if raw is None:
            return action.validate_output(None)  # type: ignore[no-any-return]
        value = json.loads(b64decode(raw))
        # The dispatcher's return value is the output model's JSON text.
        data = json.loads(value) if isinstance(value, str) else value
        return action.validate_output(data)  # type: ignore[no-any-return]


@final
class Stored:
    """What Redis holds of a job's outcome: its status, its result (Switchyard's, or the value
    in RQ's result stream, for a job a stock RQ worker ran), its description."""

    __slots__ = ("description", "result", "rq_value", "status")

    def __init__(
        self,
        status: str | None,
        result: bytes | None,
        rq_value: bytes | None,
        description: bytes | None,
    ) -> None:
        self.status = status
        self.result = result
        self.rq_value = rq_value
        self.description = description

    @property
    def done(self) -> bool:
        """It ended (finished, failed, canceled) or Redis has no such job."""
        if self.result is not None or self.rq_value is not None:
            return True
        return self.status is None or self.status in _FAILED or self.status == "finished"


def read_outcome(client: redis.Redis, job_id: str) -> Stored:
    """What Redis holds of one job's outcome: one HMGET when Switchyard stored its result (no
    pipeline, no read of RQ's result stream), else :func:`read_outcomes`."""
    fields: list[Any] = client.hmget(keys.job(job_id), "status", "sy_result", "description")
    status, result, description = fields
    if result is None:
        return read_outcomes(client, [job_id])[0]
    return Stored(_text(status) if status else None, result, None, description)


def read_outcomes(client: redis.Redis, ids: list[str]) -> list[Stored]:
    """What Redis holds of each job's outcome, in one pipelined round trip."""
    with client.pipeline(transaction=False) as pipe:
        for job_id in ids:
            pipe.hmget(keys.job(job_id), "status", "sy_result", "description")
            pipe.xrevrange(keys.results(job_id), count=1)
        replies = pipe.execute()
    found = []
    for n in range(len(ids)):
        (status, result, description), latest = replies[2 * n], replies[2 * n + 1]
        rq_value = None
        if result is None and latest:
            fields = latest[0][1]
            if fields.get(b"type") == b"1":
                rq_value = fields.get(b"return_value") or b""
            elif status is None:
                status = b"failed"  # an RQ failure whose hash expired before its stream
        found.append(Stored(_text(status) if status else None, result, rq_value, description))
    return found


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

    def progress(self) -> Progress | None:
        return None

    def requeue(self) -> bool:
        return False

    def result(self, timeout: float | None = None) -> BaseModel:
        return self._output
