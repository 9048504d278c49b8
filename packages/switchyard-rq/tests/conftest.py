"""Fixtures: the machine's Redis, db 7 only (flushed around each test), and the test actions."""

from __future__ import annotations

import fcntl
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from switchyard import Registry

import switchyard_rq

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE))

from switchyard_rq_testkit import URL, free_port, redis_server_binary  # noqa: E402
from switchyard_rq_testkit import registry as _registry  # noqa: E402


@pytest.fixture
def reg() -> Registry:
    return _registry()


@pytest.fixture(scope="session", autouse=True)
def _db7_to_ourselves() -> Iterator[None]:
    """Two runs of this suite at once (two checkouts, one machine) would flush each other's
    db 7: the second waits for the first."""
    with (Path(tempfile.gettempdir()) / "switchyard-rq-tests-db7.lock").open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


@pytest.fixture
def conn(monkeypatch: pytest.MonkeyPatch) -> Iterator[redis.Redis]:
    """A client on db 7 (never db 0), empty before and after the test."""
    monkeypatch.setenv("SWITCHYARD_REDIS_URL", URL)
    client = switchyard_rq.get_connection(URL)
    client.flushdb()
    yield client
    client.flushdb()


@pytest.fixture
def consumer(conn: redis.Redis, reg: Registry) -> Iterator[switchyard_rq.Consumer]:
    worker = switchyard_rq.Consumer(conn, ["default", "hinted"], registry=reg, name="t-consumer")
    yield worker
    worker.close()


class RedisServer:
    """Our own redis-server on a loopback port, with AOF on, that a test can restart."""

    def __init__(self, port: int, folder: Path) -> None:
        self.port = port
        self.folder = folder
        self.process: subprocess.Popen[bytes] | None = None
        self.url = f"redis://127.0.0.1:{port}/0"

    def start(self) -> None:
        self.process = subprocess.Popen(
            [redis_server_binary(), "--port", str(self.port), "--bind", "127.0.0.1",
             "--dir", str(self.folder), "--appendonly", "yes", "--appendfsync", "always",
             "--save", ""],
            stdout=subprocess.DEVNULL,
        )  # fmt: skip
        client = redis.Redis(port=self.port)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                client.ping()
                return
            except redis.ConnectionError:
                time.sleep(0.02)
        raise RuntimeError(f"redis-server on {self.port} did not start")

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()  # SIGTERM: Redis fsyncs the AOF and exits
            self.process.wait(timeout=10)
            self.process = None


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[RedisServer]:
    server = RedisServer(free_port(6410, 6419), tmp_path)
    server.start()
    yield server
    server.stop()
