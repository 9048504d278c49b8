"""Fixtures: the machine's Redis, db 7 only (flushed around each test), and the test actions."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from switchyard import Registry

import switchyard_rq

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE))

from switchyard_rq_testkit import URL, RedisServer, machine_lock  # noqa: E402
from switchyard_rq_testkit import registry as _registry  # noqa: E402


@pytest.fixture
def reg() -> Registry:
    return _registry()


@pytest.fixture(scope="module")
def _db7_lock() -> Iterator[None]:
    """Held a module at a time, never for the whole session: a session that runs other suites
    too (CI runs every package's tests in one) would hold it while it waits for theirs, and
    another session holding theirs could wait for this one. A run on a server of its own
    (SWITCHYARD_RQ_TEST_URL) shares nothing, and waits for nobody."""
    shared = URL == "redis://127.0.0.1:6379/7"
    name = "switchyard-rq-tests-db7" if shared else "switchyard-rq-tests-" + URL.rsplit(":", 1)[1]
    with machine_lock(name.replace("/", "-")):
        yield


#: modules whose tests use servers of their own only (never db 7)
_OWN_SERVERS = {"test_cluster"}


@pytest.fixture(autouse=True)
def _db7_to_ourselves(request: pytest.FixtureRequest) -> None:
    """Two runs of this suite at once (two checkouts, one machine) would flush each other's
    db 7: the second waits for the first, a module at a time."""
    if request.module.__name__ not in _OWN_SERVERS:
        request.getfixturevalue("_db7_lock")


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


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path, ports=(6410, 6419))
    server.start()
    yield server
    server.stop()
