"""Redis memory per job: queued, and finished with its result kept (issue 12).

    uv run --all-packages --group bench python benchmarks/memory.py [--jobs 10000] [--reps 3]

For each system, on one redis-server of its own (the machine's, port 6434, no persistence),
each repetition: empty the server, enqueue ``--jobs`` trivial jobs (``n + 1``) with the system's
own producer API, measure ``used_memory`` (after the producer's connection closed and Redis freed
its buffers); run the system's workers until every job finished, stop them, measure again. The
bytes per job are the differences over the empty server, divided by the jobs. Every system keeps
its results as it does by default where it keeps them (RQ 500 s, arq 1 h, Switchyard 1 h), and
Dramatiq with its Results middleware on (10 minutes; it keeps none without it). Each system is
measured under every ``--listpack-value`` setting of the server (hash-max-listpack-value: hashes
with a longer field are stored as hash tables, about twice the bytes). Also printed:
``MEMORY USAGE`` of every key, per job, by key family (what the bytes are).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import redis  # noqa: TID251 - a benchmark of Redis queues talks to Redis directly

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from concurrency import arq_python  # noqa: E402
from throughput import RedisServer, stop, write_dist_info  # noqa: E402

PORT = 6434
URL = f"redis://127.0.0.1:{PORT}/0"
BIN = Path(sys.executable).parent


def settle(conn: redis.Redis) -> int:
    """``used_memory`` once Redis has freed what clients left behind."""
    time.sleep(1.2)  # client buffers shrink in Redis's cron
    conn.execute_command("MEMORY", "PURGE")
    return int(conn.info("memory")["used_memory"])


def breakdown(conn: redis.Redis, n: int) -> str:
    """``MEMORY USAGE`` of every key, per job, by key family (``rq:job``, ``dramatiq:default``)."""
    families: dict[str, int] = {}
    keys = list(conn.scan_iter(count=1000))
    with conn.pipeline(transaction=False) as pipe:
        for key in keys:
            pipe.memory_usage(key, samples=0)
        sizes = pipe.execute()
    for key, size in zip(keys, sizes, strict=True):
        parts = key.decode(errors="replace").split(":")
        family = ":".join(parts[:2]) if len(parts) > 2 else parts[0]
        families[family] = families.get(family, 0) + int(size or 0)
    top = sorted(families.items(), key=lambda kv: -kv[1])[:4]
    return ", ".join(f"{name} {size / n:,.0f}" for name, size in top)


def switchyard_fill(conn: redis.Redis, n: int) -> str:
    import switchyard
    import switchyard_rq

    registry = switchyard.Registry.from_entry_points()
    calls = [("flow.free", {"n": i}) for i in range(n)]
    handles = []
    for start in range(0, n, 1000):
        handles += switchyard_rq.schedule_many(calls[start : start + 1000], registry=registry)
    switchyard_rq.get_connection().connection_pool.disconnect()
    return handles[0].id


def switchyard_start(env: dict[str, str]) -> list[subprocess.Popen[bytes]]:
    cmd = [str(BIN / "switchyard-worker"), "--min", "2", "--max", "2", "--queues", "default",
           "--job-log", "off", "--no-metrics"]  # fmt: skip
    return [subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)]


def rq_fill(conn: redis.Redis, n: int) -> str:
    import rq  # noqa: TID251 - the baseline is plain RQ
    import throughput_rq_jobs as jobs

    queue = rq.Queue("simple", connection=conn)
    first = None
    with conn.pipeline() as pipe:
        for i in range(n):
            job = queue.enqueue_many([rq.Queue.prepare_data(jobs.job_00, (i,))], pipeline=pipe)[0]
            first = first or job.id
        pipe.execute()
    assert first is not None
    return first


def rq_start(env: dict[str, str]) -> list[subprocess.Popen[bytes]]:
    cmd = [str(BIN / "rq"), "worker", "-q", "-u", URL, "-w", "rq.SimpleWorker", "simple"]
    return [subprocess.Popen(cmd, env=env, cwd=HERE, stderr=subprocess.DEVNULL) for _ in range(2)]


def dramatiq_fill(conn: redis.Redis, n: int) -> str:
    import concurrency_dramatiq as jobs

    first = jobs.echo.send(0).message_id
    for i in range(1, n):
        jobs.echo.send(i)
    jobs.broker.client.connection_pool.disconnect()
    return str(first)


def dramatiq_start(env: dict[str, str]) -> list[subprocess.Popen[bytes]]:
    cmd = [str(BIN / "dramatiq"), "concurrency_dramatiq", "-p", "2", "-t", "4"]
    return [subprocess.Popen(cmd, env=env, cwd=HERE, stderr=subprocess.DEVNULL)]


def arq_fill(conn: redis.Redis, n: int) -> str:
    subprocess.run([ARQ[0], str(HERE / "concurrency_arq.py"), "fill-only", str(n), "echo"],
                   check=True, env=os.environ)  # fmt: skip
    return ""


def arq_start(env: dict[str, str]) -> list[subprocess.Popen[bytes]]:
    return [
        subprocess.Popen([ARQ[0], "-m", "arq", "concurrency_arq.WorkerSettings"], env=env,
                         cwd=HERE, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for _ in range(2)
    ]  # fmt: skip


ARQ: list[str] = []

SYSTEMS: dict[str, tuple[Callable[..., str], Callable[..., list[subprocess.Popen[bytes]]],
                         Callable[[redis.Redis], int]]] = {
    "switchyard": (switchyard_fill, switchyard_start,
                   lambda c: int(c.zcard("rq:finished:default"))),
    "RQ": (rq_fill, rq_start, lambda c: int(c.zcard("rq:finished:simple"))),
    "Dramatiq (results on)": (dramatiq_fill, dramatiq_start,
                              lambda c: -int(c.hlen("dramatiq:default.msgs"))),
    "arq": (arq_fill, arq_start, lambda c: -int(c.zcard("arq:queue"))),
}  # fmt: skip


def measure(name: str, conn: redis.Redis, n: int, env: dict[str, str]) -> tuple[float, float, str]:
    fill, start, done = SYSTEMS[name]
    conn.flushall()
    empty = settle(conn)
    fill(conn, n)
    queued = settle(conn)
    sample = f"keys per job queued: {breakdown(conn, n)}"
    procs = start(env)
    goal = n if name in ("switchyard", "RQ") else 0
    deadline = time.monotonic() + 300
    try:
        while done(conn) < goal:
            if time.monotonic() > deadline:
                raise RuntimeError(f"{name}: the workers did not finish in 300 s")
            time.sleep(0.1)
        time.sleep(0.5)  # the last outcomes stored
    finally:
        stop(procs)
    finished = settle(conn)
    sample += f"; finished: {breakdown(conn, n)}"
    return (queued - empty) / n, (finished - empty) / n, sample


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=10_000)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument(
        "--listpack-value", default="64,1024", metavar="BYTES[,BYTES]",
        help="the server's hash-max-listpack-value settings to measure under (default: Redis's "
        "own 64, and the 1024 that the embedded server uses)",
    )  # fmt: skip
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="sy-memory-"))
    import concurrency_actions

    write_dist_info(tmp, "concurrency_actions", concurrency_actions.ATTRS)
    os.chdir(tmp)
    sys.path[:0] = [str(tmp), str(HERE)]
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(
            [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
            + [str(tmp), str(HERE)]
        ),
        "SWITCHYARD_REDIS_URL": URL,
        "CONCURRENCY_REDIS_URL": URL,
        "THROUGHPUT_REDIS_URL": URL,
    }
    os.environ.update(SWITCHYARD_REDIS_URL=URL, CONCURRENCY_REDIS_URL=URL, THROUGHPUT_REDIS_URL=URL)
    server = RedisServer(tmp, PORT)
    try:
        settings = [int(v) for v in args.listpack_value.split(",")]
    except ValueError:
        sys.exit(f"error: --listpack-value: {args.listpack_value!r} is not a list of byte counts")
    print(f"redis-server {server.conn.info('server')['redis_version']}")
    ARQ.append(arq_python())
    print(f"load average at start: {Path('/proc/loadavg').read_text().split()[:3]}")
    results: dict[tuple[int, str], list[tuple[float, float, str]]] = {}
    try:
        for rep in range(args.reps):
            for setting in settings:
                server.conn.config_set("hash-max-listpack-value", setting)
                for name in SYSTEMS:
                    queued, finished, sample = measure(name, server.conn, args.jobs, env)
                    results.setdefault((setting, name), []).append((queued, finished, sample))
                    line = f"queued {queued:,.0f} B/job, finished {finished:,.0f} B/job ({sample})"
                    print(f"rep {rep + 1}, listpack {setting}: {name}: {line}", flush=True)
    finally:
        server.close()
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"\n{args.jobs:,} trivial jobs, bytes of Redis memory per job, median (runs):\n")
    print("| hash-max-listpack-value | system | queued | finished, result kept |")
    print("| ---: | --- | ---: | ---: |")
    for (setting, name), runs in results.items():
        q = statistics.median(r[0] for r in runs)
        f = statistics.median(r[1] for r in runs)
        print(f"| {setting} | {name} | {q:,.0f} ({', '.join(f'{r[0]:,.0f}' for r in runs)}) | "
              f"{f:,.0f} ({', '.join(f'{r[1]:,.0f}' for r in runs)}) |")  # fmt: skip
    print(f"\nload average at the end: {Path('/proc/loadavg').read_text().split()[:3]}")


if __name__ == "__main__":
    main()
