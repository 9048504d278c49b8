"""Redis Cluster and Sentinel: real servers of the tests' own (3 masters + 3 replicas; a master,
a replica and three sentinels), real consumer processes, a master killed with SIGKILL."""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from switchyard_rq_clusterkit import LocalCluster, LocalSentinel, migrate_slot

import switchyard_rq
from switchyard_rq._ops.stats import read_snapshot
from switchyard_rq._ops.top import build_view, render

CHILD = Path(__file__).parent / "consumer_child.py"
PASSWORD = "s3kr1t"


@pytest.fixture(scope="session")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    found = LocalCluster(tmp_path_factory.mktemp("cluster"), password=PASSWORD)
    try:
        found.create()
        yield found
    finally:
        found.stop()


@pytest.fixture
def cconn(cluster: LocalCluster, monkeypatch: pytest.MonkeyPatch) -> Iterator[redis.Redis]:
    """The cluster's client (SWITCHYARD_REDIS_URL points at it), every master empty."""
    monkeypatch.setenv("SWITCHYARD_REDIS_URL", cluster.url)
    client = switchyard_rq.get_connection(cluster.url)
    client.flushall()
    yield client
    client.flushall()


def _children(url: str, names: list[str], queues: str) -> list[subprocess.Popen[str]]:
    procs = [
        subprocess.Popen(
            [sys.executable, str(CHILD), url, name, queues, "4"],
            stdout=subprocess.PIPE,
            text=True,
        )
        for name in names
    ]
    for proc in procs:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "ready"
    return procs


def _stop(procs: list[subprocess.Popen[str]]) -> None:
    for proc in procs:
        proc.terminate()
    for proc in procs:
        proc.wait(timeout=20)
        if proc.stdout is not None:
            proc.stdout.close()


def test_queues_on_different_nodes_run_and_give_results(cluster, cconn, reg):
    assert cluster.master_of("{default}").port != cluster.master_of("{hinted}").port
    calls = [("demo.double", {"x": i}) for i in range(30)]
    calls += [("demo.routed", {"x": i}) for i in range(30)]
    handles = switchyard_rq.schedule_many(calls, registry=reg)
    assert {h.id[: h.id.index("}") + 1] for h in handles} == {"{default}", "{hinted}"}
    # every key of a queue lives on its node: its list and its jobs' hashes
    node = cluster.master_of("{hinted}").client()
    assert node.llen("rq:queue:{hinted}") == 30
    assert node.exists(f"rq:job:{handles[-1].id}") == 1
    with switchyard_rq.Consumer(cconn, ["default", "hinted"], registry=reg, name="c1") as worker:
        assert worker.run(max_jobs=60, idle_timeout=0.5) == 60
    assert [h.result(timeout=5).y for h in handles[:30]] == [2 * i for i in range(30)]
    assert [h.result(timeout=5).y for h in handles[30:]] == list(range(30))
    stats = switchyard_rq.queue_stats(cconn, ["default", "hinted"])
    assert stats["default"].node == f"127.0.0.1:{cluster.master_of('{default}').port}"
    assert stats["hinted"].depth == 0


def test_an_idle_consumer_of_two_nodes_wakes_for_either(cluster, cconn, reg):
    procs = _children(cluster.url, ["w1"], "default,hinted")
    try:
        time.sleep(0.5)  # both doorbells waited on
        for name in ("demo.routed", "demo.double", "demo.routed"):
            began = time.monotonic()
            handle = switchyard_rq.schedule_action(name, {"x": 3}, registry=reg)
            assert handle.result(timeout=10).y in (3, 6)
            assert time.monotonic() - began < 5  # woken by the bell, not found by a poll
    finally:
        _stop(procs)


def test_top_and_stats_show_each_queues_node(cluster, cconn, reg):
    switchyard_rq.schedule_many([("demo.routed", {"x": 1})] * 3, registry=reg)
    # (the queues named: this process registered "hinted" in rq:queues once, before a flush)
    first = read_snapshot(cconn, ["default", "hinted"])
    view = build_view(first, read_snapshot(cconn, ["default", "hinted"]), "cluster")
    row = next(q for q in view["queues"] if q["queue"] == "hinted")
    assert row["depth"] == 3
    assert row["node"] == f"127.0.0.1:{cluster.master_of('{hinted}').port}"
    lines = render(view, 200, 50, live=False)
    assert any(line.startswith("hinted") and row["node"] in line for line in lines)


