"""One database's pools in one process: a bounded pool for its primary and one per replica,
sync (thread-safe, shared by the process's threads) or async (one set per event loop).

The pools are switchyard per-process resources: opened on the first job that asks for the
database, closed by the consumer at shutdown (``close_resources`` / ``aclose_resources``), never
inherited by a forked process. Connections are made on demand up to ``pool-size`` and kept;
no job ever opens its own.
"""

from __future__ import annotations

import itertools
import os
import threading
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any, ClassVar, Final

import psycopg
from psycopg_pool import AsyncConnectionPool, ConnectionPool, PoolTimeout
from switchyard import Resource, resource

from switchyard_db._errors import DatabaseError, describe
from switchyard_db._monitor import AsyncCursor, Cursor, pool_numbers, register_pool_source
from switchyard_db._settings import DatabaseSettings

__all__ = ["AsyncPools", "SyncPools", "async_resource", "sync_resource"]

_MAX_IDLE: Final = 600.0
#: libpq connection string -> (monotonic time, the last failure to connect there, as one line)
_failures: dict[str, tuple[float, str]] = {}


def _remember(conninfo: str, error: BaseException) -> None:
    _failures[conninfo] = (time.monotonic(), describe(error))


class _Connection(psycopg.Connection[Any]):
    """A connection that remembers why it could not connect (for the error a job sees)."""

    @classmethod
    def connect(cls, conninfo: str = "", **kwargs: Any) -> Any:
        try:
            return super().connect(conninfo, **kwargs)
        except psycopg.Error as error:
            _remember(conninfo, error)
            raise


class _AsyncConnection(psycopg.AsyncConnection[Any]):
    @classmethod
    async def connect(cls, conninfo: str = "", **kwargs: Any) -> Any:
        try:
            return await super().connect(conninfo, **kwargs)
        except psycopg.Error as error:
            _remember(conninfo, error)
            raise


def connect_kwargs(settings: DatabaseSettings, *, is_async: bool) -> dict[str, Any]:
    """How every connection to ``settings``' servers is made."""
    kwargs: dict[str, Any] = {
        "connect_timeout": max(1, round(settings.connect_timeout)),
        "application_name": "switchyard",
        "cursor_factory": AsyncCursor if is_async else Cursor,
        # PgBouncer in transaction mode hands each transaction any server connection: a
        # statement prepared on one is unknown on the next. None: never prepare server-side.
        "prepare_threshold": 5 if settings.prepared_statements else None,
    }
    if settings.statement_timeout is not None and not settings.pgbouncer:
        kwargs["options"] = f"-c statement_timeout={int(settings.statement_timeout * 1000)}"
    return kwargs


def primary_url(settings: DatabaseSettings) -> str:
    if settings.url is not None:
        return settings.url
    from switchyard_db._embedded import embedded_url

    try:
        return embedded_url(settings.root or _cwd(), settings.name)
    except Exception as error:
        raise DatabaseError(settings.name, f"{settings.where}: {describe(error)}") from None


def _cwd() -> Any:
    from pathlib import Path

    return Path.cwd()


def prepare(settings: DatabaseSettings, url: str) -> None:
    """Before a process's first pool: connect once (:func:`probe`), and apply pending migrations
    when the database says so (the embedded one, by default)."""
    probe(settings, url)
    if settings.migrates_on_open:
        from switchyard_db._handle import configured
        from switchyard_db._migrate import apply, for_database

        names = for_database(settings, configured())
        if names:
            apply(settings, url, names)


def probe(settings: DatabaseSettings, url: str) -> None:
    """Connect once: an unreachable server, refused credentials or a missing database fail the
    first job at once, in one line, rather than after the pool's wait."""
    try:
        psycopg.connect(url, connect_timeout=max(1, round(settings.connect_timeout))).close()
    except psycopg.Error as error:
        raise DatabaseError(
            settings.name, f"{settings.where}: cannot connect: {describe(error)}"
        ) from None


