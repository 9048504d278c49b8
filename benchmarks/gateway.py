"""The HTTP gateway against a minimal FastAPI endpoint doing the same validation (issue 17).

    uv run --all-packages --group bench python benchmarks/gateway.py [--rounds 5] [--seconds 8]

Every server runs 2 processes (uvicorn ``--workers 2``, uvloop + httptools) on one dedicated
redis-server started here; the load generator is Debian's ``wrk`` (1 thread, 64 connections,
keep-alive), the same for every variant, interleaved round by round:

  (a) fastapi   ``POST /v1/actions/{name}``: a pydantic body model, the model returned
  (b) gateway   ``switchyard-gateway --workers 2``, ``POST /v1/actions/bench.echo``: the action
                runs in the gateway (``acall_action``: input and output validated)
  (c) async     the same gateway, ``Prefer: respond-async``: the job is scheduled
                (``schedule_action``, one Redis round trip) and 202 answered; no worker runs
  (d) starlette the FastAPI endpoint's work on bare Starlette (for scale: what a framework costs)

Reported per variant: requests/s and p99 latency (median and range over the rounds), and the
servers' CPU time per request (utime + stime of the server processes over the run, from /proc,
divided by the requests). The gateway's overhead over ``call_action`` is its CPU per request
minus what ``call_action`` costs in one process for the same JSON (measured here with timeit).
``uptime``'s load average is printed before and after.

``--startup`` measures instead how long each server takes from its command to its first answer
(``/healthz`` for the gateway, ``/readyz`` for a 2-process worker, any answer for uvicorn with
the FastAPI or Starlette app), ``--rounds`` times each, interleaved.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

BIN = Path(sys.executable).parent

PLUGIN = """
from pydantic import BaseModel

from switchyard import action


class Text(BaseModel):
    text: str
    count: int = 1


@action("bench.echo")
def echo(data: Text) -> Text:
    return data
"""

FASTAPI_APP = """
from fastapi import FastAPI
from pydantic import BaseModel


class Text(BaseModel):
    model_config = {"extra": "forbid"}
    text: str
    count: int = 1


app = FastAPI()


@app.post("/v1/actions/{name}")
async def run(name: str, data: Text) -> Text:
    return data
"""

STARLETTE_APP = """
from pydantic import BaseModel
from starlette.applications import Starlette
from starlette.responses import Response
from starlette.routing import Route


class Text(BaseModel):
    model_config = {"extra": "forbid"}
    text: str
    count: int = 1


async def run(request):
    data = Text.model_validate_json(await request.body())
    return Response(data.model_dump_json(), media_type="application/json")


app = Starlette(routes=[Route("/v1/actions/{name}", run, methods=["POST"])])
"""

BODY = '{"text": "hello, gateway", "count": 3}'


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_http(port: int, path: str, timeout: float = 30.0) -> None:
    import http.client

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
            conn.request("GET", path)
            conn.getresponse().read()
            return
        except OSError:
            time.sleep(0.05)
    raise SystemExit(f"nothing answered on port {port}")


def family(pid: int) -> list[int]:
    """``pid`` and its descendants."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError, IndexError, ValueError):
                parents[int(entry.name)] = int(
                    (entry / "stat").read_text().rsplit(")", 1)[1].split()[1]
                )
    found = [pid]
    for current in found:
        found.extend(child for child, parent in parents.items() if parent == current)
    return found


def cpu_seconds(pids: list[int]) -> float:
    tick = os.sysconf("SC_CLK_TCK")
    total = 0
    for pid in pids:
        with contextlib.suppress(OSError):
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])
    return total / tick


