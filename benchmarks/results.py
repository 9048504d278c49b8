"""Results end to end: enqueue real jobs, run them, fetch and check every result (issue 12 item 12).

    uv run --all-packages --group bench python benchmarks/results.py [--jobs 20000] [--reps 3]

On one redis-server of its own (the machine's, on a free port in 7300-7399, no persistence),
each variant below runs ``--reps`` times, interleaved (the order rotates each repetition). Each
run empties the server, starts the workers and warms them (a few jobs per process, their results
fetched, so start-up and first imports are not counted), then times:

  enqueue  from the first job enqueued to the last (the workers already run, as in production)
  drain    waiting until every job has run (after-the-drain variants only)
  fetch    fetching and checking every result (``n + 1`` for the job of ``n``), in order
  total    end to end: from the first enqueue to the last result checked

The workers are those of benchmarks/throughput.py, on the same 45 trivial actions:
``switchyard-worker --min 2 --max 2`` (defaults: results kept, job log, metrics), and Dramatiq
2 processes x 4 threads with the Results middleware and a Redis result backend on the same
server (throughput_dramatiq_jobs.py with THROUGHPUT_DRAMATIQ_RESULTS=1). Each producer uses its
own ordinary API: ``schedule_many`` in chunks of 1,000 (Switchyard's batch form), ``actor.send``
(Dramatiq has no batch send). The variants:

  sy.result    Switchyard, after the drain: ``JobHandle.result()`` one by one
  sy.gather    Switchyard, after the drain: ``switchyard_rq.gather(handles)``
  sy.agather   Switchyard, after the drain: ``asyncio.run(switchyard_rq.agather(handles))``
  dq.get       Dramatiq, after the drain: ``message.get_result(block=False)`` one by one
  sy.result~   Switchyard, while the workers run: ``JobHandle.result()`` one by one (it waits)
  sy.gather~   Switchyard, while the workers run: ``gather(handles)`` (it waits)
  dq.get~      Dramatiq, while the workers run: ``get_result(block=True)`` one by one
  sy.pair      (only with --only) Switchyard, after the drain, one by one as ``result()`` read a
               finished job before 88931e7 (HMGET + XREVRANGE pipelined): that change's A/B

The fetch phase of the ``~`` variants starts right after the last enqueue, so it includes
waiting for the workers; their per-result figure is not a cost. Also printed: the producer's
CPU per result in the fetch phase, Redis commands per result in it (``INFO commandstats``; the
idle workers' own few commands included), the workers' CPU per job over the whole run (from
/proc), and the load average before and after.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import redis  # noqa: TID251 - a benchmark of Redis queues talks to Redis directly

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from throughput import (  # noqa: E402
    ACTIONS,
    RedisServer,
    commandstats,
    count,
    stop,
    tree_cpu,
    write_dist_info,
)

BIN = Path(sys.executable).parent
PORTS = range(7300, 7400)
WARM = 20  # warm-up jobs before each timed run (both processes import what they run)
TIMEOUT = 600.0


def free_port() -> int:
    """The first port of 7300-7399 nobody listens on (so RedisServer cannot ping someone else's)."""
    for port in PORTS:
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    sys.exit("error: no free port in 7300-7399 for the benchmark's redis-server")


def loadavg() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


@dataclass
class Run:
    variant: str
    jobs: int
    enqueue: float
    drain: float
    fetch: float
    total: float
    client_cpu_us: float  # the producer's CPU per result in the fetch phase
    cmds: float  # Redis commands per result in the fetch phase
    worker_cpu_us: float  # the workers' CPU per job, first enqueue to last result


@dataclass
class Variant:
    name: str
    label: str
    system: str  # "sy" or "dq"
    wait_drain: bool
    fetch: Callable[[list[Any]], list[int]] = field(repr=False)


# ---------------------------------------------------------------------------- Switchyard


def sy_start(env: dict[str, str]) -> list[subprocess.Popen[bytes]]:
    cmd = [str(BIN / "switchyard-worker"), "--min", "2", "--max", "2", "--queues", "default"]
    return [subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)]


