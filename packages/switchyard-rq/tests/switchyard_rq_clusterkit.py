"""Real Redis Cluster and Sentinel deployments for the tests: redis-server processes of the
test's own on loopback ports, stopped by PID (a uniquely named module, like the test kit)."""

from __future__ import annotations

import contextlib
import subprocess
import time
from pathlib import Path

import redis
from switchyard_rq_testkit import free_port, redis_server_binary


def _wait(check: object, what: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    last: object = None
    while time.monotonic() < deadline:
        try:
            if check():  # type: ignore[operator]
                return
        except (redis.ConnectionError, redis.ResponseError, OSError) as exc:
            last = exc
        time.sleep(0.05)
    raise RuntimeError(f"{what} within {timeout:.0f} s ({last})")


class Server:
    """One redis-server on a free port in ``ports``, with ``args``; data in ``folder``."""

    def __init__(
        self, folder: Path, ports: tuple[int, int], args: list[str], password: str | None = None
    ) -> None:
        self.port = free_port(*ports)
        self.password = password
        self.folder = folder / str(self.port)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.args = args
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.process = subprocess.Popen(
            [redis_server_binary(), "--port", str(self.port), "--bind", "127.0.0.1",
             "--dir", str(self.folder), "--save", "", "--appendonly", "no", *self.args],
            stdout=subprocess.DEVNULL,
        )  # fmt: skip
        _wait(self.client().ping, f"redis-server on {self.port} did not start")

    def kill(self) -> None:
        """kill -9: no goodbye to the cluster or the sentinels."""
        if self.process is not None:
            self.process.kill()
            self.process.wait(timeout=10)
            self.process = None

    def client(self) -> redis.Redis:
        return redis.Redis(port=self.port, password=self.password)


class LocalCluster:
    """A Redis Cluster of ``masters`` masters with one replica each (redis-cli --cluster create),
    failing a dead master over within about two seconds (cluster-node-timeout 1000 ms); the
    nodes serve their slots even while another's are down (cluster-require-full-coverage no).
    With ``password``, every node requires it."""

    def __init__(
        self,
        folder: Path,
        *,
        masters: int = 3,
        ports: tuple[int, int] = (7400, 7499),
        password: str | None = None,
    ) -> None:
        self.servers: list[Server] = []
        self.password = password
        auth = ["--requirepass", password, "--masterauth", password] if password else []
        for _ in range(masters * 2):
            server = Server(folder, ports, ["--cluster-enabled", "yes",
                                            "--cluster-node-timeout", "1000",
                                            "--cluster-require-full-coverage", "no",
                                            "--cluster-config-file", "nodes.conf", *auth],
                            password)  # fmt: skip
            server.start()  # started one by one: free_port sees the ports taken
            self.servers.append(server)
            ports = (server.port + 1, ports[1])
        self.masters = masters

    def create(self) -> None:
        nodes = [f"127.0.0.1:{s.port}" for s in self.servers]
        auth = ["-a", self.password, "--no-auth-warning"] if self.password else []
        subprocess.run(
            ["redis-cli", *auth, "--cluster", "create", *nodes, "--cluster-replicas", "1",
             "--cluster-yes"],
            check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        self.wait_ok()

    def wait_ok(self) -> None:
        def ok() -> bool:
            live = [s for s in self.servers if s.process is not None]
            return all(s.client().cluster("INFO")["cluster_state"] == "ok" for s in live)

        _wait(ok, "the cluster was not ok")

    @property
    def url(self) -> str:
        auth = f":{self.password}@" if self.password else ""
        return f"redis+cluster://{auth}" + ",".join(
            f"127.0.0.1:{s.port}" for s in self.servers[: self.masters]
        )

    def master_of(self, key: str) -> Server:
        """The server that is master of ``key``'s slot now."""
        slot = int(self.servers[0].client().execute_command("CLUSTER KEYSLOT", key))
        for server in self.servers:
            if server.process is None:
                continue
            for start, end, master, *_ in server.client().execute_command("CLUSTER SLOTS"):
                if start <= slot <= end:
                    port = int(master[1])
                    return next(s for s in self.servers if s.port == port)
        raise RuntimeError(f"no master for slot {slot}")

    def stop(self) -> None:
        for server in self.servers:
            with contextlib.suppress(Exception):
                server.kill()


class LocalSentinel:
    """A master, its replica and three sentinels watching it as ``mymaster`` (quorum 2), failing
    over a dead master within about two seconds."""

    def __init__(self, folder: Path, *, ports: tuple[int, int] = (7500, 7599)) -> None:
        # persistence on, as Redis's docs require of a Sentinel setup whose servers restart by
        # themselves: a master without it comes back empty, and its replica, told to follow it
        # again, empties itself too
        aof = ["--appendonly", "yes", "--appendfsync", "always"]
        self.master = Server(folder, ports, aof)
        self.master.start()
        follow = ["--replicaof", "127.0.0.1", str(self.master.port)]
        self.replica = Server(folder, (self.master.port + 1, ports[1]), [*aof, *follow])
        self.replica.start()
        self.sentinels: list[Server] = []
        low = self.replica.port + 1
        for _ in range(3):
            port = free_port(low, ports[1])
            conf = folder / f"sentinel-{port}.conf"
            conf.write_text(
                f"port {port}\nbind 127.0.0.1\n"
                f"sentinel monitor mymaster 127.0.0.1 {self.master.port} 2\n"
                "sentinel down-after-milliseconds mymaster 1000\n"
                "sentinel failover-timeout mymaster 5000\n"
            )
            sentinel = Server(folder, (port, port), [])
            sentinel.args = ["--sentinel"]
            sentinel.process = subprocess.Popen(
                [redis_server_binary(), str(conf), "--sentinel"], stdout=subprocess.DEVNULL
            )
            _wait(sentinel.client().ping, f"sentinel on {port} did not start")
            self.sentinels.append(sentinel)
            low = port + 1

        def synced() -> bool:
            info = self.master.client().info("replication")
            return int(info.get("connected_slaves", 0)) >= 1

        _wait(synced, "the replica did not sync")

        def known() -> bool:
            return all(
                int(s.client().execute_command("SENTINEL", "REPLICAS", "mymaster") != [])
                for s in self.sentinels
            )

        _wait(known, "the sentinels did not find the replica")

    @property
    def url(self) -> str:
        hosts = ",".join(f"127.0.0.1:{s.port}" for s in self.sentinels)
        return f"redis+sentinel://{hosts}/mymaster/0"

    def master_port(self) -> int:
        """The master's port, as the first sentinel says."""
        return self.master_ports()[0]

    def master_ports(self) -> list[int]:
        """The master's port as each sentinel says (they agree once a failover is known to
        all: restarting an old master before that lets a sentinel that has not heard of the
        failover turn the new master into its replica, emptying it)."""
        return [
            int(s.client().execute_command("SENTINEL", "GET-MASTER-ADDR-BY-NAME", "mymaster")[1])
            for s in self.sentinels
        ]

    def stop(self) -> None:
        for server in [*self.sentinels, self.replica, self.master]:
            with contextlib.suppress(Exception):
                server.kill()


def migrate_slot(cluster: LocalCluster, key: str, target: Server, *, pause: float = 0.0) -> int:
    """Move ``key``'s slot to master ``target`` as ``redis-cli --cluster reshard`` does:
    IMPORTING/MIGRATING, MIGRATE its keys ten at a time (``pause`` seconds between batches, for
    a migration that clients see half done), then the slot's new owner told to every master.
    Returns how many keys moved."""
    source = cluster.master_of(key)
    src, dst = source.client(), target.client()
    slot = int(src.execute_command("CLUSTER KEYSLOT", key))
    src_id = src.execute_command("CLUSTER MYID").decode()
    dst_id = dst.execute_command("CLUSTER MYID").decode()
    dst.execute_command("CLUSTER SETSLOT", slot, "IMPORTING", src_id)
    src.execute_command("CLUSTER SETSLOT", slot, "MIGRATING", dst_id)
    moved = 0
    auth = ["AUTH", cluster.password] if cluster.password else []
    while True:
        names = src.execute_command("CLUSTER GETKEYSINSLOT", slot, 10)
        if not names:
            break
        src.execute_command("MIGRATE", "127.0.0.1", target.port, "", 0, 5000, *auth, "KEYS",
                            *names)  # fmt: skip
        moved += len(names)
        time.sleep(pause)
    for server in cluster.servers:
        if server.process is not None:
            with contextlib.suppress(redis.ResponseError):
                server.client().execute_command("CLUSTER SETSLOT", slot, "NODE", dst_id)
    return moved
