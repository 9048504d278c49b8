"""The per-call context a handler can ask for (loaded lazily: it needs dataclasses and logging)."""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from ._resource import Resource

T = TypeVar("T")

__all__ = ["Context", "new_context"]


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
    #: per-call scratch space of extensions (a database remembers a write here)
    state: dict[str, Any] = field(default_factory=dict, init=False, repr=False, compare=False)

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
