"""The gateway's API end to end, auth off: a real gateway process on a loopback port, real Redis,
a real worker where a job must run."""

from __future__ import annotations

import json

import pytest
from switchyard_gateway_testkit import wait_for

PROBLEM = "application/problem+json"


def _problem(status, headers, body, code, slug):
    assert status == code, body
    assert headers["content-type"] == PROBLEM
    assert body["status"] == code
    assert body["type"] == f"urn:switchyard:gateway:{slug}"
    assert "Traceback" not in json.dumps(body)
    return body


def test_lists_actions_with_their_queues(start_gateway, redis_db):
    gw = start_gateway()
    assert "auth off" in gw.boot
    status, _, body = gw.request("GET", "/v1/actions")
    assert status == 200
    found = {a["name"]: a for a in body["actions"]}
    assert found["gtest.echo"]["queue"] == "default"
    assert found["gtest.echo"]["url"] == "/v1/actions/gtest.echo"


def test_runs_an_action_in_process(start_gateway, redis_db):
    gw = start_gateway()
    status, headers, body = gw.request("POST", "/v1/actions/gtest.echo", {"text": "ab", "times": 2})
    assert (status, body) == (200, {"text": "abab"})
    assert headers["content-type"] == "application/json"
    status, _, body = gw.request("POST", "/v1/actions/gtest.aecho", {"text": "async"})
    assert (status, body) == (200, {"text": "async"})
    status, _, body = gw.request("POST", "/v1/actions/gtest.wait", {"seconds": 0})  # io_bound
    assert (status, body) == (200, {})


def test_schedules_with_prefer_respond_async_and_the_job_runs(
    start_gateway, start_worker, redis_db
):
    gw = start_gateway()
    status, headers, body = gw.request(
        "POST", "/v1/actions/gtest.echo", {"text": "job"}, {"Prefer": "respond-async"}
    )
    assert status == 202, body
    assert headers["location"] == f"/v1/jobs/{body['id']}" == body["url"]
    assert headers["preference-applied"] == "respond-async"
    status, _, job = gw.request("GET", headers["location"])
    assert status == 200
    assert job["status"] == "queued"
    assert job["action"] == "gtest.echo"
    start_worker(redis_db)
    done = wait_for(
        lambda: (j := gw.request("GET", headers["location"])[2])["status"] == "finished" and j,
        what="the job to finish",
    )
    assert done["result"] == {"text": "job"}


def test_failed_job_reports_its_error(start_gateway, start_worker, redis_db):
    gw = start_gateway()
    _, headers, _ = gw.request(
        "POST", "/v1/actions/gtest.fail", {"text": "x"}, {"Prefer": "respond-async"}
    )
    start_worker(redis_db)
    job = wait_for(
        lambda: (j := gw.request("GET", headers["location"])[2])["status"] == "failed" and j,
        what="the job to fail",
    )
    assert job["error"]["message"].endswith("failed on purpose: x")


def test_idempotency_key_gives_the_same_job(start_gateway, redis_db):
    gw = start_gateway()
    prefer = {"Prefer": "respond-async", "Idempotency-Key": "order-7"}
    first = gw.request("POST", "/v1/actions/gtest.echo", {"text": "a"}, prefer)[2]
    second = gw.request("POST", "/v1/actions/gtest.echo", {"text": "a"}, prefer)[2]
    assert first["id"] == second["id"]


def test_cancels_a_queued_job_then_conflicts(start_gateway, redis_db):
    gw = start_gateway()  # no worker: the job stays queued
    _, headers, _ = gw.request(
        "POST", "/v1/actions/gtest.echo", {"text": "c"}, {"Prefer": "respond-async"}
    )
    status, _, body = gw.request("DELETE", headers["location"])
    assert (status, body["status"]) == (200, "canceled")
    assert gw.request("GET", headers["location"])[2]["status"] == "canceled"
    _problem(*gw.request("DELETE", headers["location"]), 409, "not-cancelable")


def test_deleting_a_running_job_asks_it_to_stop(start_gateway, redis_db):
    gw = start_gateway()
    _, headers, _ = gw.request(
        "POST", "/v1/actions/gtest.echo", {"text": "r"}, {"Prefer": "respond-async"}
    )
    job_id = headers["location"].rsplit("/", 1)[1]
    redis_db.hset(f"rq:job:{job_id}", "status", "started")  # as a worker marks it when it starts
    status, _, body = gw.request("DELETE", headers["location"])
    assert (status, body) == (202, {"id": job_id, "status": "started", "cancel": True})
    assert redis_db.hget(f"rq:job:{job_id}", "sy_cancel") == b"1"  # its worker tells it


def test_unknown_job(start_gateway, redis_db):
    gw = start_gateway()
    _problem(*gw.request("GET", "/v1/jobs/0123abcd"), 404, "unknown-job")
    _problem(*gw.request("DELETE", "/v1/jobs/0123abcd"), 404, "unknown-job")
    _problem(*gw.request("GET", "/v1/jobs/bad%20id!"), 404, "unknown-job")


