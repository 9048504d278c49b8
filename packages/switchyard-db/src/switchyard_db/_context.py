"""The entry point behind ``ctx.db(name)`` (group ``switchyard.extensions``, name ``db``): the
core finds it on first use, so ``switchyard`` itself never imports psycopg."""

from __future__ import annotations

from typing import TYPE_CHECKING

from switchyard_db._handle import Database, settings_of

if TYPE_CHECKING:
    from switchyard import Context

__all__ = ["database"]


def database(context: Context, name: str) -> Database:
    """The database ``name`` for the call ``context`` serves (its action labels the queries; its
    per-call state remembers a write, for reads that want to see it)."""
    return Database(settings_of(name), action=context.action, state=context.state)
