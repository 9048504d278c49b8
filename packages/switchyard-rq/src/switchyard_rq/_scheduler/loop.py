"""The scheduler: whoever holds the lease fires the due ticks of every schedule.

Each worker supervisor runs one in a thread. All compete for one lease in Redis (``LEASE``: a
fencing token from a counter, the lease expiring unless renewed); the holder sleeps until the
next tick, plans which ticks are due (``Schedule.plan``: on time, or missed and caught up by
policy) and fires each with ``FIRE``, which checks the token and records the tick in the same
step. A stale holder fires nothing; a new holder reads where the last one stopped.

Every firing is a normal keyed job (key ``schedule:<name>:<tick>``), prepared like
``schedule_action``'s: validated, routed, shaped by the action's policy.
"""

from __future__ import annotations

import heapq
import logging
import os
import threading
import time
from dataclasses import replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Final, final

import redis

from switchyard_rq._config import current_config
from switchyard_rq._producer.schedule import Call, _keyed_call, _prepare, _Prepared
from switchyard_rq._settings import TransportSettings
from switchyard_rq._wire import keys
from switchyard_rq._wire.cluster import is_cluster
from switchyard_rq._wire.firing import ADVANCE, FIRE, LEASE, RELEASE_LEASE
from switchyard_rq._wire.jobs import utcformat

if TYPE_CHECKING:
    from switchyard import Registry, Schedule

__all__ = ["Scheduler", "tick_text"]

log = logging.getLogger("switchyard_rq.scheduler")

_PENDING_POLL: Final = 1.0  # how often a tick held by overlap 'queue' looks at its blocker


