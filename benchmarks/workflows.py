"""Workflow overhead and fan-out/fan-in: Switchyard's chain and chord against plain jobs and
against Celery's chain and chord, in one run (issue 16).

    uv run --all-packages --group bench python benchmarks/workflows.py

One dedicated redis-server (port 6432, no persistence) started here serves both systems, one
at a time: ``switchyard-worker --min 2 --max 2`` and ``celery worker --concurrency 2``
(prefork, acks late, Redis broker and result backend; benchmarks/celery-env). Trivial jobs
(x -> x + 1), so what is measured is the machinery:

  chain   a 10-step chain, scheduled and waited for from one client (schedule -> result), vs
          the same 10 jobs driven by the client (schedule one, wait, schedule the next) and
          10 independent jobs scheduled at once (schedule_many, wait for all)
  chord   a group of 10,000 jobs and a callback that sums their outputs, vs 10,000 plain jobs
          (schedule_many, wait for all), vs Celery's chord of the same shape

Each figure is repeated (``--reps``), the systems interleaved; prints medians and ranges and
the load average before and after.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

HERE = Path(__file__).resolve().parent
PORT = 6432
URL = f"redis://127.0.0.1:{PORT}/0"
CELERY_URL = f"redis://127.0.0.1:{PORT}/1"
BIN = Path(sys.executable).parent

sys.path.insert(0, str(HERE))
from throughput import RedisServer, write_dist_info  # noqa: E402


def loadavg() -> str:
    return " ".join(f"{v:.2f}" for v in os.getloadavg())


def celery_python() -> Path:
    project = HERE / "celery-env"
    subprocess.run(["uv", "sync", "--quiet", "--project", str(project)], check=True)
    return project / ".venv" / "bin"


def stop(procs: list[subprocess.Popen[bytes]]) -> None:
    for proc in procs:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
    for proc in procs:
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def timed(func: Callable[[], object]) -> float:
    began = time.perf_counter()
    func()
    return time.perf_counter() - began


def summary(name: str, values: list[float], unit: str = "ms") -> str:
    scale = 1000 if unit == "ms" else 1
    med = statistics.median(values) * scale
    return (
        f"| {name} | {med:,.1f} {unit} | {min(values) * scale:,.1f} - {max(values) * scale:,.1f}"
        f" {unit} | {len(values)} |"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=10, help="the chain's length (10)")
    parser.add_argument("--fan", type=int, default=10_000, help="the chord's width (10,000)")
    parser.add_argument("--chain-reps", type=int, default=30)
    parser.add_argument("--reps", type=int, default=3, help="chord repetitions (3)")
    parser.add_argument("--no-celery", action="store_true")
    args = parser.parse_args()
    print(f"load average before: {loadavg()}", flush=True)

    tmp = Path(tempfile.mkdtemp(prefix="sy-workflows-"))
    write_dist_info(
        tmp, module="workflows_actions", actions={"wfbench.add": "add", "wfbench.total": "total"}
    )
    os.chdir(tmp)
    sys.path[:0] = [str(tmp)]
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(tmp), str(HERE)]),
        "SWITCHYARD_REDIS_URL": URL,
        "WFBENCH_REDIS_URL": CELERY_URL,
    }
    os.environ.update(SWITCHYARD_REDIS_URL=URL)
    server = RedisServer(tmp, port=PORT)
    procs: list[subprocess.Popen[bytes]] = []
    try:
        import switchyard
        import switchyard_rq
        from switchyard_rq import chain, chord, group, step

        registry = switchyard.Registry.from_entry_points()
        conn = switchyard_rq.get_connection(URL)
        worker = subprocess.Popen(
            [str(BIN / "switchyard-worker"), "--min", "2", "--max", "2", "--queues", "default"],
            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        procs.append(worker)
        while int(conn.scard("rq:workers")) < 2:
            time.sleep(0.05)

        def sy_chain() -> None:
            links = [step("wfbench.add", {"x": 0}), *["wfbench.add"] * (args.steps - 1)]
            handle = chain(*links).schedule(registry=registry, connection=conn)
            assert handle.result(timeout=60).x == args.steps  # type: ignore[union-attr]

        def by_hand() -> None:
            x = 0
            for _ in range(args.steps):
                handle = switchyard_rq.schedule_action(
                    "wfbench.add", {"x": x}, registry=registry, connection=conn
                )
                x = handle.result(timeout=60).x  # type: ignore[attr-defined]
            assert x == args.steps

        def at_once(n: int) -> Callable[[], None]:
            def run() -> None:
                calls = [("wfbench.add", {"x": i}) for i in range(n)]
                handles = []
                for start in range(0, n, 1000):
                    handles += switchyard_rq.schedule_many(
                        calls[start : start + 1000], registry=registry, connection=conn
                    )
                results = switchyard_rq.gather(handles, timeout=600)
                assert sum(r.x for r in results) == sum(i + 1 for i in range(n))  # type: ignore[attr-defined]

            return run

        def sy_chord() -> None:
            members = group(step("wfbench.add", {"x": i}) for i in range(args.fan))
            handle = chord(members, "wfbench.total").schedule(registry=registry, connection=conn)
            assert handle.result(timeout=600).x == sum(i + 1 for i in range(args.fan))  # type: ignore[union-attr]

        for warm in (sy_chain, by_hand, at_once(args.steps)):
            warm()  # the worker's processes import the plugin
        chains: dict[str, list[float]] = {"chain": [], "by hand": [], "at once": []}
        for _ in range(args.chain_reps):
            chains["chain"].append(timed(sy_chain))
            chains["by hand"].append(timed(by_hand))
            chains["at once"].append(timed(at_once(args.steps)))
        print(f"\n{args.steps}-step chain, schedule -> result, {args.chain_reps} runs each "
              "(interleaved):\n")  # fmt: skip
        print("| what | median | range | runs |\n| --- | ---: | ---: | ---: |")
        print(summary(f"Switchyard chain of {args.steps}", chains["chain"]))
        print(summary(f"{args.steps} plain jobs, each waited for before the next (by hand)",
                      chains["by hand"]))  # fmt: skip
        print(summary(f"{args.steps} independent plain jobs at once", chains["at once"]))
        per_step = statistics.median(chains["chain"]) - statistics.median(chains["at once"])
        print(f"\nchain overhead over {args.steps} plain jobs at once: "
              f"{per_step * 1000:,.1f} ms ({per_step / args.steps * 1000:,.2f} ms a step)",
              flush=True)  # fmt: skip

        chords: dict[str, list[float]] = {"chord": [], "plain": [], "celery": []}
        celery: list[subprocess.Popen[bytes]] = []
        cbin = None if args.no_celery else celery_python()
        for rep in range(args.reps):
            chords["chord"].append(timed(sy_chord))
            conn.flushdb()  # keep memory flat: 10,000 results a run
            chords["plain"].append(timed(at_once(args.fan)))
            conn.flushdb()
            print(f"rep {rep + 1}: chord {chords['chord'][-1]:.2f} s, plain "
                  f"{chords['plain'][-1]:.2f} s", flush=True)  # fmt: skip
        stop([worker])
        if cbin is not None:
            celery_env = {**env, "PYTHONPATH": str(HERE)}
            celery.append(
                subprocess.Popen(
                    [
                        str(cbin / "celery"),
                        "-A",
                        "workflows_celery",
                        "worker",
                        "--concurrency",
                        "2",
                        "--pool",
                        "prefork",
                        "--loglevel",
                        "WARNING",
                        "--without-gossip",
                        "--without-mingle",
                        "--without-heartbeat",
                    ],
                    env=celery_env,
                    cwd=HERE,
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
            )
            procs += celery
            time.sleep(3)  # the worker's processes start
            for kind, size, reps in (("chain", args.steps, args.chain_reps),
                                     ("chord", args.fan, args.reps)):  # fmt: skip
                out = subprocess.run(
                    [str(cbin / "python"), str(HERE / "workflows_celery.py"), kind, str(size),
                     str(reps + (1 if kind == "chain" else 0))],
                    env=celery_env, capture_output=True, text=True, check=True, cwd=HERE,
                )  # fmt: skip
                values = [json.loads(line)["seconds"] for line in out.stdout.splitlines()]
                chords["celery " + kind] = values[1:] if kind == "chain" else values
            stop(celery)
        print(f"\nfan-out/fan-in of {args.fan:,} jobs, schedule -> result, {args.reps} runs "
              "each:\n")  # fmt: skip
        print("| what | median | range | runs |\n| --- | ---: | ---: | ---: |")
        print(summary(f"Switchyard chord ({args.fan:,} + 1)", chords["chord"], "s"))
        print(summary(f"Switchyard {args.fan:,} plain jobs (schedule_many + gather)",
                      chords["plain"], "s"))  # fmt: skip
        if "celery chord" in chords:
            print(summary(f"Celery chord ({args.fan:,} + 1)", chords["celery chord"], "s"))
            print(f"\nCelery chain of {args.steps}, {args.chain_reps} runs (after one warm-up):")
            print(summary(f"Celery chain of {args.steps}", chords["celery chain"]))
        print(f"\nload average after: {loadavg()}")
    finally:
        stop(procs)
        server.close()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
