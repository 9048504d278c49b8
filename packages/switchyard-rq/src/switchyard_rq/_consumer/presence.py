"""A consumer's presence: registration, the heartbeat thread, lease renewal, unregistration.

The heartbeat thread tells the source the consumer is alive (and what it did since the last
beat) every third of the heartbeat's TTL, and renews the concurrency leases of the jobs it is
running every third of a lease's life, so that the leases of a consumer that dies lapse within
seconds while a live one's never do. Twice a second it also watches the jobs that have run for
half a second or more: their progress reports are stored and the ones asked to stop are told
(one call for all of them; a job that ends sooner costs nothing).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from typing import Final, final

from switchyard_rq._consumer.execute import Control
from switchyard_rq._consumer.source import (
    Job,
    JobSource,
    SourceUnavailable,
    Watched,
    WorkerCounts,
)

__all__ = ["Presence"]

log = logging.getLogger("switchyard_rq.consumer")

_MIN_INTERVAL: Final = 0.5
#: how often running jobs are watched (cancellation, progress), and after how long a job is
WATCH_EVERY: Final = 0.5


@final
class Presence:
    """Registers ``source``'s consumer and keeps it alive until :meth:`stop`.

    ``running`` lists the jobs running now (their leases are renewed); ``counts`` hands over
    (and resets) what the consumer did since the last beat.
    """

    def __init__(
        self,
        source: JobSource,
        *,
        heartbeat_ttl: float,
        lease_seconds: float,
        running: Callable[[], Sequence[Job]],
        counts: Callable[[], WorkerCounts],
        controls: Callable[[], Sequence[Control]] = list,
    ) -> None:
        self._source = source
        self._beat_every = max(heartbeat_ttl / 3, _MIN_INTERVAL)
        self._renew_every = max(lease_seconds / 3, _MIN_INTERVAL / 2)
        self._running = running
        self._counts = counts
        self._controls = controls
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.registered = False

    def start(self) -> int:
        """Announce the consumer (settling what an earlier one of its name left: returns how
        many jobs) and start the heartbeat thread."""
        if self.registered:
            return 0
        settled = self._source.announce()
        if settled:
            log.warning(
                "%s: settled %d job(s) an earlier consumer of this name left",
                self._source.name,
                settled,
            )
        self.registered = True
        self._stop.clear()
        self._thread = threading.Thread(
            target=self._loop, name=f"switchyard-heartbeat-{self._source.name}", daemon=True
        )
        self._thread.start()
        return settled

    def _loop(self) -> None:
        beat_every, renew_every = self._beat_every, self._renew_every
        tick = min(renew_every, WATCH_EVERY)
        since_beat = since_renew = 0.0
        while not self._stop.wait(tick):
            since_beat += tick
            since_renew += tick
            try:
                self._watch()
                if since_renew >= renew_every:
                    since_renew = 0.0
                    running = [job for job in self._running() if job.flow]
                    if running:
                        self._source.renew(running)
                if since_beat >= beat_every:
                    since_beat = 0.0
                    self._source.beat(self._counts())
            except SourceUnavailable as exc:  # the loop reports and retries Redis trouble
                log.debug("heartbeat of %s failed: %s", self._source.name, exc)
            except Exception:  # never let the heartbeat thread die
                log.exception("heartbeat of %s failed", self._source.name)

    def _watch(self) -> None:
        """Store the progress of the jobs running for a while; tell those asked to stop."""
        now = time.monotonic()
        watched = [c for c in self._controls() if c.due(now, WATCH_EVERY) and not c.cancelled]
        if not watched:
            return
        stop = set(self._source.watch([Watched(c.job, c.action, c.unsent()) for c in watched]))
        for control in watched:
            if control.job.id in stop:
                control.cancel()

    def stop(self) -> None:
        """Stop the heartbeat thread (the caller unregisters the consumer)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
        self.registered = False
