"""Scheduling for the event loop, in batches: the jobs that requests ask for while one write is
in flight are written together by the next (``schedule_many``: one round trip for all of them),
on one thread beside the loop. A busy gateway so pays one Redis round trip per batch, not per
request, and the loop never waits on Redis for a schedule.

A batch that fails on one call's input (which ``schedule_many`` checks before anything reaches
Redis) is written again call by call, so that each request gets its own answer.
"""

from __future__ import annotations

import asyncio
import contextvars
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TYPE_CHECKING, Any, final

if TYPE_CHECKING:
    from switchyard import Registry
    from switchyard_rq import Call, JobHandle

__all__ = ["JobWriter"]


@final
class JobWriter:
    """One per server process; :meth:`schedule` is called on the event loop only."""

    __slots__ = ("_executor", "_registry", "_waiting", "_writing")

    def __init__(self, registry: Registry) -> None:
        self._registry = registry
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="schedule")
        self._waiting: list[tuple[Call, asyncio.Future[JobHandle]]] = []
        self._writing = False

    async def schedule(self, call: Call, *, traced: bool = False) -> JobHandle:
        """The job's handle once written. ``traced``: the request continues a trace, which
        lives in this task's context: such a call is written alone, in a copy of it (the
        transport reads the trace to continue from the current context)."""
        loop = asyncio.get_running_loop()
        if traced:
            context = contextvars.copy_context()
            found = await loop.run_in_executor(self._executor, context.run, self._write, [call])
            outcome = found[0]
            if isinstance(outcome, BaseException):
                raise outcome
            return outcome  # type: ignore[no-any-return]
        future: asyncio.Future[JobHandle] = loop.create_future()
        self._waiting.append((call, future))
        if not self._writing:
            self._start(loop)
        return await future

    def _start(self, loop: asyncio.AbstractEventLoop) -> None:
        batch, self._waiting = self._waiting, []
        self._writing = True
        calls = [call for call, _ in batch]
        done = self._executor.submit(self._write, calls)

        def finished(result: Future[list[Any]]) -> None:
            loop.call_soon_threadsafe(self._settle, loop, batch, result)

        done.add_done_callback(finished)

    def _write(self, calls: list[Call]) -> list[Any]:
        """Each call's handle, or the exception that call alone raises."""
        from switchyard_rq import RedisUnavailableError, schedule_action, schedule_many

        try:
            return list(schedule_many(calls, registry=self._registry))
        except RedisUnavailableError:
            raise
        except Exception:
            if len(calls) == 1:
                raise
        found: list[Any] = []
        for call in calls:
            try:
                found.append(
                    schedule_action(
                        call.name,
                        call.data,
                        key=call.key,
                        priority=call.priority,
                        registry=self._registry,
                    )
                )
            except Exception as error:
                found.append(error)
        return found

    def _settle(
        self,
        loop: asyncio.AbstractEventLoop,
        batch: list[tuple[Call, asyncio.Future[JobHandle]]],
        result: Future[list[Any]],
    ) -> None:
        error = result.exception()
        outcomes: list[Any] = [error] * len(batch) if error is not None else result.result()
        for (_, future), outcome in zip(batch, outcomes, strict=True):
            if future.done():  # the request went away
                continue
            if isinstance(outcome, BaseException):
                future.set_exception(outcome)
            else:
                future.set_result(outcome)
        self._writing = False
        if self._waiting:
            self._start(loop)
