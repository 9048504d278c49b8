"""What ``switchyard doctor`` says about Redis: which one this project uses, where that comes
from, and whether it answers (entry points ``switchyard.status`` and ``switchyard.doctor``).

The embedded server is looked for, never started: a doctor changes nothing.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

from switchyard import SwitchyardError

from switchyard_rq._wire import keys
from switchyard_rq._wire.cluster import is_cluster, node_name, plain_queue
from switchyard_rq._wire.connection import _choose, check_redis, check_url, get_connection
from switchyard_rq._wire.deploy import is_multi
from switchyard_rq._wire.embedded import _ping, socket_path

__all__ = ["problems", "status"]


def status() -> list[str]:
    """``redis: <url> (<where from>), answers`` or why it does not; on a cluster or behind
    Sentinel, a line per node with the queues it serves."""
    line, _, url = _look()
    return [line, *(_deployment(url)[0] if url else [])]


def problems() -> list[str]:
    """A Redis that is configured and does not answer, a Redis URL that is not one, a cluster
    with slots no master serves."""
    _, problem, url = _look()
    if problem is not None:
        return [problem]
    return _deployment(url)[1] if url else []


@cache
def _deployment(url: str) -> tuple[list[str], list[str]]:
    """(lines, problems) about a cluster's nodes or the Sentinel's master; none for one server."""
    if not is_multi(url):
        return [], []
    try:
        client: Any = get_connection(url)
        if not is_cluster(client):
            pool = client.connection_pool
            host, port = pool.get_master_address()
            replicas = client.info("replication")
            return [f"  sentinel master {pool.service_name!r} at {host}:{port}, "
                    f"{replicas.get('connected_slaves', 0)} replica(s)"], []  # fmt: skip
        slots = client.cluster_slots()
        queues = sorted(_text(q).removeprefix(keys.QUEUE_PREFIX)
                        for q in client.smembers(keys.QUEUES_SET))  # fmt: skip
    except Exception as exc:  # the answer above said it answers: this is a detail
        return [f"  cannot describe the deployment: {exc}"], []
    masters: dict[str, list[str]] = {}
    replicas = covered = 0
    for (start, end), info in sorted(slots.items()):
        primary = f"{info['primary'][0]}:{info['primary'][1]}"
        masters.setdefault(primary, [])
        replicas = max(replicas, len(info.get("replicas", [])))
        covered += end - start + 1
    for queue in queues:
        masters.setdefault(node_name(client, keys.queue(queue)), []).append(plain_queue(queue))
    lines = [f"  cluster: {len(masters)} masters, up to {replicas} replica(s) each, "
             f"{covered}/16384 slots served"]  # fmt: skip
    lines += [f"  {node}: {', '.join(q) or '(no queues)'}" for node, q in sorted(masters.items())]
    trouble = []
    if covered < 16384:
        trouble.append(f"{16384 - covered} of the cluster's 16384 slots have no master: "
                       "queues whose slot is among them cannot be served")  # fmt: skip
    return lines, trouble


@cache
def _look() -> tuple[str, str | None, str | None]:
    """(the status line, the problem or None, the URL that answers or None), worked out once
    per process."""
    try:
        choice = _choose(None)
    except SwitchyardError:
        return (
            f"redis: none (SWITCHYARD_REDIS_URL is not set and {Path.cwd()} is in no "
            "workspace, so no embedded one either)",
            None,
            None,
        )
    if choice.url is None:
        assert choice.root is not None
        sock = socket_path(choice.root)
        if sock is None or not _ping(sock):
            where = choice.root / ".switchyard"
            return (
                f"redis: embedded, under {where} (not running: it starts on first use)",
                None,
                None,
            )
        url = f"unix://{sock}?db=0"
    else:
        url = choice.url
        try:
            check_url(url, choice.origin)
        except SwitchyardError as exc:
            return f"redis: {exc}", str(exc), None
    check = check_redis(url)
    if check.problem is None:
        return f"redis: {check.url} ({choice.origin}), answers", None, url
    line = f"redis: {check.url} ({choice.origin}), does not answer: {check.problem}"
    return line, f"cannot reach Redis at {check.url} ({choice.origin}): {check.problem}", None


def _text(raw: Any) -> str:
    return raw.decode() if isinstance(raw, bytes) else str(raw)