def test_malformed_json_is_400(start_gateway, redis_db):
    gw = start_gateway()
    body = _problem(
        *gw.request("POST", "/v1/actions/gtest.echo", raw=b'{"text": '), 400, "malformed-json"
    )
    assert "not valid JSON" in body["detail"]


def test_validation_is_422_naming_each_field(start_gateway, redis_db):
    gw = start_gateway()
    for headers in ({}, {"Prefer": "respond-async"}):
        body = _problem(
            *gw.request("POST", "/v1/actions/gtest.echo", {"times": 99, "extra": 1}, headers),
            422,
            "invalid-input",
        )
        fields = {e["field"]: e for e in body["errors"]}
        assert set(fields) == {"text", "times"}
        assert fields["text"]["type"] == "missing"
        assert "less than or equal to 10" in fields["times"]["message"]
    assert int(redis_db.dbsize()) == 0  # nothing reached Redis


def test_unknown_action_is_404_with_suggestions(start_gateway, redis_db):
    gw = start_gateway()
    body = _problem(
        *gw.request("POST", "/v1/actions/gtest.eco", {"text": "x"}), 404, "unknown-action"
    )
    assert body["suggestions"][0] == "gtest.echo"
    assert "did you mean: gtest.echo" in body["detail"]
    _problem(*gw.request("GET", "/v2/nothing"), 404, "not-found")


def test_wrong_method_is_405(start_gateway, redis_db):
    gw = start_gateway()
    status, headers, _ = gw.request("GET", "/v1/actions/gtest.echo")
    assert status == 405
    assert headers["allow"] == "POST"


def test_body_over_the_limit_is_413(start_gateway, redis_db):
    gw = start_gateway("--max-body", "64")
    big = {"text": "x" * 100}
    body = _problem(*gw.request("POST", "/v1/actions/gtest.echo", big), 413, "too-large")
    assert body["limit"] == 64
    assert gw.request("POST", "/v1/actions/gtest.echo", {"text": "ok"})[0] == 200


def test_handler_failure_is_500_without_a_traceback(start_gateway, redis_db):
    gw = start_gateway()
    body = _problem(
        *gw.request("POST", "/v1/actions/gtest.fail", {"text": "y"}), 500, "action-failed"
    )
    assert body["error_type"] == "RuntimeError"
    assert "failed on purpose: y" in body["detail"]


def test_breaker_opens_after_failures_then_503(start_gateway, redis_db):
    gw = start_gateway()
    assert gw.request("POST", "/v1/actions/gtest.flaky", {"text": "fine"})[0] == 200
    for _ in range(2):  # the breaker's failures: 2
        answer = gw.request("POST", "/v1/actions/gtest.flaky", {"text": "boom"})
        _problem(*answer, 500, "action-failed")
    status, headers, body = gw.request("POST", "/v1/actions/gtest.flaky", {"text": "fine"})
    _problem(status, headers, body, 503, "breaker-open")
    assert 1 <= int(headers["retry-after"]) <= 30
    # the same breaker as the action's jobs: scheduling is refused too, and top shows it open
    _problem(
        *gw.request("POST", "/v1/actions/gtest.flaky", {"text": "x"}, {"Prefer": "respond-async"}),
        503,
        "breaker-open",
    )
    import switchyard_rq

    states = {s.name: s for s in switchyard_rq.flow_stats(redis_db)}
    assert states["gtest.flaky"].state == "open"
    # other actions are not affected
    assert gw.request("POST", "/v1/actions/gtest.echo", {"text": "x"})[0] == 200


def test_breaker_probe_after_cooldown_closes_it(start_gateway, redis_db):
    gw = start_gateway()
    for _ in range(2):
        gw.request("POST", "/v1/actions/gtest.flaky", {"text": "boom"})
    assert gw.request("POST", "/v1/actions/gtest.flaky", {"text": "a"})[0] == 503
    key = "switchyard:flow:b:gtest.flaky"
    redis_db.hset(key, "until", 0)  # the cooldown is over
    # a probe with bad input decides nothing: the next call probes at once
    assert gw.request("POST", "/v1/actions/gtest.flaky", {"nope": 1})[0] == 422
    assert redis_db.hget(key, "state") == b"open"
    assert gw.request("POST", "/v1/actions/gtest.flaky", {"text": "probe"})[0] == 200
    assert redis_db.hget(key, "state") is None  # closed by the probe's success
    assert gw.request("POST", "/v1/actions/gtest.flaky", {"text": "b"})[0] == 200