class Replicas:
    """Which replica serves the next read: round robin over the healthy ones; a replica that
    failed is skipped for ``replica-retry`` seconds. Shared by a process's sync and async pools."""

    _all: ClassVar[dict[tuple[int, DatabaseSettings], Replicas]] = {}
    _lock = threading.Lock()

    def __init__(self, count: int, retry: float) -> None:
        self.count = count
        self.retry = retry
        self.down_until = [0.0] * count
        self._next = itertools.count()

    @classmethod
    def of(cls, settings: DatabaseSettings) -> Replicas:
        key = (os.getpid(), settings)
        with cls._lock:
            found = cls._all.get(key)
            if found is None:
                found = cls._all[key] = cls(len(settings.replicas), settings.replica_retry)
        return found

    def order(self) -> list[int]:
        """The healthy replicas, starting with the next in turn (the turn goes round the
        healthy ones only, so a replica that is down does not send its share to its neighbour)."""
        now = time.monotonic()
        healthy = [i for i in range(self.count) if self.down_until[i] <= now]
        if not healthy:
            return []
        start = next(self._next) % len(healthy)
        return healthy[start:] + healthy[:start]

    def failed(self, index: int) -> None:
        self.down_until[index] = time.monotonic() + self.retry


def _timeout_error(settings: DatabaseSettings, url: str, role: str, waited: float) -> DatabaseError:
    failure = _failures.get(url)
    cause = ""
    if (
        failure is not None
        and time.monotonic() - failure[0] < waited + settings.connect_timeout + 5
    ):
        cause = f"; last connection attempt: {failure[1]}"
    return DatabaseError(
        settings.name,
        f"{settings.where}: no {role} connection free within {waited:g} s "
        f"(pool-size {settings.pool_size} per process){cause}",
    )


class SyncPools:
    """The sync pools of one database in this process (thread-safe)."""

    def __init__(self, settings: DatabaseSettings) -> None:
        self.settings = settings
        self.url = primary_url(settings)
        prepare(settings, self.url)
        self.replicas = Replicas.of(settings)
        self.primary = self._pool(self.url, "primary")
        self.replica_pools = [
            self._pool(url, f"replica{i}") for i, url in enumerate(settings.replicas)
        ]
        register_pool_source(id(self), self.numbers)

    def _pool(self, url: str, role: str) -> ConnectionPool[Any]:
        pool: ConnectionPool[Any] = ConnectionPool(
            url,
            min_size=0,
            max_size=self.settings.pool_size,
            timeout=self.settings.pool_timeout,
            max_idle=_MAX_IDLE,
            kwargs=connect_kwargs(self.settings, is_async=False),
            connection_class=_Connection,
            name=f"{self.settings.name}-{role}",
            open=False,
        )
        pool.open(wait=False)
        return pool

    def numbers(self) -> Iterator[dict[str, Any]]:
        name = self.settings.name
        yield pool_numbers(name, "primary", self.primary)
        for i, pool in enumerate(self.replica_pools):
            yield pool_numbers(name, f"replica{i}", pool)

    def get_primary(self) -> tuple[ConnectionPool[Any], psycopg.Connection[Any]]:
        timeout = self.settings.pool_timeout
        try:
            return self.primary, self.primary.getconn(timeout=timeout)
        except PoolTimeout:
            raise _timeout_error(self.settings, self.url, "primary", timeout) from None

    def get_replica(self) -> tuple[ConnectionPool[Any], psycopg.Connection[Any], str]:
        """A replica's connection (round robin), else the primary's when none is healthy."""
        wait = min(self.settings.pool_timeout, self.settings.connect_timeout)
        for index in self.replicas.order():
            pool = self.replica_pools[index]
            try:
                return pool, pool.getconn(timeout=wait), f"replica{index}"
            except (PoolTimeout, psycopg.OperationalError):
                self.replicas.failed(index)
        pool, conn = self.get_primary()
        return pool, conn, "primary"

    def close(self) -> None:
        register_pool_source(id(self), None)
        for pool in (self.primary, *self.replica_pools):
            pool.close(timeout=5.0)


