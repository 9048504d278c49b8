"""The health server alone: status codes and bodies from a probe, on a real socket."""

from __future__ import annotations

import json
import urllib.error
import urllib.request

import pytest
from switchyard_worker._health import HealthServer


def get(server, path):
    host, port = server.address
    try:
        with urllib.request.urlopen(f"http://{host}:{port}{path}", timeout=5) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


@pytest.fixture
def serve():
    servers = []

    def start(probe):
        server = HealthServer("127.0.0.1", 0, probe)
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.close()


def test_healthz_answers_while_up_even_when_not_ready(serve):
    server = serve(lambda: {"redis": (False, "down")})
    assert get(server, "/healthz") == (200, {"status": "ok"})


def test_readyz_is_200_only_when_every_check_passes(serve):
    checks = {"registry": (True, "3 actions"), "redis": (True, "reachable")}
    server = serve(lambda: checks)
    code, body = get(server, "/readyz")
    assert code == 200
    assert body["status"] == "ready"
    assert body["checks"]["redis"] == {"ok": True, "detail": "reachable"}

    checks["redis"] = (False, "ConnectionError: refused")
    code, body = get(server, "/readyz")
    assert code == 503
    assert body["checks"]["redis"]["detail"] == "ConnectionError: refused"


def test_a_probe_that_raises_is_not_ready_and_the_server_survives(serve):
    def probe():
        raise RuntimeError("boom")

    server = serve(probe)
    code, body = get(server, "/readyz")
    assert code == 503
    assert body["checks"]["probe"] == {"ok": False, "detail": "RuntimeError: boom"}
    assert get(server, "/healthz")[0] == 200


def test_metrics_are_prometheus_text(serve):
    server = HealthServer(
        "127.0.0.1",
        0,
        dict,
        lambda: {"x_processes": ("gauge", "pool size", 2), "x_died_total": ("counter", "d", 0)},
    )
    try:
        host, port = server.address
        with urllib.request.urlopen(f"http://{host}:{port}/metrics", timeout=5) as response:
            assert response.headers["Content-Type"].startswith("text/plain; version=0.0.4")
            text = response.read().decode()
    finally:
        server.close()
    assert text == (
        "# HELP x_processes pool size\n# TYPE x_processes gauge\nx_processes 2\n"
        "# HELP x_died_total d\n# TYPE x_died_total counter\nx_died_total 0\n"
    )


def test_unknown_paths_are_404_and_query_strings_are_ignored(serve):
    server = serve(dict)
    code, body = get(server, "/metricz")
    assert code == 404
    assert body["paths"] == ["/healthz", "/readyz", "/metrics"]
    assert get(server, "/healthz?verbose=1")[0] == 200


def test_a_port_in_use_is_an_oserror(serve):
    server = serve(dict)
    with pytest.raises(OSError):
        HealthServer("127.0.0.1", server.address[1], dict)
