"""The database layer under load: pooled vs connect-per-job, behind PgBouncer, replicas, and
the result cache (issue 15).

    uv run --all-packages --group bench python benchmarks/database.py [--jobs N] [--reps R]

Everything runs on this machine, started here and stopped at the end: a PostgreSQL server and
two streaming replicas (switchyard_db.testing: initdb/pg_ctl in temp folders), Debian's
PgBouncer in transaction mode, a throwaway redis-server, and real ``switchyard-worker`` pools
serving a small plugin written to a temp folder. Each variant runs ``--reps`` times, interleaved:

  pooled      2 processes x 64 concurrent jobs, one query per job, ``pool-size`` 8 per process
  connect     the same, but each job opens (and closes) its own connection: the reviewed design
  trust       connect per job without a password (``trust``): the cheapest connection there is

The server asks TCP clients for a password (scram-sha-256, PostgreSQL's default), as a server
in production does; the pool authenticates once per connection, connect-per-job once per job.
  bouncer     8 processes x 64 concurrent jobs through PgBouncer (transaction mode, 16 server
              connections), ``pool-size`` 8 per process, no server-side prepared statements
  replicas    2 processes x 64 concurrent reads with ``ctx.db().read()`` over 2 replicas

For each: jobs/s (from the first to the last finished job) and the most server connections seen
(``pg_stat_activity``, sampled every 20 ms). For replicas: the share of read transactions each
replica served (``pg_stat_database`` on each). Then the cache: one in-process call of an action
whose handler runs an aggregate query, uncached vs a hit, on the same Redis.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import psycopg  # noqa: TID251 - a database benchmark reads the server's own numbers

BIN = Path(sys.executable).parent
REDIS_PORT = 6431
REDIS_URL = f"redis://127.0.0.1:{REDIS_PORT}/0"

PLUGIN = """
from __future__ import annotations

import os

import psycopg
from pydantic import BaseModel
from switchyard import Context, action


class N(BaseModel):
    n: int


class Out(BaseModel):
    value: int


@action("dbbench.pooled")
async def pooled(data: N, ctx: Context) -> Out:
    async with ctx.db().aconnection() as conn:
        cur = await conn.execute("SELECT %s::int + 1", (data.n,))
        row = await cur.fetchone()
    return Out(value=row[0])


@action("dbbench.connect")
async def connect(data: N) -> Out:
    conn = await psycopg.AsyncConnection.connect(os.environ["DBBENCH_DIRECT_URL"])
    try:
        cur = await conn.execute("SELECT %s::int + 1", (data.n,))
        row = await cur.fetchone()
    finally:
        await conn.close()
    return Out(value=row[0])


@action("dbbench.read")
async def read(data: N, ctx: Context) -> Out:
    async with ctx.db().read().aconnection() as conn:
        cur = await conn.execute("SELECT %s::int + 1", (data.n,))
        row = await cur.fetchone()
    return Out(value=row[0])


@action("dbbench.report", cache="5m")
def report(data: N, ctx: Context) -> Out:
    with ctx.db().connection() as conn:
        row = conn.execute(
            "SELECT count(*) + sum(x %% %s) FROM generate_series(1, 50000) AS x", (data.n + 2,)
        ).fetchone()
    return Out(value=int(row[0]))