def sy_enqueue(n: int, registry: Any) -> list[Any]:
    import switchyard_rq

    calls = [(f"bench.job_{i % ACTIONS:02d}", {"n": i}) for i in range(n)]
    handles: list[Any] = []
    for start in range(0, n, 1000):
        handles += switchyard_rq.schedule_many(calls[start : start + 1000], registry=registry)
    return handles


def sy_left(conn: redis.Redis) -> int:
    """Jobs not yet ended: waiting in the queue, or taken (the started registry). A worker takes
    jobs and stores outcomes atomically, so 0 means every outcome is stored. (Not the finished
    registry: it keeps the latest 10,000 jobs.)"""
    with conn.pipeline(transaction=False) as pipe:
        pipe.llen("rq:queue:default")
        pipe.zcard("rq:wip:default")
        return sum(int(n) for n in pipe.execute())


def sy_one_by_one(handles: list[Any]) -> list[int]:
    return [h.result(timeout=TIMEOUT).n for h in handles]


def sy_pair(handles: list[Any]) -> list[int]:
    """One by one as ``result()`` read a finished job before 88931e7: HMGET and XREVRANGE (RQ's
    result stream) in a pipeline (the A/B of that change; not run by default)."""
    from switchyard_rq._producer.handle import read_outcomes

    return [h._outcome(read_outcomes(h.connection, [h.id])[0]).n for h in handles]


def sy_gather(handles: list[Any]) -> list[int]:
    import switchyard_rq

    return [out.n for out in switchyard_rq.gather(handles, timeout=TIMEOUT)]


def sy_agather(handles: list[Any]) -> list[int]:
    import switchyard_rq

    outs = asyncio.run(switchyard_rq.agather(handles, timeout=TIMEOUT))
    return [out.n for out in outs]


# ---------------------------------------------------------------------------- Dramatiq


def dq_start(env: dict[str, str]) -> list[subprocess.Popen[bytes]]:
    cmd = [str(BIN / "dramatiq"), "throughput_dramatiq_jobs", "-p", "2", "-t", "4"]
    return [subprocess.Popen(cmd, env=env, cwd=HERE, stderr=subprocess.DEVNULL)]


def dq_enqueue(n: int, registry: Any) -> list[Any]:
    import throughput_dramatiq_jobs as jobs

    return [jobs.ACTORS[i % ACTIONS].send(i) for i in range(n)]


def dq_left(conn: redis.Redis) -> int:
    """Messages not yet acked (a worker acks after the Results middleware stored the result)."""
    return int(conn.hlen("dramatiq:default.msgs"))


def dq_nonblocking(messages: list[Any]) -> list[int]:
    return [m.get_result(block=False) for m in messages]


def dq_blocking(messages: list[Any]) -> list[int]:
    return [m.get_result(block=True, timeout=int(TIMEOUT * 1000)) for m in messages]


VARIANTS = [
    Variant("sy.result", "Switchyard, after the drain, `JobHandle.result()` one by one", "sy",
            True, sy_one_by_one),
    Variant("sy.gather", "Switchyard, after the drain, `gather(handles)`", "sy", True, sy_gather),
    Variant("sy.agather", "Switchyard, after the drain, `agather(handles)`", "sy", True,
            sy_agather),
    Variant("dq.get", "Dramatiq, after the drain, `get_result(block=False)` one by one", "dq",
            True, dq_nonblocking),
    Variant("sy.result~", "Switchyard, workers running, `JobHandle.result()` one by one", "sy",
            False, sy_one_by_one),
    Variant("sy.gather~", "Switchyard, workers running, `gather(handles)`", "sy", False,
            sy_gather),
    Variant("dq.get~", "Dramatiq, workers running, `get_result(block=True)` one by one", "dq",
            False, dq_blocking),
]  # fmt: skip
#: selectable with --only, not run by default
EXTRA = [
    Variant("sy.pair", "Switchyard, after the drain, one by one as `result()` read before "
            "88931e7 (HMGET + XREVRANGE pipelined)", "sy", True, sy_pair),
]  # fmt: skip


