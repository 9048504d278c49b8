"""Per-process resources: opened once on first use, shared, closed at shutdown."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import threading
from collections.abc import AsyncIterator, Iterator

import pytest
import switchyard
from pydantic import BaseModel
from switchyard import Context, action, close_resources, run_action
from switchyard._resource import aclose_resources

EVENTS: list[str] = []


@switchyard.resource
def client() -> Iterator[dict[str, int]]:
    EVENTS.append("open")
    yield {"calls": 0}
    EVENTS.append("close")


@switchyard.resource
async def pool() -> AsyncIterator[list[str]]:
    EVENTS.append("aopen")
    yield []
    EVENTS.append("aclose")


class In(BaseModel):
    n: int


class Out(BaseModel):
    calls: int


@action("res.count")
def count(data: In, ctx: Context) -> Out:
    shared = ctx.resource(client)
    shared["calls"] += data.n
    return Out(calls=shared["calls"])


@pytest.fixture(autouse=True)
def _fresh() -> Iterator[None]:
    close_resources()
    EVENTS.clear()
    yield
    close_resources()


def test_a_sync_resource_opens_once_and_runs_its_exit_at_close():
    assert run_action(count, {"n": 1}).calls == 1
    assert run_action(count, {"n": 2}).calls == 3
    assert EVENTS == ["open"]
    close_resources()
    assert EVENTS == ["open", "close"]
    assert run_action(count, {"n": 1}).calls == 1  # opened again after close
    assert EVENTS == ["open", "close", "open"]


def test_threads_share_one_instance():
    ctx = Context(action="res.count", call_id="x", attempt=1, logger=None)  # type: ignore[arg-type]
    seen: list[int] = []
    threads = [
        threading.Thread(target=lambda: seen.append(id(ctx.resource(client)))) for _ in range(8)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(set(seen)) == 1
    assert EVENTS == ["open"]


def test_an_async_resource_is_one_per_loop_and_closes_on_it():
    ctx = Context(action="res.count", call_id="x", attempt=1, logger=None)  # type: ignore[arg-type]

    async def use() -> tuple[int, int]:
        a, b = await asyncio.gather(ctx.aresource(pool), ctx.aresource(pool))
        assert a is b
        first = id(a)
        await aclose_resources()
        return first, id(await ctx.aresource(pool))

    asyncio.run(use())
    assert EVENTS == ["aopen", "aclose", "aopen"]  # one per loop, closed, opened again on use
    close_resources()  # the loop of asyncio.run is closed: nothing left to close, no error


def test_misuse_is_one_clear_error():
    ctx = Context(action="res.count", call_id="x", attempt=1, logger=None)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"is async: use `await ctx.aresource"):
        ctx.resource(pool)
    with pytest.raises(TypeError, match="must be a generator function"):
        switchyard.resource(lambda: 3)  # type: ignore[arg-type,return-value]

    @switchyard.resource
    def empty() -> Iterator[int]:
        return
        yield

    with pytest.raises(RuntimeError, match="returned without yielding"):
        ctx.resource(empty)


def test_a_forked_child_opens_its_own():
    if not hasattr(os, "fork"):
        pytest.skip("needs fork")
    ctx = Context(action="res.count", call_id="x", attempt=1, logger=None)  # type: ignore[arg-type]
    parent = ctx.resource(client)
    parent["calls"] = 41
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.write(write, str(ctx.resource(client)["calls"]).encode())
        os._exit(0)
    os.waitpid(pid, 0)
    assert os.read(read, 16) == b"0"


def test_resources_close_at_process_exit(tmp_path):
    script = tmp_path / "exit.py"
    script.write_text(
        "import switchyard\n"
        "@switchyard.resource\n"
        "def r():\n"
        "    yield 1\n"
        "    print('closed at exit')\n"
        "from switchyard import Context\n"
        "ctx = Context(action='a.b', call_id='x', attempt=1, logger=None)\n"
        "assert ctx.resource(r) == 1\n"
    )
    out = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "closed at exit"
