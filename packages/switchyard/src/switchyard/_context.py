"""The per-call context a handler can ask for (loaded lazily: it needs dataclasses and logging)."""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

if TYPE_CHECKING:
    from ._resource import Resource

T = TypeVar("T")

__all__ = ["Context", "JobControl", "new_context"]


class JobControl(Protocol):
    """What a transport gives a job's context: whether the job was asked to stop, and where its
    progress goes (switchyard-rq's worker keeps it and writes it to Redis in batches)."""

    @property
    def cancelled(self) -> bool: ...

    def report(self, done: float, total: float | None, message: str | None) -> None: ...


@dataclass(frozen=True, slots=True)
class Context:
    """What a handler may know about the call it serves.

    ``attempt`` is 1-based; ``job_id`` and ``queue`` are set when the call comes through a
    transport. Ask for it by annotating a handler parameter with ``Context``.
    """

    action: str
    call_id: str
    attempt: int
    logger: logging.Logger
    job_id: str | None = None
    queue: str | None = None
    #: the transport's handle on a running job (cancellation, progress); None in process
    control: JobControl | None = field(default=None, repr=False, compare=False)
    #: per-call scratch space of extensions (a database remembers a write here)
    state: dict[str, Any] = field(default_factory=dict, init=False, repr=False, compare=False)

    @property
    def cancelled(self) -> bool:
        """Whether the job was asked to stop (``JobHandle.cancel()``, ``switchyard jobs
        cancel``): a long handler checks it between steps and returns or raises. Always False
        for an in-process call."""
        return self.control is not None and self.control.cancelled

    def raise_if_cancelled(self) -> None:
        """Raise :class:`JobCancelledError` if the job was asked to stop (the job then ends
        as canceled, not failed, and is not retried)."""
        if self.control is not None and self.control.cancelled:
            from ._errors import JobCancelledError

            raise JobCancelledError(self.action)

    def progress(self, done: float, total: float | None = None, message: str | None = None) -> None:
        """Report how far the job got (``done`` of ``total``, and a short ``message``): readable
        with ``JobHandle.progress()``, ``switchyard jobs show`` and ``top``. Cheap to call often:
        the worker keeps the latest report and writes it at most twice a second. Does nothing
        for an in-process call."""
        if isinstance(done, bool) or not isinstance(done, int | float) or not done >= 0:
            raise ValueError(f"progress: done must be a number >= 0, not {done!r}")
        if total is not None and (
            isinstance(total, bool) or not isinstance(total, int | float) or not total > 0
        ):
            raise ValueError(f"progress: total must be a number > 0 or None, not {total!r}")
        if message is not None and not isinstance(message, str):
            raise ValueError(f"progress: message must be a string or None, not {message!r}")
        if self.control is not None:
            self.control.report(done, total, message[:500] if message else message)

    def resource(self, res: Resource[T]) -> T:
        """This process's instance of the sync resource ``res``, opened on first use."""
        from ._resource import get

        return get(res)

    async def aresource(self, res: Resource[T]) -> T:
        """This event loop's instance of resource ``res`` (async or sync), opened on first use."""
        from ._resource import aget

        return await aget(res)

    def db(self, name: str = "main") -> Any:
        """The configured database ``name`` (switchyard-db's ``Database``): ``.connection()``
        for a transaction on the primary, ``.read().connection()`` on a replica, and the async
        ``.aconnection()``. Its pools are this process's, opened on first use."""
        from ._extension import extension

        return extension("db")(self, name)

    def invalidate(self, *tags: str) -> int:
        """Drop every cached result stored under any of ``tags`` (see the ``cache`` option);
        the number of results dropped."""
        from ._cache import invalidate

        return invalidate(*tags)


def new_call_id() -> str:
    return os.urandom(16).hex()


def new_context(action: str) -> Context:
    """A context for a first, in-process attempt of ``action``."""
    return Context(
        action=action,
        call_id=new_call_id(),
        attempt=1,
        logger=logging.getLogger(f"switchyard.action.{action}"),
    )
