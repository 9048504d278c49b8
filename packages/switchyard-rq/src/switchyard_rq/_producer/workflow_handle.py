"""WorkflowHandle: a workflow's status, each step's status, its result, and cancel."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Final, final

import redis
from switchyard import Registry

from switchyard_rq._errors import (
    JobError,
    ResultTimeoutError,
    WorkflowFailedError,
    WorkflowNotFoundError,
)
from switchyard_rq._producer.handle import Bound, JobHandle
from switchyard_rq._settings import TransportSettings
from switchyard_rq._wire import keys
from switchyard_rq._wire.admin import WF_CANCEL
from switchyard_rq._wire.connection import redis_errors

if TYPE_CHECKING:
    from pydantic import BaseModel

__all__ = ["StepState", "WorkflowHandle"]

_POLL: Final = 1.0
_ENDED: Final = frozenset({"succeeded", "failed", "canceled"})


def _text(raw: Any) -> str:
    return raw.decode(errors="replace") if isinstance(raw, bytes) else str(raw)


@final
@dataclass(frozen=True, slots=True)
class StepState:
    """One step of a workflow now: its stage (0-based), its job's id, action and status
    (``deferred``: waiting for the stage before it; ``expired`` once its job is gone)."""

    stage: int
    job_id: str
    action: str
    status: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "stage": self.stage,
            "job_id": self.job_id,
            "action": self.action,
            "status": self.status,
        }


class WorkflowHandle(Bound):
    """A workflow in Redis, by id (what ``schedule_workflow`` returns). Every property reads
    Redis afresh. ``status``: running, succeeded, failed or canceled."""

    __slots__ = ("id",)

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

    def __repr__(self) -> str:
        return f"WorkflowHandle({self.id!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, WorkflowHandle) and other.id == self.id

    def __hash__(self) -> int:
        return hash(("workflow", self.id))

    def _state(self) -> dict[str, str]:
        with redis_errors(self.connection):
            raw = self.connection.hgetall(keys.workflow(self.id))
        if not raw:
            raise WorkflowNotFoundError(self.id)
        return {_text(k): _text(v) for k, v in raw.items()}

    @property
    def status(self) -> str:
        with redis_errors(self.connection):
            raw = self.connection.hget(keys.workflow(self.id), "status")
        if raw is None:
            raise WorkflowNotFoundError(self.id)
        return _text(raw)

    @property
    def kind(self) -> str:
        """chain, group or chord."""
        return self._state().get("kind", "chain")

    def stages(self) -> list[list[str]]:
        """The job ids of each stage, in order."""
        state = self._state()
        return [json.loads(state[f"s{k}"]) for k in range(int(state["n"]))]

    def steps(self) -> list[StepState]:
        """Every step's state now (one round trip for all of them)."""
        stages = self.stages()
        flat = [(k, job_id) for k, ids in enumerate(stages) for job_id in ids]
        client = self.connection
        with redis_errors(client), client.pipeline(transaction=False) as pipe:
            for _, job_id in flat:
                pipe.hmget(keys.job(job_id), "status", "description")
            replies = pipe.execute()
        return [
            StepState(k, job_id, _text(name or b""), _text(status) if status else "expired")
            for (k, job_id), (status, name) in zip(flat, replies, strict=True)
        ]

    @property
    def error(self) -> JobError | None:
        """Why the workflow failed or was canceled (its breaking step's error); None while it
        has not."""
        state = self._state()
        stored = state.get("error")
        return JobError.from_json(stored) if stored else None

    @property
    def failed_step(self) -> str | None:
        """The job id of the step that broke the workflow, if one did."""
        return self._state().get("failed") or None

    def cancel(self) -> bool:
        """Cancel every step that has not ended (queued ones at once, running ones are asked to
        stop) and end the workflow as canceled: True, or False if it had already ended."""
        now = datetime.now(UTC)
        events = "1" if TransportSettings.from_env().events else "0"
        error = JobError("WorkflowCancelledError", "the workflow was canceled").to_json()
        with redis_errors(self.connection):
            answer = WF_CANCEL(
                self.connection,
                [keys.workflow(self.id)],
                [self.id, now.strftime("%Y-%m-%dT%H:%M:%S.%fZ"), now.timestamp(), events, error],
            )
        if int(answer) < 0:
            raise WorkflowNotFoundError(self.id)
        return int(answer) == 1

    def result(self, timeout: float | None = None) -> BaseModel | list[BaseModel]:
        """Wait for the workflow (at most ``timeout`` s; None: as long as it takes); its result:
        the last step's output model, or the list of a final group's outputs. Raises
        WorkflowFailedError (with the breaking step's error), ResultTimeoutError,
        WorkflowNotFoundError."""
        if timeout is not None and timeout < 0:
            raise ValueError("timeout must be >= 0 seconds (or None to wait as long as it takes)")
        deadline = None if timeout is None else time.monotonic() + timeout
        client = self.connection
        with redis_errors(client):
            status = self.status
            if status in _ENDED:
                return self._outcome()
            with client.pubsub(ignore_subscribe_messages=True) as pubsub:  # type: ignore[no-untyped-call]
                pubsub.subscribe(keys.DONE_CHANNEL + self.id)
                while True:
                    status = self.status  # after subscribing: none missed
                    if status in _ENDED:
                        return self._outcome()
                    if deadline is not None and time.monotonic() >= deadline:
                        raise ResultTimeoutError(self.id, timeout or 0.0, status)
                    left = _POLL if deadline is None else min(_POLL, deadline - time.monotonic())
                    pubsub.get_message(timeout=max(left, 0.001))

    def _outcome(self) -> BaseModel | list[BaseModel]:
        state = self._state()
        status = state["status"]
        if status != "succeeded":
            stored = state.get("error")
            error = JobError.from_json(stored) if stored else JobError("Error", status)
            raise WorkflowFailedError(self.id, status, error, state.get("failed") or None)
        last = int(state["n"]) - 1
        ids = json.loads(state[f"s{last}"])
        from switchyard_rq._producer.results import gather

        handles = [JobHandle(i, connection=self.connection, registry=self.registry) for i in ids]
        outputs: list[BaseModel] = gather(handles, timeout=0)  # pipelined: one round trip
        return outputs if f"g{last}" in state else outputs[0]
