"""Redis Cluster: which client is one, and the names a queue's keys take on it.

On a cluster every script must touch keys of one hash slot. Switchyard gives each queue a hash
tag: on a cluster the queue ``emails`` is ``{emails}`` on the wire, so that RQ's keys built from
it (``rq:queue:{emails}``, ``rq:wip:{emails}``, ...) all hash to one slot; its jobs' ids start
with the same tag (``{emails}3f2a...``), so that ``rq:job:<id>`` lands beside them. On a single
server nothing changes: the names are RQ's own.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Sequence
from typing import Any, Final

import redis

__all__ = [
    "elsewhere",
    "is_cluster",
    "node_client",
    "node_name",
    "plain_queue",
    "refresh",
    "routed_roundtrip",
    "wire_queue",
]


def is_cluster(client: Any) -> bool:
    """Whether ``client`` talks to a Redis Cluster (a ``redis.RedisCluster``)."""
    return isinstance(client, redis.RedisCluster)


def wire_queue(name: str, cluster: bool) -> str:
    """The name queue ``name`` has in Redis keys: itself, or its hash tag on a cluster."""
    return f"{{{name}}}" if cluster and not name.startswith("{") else name


def plain_queue(wire: str) -> str:
    """The queue's own name, from its wire name (for people: top, stats, the CLI)."""
    return wire[1:-1] if wire.startswith("{") and wire.endswith("}") else wire


# -- sending packed commands to the nodes that hold their keys --------------------------------

#: replies that say "not here, not now": the command did not run; send it again where (and when)
#: the cluster says. MovedError is an AskError.
_ELSEWHERE = (
    redis.exceptions.AskError,
    redis.exceptions.TryAgainError,
    redis.exceptions.ClusterDownError,
)
_NOT_LOCAL = "non local key"  # a script met a key whose slot is migrating away (it stopped)
_TRANSIENT = (redis.ConnectionError, redis.TimeoutError)


def elsewhere(reply: Any) -> bool:
    """Whether an error reply means the command (or script) must go to another node, or wait
    for a slot's migration or a failover (it did not run; a script stopped at that key)."""
    return isinstance(reply, _ELSEWHERE) or (
        isinstance(reply, redis.ResponseError) and _NOT_LOCAL in str(reply)
    )


def node_client(cluster: Any, key: str) -> redis.Redis:
    """The client of the node that serves ``key``'s slot now (as the cluster client knows it)."""
    client: redis.Redis = cluster.get_redis_connection(cluster.get_node_from_key(key))
    return client


def node_name(cluster: Any, key: str) -> str:
    """``host:port`` of the master that serves ``key``'s slot now, as the client knows it."""
    name: str = cluster.get_node_from_key(key).name
    return name


def refresh(cluster: Any) -> None:
    """Learn the cluster's slots and nodes again (after MOVED, a failover, a dead node)."""
    cluster.nodes_manager.initialize()


def routed_roundtrip(
    cluster: Any,
    commands: Sequence[tuple[str, bytes]],
    *,
    budget: float,
    trailer: bytes | None = None,
    trailed: list[Any] | None = None,
) -> list[Any]:
    """Send packed ``commands`` (each with the key that routes it) to the nodes that serve their
    slots, one write per node, in order within each node; read one reply each (an error reply
    becomes the exception in its place). Commands the cluster sends elsewhere (MOVED, ASK,
    TRYAGAIN, CLUSTERDOWN) or whose node did not answer are sent again, after learning the
    cluster's layout anew, until ``budget`` seconds have passed; then the last such error is
    raised (a connection error) or returned in place. ``trailer`` (a packed command, e.g.
    ``WAIT``) follows the commands on each connection that carried some, and its replies go
    into ``trailed`` (``WAIT`` counts the writes of its own connection only)."""
    replies: list[Any] = [None] * len(commands)
    todo = list(range(len(commands)))
    deadline = time.monotonic() + budget
    pause = 0.02
    while True:
        asked: dict[tuple[str, int], list[int]] = {}
        again: list[int] = []
        failure: Exception | None = None
        groups: dict[str, tuple[redis.Redis, list[int]]] = {}
        try:
            for i in todo:
                node = cluster.get_node_from_key(commands[i][0])
                groups.setdefault(node.name, (cluster.get_redis_connection(node), []))[1].append(i)
        except redis.exceptions.SlotNotCoveredError as exc:
            failure, again = exc, todo
            groups = {}
        for client, indexes in groups.values():
            try:
                got = _once(client, [commands[i][1] for i in indexes], trailer, trailed)
            except _TRANSIENT as exc:
                failure = exc
                again += indexes
                continue
            for i, reply in zip(indexes, got, strict=True):
                if isinstance(reply, redis.exceptions.AskError) and not isinstance(
                    reply, redis.exceptions.MovedError
                ):
                    asked.setdefault((reply.host, reply.port), []).append(i)
                elif elsewhere(reply):
                    again.append(i)
                    replies[i] = reply
                else:
                    replies[i] = reply
        for (host, port), indexes in asked.items():  # a slot migrating: ASKING, then the command
            target = cluster.get_redis_connection(cluster.get_node(host, port) or _node(host, port))
            try:
                got = _once(
                    target, [_ASKING + commands[i][1] for i in indexes], trailer, trailed, per=2
                )
            except _TRANSIENT as exc:
                failure = exc
                again += indexes
                continue
            for i, reply in zip(indexes, got, strict=True):
                replies[i] = reply
                if elsewhere(reply):
                    again.append(i)
        if not again:
            return replies
        if time.monotonic() + pause > deadline:
            if failure is not None and not isinstance(failure, redis.ResponseError):
                raise failure
            return replies
        time.sleep(pause)
        pause = min(pause * 2, 0.5)
        with contextlib.suppress(*_TRANSIENT, redis.exceptions.RedisClusterException):
            refresh(cluster)
        todo = sorted(again)


_ASKING: Final = b"*1\r\n$6\r\nASKING\r\n"


def _node(host: str, port: int) -> Any:
    node: Any = redis.cluster.ClusterNode  # untyped in redis's stubs
    return node(host, port)


def _once(
    client: redis.Redis,
    commands: list[bytes],
    trailer: bytes | None,
    trailed: list[Any] | None,
    *,
    per: int = 1,
) -> list[Any]:
    """One write, then ``per`` replies per command, keeping each command's last (``per`` = 2:
    after an ASKING); ``trailer``'s reply, if any, into ``trailed``."""
    pool = client.connection_pool
    conn = pool.get_connection()
    try:
        conn.send_packed_command([b"".join(commands) + (trailer or b"")])  # type: ignore[no-untyped-call]
        replies: list[Any] = []
        for _ in commands:
            for _ in range(per):
                try:
                    reply = conn.read_response()
                except redis.ResponseError as exc:
                    reply = exc
            replies.append(reply)
        if trailer is not None:
            try:
                last = conn.read_response()
            except redis.ResponseError as exc:
                last = exc
            if trailed is not None:
                trailed.append(last)
        return replies
    except BaseException:
        conn.disconnect()  # type: ignore[no-untyped-call]
        raise
    finally:
        pool.release(conn)