def test_idempotency_keys_and_delays_work_per_queue_slot(cluster, cconn, reg):
    one = switchyard_rq.schedule_action("demo.routed", {"x": 1}, key="k1", registry=reg)
    two = switchyard_rq.schedule_action("demo.routed", {"x": 1}, key="k1", registry=reg)
    assert one.id == two.id
    later = switchyard_rq.schedule_action("demo.double", {"x": 4}, delay=0.3, registry=reg)
    with switchyard_rq.Consumer(cconn, ["hinted", "default"], registry=reg, name="c2") as worker:
        assert worker.run(max_jobs=2, idle_timeout=2) == 2
    assert later.result(timeout=5).y == 8


def test_durable_mode_waits_for_a_replica(cluster, cconn, reg, monkeypatch):
    monkeypatch.setenv("SWITCHYARD_REDIS_WAIT_REPLICAS", "1")
    handle = switchyard_rq.schedule_action("demo.double", {"x": 2}, registry=reg)
    assert handle.status == "queued"
    # a master without the scripts (restarted, or a promoted replica): the keyed job is written
    # with the script's source, and the WAIT that follows on that connection covers it
    for server in cluster.servers:
        server.client().script_flush()
    keyed = switchyard_rq.schedule_action("demo.double", {"x": 3}, key="d1", registry=reg)
    assert keyed.status == "queued"
    assert cconn.get("switchyard:key:{default}:d1") == keyed.id.encode()
    monkeypatch.setenv("SWITCHYARD_REDIS_WAIT_REPLICAS", "2")  # each master has one replica
    monkeypatch.setenv("SWITCHYARD_REDIS_RETRIES", "1")
    with pytest.raises(switchyard_rq.NotReplicatedError, match="only 1 of 2 replica"):
        switchyard_rq.schedule_action("demo.double", {"x": 2}, registry=reg)


def test_bad_cluster_urls_are_one_clear_line(cluster, run_cli_cluster):
    host = cluster.url.rsplit("@", 1)[1]
    cases = {
        f"redis+cluster://:wrong@{host}": "Redis refused the credentials for "
        f"redis+cluster://:***@{host}",
        f"redis+cluster://:{PASSWORD}@127.0.0.1:1": "cannot reach Redis at "
        "redis+cluster://:***@127.0.0.1:1: Redis Cluster cannot be connected",
        "redis+cluster://": "bad Redis URL 'redis+cluster://'",
        "redis+sentinel://127.0.0.1:1": "bad Redis URL 'redis+sentinel://127.0.0.1:1'",
        "redis+sentinel://127.0.0.1:1/mymaster": "no sentinel answered with the master's address",
    }
    for url, message in cases.items():
        code, out, err = run_cli_cluster(url)
        assert code == 1, (url, out, err)
        assert err.count("\n") == 1, (url, err)
        assert message in err, (url, err)
        assert "Traceback" not in err
        assert PASSWORD not in err


@pytest.fixture
def run_cli_cluster(tmp_path):
    """``switchyard schedule text.slugify`` in a real process, with SWITCHYARD_REDIS_URL=url."""

    def run(url: str) -> tuple[int, str, str]:
        env = {"SWITCHYARD_REDIS_URL": url, "SWITCHYARD_REDIS_RETRIES": "1"}
        data = '{"text": "a b"}'
        done = subprocess.run(
            [sys.executable, "-m", "switchyard", "schedule", "text.slugify", "--data", data],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            env={**_base_env(), **env},
            timeout=60,
        )
        return done.returncode, done.stdout, done.stderr

    return run


def _base_env() -> dict[str, str]:
    import os

    return {k: v for k, v in os.environ.items() if not k.startswith("SWITCHYARD_")}


# -- failover ----------------------------------------------------------------------------------


def _produce(reg, total: int, acked: dict[str, str], kill_at: int, kill: threading.Event) -> None:
    """Schedule ``total`` jobs in batches of 50, each with an idempotency key (a batch that
    failed is scheduled again: never twice); ``acked``: key -> job id of the acknowledged ones."""
    i = 0
    while i < total:
        batch = [
            switchyard_rq.Call("demo.double" if n % 2 else "demo.routed", {"x": n}, key=f"job-{n}")
            for n in range(i, min(i + 50, total))
        ]
        try:
            handles = switchyard_rq.schedule_many(batch, registry=reg)
        except (switchyard_rq.RedisUnavailableError, switchyard_rq.NotReplicatedError):
            time.sleep(0.1)
            continue
        for call, handle in zip(batch, handles, strict=True):
            acked[call.key] = handle.id  # type: ignore[index]
        i += len(batch)
        if i >= kill_at:
            kill.set()


def _status(handle: switchyard_rq.JobHandle) -> str:
    """A job's status; "not found" while a read may reach a restarted node that is not yet
    the replica it is about to be (an empty master for a moment): a job lost for good stays
    "not found" until the deadline, and fails the test."""
    try:
        return handle.status
    except switchyard_rq.JobNotFoundError:
        return "not found"


