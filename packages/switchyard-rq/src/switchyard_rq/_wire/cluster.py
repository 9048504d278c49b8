"""Redis Cluster: which client is one, and the names a queue's keys take on it.

On a cluster every script must touch keys of one hash slot. Switchyard gives each queue a hash
tag: on a cluster the queue ``emails`` is ``{emails}`` on the wire, so that RQ's keys built from
it (``rq:queue:{emails}``, ``rq:wip:{emails}``, ...) all hash to one slot; its jobs' ids start
with the same tag (``{emails}3f2a...``), so that ``rq:job:<id>`` lands beside them. On a single
server nothing changes: the names are RQ's own.
"""

from __future__ import annotations

from typing import Any

import redis

__all__ = ["is_cluster", "plain_queue", "wire_queue"]


def is_cluster(client: Any) -> bool:
    """Whether ``client`` talks to a Redis Cluster (a ``redis.RedisCluster``)."""
    return isinstance(client, redis.RedisCluster)


def wire_queue(name: str, cluster: bool) -> str:
    """The name queue ``name`` has in Redis keys: itself, or its hash tag on a cluster."""
    return f"{{{name}}}" if cluster and not name.startswith("{") else name


def plain_queue(wire: str) -> str:
    """The queue's own name, from its wire name (for people: top, stats, the CLI)."""
    return wire[1:-1] if wire.startswith("{") and wire.endswith("}") else wire