def tick_text(tick: float) -> str:
    """A tick as its idempotency keys spell it: UTC, to the second (``2026-12-05T03:00:00Z``)."""
    return datetime.fromtimestamp(tick, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _text(raw: Any) -> str:
    return raw.decode() if isinstance(raw, bytes) else str(raw)


@final
class Scheduler:
    """Fire ``schedules`` while holding the lease, until ``stop`` is set (see :meth:`run`).

    ``lease`` is how long the lease lasts unless renewed (renewed every fifth of it); a tick at
    most twice that late is on time, whatever the catch-up policy (the time a new holder may
    need to take over from a dead one).
    """

    def __init__(
        self,
        schedules: list[Schedule],
        *,
        registry: Registry,
        connection: redis.Redis,
        lease: float = 5.0,
    ) -> None:
        if is_cluster(connection):
            raise ValueError("schedules do not run on a Redis Cluster yet (one lease, one slot)")
        self.schedules = {s.name: s for s in schedules}
        self.registry = registry
        self.client = connection
        self.lease = lease
        self.grace = 2 * lease
        self.token: str | None = None
        #: counts of outcomes, for logs and tests: fired, skipped, held, paused, stale...
        self.outcomes: dict[str, int] = {}
        self._last: dict[str, float] = {}
        self._heap: list[tuple[float, str]] = []
        self._pending: set[str] = set()
        self._templates: dict[str, _Prepared] = {}
        self._renew_at = 0.0
        self._config = current_config()
        self._settings = TransportSettings.from_env()

    # -- the lease -----------------------------------------------------------------------------

    def _renew(self, now: float) -> None:
        if now < self._renew_at:
            return
        held = self.token
        token = LEASE(self.client, [keys.SCHEDULER_LEASE, keys.SCHEDULER_FENCE],
                      [held or "", int(self.lease * 1000)])  # fmt: skip
        self.token = _text(token) if token else None
        self._renew_at = now + self.lease / 5
        if self.token is not None and self.token != held:
            log.info("scheduler: leading (token %s), %d schedule(s)", self.token,
                     len(self.schedules))  # fmt: skip
            self._take_over(now)
        elif self.token is None and held is not None:
            log.warning("scheduler: lost the lease (token %s)", held)

    def _take_over(self, now: float) -> None:
        """Read where the last holder stopped; a schedule never seen starts now."""
        FIRE.load(self.client)
        ADVANCE.load(self.client)
        names = list(self.schedules)
        pipe = self.client.pipeline(transaction=False)
        for name in names:
            pipe.hmget(keys.schedule(name), "last", "pending")
        replies = pipe.execute()
        self._heap.clear()
        self._pending.clear()
        fresh = []
        for name, (last, pending) in zip(names, replies, strict=True):
            if last is None:
                fresh.append(name)
                self._last[name] = now
            else:
                self._last[name] = float(_text(last))
            if pending is not None:
                self._pending.add(name)
            self._push(name)
        if fresh:
            pipe = self.client.pipeline(transaction=False)
            for name in fresh:
                pipe.evalsha(ADVANCE.sha, 2, keys.SCHEDULER_LEASE, keys.schedule(name),
                             self.token or "", repr(now), 0)  # fmt: skip
            pipe.execute()

    def _push(self, name: str) -> None:
        tick = self.schedules[name].next_after(self._last[name])
        if tick is not None:
            heapq.heappush(self._heap, (tick, name))

    # -- firing --------------------------------------------------------------------------------

    def _fire_args(
        self, schedule: Schedule, tick: float, kind: str
    ) -> tuple[str, list[str], list[Any]]:
        """The queue, keys and arguments of FIRE for ``schedule`` at ``tick``."""
        now = time.time()
        key = keys.schedule_tick_key(schedule.name, tick_text(tick))
        template = self._templates.get(schedule.name)
        if template is None:  # validated, routed and shaped once; each firing a new id and key
            call = Call(schedule.action, schedule.data, key=key)
            template = _prepare(call, self.registry, self._config, self._settings, now, False)
            self._templates[schedule.name] = template
        item = replace(template, job_id=os.urandom(16).hex(), key=key)
        stamp = utcformat(datetime.fromtimestamp(now, UTC))
        keyed_keys, keyed_args = _keyed_call(item, stamp, None, self._settings.events)
        return (
            item.queue,
            [keys.SCHEDULER_LEASE, keys.schedule(schedule.name), *keyed_keys],
            [self.token or "", repr(tick), schedule.overlap, kind, *keyed_args],
        )

    def _due(self, now: float) -> list[tuple[str, float, str]]:
        """(name, tick, kind) for every firing due now; records dropped ticks as handled."""
        firings: list[tuple[str, float, str]] = []
        advance: list[tuple[str, int]] = []
        while self._heap and self._heap[0][0] <= now:
            _, name = heapq.heappop(self._heap)
            schedule = self.schedules[name]
            last = self._last[name]
            ticks = schedule.plan(last, now, self.grace)
            firings.extend((name, tick, "tick") for tick in ticks)
            dropped = schedule.count(last, now) - len(ticks)
            if dropped > 0:
                advance.append((name, dropped))
            self._last[name] = now
            self._push(name)
        ticking = {name for name, _, _ in firings}
        for name in sorted(self._pending - ticking):  # a tick firing decides for itself
            firings.append((name, 0.0, "pending"))
        for name, dropped in advance:  # after its firings (each records its own tick)
            firings.append((name, now, f"advance {dropped}"))
        return firings

    def _fire(self, firings: list[tuple[str, float, str]]) -> None:
        if not firings:
            return
        pipe = self.client.pipeline(transaction=False)
        queues = set()
        calls = []
        for name, tick, kind in firings:
            if kind.startswith("advance"):
                dropped = kind.split()[1]
                keys_ = [keys.SCHEDULER_LEASE, keys.schedule(name)]
                calls.append((name, tick, kind, keys_, [self.token or "", repr(tick), dropped]))
                pipe.evalsha(ADVANCE.sha, 2, *calls[-1][3], *calls[-1][4])
                log.info("scheduler: %s missed %s tick(s) (catch-up %s)", name, dropped,
                         self.schedules[name].catchup)  # fmt: skip
                continue
            if kind == "pending":
                held = self.client.hget(keys.schedule(name), "pending")
                if held is None:
                    self._pending.discard(name)
                    continue
                tick = float(_text(held))
            try:
                queue, keys_, args = self._fire_args(self.schedules[name], tick, kind)
            except Exception as exc:  # the data no longer fits the action (a plugin changed)
                log.error("scheduler: %s: cannot fire: %s", name, exc)
                self._count("error")
                continue
            queues.add(queue)
            calls.append((name, tick, kind, keys_, args))
            pipe.evalsha(FIRE.sha, len(keys_), *keys_, *args)
        for queue in queues:  # the keyed script leaves registering the queue to its caller
            pipe.sadd(keys.QUEUES_SET, keys.queue(queue))
        replies = pipe.execute(raise_on_error=False)
        for (name, tick, kind, keys_, args), reply in zip(calls, replies, strict=False):
            if isinstance(reply, redis.exceptions.NoScriptError):  # a restarted Redis
                script = ADVANCE if kind.startswith("advance") else FIRE
                reply = script(self.client, keys_, args)
            elif isinstance(reply, Exception):
                raise reply
            outcome = _text(reply[0])
            self._count(outcome)
            if outcome == "stale":
                self.token = None
                self._renew_at = 0.0
                log.warning("scheduler: %s at %s not fired: the lease moved on", name,
                            tick_text(tick))  # fmt: skip
                return
            if outcome == "held" or (kind == "pending" and outcome == "wait"):
                self._pending.add(name)
            elif outcome == "fired" or kind == "pending":
                self._pending.discard(name)
            if outcome == "fired":
                log.debug("scheduler: %s fired for %s: job %s", name, tick_text(tick),
                          _text(reply[1]))  # fmt: skip

    def _count(self, outcome: str) -> None:
        self.outcomes[outcome] = self.outcomes.get(outcome, 0) + 1

    # -- the loop ------------------------------------------------------------------------------

    def step(self, now: float | None = None) -> float:
        """One pass: renew or take the lease, fire what is due; returns seconds to the next."""
        now = time.time() if now is None else now
        self._renew(now)
        if self.token is None:
            return max(self._renew_at - time.time(), 0.0)
        self._fire(self._due(now))
        wake = self._renew_at
        if self._heap:
            wake = min(wake, self._heap[0][0])
        if self._pending:
            wake = min(wake, now + _PENDING_POLL)
        return max(wake - time.time(), 0.0)

    def run(self, stop: threading.Event) -> None:
        """Pass after pass until ``stop`` is set; then give the lease up. Redis errors are
        logged once per outage and retried."""
        failing = False
        while not stop.is_set():
            try:
                wait = self.step()
                if failing:
                    log.info("scheduler: Redis answers again")
                failing = False
            except (redis.RedisError, OSError) as exc:
                if not failing:
                    log.warning("scheduler: Redis failed (%s); retrying", exc)
                failing = True
                wait = 1.0
            stop.wait(wait)
        self.release()

    def release(self) -> None:
        """Give the lease up (if held), so that another scheduler takes over at once."""
        if self.token is not None:
            try:
                RELEASE_LEASE(self.client, [keys.SCHEDULER_LEASE], [self.token])
            except (redis.RedisError, OSError) as exc:
                log.debug("scheduler: cannot give the lease up: %s", exc)
            self.token = None
