"""The STEP script and Python share an outcome's fields by name (Ack), not by position."""

from __future__ import annotations

import re

import redis

from switchyard_rq._wire.scripts import ACK_FIELDS, STEP, Ack


def test_every_ack_field_is_read_by_name_and_none_by_position():
    source = STEP.source
    assert "ARGV[b +" not in source
    locals_line = next(line for line in source.splitlines() if "unpack(ARGV, b + 1" in line)
    assert locals_line.strip().startswith(f"local {', '.join(ACK_FIELDS)} =")
    body = source.split(locals_line, 1)[1].split("local d = ", 1)[0]
    for field in ACK_FIELDS:
        assert re.search(rf"\b{field}\b", body), f"STEP never reads the outcome field {field!r}"


def test_a_failure_ack_lands_in_the_named_fields(conn: redis.Redis):
    job_id = "contract-fail"
    processing = "switchyard:consumer:contract:processing"
    conn.delete(processing, f"rq:job:{job_id}", f"rq:results:{job_id}", "rq:failed:contract")
    conn.hset(f"rq:job:{job_id}", mapping={"status": "started", "origin": "contract"})
    conn.rpush(processing, job_id)
    ack = Ack(
        mode="fail",
        id=job_id,
        q="contract",
        exec="e-1",
        ended="2026-01-01T00:00:00Z",
        ended_ts=1_767_225_600.0,
        ttl=120,
        text="eA==",
        exc_info="Boom: no",
        err='{"type": "Boom"}',
        started_ts=1_767_225_599.0,
        left="",
        tries="",
        due="",
    )
    no_dequeue = ["", 0, "contract", 0, "", 0]
    STEP(conn, [processing], [1, *ack, *no_dequeue])
    job = conn.hgetall(f"rq:job:{job_id}")
    assert job[b"status"] == b"failed"
    assert job[b"ended_at"] == ack.ended.encode()
    assert job[b"exc_info"] == ack.exc_info.encode()
    assert job[b"sy_error"] == ack.err.encode()
    assert 0 < conn.ttl(f"rq:job:{job_id}") <= ack.ttl
    assert conn.zscore("rq:failed:contract", job_id) == ack.ended_ts + ack.ttl
    (entry,) = conn.xrange(f"rq:results:{job_id}")
    assert entry[1][b"exc_string"] == b"eA=="
    assert entry[1][b"execution_started_at"] == str(ack.started_ts).encode()
    assert conn.llen(processing) == 0
    conn.delete(f"rq:job:{job_id}", f"rq:results:{job_id}", "rq:failed:contract")
