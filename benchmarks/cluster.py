"""One Redis server vs a Redis Cluster, and a master's failover (issue 14).

    uv run --all-packages --group bench python benchmarks/cluster.py [--reps 3] [--parts ...]

Every server is the script's own, on free loopback ports in 7100-7299, stopped by PID at the end.
The jobs go to three queues, ``qa``, ``qb`` and ``qc``, whose hash slots (``{qa}`` is the queue on
a cluster) land on the three masters that ``redis-cli --cluster create`` makes: a workspace of the
script's own (a temp folder with a ``pyproject.toml``) routes a third of the actions to each, and
the producer and the worker run in it.

  run       trivial jobs (the 45 actions of throughput_actions.py) and I/O-bound jobs (an async
            handler that awaits 20 ms, cluster_actions.py) on (A) one redis-server and (B) a
            cluster of 3 masters without replicas, interleaved, ``--reps`` times: prefill, start
            ``switchyard-worker --min 2 --max 2 --queues qa,qb,qc`` (``--concurrency`` 16, the
            default, and 64 for the I/O-bound jobs), time from 2% done to all done; every queue's
            finished count checked and a sample of results read through ``JobHandle.result``.
            Per node: Redis commands (INFO commandstats, this script's polling subtracted),
            Redis CPU (the redis-server's user + system time from /proc), jobs served.
  durable   ``schedule_many`` (batches of 1,000) and ``schedule_action`` (one at a time) with
            SWITCHYARD_REDIS_WAIT_REPLICAS=0 and =1, on a 3+3 cluster and on one server with a
            replica.
  failover  a 3+3 cluster (cluster-node-timeout 1000 ms), a worker, a producer scheduling
            ``--rate`` jobs/s over the 3 queues (a thread per queue, an idempotency key per job);
            the master of ``qa`` killed with SIGKILL and started again 3 s later (it comes back
            as a replica). Measured: the kill to the first acknowledged schedule to ``qa`` made
            after it, and to the first such job finished; the longest pause of the other queues;
            acknowledged jobs lost, with WAIT_REPLICAS=0 and =1.

Prints markdown tables.
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, ClassVar

import redis  # noqa: TID251 - a benchmark of Redis talks to Redis directly
from redis.crc import key_slot  # noqa: TID251

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from throughput import (  # noqa: E402
    ACTIONS,
    commandstats,
    server_binary,
    stop,
    tree_cpu,
    write_dist_info,
)

PORTS = (7100, 7299)
QUEUES = ("qa", "qb", "qc")
BIN = Path(sys.executable).parent
#: the master of slot ranges as ``redis-cli --cluster create`` splits 16384 slots over 3 masters
THIRDS = ((0, 5460), (5461, 10922), (10923, 16383))
IDLE_SECONDS = 2.0
SKIP = {"info", "config|resetstat", "config", "flushall", "ping", "cluster|info"}


def trivial_queue(index: int) -> str:
    return QUEUES[index % 3]


# ---------------------------------------------------------------------------- servers

TAKEN: set[int] = set()


def free_port() -> int:
    for port in range(*PORTS):
        if port in TAKEN:
            continue
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
        TAKEN.add(port)
        return port
    sys.exit(f"error: no free port in {PORTS[0]}-{PORTS[1]}")


class Node:
    """One redis-server of this script's own, on a free port of 7100-7299, no persistence
    (a cluster node keeps its nodes.conf in its folder, so it can rejoin after a kill)."""

    EXE = ""
    ALL: ClassVar[list[Node]] = []  # every one started, to stop them all at the end

    def __init__(self, folder: Path, args: list[str]) -> None:
        self.port = free_port()
        self.folder = folder / str(self.port)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.args = args
        self.proc: subprocess.Popen[bytes] | None = None
        Node.ALL.append(self)
        self.start()

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [Node.EXE, "--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.folder),
             "--save", "", "--appendonly", "no", *self.args],
            stdout=subprocess.DEVNULL,
        )  # fmt: skip
        self.conn = redis.Redis(port=self.port)
        wait_for(self.conn.ping, f"redis-server on {self.port} did not start")

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def kill(self) -> None:
        """kill -9: no goodbye to the cluster."""
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait(10)
            self.proc = None

    def close(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
            self.proc = None


def wait_for(check: Any, what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    last: object = None
    while time.monotonic() < deadline:
        try:
            if check():
                return
        except (redis.ConnectionError, redis.ResponseError, OSError) as exc:
            last = exc
        time.sleep(0.05)
    raise RuntimeError(f"{what} within {timeout:.0f} s ({last})")


@dataclass
class Topology:
    """What the producer and the worker talk to: one server, or a cluster's masters."""

    name: str
    url: str
    nodes: list[Node]  # data nodes (masters first)
    cluster: bool
    masters: int = 1

    def wire(self, queue: str) -> str:
        return f"{{{queue}}}" if self.cluster else queue

    def master_of(self, queue: str) -> Node:
        if not self.cluster:
            return self.nodes[0]
        slot = key_slot(queue.encode())
        for node in self.nodes:
            if node.proc is None:
                continue
            with contextlib.suppress(redis.RedisError):
                for start, end, master, *_ in node.conn.execute_command("CLUSTER SLOTS"):
                    if start <= slot <= end:
                        return next(n for n in self.nodes if n.port == int(master[1]))
        raise RuntimeError(f"no master for queue {queue} (slot {slot})")

    def live_masters(self) -> list[Node]:
        return [self.master_of(q) for q in QUEUES] if self.cluster else self.nodes[:1]

    def flush(self) -> None:
        for node in self.live_masters():
            node.conn.flushall()

    def close(self) -> None:
        for node in self.nodes:
            node.close()


