"""The arq baseline of benchmarks/concurrency.py: ``arq concurrency_arq.WorkerSettings``.

``ARQ_MAX_JOBS`` sets ``max_jobs`` (arq's default is 10); the Redis URL comes from
``CONCURRENCY_REDIS_URL``, the HTTP server's from ``CONCURRENCY_HTTP_URL``.
"""

from __future__ import annotations

import asyncio
import os
from typing import Any

from arq.connections import RedisSettings

DELAY = 0.02
HTTP_URL = os.environ.get("CONCURRENCY_HTTP_URL", "http://127.0.0.1:6433/")
REDIS_URL = os.environ.get("CONCURRENCY_REDIS_URL", "redis://127.0.0.1:6432/0")


async def wait(ctx: dict[str, Any], n: int) -> int:
    await asyncio.sleep(DELAY)
    return n


async def echo(ctx: dict[str, Any], n: int) -> int:
    return n + 1


async def fetch(ctx: dict[str, Any], n: int) -> int:
    async with ctx["http"].get(HTTP_URL) as response:
        await response.read()
    return n


async def startup(ctx: dict[str, Any]) -> None:
    import aiohttp

    ctx["http"] = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0))


async def shutdown(ctx: dict[str, Any]) -> None:
    await ctx["http"].close()


class WorkerSettings:
    functions = [wait, fetch, echo]  # noqa: RUF012 - arq reads class attributes
    on_startup = startup
    on_shutdown = shutdown
    redis_settings = RedisSettings.from_dsn(REDIS_URL)
    max_jobs = int(os.environ.get("ARQ_MAX_JOBS", "10"))
    keep_result = 3600
    poll_delay = 0.05


# -- the producer's side, run in this environment by benchmarks/concurrency.py ------------------


async def _fill(n: int, function: str, out: str) -> None:
    from arq import create_pool

    pool = await create_pool(RedisSettings.from_dsn(REDIS_URL))
    ids = []
    for i in range(n):
        job = await pool.enqueue_job(function, i)
        assert job is not None
        ids.append(job.job_id)
    await pool.aclose()
    with open(out, "w") as f:
        f.write("\n".join(ids))


async def _check(ids_file: str, n: int) -> None:
    from arq import create_pool
    from arq.jobs import Job

    with open(ids_file) as f:
        ids = f.read().split()
    pool = await create_pool(RedisSettings.from_dsn(REDIS_URL))
    got = [await Job(i, pool).result(timeout=30) for i in ids]
    await pool.aclose()
    if got != list(range(n)):
        raise SystemExit("arq: wrong results")


if __name__ == "__main__":
    import sys

    if sys.argv[1] == "fill-only":  # no id file: the memory benchmark counts Redis alone
        asyncio.run(_fill(int(sys.argv[2]), sys.argv[3], os.devnull))
    elif sys.argv[1] == "fill":
        asyncio.run(_fill(int(sys.argv[2]), sys.argv[3], sys.argv[4]))
    else:
        asyncio.run(_check(sys.argv[2], int(sys.argv[3])))
