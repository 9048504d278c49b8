"""Running one dequeued job and turning its outcome into the Redis commands that record it.

The commands are RQ's bookkeeping, written directly: a result in ``rq:results:<id>`` (what
``Job.return_value()`` reads), the finished/failed/scheduled registries, the job hash's status and
TTL, and the removal of the job from the consumer's processing list (last, so it is acknowledged
only once its outcome is stored).
"""

from __future__ import annotations

import asyncio
import json
import logging
import signal
import time
import zlib
from base64 import b64encode
from dataclasses import dataclass
from datetime import UTC, datetime
from types import FrameType
from typing import TYPE_CHECKING, Any

from switchyard import HandlerError, SwitchyardError, arun_action, run_action

from switchyard_rq._errors import ActionTimeoutError, JobError
from switchyard_rq._tracing import start_job_span
from switchyard_rq._wire.jobs import BadJobError, decode_job_data
from switchyard_rq._wire.scripts import Ack

if TYPE_CHECKING:
    from pydantic import BaseModel
    from switchyard import Action, Context

    from .consumer import Consumer

__all__ = ["Ack", "Job", "Outcome", "execute", "on_alarm"]


_LOGGERS: dict[str, logging.Logger] = {}


class Alarm(BaseException):
    """Raised in the handler's frame when its action's timeout passes (SIGALRM).

    A BaseException, so that neither the handler's ``except Exception`` nor the core's error
    wrapping can swallow it.
    """


def on_alarm(signum: int, frame: FrameType | None) -> None:
    del signum, frame
    raise Alarm


def _int(raw: Any, default: int | None) -> int | None:
    if raw is None:
        return default
    try:
        return int(raw)
    except (TypeError, ValueError):
        return default


