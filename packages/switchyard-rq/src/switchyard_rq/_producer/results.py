"""Waiting for many results at once: ``gather`` (and ``agather`` for async callers).

One pipelined round trip reads every job's latest result entry and status; while some are not
done, one blocking XREAD waits on all their result streams at once, so a batch of N results
costs a few round trips, not N.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any, Final

from switchyard_rq._errors import JobError, JobFailedError, JobNotFoundError, ResultTimeoutError
from switchyard_rq._producer.handle import JobHandle
from switchyard_rq._wire import keys
from switchyard_rq._wire.connection import redis_errors

if TYPE_CHECKING:
    pass

__all__ = ["agather", "gather"]

_CHUNK: Final = 1000  # handles per pipelined read
_BLOCK_KEYS: Final = 2000  # streams one blocking read waits on
_POLL: Final = 1.0
_FAILED: Final = frozenset({"failed", "canceled", "stopped"})


def _text(raw: Any) -> str:
    return raw.decode(errors="replace") if isinstance(raw, bytes) else str(raw)


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
    still waiting. Handles of one Redis client are read together; a few round trips however many.
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
        _gather_one_client(todo, indexes, out, deadline, timeout, return_exceptions)
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


def _gather_one_client(
    handles: list[JobHandle],
    indexes: list[int],
    out: list[Any],
    deadline: float | None,
    timeout: float | None,
    return_exceptions: bool,
) -> None:
    client = handles[indexes[0]].connection
    waiting: dict[int, str] = {}  # index -> the last result entry id seen
    with redis_errors(client):
        for start in range(0, len(indexes), _CHUNK):
            chunk = indexes[start : start + _CHUNK]
            with client.pipeline(transaction=False) as pipe:
                for index in chunk:
                    job_id = handles[index].id
                    pipe.xrevrange(keys.results(job_id), count=1)
                    pipe.hmget(keys.job(job_id), "status", "description")
                replies = pipe.execute()
            for n, index in enumerate(chunk):
                latest, (status, description) = replies[2 * n], replies[2 * n + 1]
                last = _settle(handles[index], out, index, latest, status, description)
                if last is not None:
                    waiting[index] = last
        _raise_first(out, indexes, return_exceptions)
        while waiting:
            if deadline is not None and time.monotonic() >= deadline:
                first = handles[min(waiting)]
                raise ResultTimeoutError(first.id, timeout or 0.0, first.status)
            left = _POLL if deadline is None else min(_POLL, deadline - time.monotonic())
            block = list(waiting.items())[:_BLOCK_KEYS]
            streams: dict[Any, Any] = {keys.results(handles[i].id): last for i, last in block}
            arrived = _by_stream(client.xread(streams, block=max(int(left * 1000), 1)))
            with client.pipeline(transaction=False) as pipe:
                for index, _ in block:
                    pipe.hmget(keys.job(handles[index].id), "status", "description")
                states = pipe.execute()
            for (index, last), (status, description) in zip(block, states, strict=True):
                entries = arrived.get(keys.results(handles[index].id), [])
                latest = [entries[-1]] if entries else []
                seen = _settle(handles[index], out, index, latest, status, description, last)
                if seen is None:
                    del waiting[index]
                else:
                    waiting[index] = seen
            _raise_first(out, indexes, return_exceptions)


def _by_stream(reply: Any) -> dict[str, list[Any]]:
    """XREAD's reply (RESP2 list or RESP3 map) as stream name -> entries."""
    if not reply:
        return {}
    items = reply.items() if isinstance(reply, dict) else reply
    return {_text(name): list(entries) for name, entries in items}


def _settle(
    handle: JobHandle,
    out: list[Any],
    index: int,
    latest: Sequence[Any],
    status: bytes | None,
    description: bytes | None,
    last: str = "0-0",
) -> str | None:
    """Put the job's outcome at ``out[index]`` if it has one; else the entry id to wait from."""
    if latest:
        entry_id, fields = latest[0] if len(latest) == 1 else latest[-1]
        if fields.get(b"type") == b"1":
            out[index] = handle._validated(fields.get(b"return_value"), description)
            return None
        last = _text(entry_id)
    state = _text(status) if status is not None else None
    if state is None and not latest and last == "0-0":
        out[index] = JobNotFoundError(handle.id)
        return None
    if state in _FAILED:
        error = handle.error or JobError("Error", f"job {state}")
        out[index] = JobFailedError(handle.id, error)
        return None
    return last


def _raise_first(out: list[Any], indexes: list[int], return_exceptions: bool) -> None:
    if return_exceptions:
        return
    for index in indexes:
        if isinstance(out[index], JobFailedError | JobNotFoundError):
            raise out[index]