# ---------------------------------------------------------------------------- one run


def measure(variant: Variant, conn: redis.Redis, n: int, env: dict[str, str], registry: Any) -> Run:
    sy = variant.system == "sy"
    start, enqueue, left = (
        (sy_start, sy_enqueue, sy_left) if sy else (dq_start, dq_enqueue, dq_left)
    )
    conn.flushall()
    procs = start(env)
    pids = [p.pid for p in procs]
    try:
        # warm up: both processes up, their first jobs' imports done, this producer's too
        (sy_gather if sy else dq_blocking)(enqueue(WARM, registry))
        time.sleep(0.5)
        c0 = tree_cpu(pids)
        t0 = time.perf_counter()
        items = enqueue(n, registry)
        t1 = time.perf_counter()
        deadline = time.monotonic() + TIMEOUT
        if variant.wait_drain:
            while left(conn):
                if time.monotonic() > deadline:
                    raise RuntimeError(f"{variant.name}: the jobs did not run in {TIMEOUT:.0f} s")
                if all(p.poll() is not None for p in procs):
                    raise RuntimeError(f"{variant.name}: the workers exited")
                time.sleep(0.02)
        t2 = time.perf_counter()
        conn.config_resetstat()
        p2 = time.process_time()
        values = variant.fetch(items)
        bad = [(i, v) for i, v in enumerate(values) if v != i + 1]
        t3 = time.perf_counter()
        p3 = time.process_time()
        c3 = tree_cpu(pids)
        cmds = count(commandstats(conn), minus={})
    finally:
        stop(procs)
    if len(values) != n or bad:
        raise RuntimeError(f"{variant.name}: {len(bad)} wrong results, first {bad[:1]}")
    return Run(
        variant.name,
        n,
        enqueue=t1 - t0,
        drain=t2 - t1,
        fetch=t3 - t2,
        total=t3 - t0,
        client_cpu_us=(p3 - p2) / n * 1e6,
        cmds=cmds / n,
        worker_cpu_us=(c3 - c0) / n * 1e6,
    )


# ---------------------------------------------------------------------------- report


def spread(values: list[float], fmt: str) -> str:
    """``median (low-high)``."""
    return f"{format(statistics.median(values), fmt)} ({format(min(values), fmt)}-" \
           f"{format(max(values), fmt)})"  # fmt: skip


def report(runs: list[Run], n: int) -> None:
    print(f"\n{n:,} trivial jobs per run; median (range over the runs); times in seconds\n")
    print("| variant | runs | end to end | enqueue | drain | fetch | fetch µs/result | "
          "producer CPU µs/result | Redis cmds/result | workers' CPU µs/job |")  # fmt: skip
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    medians: dict[str, tuple[float, float]] = {}
    for variant in VARIANTS + EXTRA:
        mine = [r for r in runs if r.variant == variant.name]
        if not mine:
            continue
        medians[variant.name] = (
            statistics.median(r.total for r in mine),
            statistics.median(r.fetch for r in mine),
        )
        drain = spread([r.drain for r in mine], ".2f") if variant.wait_drain else "-"
        print(
            f"| {variant.label} | {len(mine)} | **{spread([r.total for r in mine], '.2f')}** | "
            f"{spread([r.enqueue for r in mine], '.2f')} | {drain} | "
            f"{spread([r.fetch for r in mine], '.3f')} | "
            f"{spread([r.fetch / r.jobs * 1e6 for r in mine], '.0f')} | "
            f"{spread([r.client_cpu_us for r in mine], '.0f')} | "
            f"{statistics.median(r.cmds for r in mine):.1f} | "
            f"{spread([r.worker_cpu_us for r in mine], '.0f')} |"
        )
    print("\nratios of medians (below 1: the first takes less time):")
    for sy, dq in [("sy.result", "dq.get"), ("sy.gather", "dq.get"), ("sy.agather", "dq.get"),
                   ("sy.result~", "dq.get~"), ("sy.gather~", "dq.get~"), ("sy.pair", "dq.get"),
                   ("sy.result", "sy.pair")]:  # fmt: skip
        if sy in medians and dq in medians:
            (st, sf), (dt, df) = medians[sy], medians[dq]
            print(f"  {sy} / {dq}: end to end {st / dt:.2f} ({dq} {dt / st:.1f}x as long), "
                  f"fetch {sf / df:.2f} ({dq} {df / sf:.1f}x as long)")  # fmt: skip


