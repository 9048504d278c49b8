"""The per-call context a handler can ask for (loaded lazily: it needs dataclasses and logging)."""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass

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
