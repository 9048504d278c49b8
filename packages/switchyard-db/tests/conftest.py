"""Fixtures: real PostgreSQL servers of the tests' own (initdb/pg_ctl in temp folders, stopped
by pid), a streaming replica, and a real PgBouncer in transaction mode in front of one."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from switchyard.testing import use_cache

from switchyard_db.testing import LocalServer, free_port, replica_of, temporary_server

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE))  # switchyard_db_testkit


@pytest.fixture(autouse=True)
def _own_cache() -> Iterator[None]:
    with use_cache():
        yield


@pytest.fixture(scope="session")
def pg(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalServer]:
    with temporary_server(tmp_path_factory.mktemp("pg")) as server:
        yield server


@pytest.fixture(scope="session")
def replica(pg: LocalServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalServer]:
    with replica_of(pg, tmp_path_factory.mktemp("replica")) as server:
        yield server


class PgBouncer:
    """Debian's pgbouncer in transaction mode in front of ``server``, ``pool`` server
    connections per database and user."""

    def __init__(self, server: LocalServer, pool: int) -> None:
        exe = shutil.which("pgbouncer") or "/usr/sbin/pgbouncer"
        if not os.path.exists(exe):
            # a failure where services are required (the workspace's conftest.py)
            pytest.skip("missing service: pgbouncer (Debian package pgbouncer)")
        self.folder = Path(tempfile.mkdtemp(prefix="sy-bouncer-"))
        os.chmod(self.folder, 0o755)
        self.port = free_port()
        (self.folder / "users.txt").write_text('"postgres" ""\n')
        (self.folder / "pgbouncer.ini").write_text(
            f"[databases]\n* = host=127.0.0.1 port={server.port}\n"
            "[pgbouncer]\n"
            f"listen_addr = 127.0.0.1\nlisten_port = {self.port}\nunix_socket_dir =\n"
            f"auth_type = trust\nauth_file = {self.folder / 'users.txt'}\n"
            f"pool_mode = transaction\ndefault_pool_size = {pool}\nmax_client_conn = 500\n"
            f"logfile = {self.folder / 'pgbouncer.log'}\n"
            f"pidfile = {self.folder / 'pgbouncer.pid'}\n"
            "ignore_startup_parameters = extra_float_digits\n"
        )
        for path in self.folder.iterdir():
            os.chmod(path, 0o644)
        user = {"user": "nobody", "group": "nogroup"} if os.geteuid() == 0 else {}
        if user:  # pgbouncer refuses to run as root; nobody writes its log and pid here
            shutil.chown(self.folder, "nobody", "nogroup")
        self.process = subprocess.Popen(  # type: ignore[call-overload]
            [exe, str(self.folder / "pgbouncer.ini")],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            **user,
        )
        deadline = time.monotonic() + 10
        while True:
            try:
                psycopg.connect(self.url("postgres"), connect_timeout=1).close()
                break
            except psycopg.OperationalError:
                if time.monotonic() > deadline or self.process.poll() is not None:
                    self.stop()
                    pytest.fail(f"pgbouncer did not start: {self.log()}")
                time.sleep(0.05)

    def url(self, dbname: str) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{dbname}"

    def log(self) -> str:
        try:
            return (self.folder / "pgbouncer.log").read_text()[-2000:]
        except OSError:
            return ""

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=10)
        shutil.rmtree(self.folder, ignore_errors=True)


@pytest.fixture
def pgbouncer(pg: LocalServer) -> Iterator[PgBouncer]:
    bouncer = PgBouncer(pg, pool=2)
    yield bouncer
    bouncer.stop()
