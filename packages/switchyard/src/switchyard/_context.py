"""The per-call context a handler can ask for (loaded lazily: it needs dataclasses and logging)."""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, TypeVar

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

    def resource(self, res: Resource[T]) -> T:
        """This process's instance of the sync resource ``res``, opened on first use."""
        from ._resource import get

        return get(res)

    async def aresource(self, res: Resource[T]) -> T:
        """This event loop's instance of resource ``res`` (async or sync), opened on first use."""
        from ._resource import aget

        return await aget(res)


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
