"""The Switchyard actions of benchmarks/concurrency.py (registered there as entry points).

``io.*`` wait on I/O (an async sleep, a real HTTP request through a per-process client, a sync
sleep in a thread); ``flow.*`` are under flow control and record when they ran, in Redis.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import AsyncIterator, Iterator

import switchyard
from pydantic import BaseModel
from switchyard import Context, action

DELAY = 0.02  # what each I/O-bound job waits
HTTP_URL = os.environ.get("CONCURRENCY_HTTP_URL", "http://127.0.0.1:6433/")
REDIS_URL = os.environ.get("CONCURRENCY_REDIS_URL", "redis://127.0.0.1:6432/0")


class In(BaseModel):
    n: int
    seconds: float = 3600.0  # flow.held: how long it holds its slot


class Out(BaseModel):
    n: int


@switchyard.resource
async def http() -> AsyncIterator[object]:
    """One aiohttp session per pool process (its connection pool is reused by every job)."""
    import aiohttp

    connector = aiohttp.TCPConnector(limit=0)  # the worker's concurrency bounds the requests
    async with aiohttp.ClientSession(connector=connector) as session:
        yield session


@switchyard.resource
def redis_client() -> Iterator[object]:
    from switchyard_rq import get_connection

    yield get_connection(REDIS_URL)


@action("io.wait")
async def wait(data: In) -> Out:
    await asyncio.sleep(DELAY)
    return Out(n=data.n)


@action("io.http")
async def fetch(data: In, ctx: Context) -> Out:
    session = await ctx.aresource(http)
    async with session.get(HTTP_URL) as response:  # type: ignore[attr-defined]
        await response.read()
    return Out(n=data.n)


@action("io.sleep", io_bound=True)
def sleep(data: In) -> Out:
    time.sleep(DELAY)
    return Out(n=data.n)


@action("flow.free")
async def free(data: In) -> Out:
    return Out(n=data.n)


@action("flow.capped", concurrency=100_000)
async def capped(data: In) -> Out:
    return Out(n=data.n)


@action("flow.fast", rate="1000000/s")
async def fast(data: In) -> Out:
    return Out(n=data.n)


@action("flow.rated", rate="500/s")
async def rated(data: In, ctx: Context) -> Out:
    ctx.resource(redis_client).rpush("bench:starts", repr(time.time()))  # type: ignore[attr-defined]
    return Out(n=data.n)


@action("flow.limited", concurrency=3)
async def limited(data: In, ctx: Context) -> Out:
    conn = ctx.resource(redis_client)
    conn.rpush("bench:spans", f"+ {time.time()!r}")  # type: ignore[attr-defined]
    await asyncio.sleep(DELAY)
    conn.rpush("bench:spans", f"- {time.time()!r}")  # type: ignore[attr-defined]
    return Out(n=data.n)


@action("flow.held", concurrency=3)
async def held(data: In) -> Out:
    await asyncio.sleep(data.seconds)
    return Out(n=data.n)


NAMES = ("io.wait", "io.http", "io.sleep", "flow.free", "flow.capped", "flow.fast",
         "flow.rated", "flow.limited", "flow.held")  # fmt: skip
ATTRS = {"io.wait": "wait", "io.http": "fetch", "io.sleep": "sleep", "flow.free": "free",
         "flow.capped": "capped", "flow.fast": "fast", "flow.rated": "rated",
         "flow.limited": "limited", "flow.held": "held"}  # fmt: skip