@dataclass(slots=True)
class Job:
    """What the dequeue script read from a job hash, plus this execution's identity."""

    id: str
    queue: str
    data: bytes | None
    retries_left: int | None
    retry_intervals: list[float] | None
    number_of_retries: int
    result_ttl: int | None
    failure_ttl: int | None
    attempt: int
    execution: str
    started_at: str
    started_ts: float
    enqueued_at: bytes | None = None  # RQ format, for the queue-wait metric
    trace: bytes | None = None  # the producer's trace context (JSON), see _tracing

    @classmethod
    def batch(
        cls, reply: list[Any], queues: tuple[str, ...], prefix: str, stamp: str, ts: float
    ) -> list[Job]:
        """The jobs of a STEP reply (11 values each); execution ids are ``<prefix>-<n>``."""
        jobs = []
        for n in range(len(reply) // 11):
            (raw_id, index, data, left, intervals, retries, result_ttl, failure_ttl, attempt,
             enqueued_at, trace) = reply[n * 11 : n * 11 + 11]  # fmt: skip
            jobs.append(
                cls(
                    id=raw_id.decode() if isinstance(raw_id, bytes) else str(raw_id),
                    queue=queues[int(index) - 1],
                    data=data,
                    retries_left=_int(left, None),
                    retry_intervals=_intervals(intervals),
                    number_of_retries=_int(retries, 0) or 0,
                    result_ttl=_int(result_ttl, None),
                    failure_ttl=_int(failure_ttl, None),
                    attempt=int(attempt),
                    execution=f"{prefix}-{n + 1}",
                    started_at=stamp,
                    started_ts=ts,
                    enqueued_at=enqueued_at,
                    trace=trace,
                )
            )
        return jobs


def _intervals(raw: Any) -> list[float] | None:
    if not raw:
        return None
    try:
        loaded = json.loads(raw)
    except ValueError:
        return None
    if isinstance(loaded, list) and all(isinstance(v, int | float) for v in loaded):
        return [float(v) for v in loaded]
    return None


@dataclass(slots=True)
class Outcome:
    ok: bool
    seconds: float
    ack: Ack
    action: str | None = None
    error_type: str | None = None


def _logger(action: str) -> logging.Logger:
    found = _LOGGERS.get(action)
    if found is None:
        found = _LOGGERS[action] = logging.getLogger(f"switchyard.action.{action}")
    return found


def _run(consumer: Consumer, action: Action, payload: str, context: Context) -> str:
    hooks = consumer.registry.hooks
    timeout = action.policy.timeout
    if action.is_async:
        coroutine: Any = arun_action(action, payload, context=context, hooks=hooks)
        if timeout:
            coroutine = asyncio.wait_for(coroutine, timeout)
        try:
            output: BaseModel = consumer.event_loop().run_until_complete(coroutine)
        except TimeoutError:  # the handler's own TimeoutError arrives wrapped in HandlerError
            error = ActionTimeoutError(action.name, timeout or 0.0)
            hooks.on_error(action, context, error)
            raise error from None
        return output.model_dump_json()
    if not (timeout and consumer.can_alarm):
        return run_action(action, payload, context=context, hooks=hooks).model_dump_json()
    try:
        signal.setitimer(signal.ITIMER_REAL, timeout)
        try:
            output = run_action(action, payload, context=context, hooks=hooks)
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
    except Alarm:
        error = ActionTimeoutError(action.name, timeout)
        hooks.on_error(action, context, error)
        raise error from None
    return output.model_dump_json()


def execute(consumer: Consumer, job: Job) -> Outcome:
    """Run ``job`` (only ever a registered action) and return the commands recording it."""
    from switchyard import Context

    span = start_job_span(job) if job.trace else None
    started = time.perf_counter()
    name: str | None = None
    retryable = False
    try:
        name, payload = decode_job_data(job.data, limit=consumer.max_payload_bytes)
        action = consumer.resolve(name)
        context = Context(
            action=name,
            call_id=job.id,
            attempt=job.attempt,
            logger=_logger(name),
            job_id=job.id,
            queue=job.queue,
        )
        result = _run(consumer, action, payload, context)
    except BadJobError as exc:
        error = JobError("BadJobError", str(exc), name)
    except HandlerError as exc:
        retryable = True
        error = JobError(exc.error_type, str(exc.cause) or exc.error_type, exc.action)
    except ActionTimeoutError as exc:
        retryable = True
        error = JobError(type(exc).__name__, exc.message, exc.action)
    except SwitchyardError as exc:  # unknown action, plugin errors, invalid input or output
        error = JobError(type(exc).__name__, exc.message, exc.action or name)
    except Exception as exc:  # a hook or anything else unexpected: worth another attempt
        retryable = True
        error = JobError(type(exc).__name__, str(exc), name)
    else:
        seconds = time.perf_counter() - started
        if span is not None:
            span.finish(action=name, job=job, outcome="succeeded", error_type=None)
        return Outcome(True, seconds, _success(consumer, job, result), name)
    seconds = time.perf_counter() - started
    logging.getLogger("switchyard_rq.consumer").debug("job %s failed: %s", job.id, error)
    retry = bool(retryable and job.retries_left and job.retries_left > 0)
    if span is not None:
        outcome = "retried" if retry else "failed"
        span.finish(action=name, job=job, outcome=outcome, error_type=error.type)
    ack = _retry(consumer, job, error) if retry else _failure(consumer, job, error)
    return Outcome(False, seconds, ack, name, error.type)


def _stamp() -> tuple[str, float]:
    moment = datetime.now(UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ"), moment.timestamp()


def _success(consumer: Consumer, job: Job, result: str) -> Ack:
    ended, ended_ts = _stamp()
    ttl = job.result_ttl if job.result_ttl is not None else consumer.settings.result_ttl
    value = b64encode(json.dumps(result).encode())
    return Ack("ok", job.id, job.queue, job.execution, ended, ended_ts, ttl, value,
               "", "", job.started_ts, "", "", "")  # fmt: skip


def _failure(consumer: Consumer, job: Job, error: JobError) -> Ack:
    ended, ended_ts = _stamp()
    ttl = job.failure_ttl if job.failure_ttl is not None else consumer.settings.failure_ttl
    text = str(error)
    exc_string = b64encode(zlib.compress(text.encode()))
    return Ack("fail", job.id, job.queue, job.execution, ended, ended_ts, ttl, exc_string,
               text, error.to_json(), job.started_ts, "", "", "")  # fmt: skip


def _retry(consumer: Consumer, job: Job, error: JobError) -> Ack:
    """RQ's Retry: interval ``intervals[len - retries_left]`` (the last one once past the end)."""
    assert job.retries_left
    ended, ended_ts = _stamp()
    due: float | str = ""
    if job.retry_intervals:
        index = max(len(job.retry_intervals) - job.retries_left, 0)
        interval = job.retry_intervals[min(index, len(job.retry_intervals) - 1)]
        if interval > 0:
            due = ended_ts + interval
            consumer.due_at(due)
    return Ack("retry", job.id, job.queue, job.execution, ended, ended_ts, 0, "",
               str(error), error.to_json(), job.started_ts, job.retries_left - 1,
               job.number_of_retries + 1, due)  # fmt: skip
