"""The STEP script and Python share names, not positions: an outcome's fields (Ack), the
dequeue's arguments (Take) and what it returns per job (Taken)."""

from __future__ import annotations

import re

import redis

from switchyard_rq._wire.scripts import (
    ACK_FIELDS,
    STEP,
    TAKE_FIELDS,
    TAKEN_FIELDS,
    Ack,
    Take,
    Taken,
)

NO_TAKE = Take("", 0, "contract", 0, "", 0, 0, 0, 0, 0, 0.0, 6.0)


def _body_after(source: str, marker: str, end: str) -> str:
    line = next(line for line in source.splitlines() if marker in line)
    return source.split(line, 1)[1].split(end, 1)[0]


def test_every_ack_field_is_read_by_name_and_none_by_position():
    source = STEP.source
    assert "ARGV[b +" not in source
    locals_line = next(line for line in source.splitlines() if "unpack(ARGV, b + 1" in line)
    assert locals_line.strip().startswith(f"local {', '.join(ACK_FIELDS)} =")
    body = _body_after(source, "unpack(ARGV, b + 1", "local d = ")
    for field in ACK_FIELDS:
        assert re.search(rf"\b{field}\b", body), f"STEP never reads the outcome field {field!r}"


def test_every_take_field_is_read_by_name():
    source = STEP.source
    locals_line = next(line for line in source.splitlines() if "unpack(ARGV, d, d +" in line)
    assert locals_line.strip().startswith(f"local {', '.join(TAKE_FIELDS)} =")
    assert f"d + {len(TAKE_FIELDS) - 1})" in locals_line
    body = source.split(locals_line, 1)[1]
    for field in TAKE_FIELDS:
        assert re.search(rf"\b{field}\b", body), f"STEP never reads the dequeue field {field!r}"
    assert "ARGV[d +" not in body.replace(f"ARGV[d + {len(TAKE_FIELDS)} - 1 + i]", "")


def test_the_reply_has_every_taken_field_in_order():
    listed = re.search(r"for _, v in ipairs\(\{(.*?)\}\) do", STEP.source)
    assert listed is not None
    values = [v.strip() for v in listed.group(1).split(",")]
    assert len(values) == len(TAKEN_FIELDS)
    reads = re.search(r"local f = redis.call\('HMGET', jk, (.*?)\)\n", STEP.source, re.S)
    assert reads is not None
    fields = [f.strip().strip("'") for f in reads.group(1).replace("\n", " ").split(",")]
    # each Taken field comes from the hash field of the same meaning
    meaning = {
        "data": "data",
        "left": "retries_left",
        "intervals": "retry_intervals",
        "tries": "number_of_retries",
        "result_ttl": "result_ttl",
        "failure_ttl": "failure_ttl",
        "trace": "sy_trace",
        "flow": "sy_flow",
    }
    for name, value in zip(TAKEN_FIELDS, values, strict=True):
        if name in meaning:
            assert value == f"f[{fields.index(meaning[name]) + 1}]", name
    enqueued = values[TAKEN_FIELDS.index("enqueued")]  # a job queued when created has none
    assert enqueued == (
        f"f[{fields.index('enqueued_at') + 1}] or f[{fields.index('created_at') + 1}]"
    )
    assert values[:2] == ["id", "i"]
    assert values[TAKEN_FIELDS.index("attempt")] == "attempt"


def test_a_dequeue_returns_the_named_fields(conn: redis.Redis):
    conn.hset(
        "rq:job:contract-take",
        mapping={
            "data": "payload",
            "status": "queued",
            "origin": "contract",
            "retries_left": 2,
            "retry_intervals": "[1]",
            "result_ttl": 60,
            "failure_ttl": 70,
            "enqueued_at": "then",
            "sy_trace": "{}",
        },
    )
    conn.rpush("rq:queue:contract", "contract-take")
    take = NO_TAKE._replace(now=1.0, n=1, prefix="p", k=1, marks=1, idle_until=2.0)
    reply = STEP(
        conn,
        ["switchyard:consumer:contract:processing", "rq:queue:contract", "switchyard:wake:c"],
        [0, *take, "contract"],
    )
    assert reply[:2] == [b"", 0]
    got = Taken(*reply[2:])
    assert (got.id, got.qi, got.data, got.left, got.intervals) == (
        b"contract-take", 1, b"payload", b"2", b"[1]",
    )  # fmt: skip
    assert (got.result_ttl, got.failure_ttl, got.attempt, got.enqueued, got.trace, got.flow) == (
        b"60", b"70", 1, b"then", b"{}", None,
    )  # fmt: skip
    assert conn.hget("rq:job:contract-take", "sy_run") == b"p-1"  # marks=1: it started


def test_a_failure_ack_lands_in_the_named_fields(conn: redis.Redis):
    job_id = "contract-fail"
    processing = "switchyard:consumer:contract:processing"
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
        result="",
        rq_text="eA==",
        exc_info="Boom: no",
        err='{"type": "Boom"}',
        started_ts=1_767_225_599.0,
        left="",
        tries="",
        due="",
        flow="",
        trip=0,
    )
    STEP(conn, [processing], [1, *ack, *NO_TAKE])
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


def test_an_ack_releases_the_lease_its_flow_names_and_tells_the_breaker(conn: redis.Redis):
    job_id = "contract-flow"
    processing = "switchyard:consumer:contract:processing"
    conn.hset(f"rq:job:{job_id}", mapping={"status": "started", "origin": "contract"})
    conn.rpush(processing, job_id)
    conn.zadd("switchyard:flow:c:contract", {f"{job_id}:e-1": 1e12})
    flow = '[["b","switchyard:flow:b:contract",1,0,10,60,30],["c","switchyard:flow:c:contract",1]]'
    ack = Ack("retry", job_id, "contract", "e-1", "now", 1.0, 0, "", "", "Boom", "{}", 1.0, 0, 1,
              "", flow, 1)  # fmt: skip
    STEP(conn, [processing], [1, *ack, *NO_TAKE])
    assert conn.zcard("switchyard:flow:c:contract") == 0  # the lease went with the outcome
    assert conn.hget("switchyard:flow:b:contract", "state") == b"open"  # 1 failure trips it
