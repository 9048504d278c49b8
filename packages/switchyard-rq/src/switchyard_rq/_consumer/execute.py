"""Running one job: decode and resolve it (:func:`prepare`), run its handler in one of three
ways, and turn what happened into an :class:`Outcome`.

- :func:`run_inline`: a sync handler in the consumer's thread (CPU-bound work, one at a time);
  its timeout is SIGALRM when that thread is the main thread.
- :func:`run_async`: an async handler, a task on the consumer's event loop beside the others;
  its timeout cancels it.
- :func:`run_threaded`: a sync handler of an ``io_bound`` action, in the consumer's thread pool;
  at its timeout the thread is interrupted with an exception raised in it (as Dramatiq's time
  limit does), which takes effect when the handler next runs Python code: a call blocked in C
  (a socket read with no timeout of its own) returns first.
"""

from __future__ import annotations

import asyncio
import json
import logging
import signal
import socket
import sys
import threading
import time
from dataclasses import dataclass
from types import FrameType
from typing import TYPE_CHECKING, Any, Final

from switchyard import (
    HandlerError,
    JobCancelledError,
    SwitchyardError,
    UnknownActionError,
    arun_action,
    run_action,
)

from switchyard_rq._consumer.source import Job, Outcome
from switchyard_rq._errors import ActionTimeoutError, JobError
from switchyard_rq._tracing import start_job_span
from switchyard_rq._wire.cluster import plain_queue
from switchyard_rq._wire.jobs import BadJobError, decode_job_data

if TYPE_CHECKING:
    from switchyard import Action, Context, Registry

    from switchyard_rq._tracing import JobSpan

__all__ = [
    "Alarm",
    "Control",
    "Run",
    "on_alarm",
    "prepare",
    "run_async",
    "run_inline",
    "run_threaded",
]

log = logging.getLogger("switchyard_rq.consumer")
_LOGGERS: dict[str, logging.Logger] = {}
#: seconds between two readings of the installed plugins for actions no registry knows
REREAD_EVERY: Final = 30.0


class Alarm(BaseException):
    """Raised in the handler's frame when its action's timeout passes (SIGALRM, or raised in
    its thread). A BaseException, so that neither the handler's ``except Exception`` nor the
    core's error wrapping can swallow it."""


def on_alarm(signum: int, frame: FrameType | None) -> None:
    del signum, frame
    raise Alarm


def _logger(action: str) -> logging.Logger:
    found = _LOGGERS.get(action)
    if found is None:
        found = _LOGGERS[action] = logging.getLogger(f"switchyard.action.{action}")
    return found


class Control:
    """A running job's :class:`switchyard.JobControl` (``ctx.cancelled``, ``ctx.progress``).

    The heartbeat thread looks at the jobs that run for a while (:meth:`due`) twice a second:
    it stores their latest progress report and learns which were asked to stop (one round trip
    for all of them, none for a job that ends sooner). A report is kept here until then, so a
    handler may report as often as it likes; the last one is stored with the job's outcome.
    """

    __slots__ = ("_latest", "_sent", "action", "began", "cancelled", "job", "loop", "task")

    def __init__(self, job: Job, action: str) -> None:
        self.job = job
        self.action = action
        self.began = time.monotonic()
        self.cancelled = False
        self._latest: tuple[float, float | None, str | None, float] | None = None
        self._sent: object = None
        self.task: asyncio.Task[Any] | None = None
        self.loop: asyncio.AbstractEventLoop | None = None

    def report(self, done: float, total: float | None, message: str | None) -> None:
        self._latest = (done, total, message, time.time())

    def due(self, now: float, after: float) -> bool:
        """Whether the job has run for ``after`` seconds by ``now`` (monotonic)."""
        return now - self.began >= after

    def unsent(self) -> str | None:
        """The latest report as JSON if it is not stored yet (then counted as stored)."""
        latest = self._latest
        if latest is None or latest is self._sent:
            return None
        self._sent = latest
        return _progress_json(latest)

    def last(self) -> str | None:
        """The latest report as JSON (for the outcome), or None if it made none."""
        return None if self._latest is None else _progress_json(self._latest)

    def cancel(self) -> None:
        """The job was asked to stop: ``ctx.cancelled`` says so, an async handler's task is
        cancelled (from any thread)."""
        self.cancelled = True
        task, loop = self.task, self.loop
        if task is not None and loop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(task.cancel)


def _progress_json(latest: tuple[float, float | None, str | None, float]) -> str:
    done, total, message, at = latest
    return json.dumps(
        {"done": done, "total": total, "message": message, "at": round(at, 3)},
        separators=(",", ":"),
    )