def _failover_run(url: str, reg, victim, promoted, monkeypatch) -> float:
    """Workers and a producer on ``url``; the ``victim`` master is killed (SIGKILL) once a third
    of the jobs are in, and started again once its replica took over (``promoted()`` says so),
    as its supervisor would: it comes back as a replica, so that durable writes find a replica
    again. (Started before the failover, a master without persistence would come back empty
    and still master: the operator's loss, not the one this tests.) Every acknowledged job
    must finish. Returns the seconds from the kill to the producer's next acknowledged batch."""
    monkeypatch.setenv("SWITCHYARD_REDIS_URL", url)
    monkeypatch.setenv("SWITCHYARD_REDIS_WAIT_REPLICAS", "1")  # durable: nothing acked is lost
    total = 3000
    acked: dict[str, str] = {}
    kill = threading.Event()
    procs = _children(url, ["f1", "f2"], "default,hinted")
    try:
        producer = threading.Thread(target=_produce, args=(reg, total, acked, total // 3, kill))
        producer.start()
        assert kill.wait(60)
        killed_at = time.monotonic()
        seen = len(acked)
        victim.kill()

        def restart() -> None:
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                with contextlib.suppress(redis.RedisError, RuntimeError, OSError):
                    if promoted():
                        break
                time.sleep(0.1)
            victim.start()

        threading.Thread(target=restart, daemon=True).start()
        while len(acked) == seen and producer.is_alive():
            time.sleep(0.01)
        recovered = time.monotonic() - killed_at
        producer.join(120)
        assert len(acked) == total
        handles = [switchyard_rq.JobHandle(i, registry=reg) for i in acked.values()]
        deadline = time.monotonic() + 120
        unfinished = handles
        while unfinished and time.monotonic() < deadline:
            unfinished = [h for h in unfinished if _status(h) != "finished"]
            time.sleep(0.2)
        assert not unfinished, f"{len(unfinished)} acknowledged jobs never finished"
    finally:
        _stop(procs)
    return recovered


def test_a_master_killed_mid_run_loses_no_acknowledged_job(tmp_path, reg, monkeypatch):
    local = LocalCluster(tmp_path, ports=(7700, 7799))
    try:
        local.create()
        victim = local.master_of("{default}")

        def promoted() -> bool:
            return local.master_of("{default}") is not victim

        recovered = _failover_run(local.url, reg, victim, promoted, monkeypatch)
        print(f"cluster failover: producer wrote again {recovered:.2f} s after the kill")
        promoted = local.master_of("{default}")
        assert promoted.port != victim.port  # its replica took over
        # the promoted master and its replica (the victim, back) die: {default}'s slot has no
        # master; queues on other nodes go on
        promoted.kill()
        victim.kill()
        monkeypatch.setenv("SWITCHYARD_REDIS_WAIT_REPLICAS", "0")
        monkeypatch.setenv("SWITCHYARD_REDIS_RETRIES", "1")
        with pytest.raises(switchyard_rq.RedisUnavailableError, match="cannot reach Redis"):
            switchyard_rq.schedule_action("demo.double", {"x": 1}, registry=reg)
        assert switchyard_rq.schedule_action("demo.routed", {"x": 1}, registry=reg).id
    finally:
        local.stop()


def test_a_sentinel_failover_loses_no_acknowledged_job(tmp_path, reg, monkeypatch):
    local = LocalSentinel(tmp_path, ports=(7800, 7899))
    try:
        first = local.master_port()

        seen: list[int] = []

        def promoted() -> bool:
            ports = local.master_ports()
            if first in ports:
                return False
            seen.extend(ports)
            return True

        recovered = _failover_run(local.url, reg, local.master, promoted, monkeypatch)
        print(f"sentinel failover: producer wrote again {recovered:.2f} s after the kill")
        # the sentinels moved the master to the replica (later they may move it back: the old
        # master returns with its data, as a replica that can be promoted in turn)
        assert seen
        assert seen[0] == local.replica.port
    finally:
        local.stop()


def test_a_slot_migrated_mid_run_loses_nothing(tmp_path, reg, monkeypatch):
    local = LocalCluster(tmp_path, ports=(7900, 7999))
    try:
        local.create()
        monkeypatch.setenv("SWITCHYARD_REDIS_URL", local.url)
        source = local.master_of("{default}")
        target = next(s for s in local.servers if s is local.master_of("{hinted}"))
        assert target is not source
        total = 3000
        acked: dict[str, str] = {}
        started = threading.Event()
        procs = _children(local.url, ["m1", "m2"], "default,hinted")
        try:
            producer = threading.Thread(
                target=_produce, args=(reg, total, acked, total // 5, started)
            )
            producer.start()
            assert started.wait(60)
            moved = migrate_slot(local, "{default}", target, pause=0.01)
            producer.join(120)
            assert len(acked) == total
            assert moved > 0
            assert local.master_of("{default}") is target
            handles = [switchyard_rq.JobHandle(i, registry=reg) for i in acked.values()]
            deadline = time.monotonic() + 120
            while handles and time.monotonic() < deadline:
                handles = [h for h in handles if h.status != "finished"]
                time.sleep(0.2)
            assert not handles, f"{len(handles)} acknowledged jobs never finished"
            assert target.client().llen("rq:queue:{default}") == 0
            assert source.client().dbsize() == 0 or not source.client().keys("*{default}*")
        finally:
            _stop(procs)
    finally:
        local.stop()


def test_cancel_requeue_and_the_failed_list_work_on_a_cluster(cluster, cconn, reg, capsys):
    from switchyard_rq._ops.cli import _jobs_failed

    queued = switchyard_rq.schedule_action("demo.routed", {"x": 1}, registry=reg)
    assert queued.cancel() is True
    assert queued.status == "canceled"
    failing = switchyard_rq.schedule_action("demo.boom", {"x": 1}, registry=reg)
    with switchyard_rq.Consumer(cconn, ["default", "hinted"], registry=reg, name="c3") as worker:
        assert worker.run(max_jobs=1, idle_timeout=0.5) == 1
    assert failing.status == "failed"

    class Args:
        queue, limit, json = "default", 10, True

    assert _jobs_failed(Args()) == 0  # type: ignore[arg-type]
    listed = json.loads(capsys.readouterr().out)
    assert [(row["id"], row["queue"]) for row in listed] == [(failing.id, "default")]
    assert failing.requeue() is True
    assert cconn.lrange("rq:queue:{default}", 0, -1) == [failing.id.encode()]


def test_outcomes_a_node_sent_on_are_kept_to_be_sent_again():
    """A node that answers MOVED (or ASK, TRYAGAIN) to the calls carrying outcomes ran none of
    them: the link keeps them pending (stored once on the new node: see STEP) and says so."""
    from switchyard_rq._consumer.link import RedisLink, Relocated

    link = RedisLink(redis.Redis(port=1), ["{default}"], name="unit")
    first, second = object(), object()
    moved = redis.exceptions.MovedError("1234 127.0.0.1:7001")
    with pytest.raises(Relocated, match=r"queue\(s\) \{default\} is elsewhere or moving"):
        link._replied(b"", [[first], [second]], [moved, 1, [b"", 0]])  # type: ignore[list-item]
    assert link._pending == [first]  # the one the node refused; the other was stored
    tryagain = redis.exceptions.TryAgainError("TRYAGAIN")
    with pytest.raises(Relocated):
        link._replied(b"", [], [tryagain])
    assert link._pending == [first]


def test_cancel_and_the_event_stream_on_a_cluster(cluster, cconn, reg):
    """Each queue's events live in its slot: read and followed across nodes; a queued job is
    canceled in its slot."""
    import os

    follower = subprocess.Popen(
        [sys.executable, "-m", "switchyard", "events", "--follow", "--json", "--max", "5"],
        env={**os.environ, "SWITCHYARD_REDIS_URL": cluster.url},
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        time.sleep(3)  # it started (and found no queue yet)
        waiting = switchyard_rq.schedule_action("demo.routed", {"x": 1}, registry=reg)
        assert waiting.cancel() is True
        assert waiting.status == "canceled"
        done = switchyard_rq.schedule_action("demo.double", {"x": 2}, registry=reg)
        with switchyard_rq.Consumer(cconn, ["default", "hinted"], registry=reg, name="c-ev") as w:
            assert w.run(max_jobs=1, idle_timeout=0.5) == 1
        assert done.result(timeout=5).y == 4
        out, err = follower.communicate(timeout=30)
        assert follower.returncode == 0, err
    finally:
        if follower.poll() is None:
            follower.kill()
            follower.wait()
    # no queue had a stream when it started: it found both (within 5 s) and read them whole
    followed = [(e["event"], e["job"]) for e in map(json.loads, out.splitlines())]
    assert [kind for kind, job in followed if job == waiting.id] == ["scheduled", "cancelled"]
    assert [kind for kind, job in followed if job == done.id] == [
        "scheduled",
        "started",
        "succeeded",
    ]
    from switchyard_rq._ops.events import read_events

    latest = [(e.queue, e.event) for e in read_events(cconn, ["{default}", "{hinted}"])]
    assert ("{hinted}", "cancelled") in latest
    assert ("{default}", "succeeded") in latest