"""
ENTRY_POINTS = """[switchyard.actions]
dbbench.pooled = dbbench_plugin:pooled
dbbench.connect = dbbench_plugin:connect
dbbench.read = dbbench_plugin:read
dbbench.report = dbbench_plugin:report
"""


def write_plugin(folder: Path) -> Path:
    (folder / "dbbench_plugin.py").write_text(PLUGIN)
    info = folder / "dbbench_plugin-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: dbbench-plugin\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(ENTRY_POINTS)
    return folder


@contextmanager
def redis_server(folder: Path) -> Iterator[None]:
    exe = shutil.which("redis-server") or sys.exit("error: redis-server is not on PATH")
    proc = subprocess.Popen(
        [exe, "--port", str(REDIS_PORT), "--bind", "127.0.0.1", "--save", "", "--dir", str(folder)],
        stdout=subprocess.DEVNULL,
    )
    time.sleep(0.3)
    try:
        yield
    finally:
        proc.terminate()
        proc.wait(10)


PASSWORD = "bench-secret"


@contextmanager
def pgbouncer(server_port: int, pool: int) -> Iterator[int]:
    exe = shutil.which("pgbouncer") or "/usr/sbin/pgbouncer"
    if not os.path.exists(exe):
        sys.exit("error: pgbouncer is not installed (apt-get install pgbouncer)")
    from switchyard_db.testing import free_port

    folder = Path(tempfile.mkdtemp(prefix="dbbench-bouncer-"))
    port = free_port()
    (folder / "users.txt").write_text('"postgres" ""\n')
    (folder / "pgbouncer.ini").write_text(
        f"[databases]\n* = host=127.0.0.1 port={server_port} user=postgres password={PASSWORD}\n"
        "[pgbouncer]\n"
        f"listen_addr = 127.0.0.1\nlisten_port = {port}\nunix_socket_dir =\nauth_type = trust\n"
        f"auth_file = {folder / 'users.txt'}\npool_mode = transaction\n"
        f"default_pool_size = {pool}\nmax_client_conn = 1000\n"
        "ignore_startup_parameters = extra_float_digits\n"
    )
    os.chmod(folder, 0o755)
    kwargs: dict = {}
    if os.geteuid() == 0:
        shutil.chown(folder, "nobody", "nogroup")
        kwargs = {"user": "nobody", "group": "nogroup"}
    proc = subprocess.Popen(
        [exe, str(folder / "pgbouncer.ini")], stderr=subprocess.DEVNULL, **kwargs
    )
    time.sleep(0.5)
    try:
        yield port
    finally:
        proc.terminate()
        proc.wait(10)
        shutil.rmtree(folder, ignore_errors=True)


class Peak:
    """The most client connections to the server, sampled every 5 ms."""

    def __init__(self, url: str, dbname: str) -> None:
        self.url, self.dbname, self.most = url, dbname, 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)

    def _watch(self) -> None:
        with psycopg.connect(self.url, autocommit=True) as conn:
            while not self._stop.is_set():
                row = conn.execute(
                    "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend'"
                    " AND datname = %s AND pid <> pg_backend_pid()",
                    (self.dbname,),
                ).fetchone()
                self.most = max(self.most, int(row[0]))
                time.sleep(0.02)

    def __enter__(self) -> Peak:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def run_workers(
    plugin: Path,
    action: str,
    jobs: int,
    processes: int,
    env: dict[str, str],
    watch: str,
    dbname: str = "bench",
) -> tuple[float, int]:
    """(jobs/s, most server connections) of ``jobs`` jobs of ``action`` on a fresh pool."""
    import redis  # noqa: TID251 - the benchmark reads the queue's state directly
    import switchyard_rq

    conn = redis.Redis.from_url(REDIS_URL)
    conn.flushdb()
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("SWITCHYARD_")}
    full_env.update(env)
    full_env["SWITCHYARD_REDIS_URL"] = REDIS_URL
    full_env["PYTHONPATH"] = str(plugin)
    args = ["--min", str(processes), "--max", str(processes), "--concurrency", "64"]
    proc = subprocess.Popen(
        [str(BIN / "switchyard-worker"), *args, "--no-metrics", "--job-log", "off"],
        env=full_env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        cwd=plugin,
    )
    try:
        deadline = time.monotonic() + 60
        while int(conn.scard("rq:workers")) < processes:
            if time.monotonic() > deadline:
                sys.exit("error: the workers did not start")
            time.sleep(0.05)
        from switchyard import Registry

        sys.path.insert(0, str(plugin))
        registry = Registry.from_entry_points()
        warm = [(action, {"n": i}) for i in range(processes * 64)]
        switchyard_rq.schedule_many(warm, registry=registry, connection=conn)
        while int(conn.zcard("rq:finished:default")) < len(warm):
            if int(conn.zcard("rq:failed:default")):
                sys.exit(f"error: {action} jobs fail: {failure(conn)}")
            time.sleep(0.01)
        with Peak(watch, dbname) as peak:
            began = time.perf_counter()
            for start in range(0, jobs, 1000):
                batch = [(action, {"n": i}) for i in range(start, min(start + 1000, jobs))]
                switchyard_rq.schedule_many(batch, registry=registry, connection=conn)
            while int(conn.zcard("rq:finished:default")) < len(warm) + jobs:
                time.sleep(0.005)
            seconds = time.perf_counter() - began
        failed = int(conn.zcard("rq:failed:default"))
        if failed:
            sys.exit(f"error: {failed} {action} jobs failed")
        return jobs / seconds, peak.most
    finally:
        proc.terminate()
        proc.wait(30)


def failure(conn) -> str:
    (job,) = conn.zrange("rq:failed:default", 0, 0)
    return (conn.hget(b"rq:job:" + job, "exc_info") or b"?").decode()[:300]


def replica_reads(replicas: list[str]) -> list[int]:
    counts = []
    for url in replicas:
        with psycopg.connect(url, autocommit=True) as conn:
            row = conn.execute(
                "SELECT xact_commit + xact_rollback FROM pg_stat_database WHERE datname = 'bench'"
            ).fetchone()
            counts.append(int(row[0]))
    return counts


def cache_figures(plugin: Path, env: dict[str, str], reps: int) -> tuple[list[float], list[float]]:
    """Seconds of one uncached in-process call of dbbench.report, and of one cache hit."""
    os.environ.update(env)
    os.environ["SWITCHYARD_REDIS_URL"] = REDIS_URL
    sys.path.insert(0, str(plugin))
    from switchyard import Registry, call_action
    from switchyard.testing import use_registry

    misses, hits = [], []
    with use_registry(Registry.from_entry_points()):
        call_action("dbbench.report", {"n": -1})  # pools open, plugin imported
        for rep in range(reps * 20):
            began = time.perf_counter()
            call_action("dbbench.report", {"n": 10_000 + rep})  # a new input: the handler runs
            misses.append(time.perf_counter() - began)
            began = time.perf_counter()
            call_action("dbbench.report", {"n": 10_000 + rep})  # the same input: a hit
            hits.append(time.perf_counter() - began)
    return misses, hits


def spread(values: list[float], unit: str = "") -> str:
    return f"{statistics.median(values):,.0f}{unit} ({min(values):,.0f}-{max(values):,.0f})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=4000)
    parser.add_argument("--connect-jobs", type=int, default=1500, help="per connect-per-job run")
    parser.add_argument("--reps", type=int, default=3)
    args = parser.parse_args()
    from switchyard_db.testing import replica_of, temporary_server

    with ExitStack() as stack:
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="dbbench-")))
        plugin = write_plugin(Path(tempfile.mkdtemp(prefix="dbbench-plugin-")))
        stack.enter_context(redis_server(tmp))
        primary = stack.enter_context(
            temporary_server(
                tmp / "primary", password=PASSWORD, settings=("-c max_connections=400",)
            )
        )
        with psycopg.connect(primary.url(), autocommit=True) as conn:
            conn.execute("CREATE DATABASE bench")
            conn.execute("CREATE DATABASE bench_b")  # PgBouncer's own: it keeps its connections
        replicas = [
            stack.enter_context(replica_of(primary, tmp / f"r{i}", password=PASSWORD))
            for i in range(2)
        ]
        bouncer = stack.enter_context(pgbouncer(primary.port, 16))
        direct = primary.tcp_url("bench", password=PASSWORD)
        trust = primary.url("bench")  # the Unix socket trusts its owner: no password
        base = {"SWITCHYARD_DATABASE_URL": direct, "SWITCHYARD_DATABASE_MAIN_POOL_SIZE": "8"}
        variants = {
            "pooled": ("dbbench.pooled", 2, base),
            "connect": ("dbbench.connect", 2, {**base, "DBBENCH_DIRECT_URL": direct}),
            "trust": ("dbbench.connect", 2, {**base, "DBBENCH_DIRECT_URL": trust}),
            "bouncer": (
                "dbbench.pooled",
                8,
                {
                    "SWITCHYARD_DATABASE_URL": f"postgresql://postgres@127.0.0.1:{bouncer}/bench_b",
                    "SWITCHYARD_DATABASE_MAIN_POOL_SIZE": "8",
                    "SWITCHYARD_DATABASE_MAIN_PGBOUNCER": "true",
                },
            ),
        }
        results: dict[str, list[tuple[float, int]]] = {name: [] for name in variants}
        loads = [Path("/proc/loadavg").read_text().split()[0]]
        for _ in range(args.reps):
            for name, (action, processes, env) in variants.items():
                dbname = "bench_b" if name == "bouncer" else "bench"
                jobs = args.connect_jobs if action == "dbbench.connect" else args.jobs
                results[name].append(
                    run_workers(plugin, action, jobs, processes, env, primary.url(), dbname)
                )
        replica_urls = [r.url("bench") for r in replicas]
        shares: list[list[float]] = []
        read_env = {**base, "SWITCHYARD_DATABASE_MAIN_REPLICAS": ",".join(
            r.tcp_url("bench", password=PASSWORD) for r in replicas
        )}  # fmt: skip
        read_rate: list[float] = []
        for _ in range(args.reps):
            before = replica_reads(replica_urls)
            rate, _ = run_workers(plugin, "dbbench.read", args.jobs, 2, read_env, primary.url())
            after = replica_reads(replica_urls)
            served = [a - b for a, b in zip(after, before, strict=True)]
            shares.append([s / sum(served) for s in served])
            read_rate.append(rate)
        misses, hits = cache_figures(plugin, base, args.reps)
        loads.append(Path("/proc/loadavg").read_text().split()[0])

    print(f"\n{args.jobs} one-query jobs per run ({args.connect_jobs} connecting per job), "
          f"{args.reps} runs each, interleaved; "
          f"load average {loads[0]} before, {loads[1]} after\n")  # fmt: skip
    print(
        "| variant | processes x concurrency | jobs/s median (range) | server connections, most |"
    )
    print("| --- | --- | --- | --- |")
    labels = {
        "pooled": "pooled (pool-size 8 per process)",
        "connect": "connect per job, scram password (the reviewed design)",
        "trust": "connect per job, no password (trust, Unix socket)",
        "bouncer": "pooled, behind PgBouncer (16 server connections)",
    }
    for name, runs in results.items():
        procs = 8 if name == "bouncer" else 2
        rates = [r for r, _ in runs]
        most = max(c for _, c in runs)
        print(f"| {labels[name]} | {procs} x 64 | {spread(rates)} | {most} |")
    pooled = statistics.median(r for r, _ in results["pooled"])
    connect = statistics.median(r for r, _ in results["connect"])
    trust_rate = statistics.median(r for r, _ in results["trust"])
    print(
        f"\npooled / connect-per-job: {pooled / connect:.1f}x with a password, "
        f"{pooled / trust_rate:.1f}x without (medians)"
    )
    flat = [s for run in shares for s in run]
    print(
        f"replica reads: {spread(read_rate)} jobs/s; shares per run "
        + "; ".join("/".join(f"{s:.1%}" for s in run) for run in shares)
        + f" (most apart: {max(abs(a - b) for a, b in shares):.1%} of reads; {len(flat)} shares)"
    )
    miss, hit = statistics.median(misses), statistics.median(hits)
    print(
        f"cache: handler (aggregate query) {miss * 1000:.2f} ms median, hit {hit * 1000:.3f} ms "
        f"median, {miss / hit:.0f}x ({len(hits)} pairs)"
    )


if __name__ == "__main__":
    main()