class AsyncPools:
    """The async pools of one database on one event loop."""

    def __init__(self, settings: DatabaseSettings, url: str) -> None:
        self.settings = settings
        self.url = url
        self.replicas = Replicas.of(settings)
        self.primary = self._pool(url, "primary")
        self.replica_pools = [self._pool(u, f"replica{i}") for i, u in enumerate(settings.replicas)]

    def _pool(self, url: str, role: str) -> AsyncConnectionPool[Any]:
        return AsyncConnectionPool(
            url,
            min_size=0,
            max_size=self.settings.pool_size,
            timeout=self.settings.pool_timeout,
            max_idle=_MAX_IDLE,
            kwargs=connect_kwargs(self.settings, is_async=True),
            connection_class=_AsyncConnection,
            name=f"{self.settings.name}-{role}-async",
            open=False,
        )

    async def open(self) -> None:
        for pool in (self.primary, *self.replica_pools):
            await pool.open(wait=False)
        register_pool_source(id(self), self.numbers)

    def numbers(self) -> Iterator[dict[str, Any]]:
        name = self.settings.name
        yield pool_numbers(name, "primary", self.primary)
        for i, pool in enumerate(self.replica_pools):
            yield pool_numbers(name, f"replica{i}", pool)

    async def get_primary(self) -> tuple[AsyncConnectionPool[Any], psycopg.AsyncConnection[Any]]:
        timeout = self.settings.pool_timeout
        try:
            return self.primary, await self.primary.getconn(timeout=timeout)
        except PoolTimeout:
            raise _timeout_error(self.settings, self.url, "primary", timeout) from None

    async def get_replica(
        self,
    ) -> tuple[AsyncConnectionPool[Any], psycopg.AsyncConnection[Any], str]:
        wait = min(self.settings.pool_timeout, self.settings.connect_timeout)
        for index in self.replicas.order():
            pool = self.replica_pools[index]
            try:
                return pool, await pool.getconn(timeout=wait), f"replica{index}"
            except (PoolTimeout, psycopg.OperationalError):
                self.replicas.failed(index)
        pool, conn = await self.get_primary()
        return pool, conn, "primary"

    async def close(self) -> None:
        register_pool_source(id(self), None)
        for pool in (self.primary, *self.replica_pools):
            await pool.close(timeout=5.0)


_sync: dict[str, Resource[SyncPools]] = {}
_async: dict[str, Resource[AsyncPools]] = {}
_lock = threading.Lock()


def sync_resource(settings: DatabaseSettings) -> Resource[SyncPools]:
    """The per-process resource holding ``settings``' sync pools."""
    found = _sync.get(settings.name)
    if found is None or found_settings(found) != settings:
        with _lock:

            def pools() -> Iterator[SyncPools]:
                opened = SyncPools(settings)
                try:
                    yield opened
                finally:
                    opened.close()

            pools.__qualname__ = f"database[{settings.name}]"
            found = _sync[settings.name] = resource(pools)
            _settings_of[id(found)] = settings
    return found


def async_resource(settings: DatabaseSettings) -> Resource[AsyncPools]:
    """The per-event-loop resource holding ``settings``' async pools."""
    found = _async.get(settings.name)
    if found is None or found_settings(found) != settings:
        with _lock:

            async def pools() -> AsyncIterator[AsyncPools]:
                import asyncio

                url = await asyncio.to_thread(primary_url, settings)
                await asyncio.to_thread(prepare, settings, url)
                opened = AsyncPools(settings, url)
                await opened.open()
                try:
                    yield opened
                finally:
                    await opened.close()

            pools.__qualname__ = f"database[{settings.name}] (async)"
            found = _async[settings.name] = resource(pools)
            _settings_of[id(found)] = settings
    return found


_settings_of: dict[int, DatabaseSettings] = {}


def found_settings(res: Resource[Any]) -> DatabaseSettings | None:
    return _settings_of.get(id(res))
