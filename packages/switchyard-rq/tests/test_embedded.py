"""With no Redis URL: one embedded server per workspace, shared by its processes, data on disk."""

from __future__ import annotations

import hashlib
import os
import shutil
import socket
import stat
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from switchyard_rq_testkit import env_without_redis  # type: ignore[import-not-found]

import switchyard_rq

SCRIPT = """
import sys, switchyard_rq
client = switchyard_rq.get_connection()
if sys.argv[1] == "set":
    client.set("greeting", "hello")
print(switchyard_rq.redis_url())
print((client.get("greeting") or b"").decode())
"""


def shutdown(sock: Path) -> None:
    """SHUTDOWN over the socket, without a client's reconnect-and-retry after it closes."""
    try:
        with socket.socket(socket.AF_UNIX) as conn:
            conn.settimeout(5)
            conn.connect(str(sock))
            conn.sendall(b"*1\r\n$8\r\nSHUTDOWN\r\n")
            conn.recv(64)
    except OSError:
        pass
    deadline = time.monotonic() + 5
    while sock.exists() and time.monotonic() < deadline:
        time.sleep(0.02)


def run(workspace: Path, mode: str) -> list[str]:
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT, mode],
        cwd=workspace,
        env=env_without_redis(),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.splitlines()


def test_embedded_redis_is_shared_and_persistent(tmp_path, monkeypatch):
    workspace = tmp_path / "ws"
    (workspace / "sub").mkdir(parents=True)
    (workspace / "pyproject.toml").write_text('[tool.switchyard]\ndefault-queue = "default"\n')
    sock = workspace / ".switchyard" / "redis.sock"
    try:
        url, value = run(workspace, "set")
        assert url == f"unix://{sock}?db=0"
        assert value == "hello"
        # another process of the project (from a subfolder) finds the same server
        assert run(workspace / "sub", "get") == [url, "hello"]
        assert (workspace / ".switchyard" / "redis.pid").exists()
        assert sock.stat().st_mode & 0o077 == 0  # owner-only socket
        shutdown(sock)
        assert not sock.exists()
        assert list((workspace / ".switchyard" / "redis").rglob("*.aof*"))
        # started again on next use (here, in this process), with the data it had
        monkeypatch.chdir(workspace)
        for name in [k for k in os.environ if k.startswith("SWITCHYARD_")]:
            monkeypatch.delenv(name)
        assert switchyard_rq.redis_url() == url
        client = switchyard_rq.get_connection(url)
        assert client.get("greeting") == b"hello"
        # job hashes keep Redis's compact encoding up to 1 KB a field (memory per job)
        assert client.config_get("hash-max-*-value") in (
            {"hash-max-ziplist-value": "1024"},
            {"hash-max-listpack-value": "1024", "hash-max-ziplist-value": "1024"},
        )
    finally:
        shutdown(sock)


def modes(state: Path) -> dict[str, int]:
    """The permission bits of the embedded Redis's folders and files under ``state``."""
    paths = [state, state / "redis", *sorted((state / "redis").rglob("*"))]
    paths += [state / n for n in ("redis.log", "redis.pid", "redis.lock") if (state / n).exists()]
    return {str(p.relative_to(state.parent)): stat.S_IMODE(p.stat().st_mode) for p in paths}


