"""Schedule firing jitter: how late after its tick a schedule fires, and its job starts.

Two ``switchyard-worker`` supervisors (one pool process each) share a private Redis; N schedules
(``[tool.switchyard.schedules]``, every second, overlap allow) fire a trivial action. Each second,
at tick + 0.7 s, the benchmark reads every schedule's last firing (``fired_at``, Redis's clock in
the firing script) and records ``fired_at - tick``; after the run it reads each firing job's
``started_at`` for ``started - tick``. The floor, measured alone in the same round: a thread
that sleeps until each whole second, as the scheduler does, and records how late it woke.

    uv run --all-packages python benchmarks/schedules.py                  # 3 rounds: 1 and 1,000
    uv run --all-packages python benchmarks/schedules.py --rounds 1 --seconds 6 --schedules 100

Prints one line per variant and round, then the medians and ranges over rounds, with the load
average (``os.getloadavg``) before and after each variant.
"""

from __future__ import annotations

import argparse
import json
import math
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
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import switchyard_rq

WORKER = Path(sys.executable).parent / "switchyard-worker"
PLUGIN = """
from pydantic import BaseModel
from switchyard import action


class Beat(BaseModel):
    n: int = 0


class Done(BaseModel):
    ok: bool = True


@action("sbench.beat")
def beat(data: Beat) -> Done:
    return Done()
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return math.nan
    index = min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))
    return ordered[index]


def write_plugin(root: Path) -> None:
    (root / "sbench_plugin.py").write_text(PLUGIN)
    dist = root / "sbench_plugin-0.1.dist-info"
    dist.mkdir(exist_ok=True)
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: sbench-plugin\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text(
        "[switchyard.actions]\nsbench.beat = sbench_plugin:beat\n"
    )


def write_project(root: Path, count: int) -> list[str]:
    names = [f"s{i:04d}" for i in range(count)]
    lines = ["[tool.switchyard]", "", "[tool.switchyard.schedules]"]
    lines += [
        f'{name} = {{ action = "sbench.beat", every = "1s", overlap = "allow", '
        f"data = {{ n = {i} }} }}"
        for i, name in enumerate(names)
    ]
    (root / "pyproject.toml").write_text("\n".join(lines) + "\n")
    return names


def floor(seconds: int) -> dict[str, Any]:
    """How late a thread that sleeps until each whole second wakes (the scheduler's wait)."""
    late: list[float] = []
    stop = threading.Event()
    end = math.floor(time.time()) + seconds + 1
    while True:
        tick = math.floor(time.time()) + 1
        if tick > end:
            break
        stop.wait(max(0.0, tick - time.time()))
        late.append(time.time() - tick)
    return {"fired": late, "started": []}


def run_variant(url: str, plugins: Path, project: Path, count: int, seconds: int) -> dict[str, Any]:
    client = switchyard_rq.get_connection(url)
    client.flushdb()
    names = write_project(project, count)
    env = {k: v for k, v in os.environ.items() if not k.startswith("SWITCHYARD_")}
    env["SWITCHYARD_REDIS_URL"] = url
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(plugins), env.get("PYTHONPATH")]))
    procs = [
        subprocess.Popen(
            [str(WORKER), "--min", "1", "--max", "1", "--no-metrics", "--job-log", "off"],
            cwd=project,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=(project / f"worker-{n}.log").open("w"),
        )
        for n in range(2)
    ]
    delays: list[float] = []
    try:
        deadline = time.monotonic() + 60
        while not client.exists("switchyard:scheduler:lease"):
            if time.monotonic() > deadline:
                raise RuntimeError("no scheduler took the lease")
            time.sleep(0.05)
        time.sleep(2.0)  # let the first pass settle
        for _ in range(seconds):
            tick = math.floor(time.time())
            time.sleep(max(0.0, tick + 0.7 - time.time()))
            pipe = client.pipeline(transaction=False)
            for name in names:
                pipe.hmget(f"switchyard:schedule:{name}", "tick", "fired_at")
            for fired_tick, fired_at in pipe.execute():
                if fired_tick is not None and float(fired_tick) == tick:
                    delays.append(float(fired_at) - tick)
            time.sleep(max(0.0, tick + 1.05 - time.time()))
    finally:
        for proc in procs:
            proc.send_signal(signal.SIGTERM)
        for proc in procs:
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
    started: list[float] = []
    keys = list(client.scan_iter(match="switchyard:key:schedule:*", count=5000))
    ids = client.mget(keys) if keys else []
    pipe = client.pipeline(transaction=False)
    for job in ids:
        pipe.hget(f"rq:job:{job.decode()}", "started_at")
    for key, stamp in zip(keys, pipe.execute(), strict=True):
        if stamp is None:
            continue
        stamp_text = key.decode().split(":", 4)[4]  # switchyard:key:schedule:<name>:<tick>
        if stamp_text.startswith("trigger-"):
            continue
        tick = datetime.strptime(stamp_text, "%Y-%m-%dT%H:%M:%S%z").timestamp()
        at = datetime.strptime(stamp.decode(), "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)
        started.append(at.timestamp() - tick)
    expected = count * seconds
    return {"fired": delays, "started": started, "expected": expected}


def summary(samples: list[float]) -> str:
    if not samples:
        return "-"
    ms = [s * 1000 for s in samples]
    return (f"p50 {percentile(ms, 0.5):7.1f} ms  p99 {percentile(ms, 0.99):7.1f} ms  "
            f"max {max(ms):7.1f} ms  n={len(ms)}")  # fmt: skip


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=int, default=12, help="seconds sampled per variant")
    parser.add_argument("--schedules", type=int, default=1000, help="the large variant's count")
    parser.add_argument("--json", metavar="PATH", help="write every sample here")
    args = parser.parse_args()
    exe = shutil.which("redis-server")
    if exe is None:
        print("needs redis-server on PATH", file=sys.stderr)
        return 2
    work = Path(tempfile.mkdtemp(prefix="sy-schedules-bench-"))
    port = free_port()
    server = subprocess.Popen(
        [exe, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
         "--dir", str(work)],
        stdout=subprocess.DEVNULL,
    )  # fmt: skip
    url = f"redis://127.0.0.1:{port}/0"
    results: dict[str, list[dict[str, Any]]] = {}
    try:
        time.sleep(0.3)
        plugins = work / "plugins"
        plugins.mkdir()
        write_plugin(plugins)
        project = work / "project"
        project.mkdir()
        variants = [
            ("floor", 0),
            ("1 schedule", 1),
            (f"{args.schedules} schedules", args.schedules),
        ]
        for number in range(1, args.rounds + 1):
            for label, count in variants:
                load_before = os.getloadavg()[0]
                if count == 0:
                    result = floor(args.seconds)
                else:
                    result = run_variant(url, plugins, project, count, args.seconds)
                result["load"] = (load_before, os.getloadavg()[0])
                results.setdefault(label, []).append(result)
                load = f"load {result['load'][0]:.2f}->{result['load'][1]:.2f}"
                line = f"round {number}  {label:<16} fired:   {summary(result['fired'])}  {load}"
                print(line, flush=True)
                if result["started"]:
                    print(f"{'':>25} started: {summary(result['started'])}", flush=True)
    finally:
        server.terminate()
        server.wait(10)
        shutil.rmtree(work, ignore_errors=True)
    print("\nover rounds (median of the per-round figure; range):")
    for label, runs in results.items():
        for kind in ("fired", "started"):
            if not runs[0][kind]:
                continue
            for name, q in (("p50", 0.5), ("p99", 0.99)):
                per_round = [percentile(r[kind], q) * 1000 for r in runs]
                print(f"  {label:<16} {kind:<8} {name}: {statistics.median(per_round):7.1f} ms "
                      f"({min(per_round):.1f}-{max(per_round):.1f})")  # fmt: skip
        if "expected" in runs[0]:
            seen = [len(r["fired"]) / r["expected"] for r in runs]
            print(f"  {label:<16} firings seen at tick + 0.7 s: "
                  f"{min(seen):.1%}-{max(seen):.1%} of schedules x seconds")  # fmt: skip
    loads = [v for runs in results.values() for r in runs for v in r["load"]]
    print(f"  load average (1 min) during the runs: {min(loads):.2f}-{max(loads):.2f}")
    if args.json:
        Path(args.json).write_text(json.dumps(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
