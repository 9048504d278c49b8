"""A consumer's jobs from a Redis Cluster: one :class:`RedisLink` per queue, on its queue's node.

On a cluster every script must touch keys of one slot, and each queue has a slot of its own (its
hash tag, see ``_wire/cluster.py``). :class:`ClusterSource` therefore keeps one link per queue,
each speaking to the node that serves that queue's slot, with its own processing list there; it
takes from them first queue first (RQ's order), routes each outcome to its job's queue, and
speaks for the consumer as a whole where keys stand alone (registration, heartbeat, leases),
through the cluster client.

When a node answers that a queue's slot is elsewhere or moving (MOVED, ASK, TRYAGAIN,
CLUSTERDOWN), or stops answering (a master died), the call raises
:class:`~switchyard_rq._consumer.source.SourceUnavailable`; nothing of it was applied and its
outcomes stay pending. The job loop pauses and calls :meth:`ClusterSource.resume`, which learns
the cluster's layout again, points each link at its queue's node now, stores the pending
outcomes there and gives back what the consumer does not run: the path of a Redis restart.
"""

from __future__ import annotations

import contextlib
import select
import threading
import time
from collections.abc import Iterator, Sequence
from typing import Any, Final, final

import redis

from switchyard_rq._consumer.link import RedisLink, Relocated, consumer_name, moving
from switchyard_rq._consumer.recovery import processing_lists, settle_consumer, unregister
from switchyard_rq._consumer.registration import beat, register, renew
from switchyard_rq._consumer.source import (
    Job,
    Outcome,
    SourceUnavailable,
    Watched,
    WorkerCounts,
)
from switchyard_rq._settings import TransportSettings
from switchyard_rq._wire import keys
from switchyard_rq._wire.cluster import elsewhere, node_client, refresh, wire_queue

__all__ = ["ClusterSource", "queue_of"]

_SHORTEST_BLOCK: Final = 0.01
_TRANSIENT: Final = (redis.ConnectionError, redis.TimeoutError)


def queue_of(job_id: str) -> str | None:
    """The wire name of a job's queue on a cluster: its id's hash tag (``{emails}3f2a...``)."""
    end = job_id.find("}")
    return job_id[: end + 1] if job_id.startswith("{") and end > 1 else None