def test_embedded_redis_data_is_its_owners_alone(tmp_path):
    """Every job's input and result is in there: no other local user may read any of it."""
    workspace = tmp_path / "ws"
    workspace.mkdir()
    (workspace / "pyproject.toml").write_text("[tool.switchyard]\n")
    state = workspace / ".switchyard"
    top = 0o711 if os.geteuid() == 0 else 0o700  # root: switchyard-db's PostgreSQL passes it
    try:
        run(workspace, "set")
        found = modes(state)
        assert found.pop(".switchyard") == top
        assert any("aof" in name for name in found), found
        assert {n: m for n, m in found.items() if m not in (0o700, 0o600)} == {}
        assert all(m == 0o600 for n, m in found.items() if not (workspace / n).is_dir())

        # what an older version left: readable by anyone; tightened on next use, and said
        shutdown(state / "redis.sock")
        for path in [state, *state.rglob("*")]:
            if not path.is_socket():
                path.chmod(0o755 if path.is_dir() else 0o644)
        done = subprocess.run(
            [sys.executable, "-c", SCRIPT, "get"], cwd=workspace, env=env_without_redis(),
            capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        assert done.stdout.splitlines()[1] == "hello"  # the data is still there
        assert "readable by other users; made owner-only" in done.stderr
        again = modes(state)
        assert again.pop(".switchyard") == top
        assert {n: m for n, m in again.items() if m not in (0o700, 0o600)} == {}
    finally:
        shutdown(state / "redis.sock")


LONG = "a-workspace-folder-whose-name-is-long-enough-" * 2


def test_a_long_workspace_path_gets_a_private_socket_folder_no_one_can_take_first(tmp_path):
    workspace = tmp_path / LONG / "ws"
    workspace.mkdir(parents=True)
    (workspace / "pyproject.toml").write_text("[tool.switchyard]\n")
    assert len(str(workspace / ".switchyard" / "redis.sock")) > 100
    # another local user listens first where older versions put the socket: a name anyone
    # could work out from the workspace's path
    digest = hashlib.sha1(str(workspace.resolve()).encode()).hexdigest()[:16]
    trap = Path(tempfile.gettempdir()) / f"switchyard-{digest}.sock"
    server = socket.socket(socket.AF_UNIX)
    server.bind(str(trap))
    server.listen()
    taken: list[bytes] = []

    def answer() -> None:
        while True:
            try:
                conn, _ = server.accept()
            except OSError:
                return
            with conn:
                taken.append(conn.recv(1024))
                conn.sendall(b"+PONG\r\n")

    threading.Thread(target=answer, daemon=True).start()
    url = None
    try:
        url, value = run(workspace, "set")
        sock = Path(url.removeprefix("unix://").split("?")[0])
        assert sock != trap
        assert taken == []
        assert value == "hello"
        folder = sock.parent.lstat()
        assert stat.S_ISDIR(folder.st_mode)
        assert stat.S_IMODE(folder.st_mode) == 0o700
        assert folder.st_uid == os.geteuid()
        assert sock.parent.name.startswith("switchyard-redis-")  # mkdtemp's unguessable name
        recorded = (workspace / ".switchyard" / "redis.socket").read_text().strip()
        assert recorded == str(sock.parent)
        assert run(workspace, "get") == [url, "hello"]  # found again by the next process
    finally:
        server.close()
        trap.unlink(missing_ok=True)
        if url is not None:
            sock = Path(url.removeprefix("unix://").split("?")[0])
            shutdown(sock)
            if sock.parent != trap.parent:
                shutil.rmtree(sock.parent, ignore_errors=True)


def test_no_embedded_redis_outside_a_workspace(tmp_path):
    """A producer outside any workspace would fill a Redis of its own that no worker reads."""
    done = subprocess.run(
        [sys.executable, "-m", "switchyard", "schedule", "text.slugify", "--data", '{"text": "x"}'],
        cwd=tmp_path, env=env_without_redis(), capture_output=True, text=True, timeout=60,
        check=False,
    )  # fmt: skip
    try:
        assert done.returncode == 1, done.stdout
        assert done.stderr.startswith(
            f"error: no Redis for {tmp_path}: SWITCHYARD_REDIS_URL is not set and no workspace "
            "encloses this folder"
        ), done.stderr
        assert "set SWITCHYARD_REDIS_URL=redis://HOST:6379/0" in done.stderr
        assert done.stderr.count("\n") == 1
        assert not (tmp_path / ".switchyard").exists()
    finally:
        shutdown(tmp_path / ".switchyard" / "redis.sock")