# ---------------------------------------------------------------------------- main


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=20_000)
    parser.add_argument("--reps", type=int, default=3)
    names = [v.name for v in VARIANTS]
    extra = [v.name for v in EXTRA]
    parser.add_argument(
        "--only",
        default=",".join(names),
        help=f"comma-separated variants (default: {', '.join(names)}; also {', '.join(extra)})",
    )
    args = parser.parse_args()
    if args.jobs < 1 or args.reps < 1:
        sys.exit("error: --jobs and --reps must be at least 1")
    chosen = [v for v in VARIANTS + EXTRA if v.name in args.only.split(",")]
    unknown = set(args.only.split(",")) - set(names + extra)
    if unknown or not chosen:
        known = ", ".join(names + extra)
        sys.exit(f"error: --only: unknown variant(s) {sorted(unknown)}; choose from {known}")

    port = free_port()
    url = f"redis://127.0.0.1:{port}/0"
    tmp = Path(tempfile.mkdtemp(prefix="sy-results-"))
    write_dist_info(tmp)
    os.chdir(tmp)  # the default config: no project routing rules
    sys.path[:0] = [str(tmp), str(HERE)]
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(
            [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
            + [str(tmp), str(HERE)]
        ),
        "THROUGHPUT_REDIS_URL": url,
        "THROUGHPUT_DRAMATIQ_RESULTS": "1",
        "SWITCHYARD_REDIS_URL": url,
    }
    os.environ.update(
        THROUGHPUT_REDIS_URL=url, THROUGHPUT_DRAMATIQ_RESULTS="1", SWITCHYARD_REDIS_URL=url
    )
    before = loadavg()
    server = RedisServer(tmp, port)
    runs: list[Run] = []
    try:
        import switchyard

        registry = switchyard.Registry.from_entry_points()
        print(f"redis-server {server.conn.info('server')['redis_version']} on port {port}; "
              f"load average at start: {before}", flush=True)  # fmt: skip
        for rep in range(args.reps):
            order = chosen[rep % len(chosen) :] + chosen[: rep % len(chosen)]
            for variant in order:
                run = measure(variant, server.conn, args.jobs, env, registry)
                runs.append(run)
                print(
                    f"rep {rep + 1}: {variant.name:11s} total {run.total:6.2f} s: enqueue "
                    f"{run.enqueue:5.2f}, drain {run.drain:5.2f}, fetch {run.fetch:6.3f} s "
                    f"({run.fetch / run.jobs * 1e6:4.0f} µs/result, producer CPU "
                    f"{run.client_cpu_us:4.0f} µs, {run.cmds:.1f} cmds/result), workers' CPU "
                    f"{run.worker_cpu_us:.0f} µs/job",
                    flush=True,
                )
    finally:
        server.close()
        shutil.rmtree(tmp, ignore_errors=True)
    report(runs, args.jobs)
    print(f"\nload average: {before} at the start, {loadavg()} at the end")


if __name__ == "__main__":
    main()