@dataclass(slots=True)
class Run:
    """A job ready to run: its resolved action, its input as JSON text, its context."""

    job: Job
    action: Action
    payload: str
    context: Context
    span: JobSpan | None
    began: float  # perf_counter() when the job was taken up
    control: Control


class Resolver:
    """The registered actions of one consumer, cached: the only code a job can make it run.

    An action the registry does not know may belong to a plugin installed after the worker
    started: before such a job fails, the installed plugins' metadata is read again (at most
    once every ``REREAD_EVERY`` seconds: a few milliseconds)."""

    __slots__ = ("_actions", "_next_reread", "max_payload_bytes", "registry")

    def __init__(self, registry: Registry, max_payload_bytes: int) -> None:
        self.registry = registry
        self.max_payload_bytes = max_payload_bytes
        self._actions: dict[str, Action] = {}
        self._next_reread = 0.0

    def resolve(self, name: str) -> Action:
        found = self._actions.get(name)
        if found is None:
            try:
                found = self.registry.resolve(name)
            except UnknownActionError:
                found = self._installed_since(name)
            self._actions[name] = found
        return found

    def _installed_since(self, name: str) -> Action:
        """``name`` from the plugins installed now, or UnknownActionError saying it is not
        installed where this worker runs."""
        now = time.monotonic()
        if now >= self._next_reread:
            self._next_reread = now + REREAD_EVERY
            import importlib

            from switchyard import Registry

            importlib.invalidate_caches()  # a new distribution's folder must be importable
            fresh = Registry.from_entry_points()
            if name in fresh:
                log.info("action %s was installed after this worker started: serving it", name)
                return fresh.resolve(name)
        try:
            return self.registry.resolve(name)
        except UnknownActionError as exc:
            where = f"{socket.gethostname()}, {sys.prefix}"
            exc.message = (
                f"{exc.message}: not installed where this worker runs ({where}); install the "
                "plugin's distribution there (the worker finds it without a restart)"
            )
            raise


_CONTEXT: list[Any] = []  # switchyard.Context, imported with the first job (it loads logging)


def prepare(resolver: Resolver, job: Job) -> Run | Outcome:
    """Decode ``job`` and resolve its action; an Outcome (failed) when it cannot run."""
    if not _CONTEXT:
        from switchyard import Context

        _CONTEXT.append(Context)
    span = start_job_span(job) if job.trace else None
    began = time.perf_counter()
    name: str | None = None
    try:
        name, payload = decode_job_data(job.data, limit=resolver.max_payload_bytes)
        action = resolver.resolve(name)
    except BadJobError as exc:
        return _failed(job, began, span, name, JobError("BadJobError", str(exc), name), False)
    except SwitchyardError as exc:  # unknown action, a plugin that cannot load
        error = JobError(type(exc).__name__, exc.message, exc.action or name)
        return _failed(job, began, span, name, error, False)
    except Exception as exc:  # anything unexpected: worth another attempt
        return _failed(job, began, span, name, JobError(type(exc).__name__, str(exc), name), True)
    control = Control(job, name)
    context = _CONTEXT[0](
        action=name,
        call_id=job.id,
        attempt=job.attempt,
        logger=_logger(name),
        job_id=job.id,
        queue=plain_queue(job.queue),
        control=control,
    )
    return Run(job, action, payload, context, span, began, control)


def run_inline(run: Run, hooks: Any, *, can_alarm: bool) -> Outcome:
    """Run a sync (or, with no event loop at hand, async) handler here and now."""
    action, timeout = run.action, run.action.policy.timeout
    try:
        if not (timeout and can_alarm):
            output = run_action(action, run.payload, context=run.context, hooks=hooks)
        else:
            try:
                signal.setitimer(signal.ITIMER_REAL, timeout)
                try:
                    output = run_action(action, run.payload, context=run.context, hooks=hooks)
                finally:
                    signal.setitimer(signal.ITIMER_REAL, 0)
            except Alarm:
                raise _timed_out(run, hooks) from None
    except BaseException as exc:
        return _error(run, exc)
    return _done(run, output.model_dump_json())


async def run_async(run: Run, hooks: Any) -> Outcome:
    """Await an async handler on the running loop; its timeout cancels it."""
    action, timeout = run.action, run.action.policy.timeout
    try:
        if timeout:
            try:
                async with asyncio.timeout(timeout):
                    output = await arun_action(
                        action, run.payload, context=run.context, hooks=hooks
                    )
            except TimeoutError:  # the handler's own TimeoutError arrives as a HandlerError
                raise _timed_out(run, hooks) from None
        else:
            output = await arun_action(action, run.payload, context=run.context, hooks=hooks)
    except asyncio.CancelledError:
        if run.control.cancelled:  # asked to stop: it is canceled
            return _error(run, JobCancelledError(action.name))
        raise  # the consumer gave the job up (shutdown): no outcome
    except BaseException as exc:
        return _error(run, exc)
    return _done(run, output.model_dump_json())


