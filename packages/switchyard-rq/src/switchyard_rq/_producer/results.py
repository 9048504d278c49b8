"""Waiting for many results at once: ``gather`` (and ``agather`` for async callers).

One pipelined round trip reads what every job's hash holds of its outcome; while some jobs have
not ended, one subscription to their outcome channels wakes the caller as each ends (Switchyard
publishes an outcome as it stores it), and only those are read again. So N results cost a few
round trips, not N.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable
from typing import Any, Final

from switchyard_rq._errors import JobFailedError, JobNotFoundError, ResultTimeoutError
from switchyard_rq._producer.handle import JobHandle, read_outcomes
from switchyard_rq._wire import keys
from switchyard_rq._wire.connection import redis_errors

__all__ = ["agather", "gather"]

_CHUNK: Final = 1000  # jobs per pipelined read
_POLL: Final = 1.0  # read the waiting ones again at least this often (jobs RQ's own workers run)


def gather(
    handles: Iterable[JobHandle],
    *,
    timeout: float | None = None,
    return_exceptions: bool = False,
) -> list[Any]:
    """The output models of ``handles``, in their order, once every job ended (at most
    ``timeout`` seconds; None waits as long as it takes).

    A job that failed raises its :class:`JobFailedError` (the first one found), or, with
    ``return_exceptions``, stands in the list as that error (a :class:`JobNotFoundError` for a
    job Redis does not have). Past the timeout, :class:`ResultTimeoutError` names the first job
    still waiting.
    """
    if timeout is not None and timeout < 0:
        raise ValueError("timeout must be >= 0 seconds (or None to wait as long as it takes)")
    todo = list(handles)
    deadline = None if timeout is None else time.monotonic() + timeout
    out: list[Any] = [None] * len(todo)
    by_client: dict[int, list[int]] = {}
    for index, handle in enumerate(todo):
        if type(handle) is not JobHandle:  # a cached result, or another kind: its own way
            out[index] = _one(handle, timeout, return_exceptions)
            continue
        by_client.setdefault(id(handle.connection), []).append(index)
    for indexes in by_client.values():
        _gather(todo, indexes, out, deadline, timeout, return_exceptions)
    return out


async def agather(
    handles: Iterable[JobHandle],
    *,
    timeout: float | None = None,
    return_exceptions: bool = False,
) -> list[Any]:
    """:func:`gather` for async callers: the waiting happens in a thread, the loop runs on."""
    listed = list(handles)
    return await asyncio.to_thread(
        gather, listed, timeout=timeout, return_exceptions=return_exceptions
    )


def _one(handle: JobHandle, timeout: float | None, return_exceptions: bool) -> Any:
    try:
        return handle.result(timeout=timeout)
    except (JobFailedError, JobNotFoundError) as exc:
        if return_exceptions:
            return exc
        raise


def _settle(handles: list[JobHandle], indexes: list[int], out: list[Any]) -> list[int]:
    """Read the jobs of ``indexes``; store the outcome of each that ended; return the others."""
    client = handles[indexes[0]].connection
    waiting: list[int] = []
    for start in range(0, len(indexes), _CHUNK):
        chunk = indexes[start : start + _CHUNK]
        for index, found in zip(chunk, read_outcomes(client, [handles[i].id for i in chunk]),
                                strict=True):  # fmt: skip
            if not found.done:
                waiting.append(index)
                continue
            try:
                out[index] = handles[index]._outcome(found)
            except (JobFailedError, JobNotFoundError) as exc:
                out[index] = exc
    return waiting


def _gather(
    handles: list[JobHandle],
    indexes: list[int],
    out: list[Any],
    deadline: float | None,
    timeout: float | None,
    return_exceptions: bool,
) -> None:
    client = handles[indexes[0]].connection
    with redis_errors(client):
        waiting = _settle(handles, indexes, out)
        _raise_first(out, indexes, return_exceptions)
        if not waiting:
            return
        with client.pubsub(ignore_subscribe_messages=True) as pubsub:  # type: ignore[no-untyped-call]
            channels = {keys.DONE_CHANNEL + handles[i].id: i for i in waiting}
            names = list(channels)
            for start in range(0, len(names), _CHUNK):
                pubsub.subscribe(*names[start : start + _CHUNK])
            pending = set(_settle(handles, waiting, out))  # after subscribing: none missed
            while pending:
                _raise_first(out, indexes, return_exceptions)
                if deadline is not None and time.monotonic() >= deadline:
                    first = handles[min(pending)]
                    raise ResultTimeoutError(first.id, timeout or 0.0, first.status)
                left = _POLL if deadline is None else min(_POLL, deadline - time.monotonic())
                message = pubsub.get_message(timeout=max(left, 0.001))
                if message is None:  # nothing said (a stock RQ worker runs some?): read them all
                    ended = set(pending)
                else:  # the jobs whose outcomes were published
                    ended = set()
                    while message is not None:
                        index = channels.get(_text(message.get("channel")))
                        if index is not None and index in pending:
                            ended.add(index)
                        message = pubsub.get_message(timeout=0)
                if ended:
                    still = _settle(handles, sorted(ended), out)
                    pending -= ended - set(still)
            _raise_first(out, indexes, return_exceptions)


def _text(raw: Any) -> str:
    return raw.decode(errors="replace") if isinstance(raw, bytes) else str(raw)


def _raise_first(out: list[Any], indexes: list[int], return_exceptions: bool) -> None:
    if return_exceptions:
        return
    for index in indexes:
        if isinstance(out[index], JobFailedError | JobNotFoundError):
            raise out[index]
