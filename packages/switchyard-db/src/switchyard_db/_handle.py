"""``Database``: one configured database as an action sees it (``ctx.db("main")``).

::

    with ctx.db("main").connection() as conn:           # the primary, one transaction
        conn.execute("UPDATE users SET ... WHERE id = %s", (user_id,))
    with ctx.db("main").read().connection() as conn:    # a replica (round robin)
        row = conn.execute("SELECT ...").fetchone()
    async with ctx.db("main").aconnection() as conn:    # async handlers
        await conn.execute(...)

A ``connection()`` block is one transaction: committed when the block ends, rolled back when it
raises, so a failed job leaves nothing half-written. The connection goes back to the process's
pool at the end of the block.
"""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator, Iterator, MutableMapping
from contextlib import asynccontextmanager, contextmanager
from typing import Any, Final, final

import psycopg
from switchyard import aget_resource, get_resource

from switchyard_db._errors import DatabaseError
from switchyard_db._monitor import current
from switchyard_db._pool import async_resource, sync_resource
from switchyard_db._settings import DEFAULT, DatabaseSettings, load_databases

__all__ = ["Database", "configured", "database", "use_settings"]

_WROTE: Final = "switchyard_db.wrote"
_configured: dict[str, DatabaseSettings] | None = None
_lock = threading.Lock()


def configured() -> dict[str, DatabaseSettings]:
    """The process's databases (read once from the project's configuration)."""
    global _configured
    found = _configured
    if found is None:
        with _lock:
            if _configured is None:
                _configured = load_databases()
            found = _configured
    return found


def use_settings(databases: dict[str, DatabaseSettings] | None) -> None:
    """Replace the process's databases (tests); None: read the configuration again."""
    global _configured
    with _lock:
        _configured = databases


def settings_of(name: str) -> DatabaseSettings:
    databases = configured()
    found = databases.get(name)
    if found is None:
        known = ", ".join(sorted(databases))
        env = "".join(c if c.isalnum() else "_" for c in name).upper()
        raise DatabaseError(
            name,
            f"no database {name!r} configured (known: {known}); add "
            f"[tool.switchyard.databases.{name}] to pyproject.toml or set "
            f"SWITCHYARD_DATABASE_{env}_URL",
        )
    return found


@final
class Database:
    """A database as an action sees it: ``connection()`` / ``aconnection()`` on the primary;
    ``read()`` gives the same for a replica."""

    __slots__ = ("_action", "_own_writes", "_replica", "_state", "settings")

    def __init__(
        self,
        settings: DatabaseSettings,
        *,
        action: str = "-",
        state: MutableMapping[str, Any] | None = None,
        replica: bool = False,
        own_writes: bool = False,
    ) -> None:
        self.settings = settings
        self._action = action
        self._state: MutableMapping[str, Any] = state if state is not None else {}
        self._replica = replica
        self._own_writes = own_writes

    @property
    def name(self) -> str:
        return self.settings.name

    def __repr__(self) -> str:
        role = "replica" if self._replica else "primary"
        return f"<Database {self.settings.where} {role}>"

    def read(self, *, own_writes: bool = False) -> Database:
        """This database for reading: a healthy replica in turn (the primary when none is, or
        when none is configured). ``own_writes=True``: once this job has written to the primary,
        its reads go to the primary too, so it sees what it wrote (replicas lag)."""
        return Database(
            self.settings,
            action=self._action,
            state=self._state,
            replica=True,
            own_writes=own_writes,
        )

    def _to_primary(self) -> bool:
        if not self._replica or not self.settings.replicas:
            return True
        return self._own_writes and bool(self._state.get(f"{_WROTE}.{self.name}"))

    def _slow(self) -> tuple[str, str, float | None]:
        return (self.name, self._action, self.settings.slow_query)

    def _session_settings(self, conn: Any) -> str | None:
        timeout = self.settings.statement_timeout
        if self.settings.pgbouncer and timeout is not None:
            return f"SET LOCAL statement_timeout = {int(timeout * 1000)}"
        return None

    @contextmanager
    def connection(self) -> Iterator[psycopg.Connection[Any]]:
        """A pooled connection in a transaction (committed at the end, rolled back on error)."""
        pools = get_resource(sync_resource(self.settings))
        primary = self._to_primary()
        if primary:
            pool, conn = pools.get_primary()
        else:
            pool, conn, _role = pools.get_replica()
        token = current.set(self._slow())
        try:
            with conn:  # commit, or roll back on an exception; the pool keeps the connection
                statement = self._session_settings(conn)
                if statement is not None:
                    conn.execute(statement)
                yield conn
            if primary and not self._replica:
                self._state[f"{_WROTE}.{self.name}"] = True
        finally:
            current.reset(token)
            pool.putconn(conn)

    @asynccontextmanager
    async def aconnection(self) -> AsyncIterator[psycopg.AsyncConnection[Any]]:
        """The async form of :meth:`connection` (a pool per event loop)."""
        pools = await aget_resource(async_resource(self.settings))
        primary = self._to_primary()
        if primary:
            pool, conn = await pools.get_primary()
        else:
            pool, conn, _role = await pools.get_replica()
        token = current.set(self._slow())
        try:
            async with conn:
                statement = self._session_settings(conn)
                if statement is not None:
                    await conn.execute(statement)
                yield conn
            if primary and not self._replica:
                self._state[f"{_WROTE}.{self.name}"] = True
        finally:
            current.reset(token)
            await pool.putconn(conn)


def database(
    name: str = DEFAULT, *, action: str = "-", state: MutableMapping[str, Any] | None = None
) -> Database:
    """The configured database ``name`` (outside an action; actions use ``ctx.db(name)``)."""
    return Database(settings_of(name), action=action, state=state)