@final
class ClusterSource:
    """A :class:`~switchyard_rq._consumer.source.JobSource` over a Redis Cluster."""

    def __init__(
        self,
        cluster: Any,
        queues: Sequence[str],
        *,
        name: str | None = None,
        settings: TransportSettings | None = None,
    ) -> None:
        wire = tuple(wire_queue(q, True) for q in queues)
        if not wire:
            raise ValueError("a Consumer needs at least one queue name")
        self.connection = cluster
        self.queues: tuple[str, ...] = wire
        self.name = consumer_name(name)
        self.settings = settings or TransportSettings.from_env()
        self._links = {
            q: RedisLink(
                node_client(cluster, keys.queue(q)),
                [q],
                name=self.name,
                settings=self.settings,
                processing=keys.processing(self.name, q),
            )
            for q in wire
        }
        self._held = dict.fromkeys(wire, 0)  # per queue: taken, not settled nor given back
        self._bells: dict[str, tuple[Any, float]] = {}  # queue -> (connection, BLPOP until)
        self._bells_stale = False
        self._bell_lock = threading.Lock()
        self._lock = threading.Lock()  # beat/renew (heartbeat thread) vs retire
        self._reconnects = 0

    @property
    def redis_errors(self) -> int:
        return sum(link.redis_errors for link in self._links.values())

    @property
    def reconnects(self) -> int:
        return self._reconnects

    # -- taking jobs ---------------------------------------------------------------------------

    async def take(
        self, size: int, *, running: int, held: int, idle_for: float, patient: bool = False
    ) -> list[Job]:
        """Take from the first queue that has jobs (one call per queue tried); the outcomes kept
        for the other queues' links are sent meanwhile."""
        single = len(self._links) == 1
        for queue, link in self._links.items():
            mine = held if single else min(held, self._held[queue])
            with self._down():
                jobs = await link.take(
                    size, running=running, held=mine, idle_for=idle_for, patient=patient
                )
            if jobs:
                self._held[queue] += len(jobs)
                for other in self._links.values():
                    if other is not link:
                        other.push()
                return jobs
        return []

    def more(self) -> bool:
        return any(link.more() for link in self._links.values())

    def wait(self, timeout: float) -> None:
        """Idle: block on every queue's doorbell at once (one BLPOP each, on its node), no longer
        than the first scheduled job is due."""
        if len(self._links) == 1:
            with self._down():
                next(iter(self._links.values())).wait(timeout)
            return
        dues = [d for d in (link.next_due for link in self._links.values()) if d is not None]
        wait = min([timeout, *(max(d - time.time(), 0.0) for d in dues)])
        if wait < _SHORTEST_BLOCK:
            if wait > 0:
                time.sleep(wait)
            return
        with self._bell_lock:
            try:
                self._ring(wait)
            except _TRANSIENT as exc:
                self._drop_bells()
                raise SourceUnavailable(str(exc)) from exc

    def _ring(self, wait: float) -> None:
        if self._bells_stale:
            self._drop_bells()
        now = time.monotonic()
        for queue, link in self._links.items():
            if queue not in self._bells:
                bell = link.connection.connection_pool.get_connection()
                bell.send_command("BLPOP", keys.wake(queue), round(wait, 3))  # type: ignore[no-untyped-call]
                self._bells[queue] = (bell, now + wait + 1.0)
        sockets = {bell._sock: queue for queue, (bell, _) in self._bells.items()}
        ready, _, _ = select.select(list(sockets), [], [], wait)
        for sock in ready:
            queue = sockets[sock]
            bell, _ = self._bells.pop(queue)
            with contextlib.suppress(redis.ResponseError):  # MOVED...: the next take finds out
                bell.read_response()
            self._release(queue, bell)
        for queue, (bell, until) in list(self._bells.items()):
            if time.monotonic() > until:  # its reply is overdue: something is wrong with it
                del self._bells[queue]
                bell.disconnect()
                self._release(queue, bell)

    def _release(self, queue: str, bell: Any) -> None:
        with contextlib.suppress(Exception):
            self._links[queue].connection.connection_pool.release(bell)

    def _drop_bells(self) -> None:
        """Forget the doorbell connections (their node may be gone, or their BLPOP pending)."""
        self._bells_stale = False
        bells, self._bells = self._bells, {}
        for queue, (bell, _) in bells.items():
            bell.disconnect()
            self._release(queue, bell)

    # -- outcomes ------------------------------------------------------------------------------

    def settle(self, outcome: Outcome, *, later: bool = False) -> None:
        queue = outcome.job.queue
        self._held[queue] = max(self._held[queue] - 1, 0)
        self._links[queue].settle(outcome, later=later)

    def push(self) -> None:
        for link in self._links.values():
            link.push()

    def flush(self) -> None:
        for link in self._links.values():
            with self._down():
                link.flush()

    def give_back(self, keep: Sequence[str]) -> int:
        given = 0
        for link in self._links.values():
            with self._down():
                given += link.give_back(keep)
        self._held = dict.fromkeys(self.queues, 0)
        for job_id in keep:
            queue = queue_of(job_id)
            if queue in self._held:
                self._held[queue] += 1
        return given

    def abandon(self) -> list[str]:
        with self._down():
            return settle_consumer(self.connection, self.name, self.settings, self.queues)

    def resume(self, keep: Sequence[str]) -> int:
        """Learn the cluster's layout again, point each link at its queue's node, store pending
        outcomes there, give back what is not running, register again."""
        with self._down():
            refresh(self.connection)
            for queue, link in self._links.items():
                link.repoint(node_client(self.connection, keys.queue(queue)))
        self._bells_stale = True
        self.flush()
        self._reconnects += 1
        given = self.give_back(keep)
        with self._down():
            register(self.connection, self.name, self.queues, self.settings.heartbeat_ttl)
        return given

    # -- presence ------------------------------------------------------------------------------

    def announce(self) -> int:
        with self._down():
            lists = processing_lists(self.connection, self.name, self.queues)
            with self.connection.pipeline(transaction=False) as pipe:
                for listing in lists:
                    pipe.exists(listing)
                left = any(pipe.execute())
            settled = (
                settle_consumer(self.connection, self.name, self.settings, self.queues)
                if left
                else []
            )
            register(self.connection, self.name, self.queues, self.settings.heartbeat_ttl)
        return len(settled)

    def beat(self, counts: WorkerCounts) -> None:
        with self._down(), self._lock:
            beat(self.connection, self.name, self.settings.heartbeat_ttl, counts)

    def renew(self, jobs: Sequence[Job]) -> None:
        with self._down(), self._lock:
            renew(self.connection, jobs)

    def watch(self, jobs: Sequence[Watched]) -> list[str]:
        """Each queue's running jobs through that queue's link (its node, its slot)."""
        by_queue: dict[str, list[Watched]] = {}
        for watched in jobs:
            by_queue.setdefault(watched.job.queue, []).append(watched)
        stop: list[str] = []
        for queue, some in by_queue.items():
            with self._down():
                stop += self._links[queue].watch(some)
        return stop

    def retire(self) -> None:
        for link in self._links.values():
            link.release()
        with self._bell_lock:
            self._drop_bells()
        with self._down(), self._lock:
            unregister(self.connection, self.name, self.queues)

    # -- cluster trouble -----------------------------------------------------------------------

    @contextlib.contextmanager
    def _down(self) -> Iterator[None]:
        """Connection trouble, a slot elsewhere, a cluster down: :class:`SourceUnavailable`."""
        try:
            yield
        except _TRANSIENT as exc:
            raise SourceUnavailable(str(exc)) from exc
        except redis.exceptions.RedisClusterException as exc:  # no node reachable, no slots
            raise SourceUnavailable(str(exc)) from exc
        except redis.ResponseError as exc:
            if elsewhere(exc):
                raise Relocated(moving(self.queues, exc)) from exc
            raise
