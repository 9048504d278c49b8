"""switchyard-worker on a real Redis Cluster (3 masters, 3 replicas, started here): it boots,
serves queues on different nodes, reports each queue's node in its metrics, and stops clean."""

from __future__ import annotations

import socket
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
import switchyard_rq

sys.path.insert(0, str(Path(__file__).parents[3] / "packages" / "switchyard-rq" / "tests"))

from switchyard_rq_clusterkit import LocalCluster


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    found = LocalCluster(tmp_path_factory.mktemp("wcluster"), ports=(7550, 7599))
    try:
        found.create()
        yield found
    finally:
        found.stop()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_a_worker_serves_queues_on_different_nodes(cluster, start_worker, registry, monkeypatch):
    monkeypatch.setenv("SWITCHYARD_REDIS_URL", cluster.url)
    (Path.cwd() / "pyproject.toml").write_text(
        '[tool.switchyard]\ndefault-queue = "default"\n\n'
        '[tool.switchyard.routing]\n"wtest.aecho" = "hinted"\n'
    )
    assert cluster.master_of("{default}").port != cluster.master_of("{hinted}").port
    port = free_port()
    worker = start_worker("--min", "1", "--max", "1", "--queues", "default,hinted",
                          "--health-port", str(port), url=cluster.url)  # fmt: skip
    assert f"redis {cluster.url} (SWITCHYARD_REDIS_URL)" in worker.boot_line
    echo = switchyard_rq.schedule_action("wtest.echo", {"text": "hi"}, registry=registry)
    aecho = switchyard_rq.schedule_action("wtest.aecho", {"text": "yo"}, registry=registry)
    assert aecho.id.startswith("{hinted}")
    assert echo.result(timeout=30).text == "hi"
    assert aecho.result(timeout=30).text == "yo from wtest.aecho attempt 1"
    node = f"127.0.0.1:{cluster.master_of('{hinted}').port}"
    deadline = time.monotonic() + 20
    text = ""
    while time.monotonic() < deadline:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
            text = response.read().decode()
        if f'switchyard_queue_node{{node="{node}",queue="hinted"}} 1.0' in text:
            break
        time.sleep(0.2)
    assert f'switchyard_queue_node{{node="{node}",queue="hinted"}} 1.0' in text, text
    assert worker.stop() == 0
    conn = switchyard_rq.get_connection(cluster.url)
    assert conn.scard("switchyard:consumers") == 0  # unregistered, wherever its keys live
