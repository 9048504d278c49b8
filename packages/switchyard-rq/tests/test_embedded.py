"""With no Redis URL: one embedded server per workspace, shared by its processes, data on disk."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
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
        assert switchyard_rq.get_connection(url).get("greeting") == b"hello"
    finally:
        shutdown(sock)
