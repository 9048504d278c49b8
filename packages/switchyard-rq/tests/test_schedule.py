"""schedule_action / schedule_many and JobHandle, end to end against Redis db 7."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import pytest
from rq.job import Job
from switchyard import InvalidInputError, UnknownActionError

import switchyard_rq


def test_sync_and_async_actions_run_and_return_validated_models(conn, reg, consumer):
    sync = switchyard_rq.schedule_action("demo.double", {"x": 21}, registry=reg)
    asyn = switchyard_rq.schedule_action("demo.adouble", '{"x": 4}', registry=reg)
    assert sync.status == "queued"
    assert consumer.run(max_jobs=2, idle_timeout=0.1) == 2
    assert sync.status == "finished"
    out = sync.result(timeout=1)
    assert type(out).__name__ == "Out"
    assert out.y == 42  # type: ignore[attr-defined]
    assert asyn.result(timeout=1).y == 8  # type: ignore[attr-defined]
    assert sync.error is None


@pytest.mark.parametrize("streams", ["0", "1"])
def test_jobs_are_rq_jobs_with_json_data(conn, reg, monkeypatch, streams):
    """RQ's Job.fetch reads a Switchyard job before and after it ran; its return_value() (RQ's
    result stream) is there with SWITCHYARD_RQ_RESULTS=1, the result in the hash either way."""
    monkeypatch.setenv("SWITCHYARD_RQ_RESULTS", streams)
    handle = switchyard_rq.schedule_action("demo.double", {"x": 1}, registry=reg)
    job = Job.fetch(handle.id, connection=conn, serializer=switchyard_rq.JSONSerializer)
    assert job.func_name == "switchyard_rq.dispatch"
    assert job.args == ["demo.double", '{"x":1,"blob":""}']
    assert job.origin == "default"
    with switchyard_rq.Consumer(conn, ["default"], registry=reg, name="rqcompat") as consumer:
        consumer.run(max_jobs=1, idle_timeout=0.1)
    job = Job.fetch(handle.id, connection=conn, serializer=switchyard_rq.JSONSerializer)
    assert job.get_status().value == "finished"
    assert job.return_value() == ('{"y":2}' if streams == "1" else None)
    assert conn.exists(f"rq:results:{handle.id}") == int(streams)
    assert handle.result(timeout=1).y == 2  # type: ignore[attr-defined]
    assert conn.zscore("rq:finished:default", handle.id) is not None
    assert conn.llen("switchyard:consumer:rqcompat:processing") == 0
    assert conn.zcard("rq:wip:default") == 0


def test_bad_input_raises_in_the_caller_and_writes_nothing(conn, reg):
    with pytest.raises(InvalidInputError, match="x"):
        switchyard_rq.schedule_action("demo.double", {"x": "nope"}, registry=reg)
    with pytest.raises(InvalidInputError):
        switchyard_rq.schedule_action("demo.double", {"x": 1, "extra": 2}, registry=reg)
    with pytest.raises(UnknownActionError, match="did you mean"):
        switchyard_rq.schedule_action("demo.doubel", {"x": 1}, registry=reg)
    with pytest.raises(ValueError, match="delay"):
        switchyard_rq.schedule_action("demo.double", {"x": 1}, delay=-1, registry=reg)
    with pytest.raises(ValueError, match="either delay or at"):
        switchyard_rq.schedule_action(
            "demo.double", {"x": 1}, delay=1, at=datetime.now(UTC), registry=reg
        )
    with pytest.raises(ValueError, match="timezone-aware"):
        switchyard_rq.schedule_action("demo.double", {"x": 1}, at=datetime.now(), registry=reg)
    with pytest.raises(ValueError, match="key"):
        switchyard_rq.schedule_action("demo.double", {"x": 1}, key="", registry=reg)
    # one bad call in a batch: nothing of the batch is written
    with pytest.raises(InvalidInputError):
        switchyard_rq.schedule_many(
            [("demo.double", {"x": 1}), ("demo.double", {"x": "bad"})], registry=reg
        )
    assert conn.dbsize() == 0


def test_oversized_payload_is_refused_at_schedule_time(conn, reg, monkeypatch):
    monkeypatch.setenv("SWITCHYARD_MAX_PAYLOAD_BYTES", "100")
    with pytest.raises(switchyard_rq.PayloadTooLargeError, match="over the limit of 100 bytes"):
        switchyard_rq.schedule_action("demo.double", {"x": 1, "blob": "a" * 200}, registry=reg)
    assert conn.dbsize() == 0
    switchyard_rq.schedule_action("demo.double", {"x": 1, "blob": "a" * 20}, registry=reg)


def test_schedule_many_is_one_batch_in_order(conn, reg, consumer):
    handles = switchyard_rq.schedule_many(
        [("demo.double", {"x": i}) for i in range(50)]
        + [switchyard_rq.Call("demo.routed", {"x": 7})],
        registry=reg,
    )
    assert len({h.id for h in handles}) == 51
    assert conn.llen("rq:queue:default") == 50
    assert conn.llen("rq:queue:hinted") == 1  # the action's queue hint routes it
    assert consumer.run(max_jobs=51, idle_timeout=0.1) == 51
    assert [h.result(timeout=1).y for h in handles[:3]] == [0, 2, 4]  # type: ignore[attr-defined]
    assert switchyard_rq.schedule_many([], registry=reg) == []


def test_routing_rules_come_first(conn, reg, monkeypatch, tmp_path):
    (tmp_path / "pyproject.toml").write_text(
        '[tool.switchyard]\ndefault-queue = "main"\n\n'
        '[tool.switchyard.routing]\n"demo.d*" = "fast"\n'
    )
    monkeypatch.chdir(tmp_path)
    assert switchyard_rq.route("demo.double") == "fast"
    assert switchyard_rq.route("demo.routed", "hinted") == "hinted"
    assert switchyard_rq.route("demo.other") == "main"
    handle = switchyard_rq.schedule_action("demo.double", {"x": 1}, registry=reg)
    assert conn.lrange("rq:queue:fast", 0, -1) == [handle.id.encode()]


def test_idempotency_key_returns_the_same_job_until_it_failed(conn, reg, consumer):
    first = switchyard_rq.schedule_action("demo.double", {"x": 1}, key="order-1", registry=reg)
    again = switchyard_rq.schedule_action("demo.double", {"x": 1}, key="order-1", registry=reg)
    assert again == first  # pending
    consumer.run(max_jobs=1, idle_timeout=0.1)
    done = switchyard_rq.schedule_many(
        [switchyard_rq.Call("demo.double", {"x": 1}, key="order-1")], registry=reg
    )[0]
    assert done == first  # finished
    assert conn.llen("rq:queue:default") == 0
    other = switchyard_rq.schedule_action("demo.double", {"x": 1}, key="order-2", registry=reg)
    assert other != first
    bad = switchyard_rq.schedule_action("demo.boom", {"x": 1}, key="boom-1", registry=reg)
    consumer.run(max_jobs=2, idle_timeout=0.1)
    assert bad.status == "failed"
    retried = switchyard_rq.schedule_action("demo.boom", {"x": 1}, key="boom-1", registry=reg)
    assert retried != bad  # a failed job does not hold its key


def test_delay_and_at_use_the_scheduled_registry(conn, reg, consumer):
    started = time.monotonic()
    delayed = switchyard_rq.schedule_action("demo.double", {"x": 2}, delay=0.3, registry=reg)
    at = switchyard_rq.schedule_action(
        "demo.double", {"x": 3}, at=datetime.now(UTC) + timedelta(seconds=0.3), registry=reg
    )
    assert delayed.status == "scheduled"
    assert conn.zcard("rq:scheduled:default") == 2
    assert conn.llen("rq:queue:default") == 0
    assert consumer.run(max_jobs=2, idle_timeout=30.0) == 2
    took = time.monotonic() - started
    assert took >= 0.3  # not before they were due
    assert took < 10  # promoted when due, not at the end of the idle wait (30 s)
    assert delayed.result(timeout=1).y == 4  # type: ignore[attr-defined]
    assert at.result(timeout=1).y == 6  # type: ignore[attr-defined]


def test_cancel_a_queued_or_scheduled_job(conn, reg, consumer):
    queued = switchyard_rq.schedule_action("demo.double", {"x": 1}, registry=reg)
    later = switchyard_rq.schedule_action("demo.double", {"x": 1}, delay=60, registry=reg)
    assert queued.cancel() is True
    assert later.cancel() is True
    assert queued.status == "canceled"
    assert conn.llen("rq:queue:default") == 0
    assert conn.zcard("rq:scheduled:default") == 0
    assert queued.error is not None
    assert queued.error.type == "JobCanceledError"
    with pytest.raises(switchyard_rq.JobFailedError, match="canceled"):
        queued.result(timeout=0)
    done = switchyard_rq.schedule_action("demo.double", {"x": 1}, registry=reg)
    consumer.run(max_jobs=1, idle_timeout=0.1)
    assert done.cancel() is False
    assert done.status == "finished"


def test_handles_for_missing_jobs_and_unfinished_results(conn, reg):
    with pytest.raises(switchyard_rq.JobNotFoundError, match="no job 'nope'"):
        switchyard_rq.JobHandle.fetch("nope", connection=conn)
    with pytest.raises(switchyard_rq.JobNotFoundError):
        switchyard_rq.JobHandle("nope", connection=conn).cancel()
    handle = switchyard_rq.schedule_action("demo.double", {"x": 1}, registry=reg)
    assert switchyard_rq.JobHandle.fetch(handle.id, connection=conn) == handle
    started = time.monotonic()
    with pytest.raises(switchyard_rq.ResultTimeoutError, match="status: queued"):
        handle.result(timeout=0.2)
    assert 0.2 <= time.monotonic() - started < 3  # it waited, and gave up when told
    with pytest.raises(ValueError, match="timeout"):
        handle.result(timeout=-1)


@pytest.mark.parametrize("delay", [None, 30.0])
def test_the_packed_hash_and_the_keyed_script_write_the_same_job(conn, reg, delay):
    plain = switchyard_rq.schedule_action("demo.flaky", {"x": 1}, delay=delay, registry=reg)
    keyed = switchyard_rq.schedule_action(
        "demo.flaky", {"x": 1}, delay=delay, key=f"same-{delay}", registry=reg
    )
    fields = [conn.hgetall(f"rq:job:{h.id}") for h in (plain, keyed)]
    for job in fields:
        stamp = job.pop(b"created_at").decode()
        assert datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%S.%fZ")  # RQ's format
        assert b"enqueued_at" not in job  # queued when created (readers use created_at)
    assert fields[0] == fields[1]
    assert fields[0][b"status"] == (b"queued" if delay is None else b"scheduled")
    assert fields[0][b"origin"] == b"default"
    assert fields[0][b"retries_left"] == b"2"
