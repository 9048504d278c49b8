"""The gateway's Prometheus metrics: requests by route, action and status, and their latency.

With several server processes (``--workers``), the command line gives them one multiprocess
folder (``PROMETHEUS_MULTIPROC_DIR``) and any of them answers ``/metrics`` for all.
"""

from __future__ import annotations

import os
from typing import Final, final

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest

__all__ = ["CONTENT_TYPE", "Metrics"]

CONTENT_TYPE: Final = b"text/plain; version=0.0.4; charset=utf-8"
#: request latency bounds (s): 250 us to 30 s
BUCKETS: Final = (
    0.00025, 0.0005, 0.001, 0.002, 0.004, 0.008, 0.016, 0.032, 0.064, 0.125, 0.25, 0.5,
    1.0, 2.0, 4.0, 8.0, 16.0, 30.0,
)  # fmt: skip


@final
class Metrics:
    """The gateway's metrics; a label set's children are cached (a few microseconds a request)."""

    __slots__ = ("_counts", "_latency", "_requests", "_seconds", "registry")

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self._requests = Counter(
            "switchyard_gateway_requests",
            "HTTP requests answered, by route, action (empty for routes of no action) and status",
            ["route", "action", "status"],
            registry=self.registry,
        )
        self._seconds = Histogram(
            "switchyard_gateway_request_seconds",
            "Time from a request's arrival to its answer, by route and action",
            ["route", "action"],
            buckets=BUCKETS,
            registry=self.registry,
        )
        self._counts: dict[tuple[str, str, int], Counter] = {}
        self._latency: dict[tuple[str, str], Histogram] = {}

    def observe(self, route: str, action: str, status: int, seconds: float) -> None:
        key = (route, action, status)
        counter = self._counts.get(key)
        if counter is None:
            counter = self._counts[key] = self._requests.labels(route, action, str(status))
        counter.inc()
        pair = (route, action)
        histogram = self._latency.get(pair)
        if histogram is None:
            histogram = self._latency[pair] = self._seconds.labels(route, action)
        histogram.observe(seconds)

    def render(self) -> bytes:
        folder = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
        if folder:
            from prometheus_client import multiprocess

            registry = CollectorRegistry()
            multiprocess.MultiProcessCollector(registry, path=folder)  # type: ignore[no-untyped-call]
            return generate_latest(registry)
        return generate_latest(self.registry)