def wrk(port: int, path: str, seconds: float, headers: dict[str, str], folder: Path) -> dict:
    script = folder / "post.lua"
    lines = ['wrk.method = "POST"', f"wrk.body = '{BODY}'"]
    every = {"Content-Type": "application/json", **headers}
    lines += [f'wrk.headers["{k}"] = "{v}"' for k, v in every.items()]
    script.write_text("\n".join(lines) + "\n")
    out = subprocess.run(
        ["wrk", "-t1", "-c64", f"-d{seconds:g}s", "--latency", "-s", str(script),
         f"http://127.0.0.1:{port}{path}"],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    total = int(re.search(r"(\d+) requests in", out).group(1))
    p99_text = re.search(r"99%\s+([\d.]+)(us|ms|s)", out)
    scale = {"us": 1e-3, "ms": 1.0, "s": 1000.0}[p99_text.group(2)]
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return {
        "rps": rps,
        "requests": total,
        "p99_ms": float(p99_text.group(1)) * scale,
        "non_2xx": int(bad.group(1)) if bad else 0,
    }


def call_action_us(plugin_dir: Path) -> float:
    """What call_action costs per call in one process (same JSON text), microseconds."""
    code = textwrap.dedent(
        f"""
        import sys, timeit, statistics
        sys.path.insert(0, {str(plugin_dir)!r})
        from switchyard import call_action
        body = {BODY!r}
        call_action("bench.echo", body)
        runs = [min(timeit.repeat(lambda: call_action("bench.echo", body), number=20000, repeat=3))
                / 20000 for _ in range(3)]
        print(statistics.median(runs) * 1e6)
        """
    )
    env = {**os.environ, "PYTHONPATH": str(plugin_dir)}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    if out.returncode:
        raise SystemExit(out.stderr)
    return float(out.stdout.strip())


def first_answer(command: list[str], port: int, path: str, env: dict[str, str], cwd: Path) -> float:
    """Seconds from starting ``command`` to its first HTTP answer on ``path`` (200 for the
    health routes, any status otherwise); the server is stopped after."""
    import http.client

    started = time.perf_counter()
    proc = subprocess.Popen(command, env=env, cwd=cwd, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)  # fmt: skip
    try:
        while True:
            try:
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
                conn.request("GET", path)
                status = conn.getresponse().status
                if status == 200 or not path.endswith("z"):
                    return time.perf_counter() - started
            except OSError:
                pass
            if proc.poll() is not None or time.perf_counter() - started > 60:
                raise SystemExit(f"{command[0]} did not answer on port {port}")
            time.sleep(0.002)
    finally:
        for pid in reversed(family(proc.pid)):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
        proc.wait(30)


def startup(rounds: int, env: dict[str, str], folder: Path) -> None:
    uvicorn = [sys.executable, "-m", "uvicorn", "--loop", "uvloop", "--http", "httptools",
               "--log-level", "warning"]  # fmt: skip
    variants = {
        "switchyard-gateway (to /healthz)": (
            [str(BIN / "switchyard-gateway")],
            "--port",
            "/healthz",
        ),
        "switchyard-worker, 2 processes (to /readyz)": (
            [str(BIN / "switchyard-worker"), "--min", "2", "--max", "2"],
            "--health-port",
            "/readyz",
        ),
        "uvicorn + FastAPI app": ([*uvicorn, "bench_fastapi:app"], "--port", "/"),
        "uvicorn + Starlette app": ([*uvicorn, "bench_starlette:app"], "--port", "/"),
    }
    times: dict[str, list[float]] = {name: [] for name in variants}
    before = load()
    for number in range(rounds):
        order = list(variants)
        random.Random(number).shuffle(order)
        for name in order:
            command, flag, path = variants[name]
            port = free_port()
            times[name].append(first_answer([*command, flag, str(port)], port, path, env, folder))
    after = load()
    print(f"\nload before: {before}\nload after:  {after}\n")
    print("| server | command to first answer, median (range), ms |")
    print("| --- | --- |")
    for name, found in times.items():
        ms = sorted(t * 1000 for t in found)
        print(f"| {name} | {statistics.median(ms):.0f} ({ms[0]:.0f}-{ms[-1]:.0f}) |")


def load() -> str:
    return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--json", metavar="FILE", help="also write the raw runs here")
    parser.add_argument("--startup", action="store_true", help="measure start-up instead")
    args = parser.parse_args()
    for tool in ("wrk", "redis-server"):
        if shutil.which(tool) is None:
            raise SystemExit(f"{tool} is needed (Debian package {tool})")
    folder = Path(tempfile.mkdtemp(prefix="bench-gateway-"))
    plugin = folder / "plugin"
    plugin.mkdir()
    (plugin / "bench_plugin.py").write_text(PLUGIN)
    dist = plugin / "bench_plugin-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: bench-plugin\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text("[switchyard.actions]\nbench.echo = bench_plugin:echo\n")
    (folder / "bench_fastapi.py").write_text(FASTAPI_APP)
    (folder / "bench_starlette.py").write_text(STARLETTE_APP)

    redis_port = free_port()
    redis_proc = subprocess.Popen(
        ["redis-server", "--port", str(redis_port), "--bind", "127.0.0.1", "--save", "",
         "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
    )  # fmt: skip
    env = {k: v for k, v in os.environ.items() if not k.startswith("SWITCHYARD_")}
    env["SWITCHYARD_REDIS_URL"] = f"redis://127.0.0.1:{redis_port}/0"
    env["PYTHONPATH"] = os.pathsep.join([str(plugin), str(folder)])
    servers: dict[str, tuple[subprocess.Popen[bytes], int]] = {}
    if args.startup:
        try:
            startup(args.rounds, env, folder)
        finally:
            redis_proc.terminate()
            redis_proc.wait(10)
            shutil.rmtree(folder, ignore_errors=True)
        return
    uvicorn_args = ["--workers", "2", "--loop", "uvloop", "--http", "httptools",
                    "--no-access-log", "--log-level", "warning"]  # fmt: skip
    try:
        port = free_port()
        servers["gateway"] = (
            subprocess.Popen(
                [str(BIN / "switchyard-gateway"), "--workers", "2", "--port", str(port)],
                env=env, cwd=folder, stdout=subprocess.DEVNULL,
            ),
            port,
        )  # fmt: skip
        for name, module in (("fastapi", "bench_fastapi"), ("starlette", "bench_starlette")):
            port = free_port()
            servers[name] = (
                subprocess.Popen(
                    [sys.executable, "-m", "uvicorn", f"{module}:app", "--port", str(port),
                     *uvicorn_args],
                    env=env, cwd=folder,
                ),
                port,
            )  # fmt: skip
        for _, port in servers.values():
            wait_http(port, "/")
        time.sleep(2)  # both processes of each server up
        variants = {
            "fastapi": ("fastapi", "/v1/actions/bench.echo", {}),
            "gateway": ("gateway", "/v1/actions/bench.echo", {}),
            "async": ("gateway", "/v1/actions/bench.echo", {"Prefer": "respond-async"}),
            "starlette": ("starlette", "/v1/actions/bench.echo", {}),
        }
        import redis  # noqa: TID251 - the benchmark empties its own Redis between runs

        client = redis.Redis(port=redis_port)
        for server, path, headers in variants.values():  # warm-up: imports, first calls
            wrk(servers[server][1], path, 1, headers, folder)
        before = load()
        runs: dict[str, list[dict]] = {name: [] for name in variants}
        for number in range(args.rounds):
            order = list(variants)
            random.Random(number).shuffle(order)
            for name in order:
                server, path, headers = variants[name]
                proc, port = servers[server]
                client.flushdb()
                pids = family(proc.pid)
                cpu = cpu_seconds(pids)
                result = wrk(port, path, args.seconds, headers, folder)
                result["cpu_us"] = (cpu_seconds(pids) - cpu) / result["requests"] * 1e6
                runs[name].append(result)
                print(f"round {number + 1} {name:10} {result['rps']:9.0f} req/s  "
                      f"p99 {result['p99_ms']:6.2f} ms  cpu {result['cpu_us']:5.0f} us/req"
                      f"  non-2xx {result['non_2xx']}", file=sys.stderr)  # fmt: skip
        after = load()
        base_us = call_action_us(plugin)
    finally:
        for proc, _ in servers.values():
            for pid in reversed(family(proc.pid)):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(10)
        redis_proc.terminate()
        redis_proc.wait(10)
        shutil.rmtree(folder, ignore_errors=True)

    def span(values: list[float], fmt: str) -> str:
        low, high = fmt.format(min(values)), fmt.format(max(values))
        return f"{fmt.format(statistics.median(values))} ({low}-{high})"

    print(f"\nload before: {before}\nload after:  {after}\n")
    print(f"{args.rounds} rounds x {args.seconds:g} s, wrk -t1 -c64, 2 server processes each\n")
    print("| variant | requests/s, median (range) | p99 ms, median (range) | server CPU us/req |")
    print("| --- | --- | --- | --- |")
    for name, results in runs.items():
        print(
            f"| {name} | {span([r['rps'] for r in results], '{:,.0f}')} | "
            f"{span([r['p99_ms'] for r in results], '{:.2f}')} | "
            f"{span([r['cpu_us'] for r in results], '{:.0f}')} |"
        )
    gateway_cpu = statistics.median(r["cpu_us"] for r in runs["gateway"])
    print(f"\ncall_action in one process (same JSON): {base_us:.1f} us/call")
    print(f"gateway overhead over call_action (server CPU per request - call_action): "
          f"{gateway_cpu - base_us:.0f} us")  # fmt: skip
    if args.json:
        Path(args.json).write_text(
            json.dumps({"runs": runs, "call_action_us": base_us, "load": [before, after]}, indent=1)
        )


if __name__ == "__main__":
    main()
