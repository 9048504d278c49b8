"""Jobs that wait on I/O, many at once in each process, and flow control (issue 11).

    uv run --all-packages --group bench python benchmarks/concurrency.py [--parts io,http,...]

Every system runs 2 worker processes on one dedicated redis-server (port 6432, no persistence)
started here, interleaved, ``--reps`` times, on ``--jobs`` jobs each; every system keeps its
results, and after each run every result is fetched through the system's own API and checked.

  io       an async handler that awaits 20 ms: switchyard-worker at its default concurrency and
           at 64 per process; arq (2 workers) at its default max_jobs and at 64; Dramatiq 2
           processes x 8 threads (its jobs sleep in their threads: Dramatiq runs sync actors)
  http     the same, through a real HTTP request to a local server (concurrency_http.py) that
           answers after 20 ms, through a per-process client (aiohttp for the async systems,
           urllib3 for Dramatiq's threads)
  threads  a sync handler that sleeps 20 ms: a switchyard ``io_bound`` action at 8 threads per
           process vs Dramatiq 2 x 8
  cost     the cost per trivial job of a concurrency limit and of a rate that never bind, vs none
  flow     3 worker processes: a rate of 500/s held over ~20 s; a concurrency limit of 3 never
           exceeded (from the handlers' own records); how soon a killed consumer's slots return

A run pre-fills the queue, starts the workers, and times from the moment 2% of the jobs are done
(process start-up is not counted) until the last one is; CPU per job is the workers' (user +
system) over that window. Prints markdown tables; the bound of a system is slots / 0.02 s.
arq runs in an environment of its own (benchmarks/arq-env: it needs an older redis-py).
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
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import redis  # noqa: TID251 - a benchmark of Redis queues talks to Redis directly

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from switchyard_rq._consumer.link import LEASE_SECONDS  # noqa: E402
from throughput import RedisServer, stop, tree_cpu, write_dist_info  # noqa: E402

PORT = 6432
HTTP_PORT = 6433
URL = f"redis://127.0.0.1:{PORT}/0"
HTTP_URL = f"http://127.0.0.1:{HTTP_PORT}/"
BIN = Path(sys.executable).parent
DELAY = 0.02


@dataclass
class Run:
    system: str
    jobs: int
    rate: float
    cpu_us: float
    fetch_s: float = 0.0
    redis_us: float = 0.0  # the redis-server's CPU per job


@dataclass
class System:
    """One worker setup: how to fill its queue, start it, count what is done, read results."""

    name: str
    slots: int  # jobs at once over both processes
    prefill: Callable[[redis.Redis, int], Any]
    start: Callable[[dict[str, str]], list[subprocess.Popen[bytes]]]
    done: Callable[[redis.Redis], int]
    check: Callable[[redis.Redis, Any, int], None]
    extra: dict[str, Any] = field(default_factory=dict)


# ---------------------------------------------------------------------------- switchyard


def switchyard_system(
    name: str, action: str, slots_per_process: int, *, processes: int = 2
) -> System:
    def prefill(conn: redis.Redis, n: int) -> Any:
        import switchyard
        import switchyard_rq

        registry = switchyard.Registry.from_entry_points()
        handles = []
        calls = [(action, {"n": i}) for i in range(n)]
        for start in range(0, n, 1000):
            handles += switchyard_rq.schedule_many(calls[start : start + 1000], registry=registry)
        return handles

    def start(env: dict[str, str]) -> list[subprocess.Popen[bytes]]:
        cmd = [str(BIN / "switchyard-worker"), "--min", str(processes), "--max", str(processes),
               "--queues", "default", "--concurrency", str(slots_per_process),
               "--job-log", "failures"]  # fmt: skip
        log = os.environ.get("BENCH_WORKER_LOG")  # to see what the workers say
        err = open(log, "ab") if log else subprocess.DEVNULL  # noqa: SIM115 - the child keeps it
        return [subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=err)]

    def done(conn: redis.Redis) -> int:
        return int(conn.zcard("rq:finished:default"))

    def check(conn: redis.Redis, handles: Any, n: int) -> None:
        got = [h.result(timeout=30).n for h in handles]
        if got != list(range(n)):
            raise RuntimeError(f"{name}: wrong results")

    return System(name, processes * slots_per_process, prefill, start, done, check)


# ---------------------------------------------------------------------------- arq


def arq_python() -> str:
    """The interpreter of benchmarks/arq-env (arq needs an older redis-py than this workspace)."""
    project = HERE / "arq-env"
    subprocess.run(["uv", "sync", "--quiet", "--project", str(project)], check=True)
    return str(project / ".venv" / "bin" / "python")


def arq_system(name: str, function: str, max_jobs: int | None, python: str) -> System:
    ids_file = Path(tempfile.gettempdir()) / f"sy-arq-ids-{os.getpid()}"

    def prefill(conn: redis.Redis, n: int) -> Any:
        system.extra["n"] = n
        subprocess.run([python, str(HERE / "concurrency_arq.py"), "fill", str(n), function,
                        str(ids_file)], check=True, env=os.environ)  # fmt: skip

    def start(env: dict[str, str]) -> list[subprocess.Popen[bytes]]:
        env = dict(env)
        if max_jobs is not None:
            env["ARQ_MAX_JOBS"] = str(max_jobs)
        cmd = [python, "-m", "arq", "concurrency_arq.WorkerSettings"]
        return [
            subprocess.Popen(cmd, env=env, cwd=HERE, stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL)
            for _ in range(2)
        ]  # fmt: skip

    def done(conn: redis.Redis) -> int:
        return system.extra["n"] - int(conn.zcard("arq:queue"))

    def check(conn: redis.Redis, made: Any, n: int) -> None:
        subprocess.run([python, str(HERE / "concurrency_arq.py"), "check", str(ids_file),
                        str(n)], check=True, env=os.environ)  # fmt: skip

    system = System(name, 2 * (max_jobs or 10), prefill, start, done, check)
    return system


# ---------------------------------------------------------------------------- Dramatiq


def dramatiq_system(name: str, actor: str, threads: int = 8) -> System:
    def prefill(conn: redis.Redis, n: int) -> Any:
        import concurrency_dramatiq as jobs

        system.extra["n"] = n
        send = getattr(jobs, actor).send
        return [send(i) for i in range(n)]

    def start(env: dict[str, str]) -> list[subprocess.Popen[bytes]]:
        cmd = [str(BIN / "dramatiq"), "concurrency_dramatiq", "-p", "2", "-t", str(threads)]
        return [subprocess.Popen(cmd, env=env, cwd=HERE, stderr=subprocess.DEVNULL)]

    def done(conn: redis.Redis) -> int:
        return system.extra["n"] - int(conn.hlen("dramatiq:default.msgs"))

    def check(conn: redis.Redis, messages: Any, n: int) -> None:
        import concurrency_dramatiq as jobs

        got = [m.get_result(backend=jobs.backend, block=True, timeout=30_000) for m in messages]
        if got != list(range(n)):
            raise RuntimeError(f"{name}: wrong results")

    system = System(name, 2 * threads, prefill, start, done, check)
    return system


# ---------------------------------------------------------------------------- measuring


REDIS_PID: list[int] = []  # the benchmark's redis-server (its CPU per job is reported too)


def measure(system: System, conn: redis.Redis, n: int, env: dict[str, str]) -> Run:
    conn.flushall()
    made = system.prefill(conn, n)
    procs = system.start(env)
    pids = [p.pid for p in procs]
    t0 = d0 = 0.0
    c0 = 0.0
    warm = max(1, n // 50)
    deadline = time.monotonic() + 900
    try:
        while True:
            done = system.done(conn)
            now = time.perf_counter()
            if not t0 and done >= warm:
                t0, d0, c0, r0 = now, done, tree_cpu(pids), tree_cpu(REDIS_PID)
            if done >= n:
                t1, c1, r1 = now, tree_cpu(pids), tree_cpu(REDIS_PID)
                break
            if time.monotonic() > deadline:
                raise RuntimeError(f"{system.name}: only {done} of {n} jobs done in 900 s")
            if all(p.poll() is not None for p in procs):
                raise RuntimeError(f"{system.name}: workers exited with {done} of {n} done")
            time.sleep(0.01)
        f0 = time.perf_counter()
        system.check(conn, made, n)
        fetch = time.perf_counter() - f0
    finally:
        stop(procs)
    rate = (n - d0) / (t1 - t0)
    return Run(system.name, n, rate, (c1 - c0) / (n - d0) * 1e6, fetch, (r1 - r0) / (n - d0) * 1e6)


def interleave(
    systems: list[System], conn: redis.Redis, env: dict[str, str], jobs: int, reps: int
) -> list[Run]:
    runs = []
    for rep in range(reps):
        order = systems[rep % len(systems) :] + systems[: rep % len(systems)]
        for system in order:
            n = system.extra.get("jobs", jobs)
            run = measure(system, conn, n, env)
            runs.append(run)
            print(
                f"rep {rep + 1}: {run.system}: {run.rate:,.0f} jobs/s, CPU {run.cpu_us:.0f} µs/job"
                f" (Redis {run.redis_us:.0f}), results fetched and checked in {run.fetch_s:.1f} s",
                flush=True,
            )
    return runs


def table(title: str, systems: list[System], runs: list[Run], base: str | None = None) -> None:
    print(f"\n{title}\n")
    print(
        "| system | slots | jobs | jobs/s median (runs) | of the bound | workers' CPU µs/job "
        "| Redis CPU µs/job | ratio |"
    )
    print("| --- | ---: | ---: | --- | ---: | ---: | ---: | ---: |")
    medians = {s.name: statistics.median(r.rate for r in runs if r.system == s.name)
               for s in systems}  # fmt: skip
    for system in systems:
        mine = [r for r in runs if r.system == system.name]
        med = medians[system.name]
        each = ", ".join(f"{r.rate:,.0f}" for r in mine)
        bound = system.slots / DELAY
        cpu = statistics.median(r.cpu_us for r in mine)
        redis_cpu = statistics.median(r.redis_us for r in mine)
        ratio = f"{med / medians[base]:.2f}x" if base else ""
        share = f"{med / bound:.0%}" if system.extra.get("io", True) else "n/a"
        print(
            f"| {system.name} | {system.slots} | {mine[0].jobs:,} | {med:,.0f} ({each}) | "
            f"{share} | {cpu:.0f} | {redis_cpu:.0f} | {ratio} |"
        )


# ---------------------------------------------------------------------------- flow control


def flow_accuracy(conn: redis.Redis, env: dict[str, str], seconds: float) -> None:
    """A rate of 500/s and a concurrency limit of 3, each with 3 worker processes."""
    rated = switchyard_system("rate 500/s", "flow.rated", 16, processes=3)
    n = int(500 * seconds)
    conn.flushall()
    made = rated.prefill(conn, n)
    procs = rated.start(env)
    try:
        while rated.done(conn) < n:
            time.sleep(0.05)
        rated.check(conn, made, n)
    finally:
        stop(procs)
    starts = sorted(float(t) for t in conn.lrange("bench:starts", 0, -1))
    span = starts[-1] - starts[0]
    overall = (len(starts) - 1) / span
    first = starts[0]
    per_second = [0] * (int(span) + 1)
    for t in starts:
        per_second[int(t - first)] += 1
    full = per_second[1:-1] or per_second  # the first second holds the burst
    print(
        f"\nrate limit 500/s, 3 worker processes x 16, {n:,} jobs: {overall:.1f} starts/s over "
        f"{span:.1f} s ({(overall / 500 - 1) * 100:+.2f}%), whole seconds {min(full)}-{max(full)} "
        f"(median {statistics.median(full):.0f}); the first second {per_second[0]} "
        f"(the burst of 50 plus its second's share)"
    )
    limited = switchyard_system("concurrency 3", "flow.limited", 16, processes=3)
    n = 1500
    conn.flushall()
    made = limited.prefill(conn, n)
    procs = limited.start(env)
    t0 = time.perf_counter()
    try:
        while limited.done(conn) < n:
            time.sleep(0.05)
        took = time.perf_counter() - t0
        limited.check(conn, made, n)
    finally:
        stop(procs)
    events = []
    for raw in conn.lrange("bench:spans", 0, -1):
        mark, at = raw.decode().split()
        events.append((float(at), 1 if mark == "+" else -1))
    now = peak = 0
    for _, delta in sorted(events, key=lambda e: (e[0], e[1])):
        now += delta
        peak = max(peak, now)
    print(
        f"concurrency limit 3, 3 worker processes x 16, {n:,} jobs of 20 ms: at most {peak} "
        f"at once (the handlers' own records); {n / took:.0f} jobs/s (the bound: 3 / 0.02 s = "
        f"150/s)"
    )
    lease_recovery(conn, env)


def lease_recovery(conn: redis.Redis, env: dict[str, str]) -> None:
    """A consumer holding all 3 slots is SIGKILLed with no supervisor to recover its jobs: how
    long until a job waiting for a slot runs (the leases lapse on their own)."""
    import switchyard
    import switchyard_rq

    conn.flushall()
    registry = switchyard.Registry.from_entry_points()
    for i in range(3):
        switchyard_rq.schedule_action("flow.held", {"n": i}, registry=registry)
    code = (
        "import switchyard, switchyard_rq\n"
        f"c = switchyard_rq.Consumer(switchyard_rq.get_connection({URL!r}), ['default'], "
        "registry=switchyard.Registry.from_entry_points(), concurrency=8)\n"
        "c.run()\n"
    )
    child = subprocess.Popen([sys.executable, "-c", code], env=env)
    try:
        while conn.zcard("switchyard:flow:c:flow.held") < 3:
            time.sleep(0.01)
    finally:
        child.kill()
        child.wait()
    killed = time.perf_counter()
    waiting = switchyard_rq.schedule_action("flow.held", {"n": 99, "seconds": 0}, registry=registry)
    procs = switchyard_system("", "flow.held", 8, processes=1).start(env)
    try:
        waiting.result(timeout=60)
    finally:
        stop(procs)
    print(
        f"a consumer holding every slot of a limit killed with no one to recover its jobs: the "
        f"next job ran {time.perf_counter() - killed:.1f} s later (leases lapse "
        f"{LEASE_SECONDS:.0f} s after their last renewal)"
    )


# ---------------------------------------------------------------------------- main


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=20_000)
    parser.add_argument("--slow-jobs", type=int, default=10_000,
                        help="jobs for the systems bounded below 1,000 jobs/s")  # fmt: skip
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--parts", default="io,http,threads,cost,flow")
    parser.add_argument("--flow-seconds", type=float, default=20.0)
    parser.add_argument("--only", default="", help="only the systems whose name has this text")
    args = parser.parse_args()
    parts = set(args.parts.split(","))

    tmp = Path(tempfile.mkdtemp(prefix="sy-concurrency-"))
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
        "CONCURRENCY_HTTP_URL": HTTP_URL,
    }
    os.environ.update(SWITCHYARD_REDIS_URL=URL, CONCURRENCY_REDIS_URL=URL,
                      CONCURRENCY_HTTP_URL=HTTP_URL)  # fmt: skip
    server = RedisServer(tmp, PORT)
    REDIS_PID.append(server.proc.pid)
    http = subprocess.Popen([sys.executable, str(HERE / "concurrency_http.py"), str(HTTP_PORT),
                             str(DELAY)])  # fmt: skip
    print(f"load average at start: {Path('/proc/loadavg').read_text().split()[:3]}")
    try:
        arq = arq_python() if parts & {"io", "http"} else ""
        for part, sy_action, arq_fn, dq_actor in (
            ("io", "io.wait", "wait", "wait"),
            ("http", "io.http", "fetch", "fetch"),
        ):
            if part not in parts:
                continue
            dramatiq = dramatiq_system("Dramatiq 2 x 8 threads", dq_actor)
            arq10 = arq_system("arq 2 x max_jobs 10 (default)", arq_fn, None, arq)
            for slow in (dramatiq, arq10):
                slow.extra["jobs"] = args.slow_jobs
            systems = [
                switchyard_system("switchyard 2 x 16 (default)", sy_action, 16),
                switchyard_system("switchyard 2 x 64", sy_action, 64),
                arq10,
                arq_system("arq 2 x max_jobs 64", arq_fn, 64, arq),
                dramatiq,
            ]
            systems = [s for s in systems if args.only in s.name] or systems
            runs = interleave(systems, server.conn, env, args.jobs, args.reps)
            what = "awaits 20 ms" if part == "io" else "makes an HTTP request answered in 20 ms"
            table(f"I/O-bound: each job {what}", systems, runs,
                  base=dramatiq.name if dramatiq in systems else None)  # fmt: skip
        if "threads" in parts:
            dramatiq = dramatiq_system("Dramatiq 2 x 8 threads", "wait")
            systems = [switchyard_system("switchyard 2 x 8 threads (io_bound)", "io.sleep", 8),
                       dramatiq]  # fmt: skip
            for system in systems:
                system.extra["jobs"] = args.slow_jobs
            runs = interleave(systems, server.conn, env, args.jobs, args.reps)
            table("Sync I/O-bound: each job sleeps 20 ms in a thread", systems, runs,
                  base=dramatiq.name)  # fmt: skip
        if "cost" in parts or "flow" in parts:
            systems = [
                switchyard_system("no limit", "flow.free", 16),
                switchyard_system("concurrency 100,000 (never binds)", "flow.capped", 16),
                switchyard_system("rate 1,000,000/s (never binds)", "flow.fast", 16),
            ]
            for system in systems:
                system.extra["io"] = False  # trivial jobs: no bound
            runs = interleave(systems, server.conn, env, args.jobs, args.reps)
            table("Trivial async jobs: the cost of a limit that never binds", systems, runs,
                  base=systems[0].name)  # fmt: skip
        if "flow" in parts:
            flow_accuracy(server.conn, env, args.flow_seconds)
        print(f"\nload average at the end: {Path('/proc/loadavg').read_text().split()[:3]}")
    finally:
        http.terminate()
        http.wait(10)
        server.close()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
