"""``/healthz``, ``/readyz`` and ``/metrics``: a tiny stdlib HTTP server on a daemon thread.

``/healthz`` answers 200 while the supervisor process is up. ``/readyz`` answers 200 only when
the probe says every check passes, else 503; both bodies are JSON naming each check.
``/metrics`` is the Prometheus text format of the supervisor's gauges and counters.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, final

__all__ = ["HealthServer", "Metrics", "ReadinessProbe"]

log = logging.getLogger("switchyard_worker.health")

#: returns ``{check name: (passed, detail)}``
ReadinessProbe = Callable[[], Mapping[str, tuple[bool, str]]]
#: returns ``{metric name: (kind "gauge"|"counter", help text, value)}``
Metrics = Callable[[], Mapping[str, tuple[str, str, float]]]
#: returns the whole ``/metrics`` body and its content type (replaces ``Metrics`` when given)
Exposition = Callable[[], tuple[bytes, str] | None]


def _no_metrics() -> Mapping[str, tuple[str, str, float]]:
    return {}


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def do_GET(self) -> None:
        path = self.path.split("?", 1)[0]
        if path == "/healthz":
            self._send(200, {"status": "ok"})
        elif path == "/readyz":
            try:
                checks = dict(self.server.probe())
            except Exception as exc:  # a failing probe means "not ready", never a dead thread
                checks = {"probe": (False, f"{type(exc).__name__}: {exc}")}
            ready = all(ok for ok, _ in checks.values())
            body = {
                "status": "ready" if ready else "not ready",
                "checks": {name: {"ok": ok, "detail": d} for name, (ok, d) in checks.items()},
            }
            self._send(200 if ready else 503, body)
        elif path == "/metrics":
            rendered = self.server.exposition() if self.server.exposition else None
            if rendered is not None:
                self._send_bytes(200, *rendered)
                return
            lines = []
            for name, (kind, text, value) in self.server.metrics().items():
                lines += [f"# HELP {name} {text}", f"# TYPE {name} {kind}", f"{name} {value:g}"]
            data = ("\n".join(lines) + "\n").encode()
            self._send_bytes(200, data, "text/plain; version=0.0.4; charset=utf-8")
        else:
            paths = ["/healthz", "/readyz", "/metrics"]
            self._send(404, {"status": "not found", "paths": paths})

    def _send(self, code: int, body: dict[str, Any]) -> None:
        self._send_bytes(code, json.dumps(body).encode(), "application/json")

    def _send_bytes(self, code: int, data: bytes, content_type: str) -> None:
        self.send_response(code)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("health %s - %s", self.address_string(), format % args)


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(
        self,
        address: tuple[str, int],
        probe: ReadinessProbe,
        metrics: Metrics,
        exposition: Exposition | None,
    ) -> None:
        super().__init__(address, _Handler)
        self.probe = probe
        self.metrics = metrics
        self.exposition = exposition


@final
class HealthServer:
    """Serve the health endpoints on ``host:port`` until :meth:`close`."""

    __slots__ = ("_server", "_thread")

    def __init__(
        self,
        host: str,
        port: int,
        probe: ReadinessProbe,
        metrics: Metrics = _no_metrics,
        *,
        exposition: Exposition | None = None,
    ) -> None:
        self._server = _Server((host, port), probe, metrics, exposition)
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.2},
            name="switchyard-worker-health",
            daemon=True,
        )
        self._thread.start()

    @property
    def address(self) -> tuple[str, int]:
        """The bound host and port (the real port when 0 asked for any free one)."""
        host, port = self._server.server_address[:2]
        return str(host), int(port)

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=2)