def synced(master: Node, replicas: int) -> bool:
    """Whether ``replicas`` replicas of ``master`` are online (their first sync done: WAIT does
    not count a replica before that)."""
    info = master.conn.info("replication")
    online = [info[f"slave{i}"] for i in range(int(info["connected_slaves"]))]
    return sum(1 for r in online if r.get("state") == "online") >= replicas


def single(folder: Path, *, replica: bool = False) -> Topology:
    master = Node(folder, [])
    nodes = [master]
    if replica:
        nodes.append(Node(folder, ["--replicaof", "127.0.0.1", str(master.port)]))
        wait_for(lambda: synced(master, 1), "the replica did not sync")
    name = "one server + replica" if replica else "(A) one server"
    return Topology(name, f"redis://127.0.0.1:{master.port}/0", nodes, cluster=False)


def make_cluster(folder: Path, *, replicas: int) -> Topology:
    """3 masters (+ ``replicas`` each) made by ``redis-cli --cluster create``; a dead master is
    failed over within about 2 s (cluster-node-timeout 1000 ms), as the tests' cluster kit does."""
    args = ["--cluster-enabled", "yes", "--cluster-node-timeout", "1000",
            "--cluster-require-full-coverage", "no",
            "--cluster-config-file", "nodes.conf"]  # fmt: skip
    nodes = [Node(folder, args) for _ in range(3 * (1 + replicas))]
    subprocess.run(
        ["redis-cli", "--cluster", "create", *(f"127.0.0.1:{n.port}" for n in nodes),
         "--cluster-replicas", str(replicas), "--cluster-yes"],
        check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip

    def ok() -> bool:
        return all(n.conn.cluster("INFO")["cluster_state"] == "ok" for n in nodes)

    wait_for(ok, "the cluster was not ok")
    name = "(B) cluster, 3 masters" + (f" + {3 * replicas} replicas" if replicas else "")
    url = "redis+cluster://" + ",".join(f"127.0.0.1:{n.port}" for n in nodes[:3])  # seeds
    topo = Topology(name, url, nodes, cluster=True, masters=3)
    homes = topo.live_masters()
    if len({n.port for n in homes}) != 3:
        sys.exit(f"error: queues {QUEUES} do not land on 3 different masters: {homes}")
    if replicas:
        wait_for(lambda: all(synced(n, replicas) for n in homes), "the replicas did not sync")
    return topo


# ---------------------------------------------------------------------------- the workspace


def workspace(folder: Path) -> None:
    """A pyproject.toml routing a third of the actions to each queue (the producer and the
    worker run with this folder as their cwd), and the actions' entry points."""
    import cluster_actions

    write_dist_info(folder)  # bench.job_00 .. bench.job_44
    write_dist_info(folder, "cluster_actions", cluster_actions.ATTRS)
    lines = ["[tool.switchyard]", 'default-queue = "qa"', "", "[tool.switchyard.routing]"]
    lines += [f'"bench.job_{i:02d}" = "{trivial_queue(i)}"' for i in range(ACTIONS)]
    lines += [f'"{name}" = "{q}"' for name, q in zip(cluster_actions.NAMES, QUEUES, strict=True)]
    (folder / "pyproject.toml").write_text("\n".join(lines) + "\n")


# ---------------------------------------------------------------------------- run: throughput


@dataclass
class Workload:
    name: str
    concurrency: int
    jobs: int

    def calls(self, n: int) -> list[tuple[str, dict[str, int]]]:
        if self.name == "trivial":
            return [(f"bench.job_{i % ACTIONS:02d}", {"n": i}) for i in range(n)]
        import cluster_actions

        return [(cluster_actions.NAMES[i % 3], {"n": i}) for i in range(n)]

    def expected(self, n: int) -> int:
        return n + 1 if self.name == "trivial" else n

    @property
    def label(self) -> str:
        what = "trivial" if self.name == "trivial" else "I/O 20 ms"
        return f"{what}, 2 x {self.concurrency}"


@dataclass
class Run:
    topology: str
    workload: str
    jobs: int
    rate: float
    worker_us: float  # workers' CPU per job
    enqueue_cmds: float  # per job, all nodes
    timed: float  # the share of the jobs finished in the timed window
    #: per node (host:port of the master): jobs finished there, commands, Redis CPU µs (totals)
    nodes: dict[str, dict[str, float]] = field(default_factory=dict)
    #: per queue: seconds from the worker's start to its first and to its last job finished
    spans: dict[str, tuple[float, float]] = field(default_factory=dict)


def measure(topo: Topology, work: Workload, env: dict[str, str], registry: Any, log: Path) -> Run:
    import switchyard_rq

    os.environ["SWITCHYARD_REDIS_URL"] = env["SWITCHYARD_REDIS_URL"] = topo.url
    masters = topo.live_masters()
    unique = list({n.port: n for n in masters}.values())
    home = {q: topo.master_of(q) for q in QUEUES}
    topo.flush()
    for node in unique:
        node.conn.config_resetstat()
    n = work.jobs
    calls = work.calls(n)
    handles = []
    fill0 = {node.port: tree_cpu([node.pid]) for node in unique}
    for start in range(0, n, 1000):
        handles += switchyard_rq.schedule_many(calls[start : start + 1000], registry=registry)
    enqueue = sum(_count(commandstats(node.conn), {}) for node in unique)
    fill = {node.port: (tree_cpu([node.pid]) - fill0[node.port]) * 1e6 for node in unique}
    # each node's CPU while idle (a cluster node gossips on its bus): subtracted for "net"
    idle0 = {node.port: tree_cpu([node.pid]) for node in unique}
    time.sleep(IDLE_SECONDS)
    idle = {node.port: (tree_cpu([node.pid]) - idle0[node.port]) / IDLE_SECONDS for node in unique}
    for node in unique:
        node.conn.config_resetstat()
    cmd = [str(BIN / "switchyard-worker"), "--min", "2", "--max", "2",
           "--queues", ",".join(QUEUES), "--concurrency", str(work.concurrency),
           "--job-log", "failures"]  # fmt: skip
    with log.open("ab") as err:
        procs = [subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=err)]
    pids = [p.pid for p in procs]
    polls = 0
    warm = max(1, n // 50)
    t0 = d0 = 0.0
    c0 = 0.0
    r0: dict[int, float] = {}
    deadline = time.monotonic() + 900

    def done_counts() -> dict[str, int]:
        return {q: int(home[q].conn.zcard(f"rq:finished:{topo.wire(q)}")) for q in QUEUES}

    totals = {q: len(range(QUEUES.index(q), n, 3)) for q in QUEUES}  # job i goes to i % 3
    began = time.perf_counter()
    firsts: dict[str, float] = {}
    lasts: dict[str, float] = {}
    try:
        while True:
            counts = done_counts()
            done = sum(counts.values())
            polls += 1
            now = time.perf_counter()
            for q, got in counts.items():
                if got and q not in firsts:
                    firsts[q] = now - began
                if got >= totals[q] and q not in lasts:
                    lasts[q] = now - began
            if not t0 and done >= warm:
                t0, d0, c0 = now, done, tree_cpu(pids)
                r0 = {node.port: tree_cpu([node.pid]) for node in unique}
            if done >= n:
                t1, c1 = now, tree_cpu(pids)
                r1 = {node.port: tree_cpu([node.pid]) for node in unique}
                break
            if time.monotonic() > deadline:
                raise RuntimeError(f"{topo.name}, {work.label}: only {done} of {n} done in 900 s")
            if all(p.poll() is not None for p in procs):
                raise RuntimeError(f"{topo.name}, {work.label}: the worker exited ({log})")
            time.sleep(0.01)
        stats = {node.port: commandstats(node.conn) for node in unique}
    finally:
        stop(procs)
    # every job stored as finished, none failed; a sample of results read and checked
    for q in QUEUES:
        failed = int(home[q].conn.zcard(f"rq:failed:{topo.wire(q)}"))
        if failed:
            raise RuntimeError(f"{topo.name}, {work.label}: {failed} jobs failed on {q}")
    step = max(1, n // 90)
    for i in range(0, n, step):
        if handles[i].result(timeout=30).n != work.expected(i):
            raise RuntimeError(f"{topo.name}, {work.label}: wrong result for job {i}")
    per_node: dict[str, dict[str, float]] = {}
    for node in unique:
        mine = [q for q in QUEUES if home[q] is node]
        polled = {"zcard": polls * len(mine)}
        per_node[f"127.0.0.1:{node.port}"] = {
            "jobs": sum(counts[q] for q in mine),
            "cmds": _count(stats[node.port], polled),
            "cpu_us": (r1[node.port] - r0[node.port]) * 1e6,
            "idle_us": idle[node.port] * (t1 - t0) * 1e6,  # what it would have used idle
            "fill_us": fill[node.port],  # CPU while the jobs were scheduled (schedule_many)
            "queues": len(mine),
        }
    timed = n - d0
    return Run(topo.name, work.label, n, timed / (t1 - t0), (c1 - c0) / timed * 1e6,
               enqueue / n, timed / n, per_node,
               {q: (firsts[q], lasts[q]) for q in QUEUES})  # fmt: skip


def _count(stats: dict[str, int], minus: dict[str, int]) -> int:
    return sum(v - minus.get(k, 0) for k, v in stats.items() if k not in SKIP)


def describe(run: Run) -> str:
    """One line: rate, worker CPU, and per node: jobs, commands and Redis CPU per job there.
    The Redis CPU is over the timed window (from 2% done), so per job it divides by the jobs
    finished in that window on the node (its share of the run's)."""
    parts = []
    for name, node in run.nodes.items():
        jobs = node["jobs"] or 1
        parts.append(
            f"{name.rsplit(':', 1)[1]}: {int(node['jobs']):,} jobs, "
            f"{node['cmds'] / jobs:.1f} cmds/job, {node_cpu(run, node):.0f} µs CPU/job "
            f"({node_cpu(run, node, net=True):.0f} net of idle)"
        )
    spans = ", ".join(f"{q} {a:.1f}-{b:.1f} s" for q, (a, b) in run.spans.items())
    fill = sum(node["fill_us"] for node in run.nodes.values()) / run.jobs
    return (
        f"{run.topology}, {run.workload}: {run.rate:,.0f} jobs/s, workers' CPU "
        f"{run.worker_us:.0f} µs/job, {run.enqueue_cmds:.2f} cmds/job to enqueue (Redis CPU "
        f"{fill:.1f} µs/job); "
        + "; ".join(parts)
        + f"; each queue's jobs finished (from the worker's start): {spans}"
    )


def node_cpu(run: Run, node: dict[str, float], *, net: bool = False) -> float:
    """Redis CPU µs per job served by this node, over the timed window (from 2% done: the
    node's share of the jobs finished in it); ``net``: less what the node uses idle."""
    used = node["cpu_us"] - (node["idle_us"] if net else 0.0)
    return used / max(node["jobs"] * run.timed, 1)


def run_part(folder: Path, env: dict[str, str], reps: int, works: list[Workload]) -> list[Run]:
    import switchyard

    registry = switchyard.Registry.from_entry_points()
    single_topo = single(folder)
    cluster_topo = make_cluster(folder, replicas=0)
    topologies = [single_topo, cluster_topo]
    for q in QUEUES:
        print(f"queue {q}: slot {key_slot(q.encode())}, on the cluster's master "
              f"127.0.0.1:{cluster_topo.master_of(q).port}")  # fmt: skip
    log = folder / "worker.log"
    runs: list[Run] = []
    try:
        for rep in range(reps):
            for work in works:
                order = topologies if rep % 2 == 0 else topologies[::-1]
                for topo in order:
                    run = measure(topo, work, env, registry, log)
                    runs.append(run)
                    print(f"rep {rep + 1}: {describe(run)}", flush=True)
    finally:
        single_topo.close()
        cluster_topo.close()
    return runs


def run_table(runs: list[Run], works: list[Workload]) -> None:
    print(
        "\n| jobs | Redis | jobs/s, median (runs) | workers' CPU µs/job | Redis cmds/job, per "
        "node | Redis CPU µs/job, per node (net of idle) | jobs per node | each queue's jobs "
        "finished, s from the worker's start | to enqueue: cmds/job, Redis CPU µs/job |"
    )
    print("| --- | --- | --- | ---: | --- | --- | --- | --- | --- |")
    for work in works:
        for topo in ("(A) one server", "(B) cluster, 3 masters"):
            mine = [r for r in runs if r.workload == work.label and r.topology == topo]
            if not mine:
                continue
            med = statistics.median(r.rate for r in mine)
            each = ", ".join(f"{r.rate:,.0f}" for r in mine)
            worker = statistics.median(r.worker_us for r in mine)
            names = list(mine[0].nodes)
            cmds = " / ".join(
                f"{statistics.median(r.nodes[k]['cmds'] / max(r.nodes[k]['jobs'], 1) for r in mine):.1f}"  # noqa: E501
                for k in names
            )
            cpus = " / ".join(
                f"{statistics.median(node_cpu(r, r.nodes[k]) for r in mine):.0f}" for k in names
            )
            nets = " / ".join(
                f"{statistics.median(node_cpu(r, r.nodes[k], net=True) for r in mine):.0f}"
                for k in names
            )
            fill = statistics.median(
                sum(node["fill_us"] for node in r.nodes.values()) / r.jobs for r in mine
            )
            spans = ", ".join(
                f"{q} {statistics.median(r.spans[q][0] for r in mine):.1f}-"
                f"{statistics.median(r.spans[q][1] for r in mine):.1f}"
                for q in QUEUES
            )
            spread = " / ".join(
                f"{statistics.median(r.nodes[k]['jobs'] for r in mine):,.0f}" for k in names
            )
            print(f"| {work.label}, {mine[0].jobs:,} | {topo} | {med:,.0f} ({each}) | "
                  f"{worker:.0f} | {cmds} | {cpus} ({nets}) | {spread} | {spans} | "
                  f"{statistics.median(r.enqueue_cmds for r in mine):.2f}, "
                  f"{fill:.1f} |")  # fmt: skip


# ---------------------------------------------------------------------------- durable mode


def durable_part(folder: Path, reps: int, jobs: int, singles: int) -> list[str]:
    import switchyard
    import switchyard_rq

    registry = switchyard.Registry.from_entry_points()
    lines = []
    for make in (lambda: make_cluster(folder, replicas=1), lambda: single(folder, replica=True)):
        topo = make()
        os.environ["SWITCHYARD_REDIS_URL"] = topo.url
        calls = [(f"bench.job_{i % ACTIONS:02d}", {"n": i}) for i in range(jobs)]
        got: dict[str, list[tuple[float, float]]] = {"0": [], "1": []}
        try:
            for rep in range(reps):
                for wait in ("0", "1") if rep % 2 == 0 else ("1", "0"):
                    os.environ["SWITCHYARD_REDIS_WAIT_REPLICAS"] = wait
                    topo.flush()
                    t0 = time.perf_counter()
                    for start in range(0, jobs, 1000):
                        switchyard_rq.schedule_many(calls[start : start + 1000], registry=registry)
                    many = jobs / (time.perf_counter() - t0)
                    each = []
                    for i in range(singles):
                        t = time.perf_counter()
                        switchyard_rq.schedule_action(
                            f"bench.job_{i % ACTIONS:02d}", {"n": i}, registry=registry
                        )
                        each.append((time.perf_counter() - t) * 1e3)
                    each.sort()
                    got[wait].append((many, each[len(each) // 2]))
                    print(f"rep {rep + 1}: {topo.name}, WAIT_REPLICAS={wait}: schedule_many "
                          f"{many:,.0f} jobs/s; schedule_action p50 {each[len(each) // 2]:.3f} ms",
                          flush=True)  # fmt: skip
        finally:
            os.environ["SWITCHYARD_REDIS_WAIT_REPLICAS"] = "0"
            topo.close()
        for wait in ("0", "1"):
            manys = [m for m, _ in got[wait]]
            p50s = [p for _, p in got[wait]]
            lines.append(
                f"| {topo.name} | {wait} | {statistics.median(manys):,.0f} "
                f"({', '.join(f'{m:,.0f}' for m in manys)}) | {statistics.median(p50s):.3f} "
                f"({', '.join(f'{p:.3f}' for p in p50s)}) |"
            )
    return lines


# ---------------------------------------------------------------------------- failover


@dataclass
class Sent:
    queue: str
    key: str
    began: float  # wall clock, before the first call for this key (a failed one is made again)
    acked: float  # wall clock, when it returned
    job_id: str


def produce(queue: str, rate: float, stop_at: threading.Event, sent: list[Sent],
            errors: list[tuple[float, str]], registry: Any) -> None:  # fmt: skip
    """Schedule to ``queue`` at ``rate`` jobs/s, one call at a time, each with an idempotency
    key; a call that failed is made again with the same key (never a second job)."""
    import switchyard_rq

    index = QUEUES.index(queue)
    actions = [f"bench.job_{i:02d}" for i in range(ACTIONS) if trivial_queue(i) == queue]
    period = 1.0 / rate
    t_next = time.monotonic()
    i = 0
    first: dict[str, float] = {}
    while not stop_at.is_set():
        delay = t_next - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        t_next = max(t_next + period, time.monotonic() - 1.0)  # catch up at most a second
        key = f"{queue}-{i}"
        began = first.setdefault(key, time.time())
        try:
            handle = switchyard_rq.schedule_action(
                actions[i % len(actions)], {"n": index * 10_000_000 + i}, key=key,
                registry=registry,
            )  # fmt: skip
        except (switchyard_rq.RedisUnavailableError, switchyard_rq.NotReplicatedError) as exc:
            errors.append((time.time(), type(exc).__name__))
            time.sleep(0.05)
            continue
        sent.append(Sent(queue, key, began, time.time(), handle.id))
        i += 1


@dataclass
class Failover:
    wait: str
    producer_s: float  # kill -> first acked schedule (made after the kill) to the victim queue
    finished_s: float  # kill -> the first such job finished
    others_gap_s: float  # the longest pause between finished jobs of the other queues
    others_acks_gap_s: float  # the longest pause between their acknowledged schedules
    acked: int
    lost: int
    errors: int
    restarted_s: float


def failover_once(folder: Path, env: dict[str, str], wait: str, rate: float,
                  before: float, after: float) -> Failover:  # fmt: skip
    import switchyard
    import switchyard_rq

    registry = switchyard.Registry.from_entry_points()
    topo = make_cluster(folder, replicas=1)
    os.environ["SWITCHYARD_REDIS_URL"] = env["SWITCHYARD_REDIS_URL"] = topo.url
    os.environ["SWITCHYARD_REDIS_WAIT_REPLICAS"] = wait
    log = folder / f"failover-worker-{wait}.log"
    cmd = [str(BIN / "switchyard-worker"), "--min", "2", "--max", "2", "--queues",
           ",".join(QUEUES), "--job-log", "failures"]  # fmt: skip
    stop_at = threading.Event()
    sent: list[Sent] = []
    errors: list[tuple[float, str]] = []
    with log.open("ab") as err:
        procs = [subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=err)]
    victim = topo.master_of("qa")
    print(f"failover: WAIT_REPLICAS={wait}, killing qa's master 127.0.0.1:{victim.port} "
          f"after {before:.0f} s", flush=True)  # fmt: skip
    restart_after = 3.0
    try:
        threads = [threading.Thread(target=produce, args=(q, rate / 3, stop_at, sent, errors,
                                                          registry)) for q in QUEUES]  # fmt: skip
        for thread in threads:
            thread.start()
        time.sleep(before)
        killed = time.time()
        victim.kill()
        timer = threading.Timer(restart_after, victim.start)
        timer.start()
        time.sleep(after)
        stop_at.set()
        for thread in threads:
            thread.join(60)
        timer.join()
        # every acknowledged job should finish: wait for them (at most 60 s)
        client = switchyard_rq.get_connection(topo.url)
        deadline = time.monotonic() + 60
        ended: dict[str, bytes | None] = {}
        while time.monotonic() < deadline:
            todo = [s for s in sent if ended.get(s.job_id) is None]
            if not todo:
                break
            with client.pipeline(transaction=False) as pipe:
                for s in todo:
                    pipe.hmget(f"rq:job:{s.job_id}", "status", "ended_at")
                for s, (status, at) in zip(todo, pipe.execute(), strict=True):
                    if status == b"finished":
                        ended[s.job_id] = at
            time.sleep(0.5)
    finally:
        stop_at.set()
        stop(procs)
        os.environ["SWITCHYARD_REDIS_WAIT_REPLICAS"] = "0"
        topo.close()

    def ts(raw: bytes) -> float:
        return datetime.fromisoformat(raw.decode().replace("Z", "+00:00")).timestamp()

    later = [s for s in sent if s.queue == "qa" and s.began >= killed]
    producer_s = min(s.acked for s in later) - killed if later else float("nan")
    done_later = [ts(ended[s.job_id]) for s in later if ended.get(s.job_id)]  # type: ignore[arg-type]
    finished_s = min(done_later) - killed if done_later else float("nan")
    gaps, acks = [0.0], [0.0]
    for q in ("qb", "qc"):
        stamps = sorted(ts(at) for s in sent if s.queue == q and (at := ended.get(s.job_id)))
        near = [t for t in stamps if killed - 1 <= t <= killed + after]
        gaps += [b - a for a, b in itertools.pairwise(near)]
        near = [s.acked for s in sent if s.queue == q and killed - 1 <= s.acked <= killed + after]
        acks += [b - a for a, b in itertools.pairwise(near)]
    lost = sum(1 for s in sent if ended.get(s.job_id) is None)
    return Failover(wait, producer_s, finished_s, max(gaps), max(acks), len(sent), lost,
                    len(errors), restart_after)  # fmt: skip


def failover_part(folder: Path, env: dict[str, str], reps: int, rate: float) -> list[Failover]:
    found = []
    for rep in range(reps):
        for wait in ("0", "1") if rep % 2 == 0 else ("1", "0"):
            result = failover_once(folder, env, wait, rate, before=4.0, after=8.0)
            found.append(result)
            print(
                f"rep {rep + 1}: failover, WAIT_REPLICAS={wait}: producer to qa again after "
                f"{result.producer_s:.2f} s, its jobs finished again after {result.finished_s:.2f}"
                f" s; other queues' longest pause: jobs finished {result.others_gap_s:.2f} s, "
                f"schedules acknowledged {result.others_acks_gap_s:.2f} s; {result.acked:,} "
                f"acknowledged, {result.lost} lost, {result.errors} failed calls (retried)",
                flush=True,
            )
    return found


def failover_table(results: list[Failover]) -> None:
    print(
        "\n| WAIT_REPLICAS | producer to the queue again, s | its jobs finish again, s | other "
        "queues: longest pause of finished jobs, s | of their schedules, s | acknowledged | lost "
        "| failed calls (retried) |"
    )
    print("| --- | --- | --- | --- | --- | ---: | ---: | ---: |")
    for wait in ("0", "1"):
        mine = [r for r in results if r.wait == wait]
        if not mine:
            continue

        def cell(values: list[float]) -> str:
            return f"{statistics.median(values):.2f} ({', '.join(f'{v:.2f}' for v in values)})"

        print(f"| {wait} | {cell([r.producer_s for r in mine])} | "
              f"{cell([r.finished_s for r in mine])} | {cell([r.others_gap_s for r in mine])} | "
              f"{cell([r.others_acks_gap_s for r in mine])} | "
              f"{sum(r.acked for r in mine):,} | {sum(r.lost for r in mine)} "
              f"({', '.join(str(r.lost) for r in mine)}) | "
              f"{sum(r.errors for r in mine)} |")  # fmt: skip


# ---------------------------------------------------------------------------- main


def uptime() -> str:
    return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--parts", default="run,durable,failover")
    parser.add_argument("--jobs", type=int, default=20_000, help="trivial jobs per run")
    parser.add_argument("--io-jobs", type=int, default=20_000, help="I/O-bound jobs per run")
    parser.add_argument(
        "--rate", type=float, default=200.0, help="failover: jobs/s over the 3 queues"
    )
    parser.add_argument("--keep", action="store_true", help="keep the temp folder (worker logs)")
    args = parser.parse_args()
    parts = set(args.parts.split(","))
    if not parts <= {"run", "durable", "failover"} or args.reps < 1:
        sys.exit(f"error: --parts takes run,durable,failover, not {args.parts!r}; --reps >= 1")
    Node.EXE = server_binary()
    before = uptime()
    print(f"before: {before}")
    tmp = Path(tempfile.mkdtemp(prefix="sy-cluster-"))
    workspace(tmp)
    os.chdir(tmp)  # the producer reads the workspace's routing; the worker runs here too
    sys.path[:0] = [str(tmp), str(HERE)]
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(
            [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
            + [str(tmp), str(HERE)]
        ),
        "SWITCHYARD_REDIS_WAIT_REPLICAS": "0",
    }
    os.environ["SWITCHYARD_REDIS_WAIT_REPLICAS"] = "0"
    works = [
        Workload("trivial", 16, args.jobs),
        Workload("io", 16, args.io_jobs),
        Workload("io", 64, args.io_jobs),
    ]
    runs: list[Run] = []
    durable: list[str] = []
    failovers: list[Failover] = []
    try:
        if "run" in parts:
            runs = run_part(tmp, env, args.reps, works)
        if "durable" in parts:
            durable = durable_part(tmp, args.reps, args.jobs, 1000)
        if "failover" in parts:
            failovers = failover_part(tmp, env, args.reps, args.rate)
    finally:
        for node in Node.ALL:
            with contextlib.suppress(Exception):
                node.close()
        if args.keep:
            print(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    if runs:
        run_table(runs, works)
    if durable:
        print("\n| Redis | WAIT_REPLICAS | schedule_many, jobs/s, median (runs) | "
              "schedule_action p50, ms, median (runs) |")  # fmt: skip
        print("| --- | ---: | --- | --- |")
        print("\n".join(durable))
    if failovers:
        failover_table(failovers)
    print(f"\nbefore: {before}\nafter:  {uptime()}")


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))  # stop the servers on SIGTERM too
    main()