class ThreadSlot:
    """The thread a threaded run is in, so that its timeout interrupts that run and no other."""

    __slots__ = ("fired", "ident", "lock", "state")

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.ident: int | None = None
        self.state = "waiting"  # running, done
        self.fired = False

    def interrupt(self) -> None:
        """Raise :class:`Alarm` in the run's thread if the run is still in it."""
        with self.lock:
            if self.state != "running" or self.ident is None:
                return
            self.fired = True
            _async_raise(self.ident, Alarm)


def _async_raise(ident: int, exc: type[BaseException] | None) -> None:
    import ctypes

    ctypes.pythonapi.PyThreadState_SetAsyncExc(
        ctypes.c_ulong(ident), ctypes.py_object(exc) if exc is not None else None
    )


def run_threaded(run: Run, hooks: Any, slot: ThreadSlot) -> Outcome:
    """Run a sync I/O-bound handler in this (pool) thread; ``slot.interrupt()`` ends it."""
    try:
        with slot.lock:
            slot.ident = threading.get_ident()
            slot.state = "running"
        try:
            output = run_action(run.action, run.payload, context=run.context, hooks=hooks)
        finally:
            with slot.lock:
                slot.state = "done"
                if slot.fired:  # an interrupt that has not been raised yet must not escape
                    _async_raise(slot.ident, None)
    except Alarm:
        return _error(run, _timed_out(run, hooks))
    except BaseException as exc:
        return _error(run, exc)
    return _done(run, output.model_dump_json())


def _timed_out(run: Run, hooks: Any) -> ActionTimeoutError:
    error = ActionTimeoutError(run.action.name, run.action.policy.timeout or 0.0)
    hooks.on_error(run.action, run.context, error)
    return error


def _done(run: Run, result: str) -> Outcome:
    seconds = time.perf_counter() - run.began
    if run.span is not None:
        run.span.finish(action=run.action.name, job=run.job, outcome="succeeded", error_type=None)
    return Outcome(run.job, "ok", seconds, run.action.name, result=result)


def _error(run: Run, exc: BaseException) -> Outcome:
    """The outcome of a run that raised ``exc``: retried when it is worth another attempt; a
    job asked to stop that raised (whatever it raised) is canceled."""
    name = run.action.name
    trips = False
    if run.control.cancelled and isinstance(exc, Exception):
        seconds = time.perf_counter() - run.began
        if run.span is not None:
            run.span.finish(action=name, job=run.job, outcome="cancelled", error_type=None)
        error = JobError("JobCancelledError", f"action {name} was cancelled while it ran", name)
        return Outcome(run.job, "cancel", seconds, name, error=error)
    if isinstance(exc, HandlerError):
        retryable = trips = True
        error = JobError(exc.error_type, str(exc.cause) or exc.error_type, exc.action)
    elif isinstance(exc, ActionTimeoutError):
        retryable = trips = True
        error = JobError(type(exc).__name__, exc.message, exc.action)
    elif isinstance(exc, SwitchyardError):  # invalid input or output, plugin errors
        retryable = False
        error = JobError(type(exc).__name__, exc.message, exc.action or name)
    elif isinstance(exc, Exception):  # a hook or anything else unexpected: worth another attempt
        retryable = True
        error = JobError(type(exc).__name__, str(exc), name)
    else:
        raise exc  # KeyboardInterrupt, SystemExit: not the job's outcome
    return _failed(run.job, run.began, run.span, name, error, retryable, trips=trips)


def _failed(
    job: Job,
    began: float,
    span: JobSpan | None,
    name: str | None,
    error: JobError,
    retryable: bool,
    *,
    trips: bool = False,
) -> Outcome:
    seconds = time.perf_counter() - began
    log.debug("job %s failed: %s", job.id, error)
    retry = bool(retryable and job.retries_left and job.retries_left > 0)
    if span is not None:
        outcome = "retried" if retry else "failed"
        span.finish(action=name, job=job, outcome=outcome, error_type=error.type)
    if not retry:
        return Outcome(job, "fail", seconds, name, error=error, trips=trips)
    return Outcome(job, "retry", seconds, name, error=error, retry_due=_due(job), trips=trips)


_NOW_DUE: Final = None


def _due(job: Job) -> float | None:
    """RQ's Retry: interval ``intervals[len - retries_left]`` (the last one once past the end);
    the unix time the next attempt is due, or None for now."""
    assert job.retries_left
    if not job.retry_intervals:
        return _NOW_DUE
    index = max(len(job.retry_intervals) - job.retries_left, 0)
    interval = job.retry_intervals[min(index, len(job.retry_intervals) - 1)]
    return time.time() + interval if interval > 0 else _NOW_DUE