def test_health_ready_and_metrics(start_gateway, redis_db):
    gw = start_gateway()
    assert gw.request("GET", "/healthz")[2] == {"status": "ok"}
    status, _, body = gw.request("GET", "/readyz")
    assert status == 200
    assert body["status"] == "ready"
    gw.request("POST", "/v1/actions/gtest.echo", {"text": "m"})
    gw.request("POST", "/v1/actions/gtest.echo", {"nope": 1})
    status, headers, text = gw.request("GET", "/metrics")
    assert status == 200
    assert headers["content-type"].startswith("text/plain")
    assert (
        'switchyard_gateway_requests_total{action="gtest.echo",route="action",status="200"} 1.0'
        in text
    )
    assert 'action="gtest.echo",route="action",status="422"} 1.0' in text
    count = 'switchyard_gateway_request_seconds_count{action="gtest.echo",route="action"} 2.0'
    assert count in text


def test_readyz_says_when_redis_is_down(start_gateway, redis_db):
    gw = start_gateway(env={"SWITCHYARD_REDIS_URL": "redis://127.0.0.1:1/0"})
    status, _, body = gw.request("GET", "/readyz")
    assert status == 503
    assert body["status"] == "unavailable"
    # an action that needs Redis answers 503, never a traceback
    _problem(
        *gw.request("POST", "/v1/actions/gtest.echo", {"text": "x"}, {"Prefer": "respond-async"}),
        503,
        "redis-unavailable",
    )
    assert gw.request("POST", "/v1/actions/gtest.echo", {"text": "x"})[0] == 200  # in-process


def test_traceparent_is_continued_into_the_job(start_gateway, redis_db):
    gw = start_gateway()
    trace_id = "0af7651916cd43dd8448eb211c80319c"
    parent = f"00-{trace_id}-b7ad6b7169203331-01"
    _, _, body = gw.request(
        "POST",
        "/v1/actions/gtest.echo",
        {"text": "t"},
        {"Prefer": "respond-async", "traceparent": parent},
    )
    carrier = json.loads(redis_db.hget(f"rq:job:{body['id']}", "sy_trace"))
    assert carrier["traceparent"].split("-")[1] == trace_id
    _, _, body = gw.request(
        "POST", "/v1/actions/gtest.echo", {"text": "t"}, {"Prefer": "respond-async"}
    )
    assert redis_db.hget(f"rq:job:{body['id']}", "sy_trace") is None


@pytest.mark.parametrize("workers", ["1", "2"])
def test_client_rate_is_shared_by_every_gateway(start_gateway, redis_db, workers):
    """Two gateway processes (or one with two server processes) share one client's rate."""
    first = start_gateway("--rate", "1/min", "--workers", workers)
    second = start_gateway("--rate", "1/min")
    assert first.request("POST", "/v1/actions/gtest.echo", {"text": "1"})[0] == 200
    status, headers, body = second.request("POST", "/v1/actions/gtest.echo", {"text": "2"})
    _problem(status, headers, body, 429, "rate-limited")
    assert 50 <= int(headers["retry-after"]) <= 60
    _problem(*first.request("POST", "/v1/actions/gtest.echo", {"text": "3"}), 429, "rate-limited")


def test_two_server_processes_share_metrics(start_gateway, redis_db):
    gw = start_gateway("--workers", "2")
    assert "2 process(es)" in gw.boot
    for n in range(6):
        assert gw.request("POST", "/v1/actions/gtest.echo", {"text": str(n)})[0] == 200
    text = gw.request("GET", "/metrics")[2]
    assert 'action="gtest.echo",route="action",status="200"} 6.0' in text


def test_openapi_and_docs_import_no_plugin(start_gateway, redis_db, manifest, tmp_path):
    log = tmp_path / "imports.log"
    gw = start_gateway(manifest=manifest, env={"GTEST_IMPORT_LOG": str(log)})
    assert "from manifest" in gw.boot
    status, _, doc = gw.request("GET", "/openapi.json")
    assert status == 200
    assert doc["openapi"] == "3.1.0"
    post = doc["paths"]["/v1/actions/gtest.echo"]["post"]
    assert post["summary"] == "Echo a text, repeated"
    schemas = doc["components"]["schemas"]
    ref = post["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    echo_input = schemas[ref.removeprefix("#/components/schemas/")]
    assert echo_input["required"] == ["text"]
    assert echo_input["properties"]["times"]["maximum"] == 10
    every_ref = [v for v in _walk(doc) if isinstance(v, str) and v.startswith("#/")]
    for target in every_ref:  # every reference resolves in the document
        node = doc
        for part in target.removeprefix("#/").split("/"):
            node = node[part]
    assert {"/v1/jobs/{id}", "/v1/actions"} <= set(doc["paths"])
    status, headers, page = gw.request("GET", "/docs")
    assert status == 200
    assert headers["content-type"].startswith("text/html")
    assert "POST /v1/actions/gtest.echo" in page
    assert "what to echo" in page
    gw.request("GET", "/v1/actions")
    assert not log.exists()  # no plugin was imported
    gw.request("POST", "/v1/actions/gtest.echo", {"text": "now"})
    assert log.exists()


def _walk(node):
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref":
                yield value
            yield from _walk(value)
    elif isinstance(node, list):
        for item in node:
            yield from _walk(item)
