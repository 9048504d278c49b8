from __future__ import annotations

import hashlib
import hmac
import json
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from acme_webhooks import SIGNATURE_HEADER, sign, verify
from acme_webhooks import deliver as deliver_fn
from acme_webhooks.actions import deliver, generate_secret, sign_payload, verify_signature
from switchyard import InvalidInputError, Registry, call_action, load_config
from switchyard.testing import make_registry, run, use_registry

ACTIONS = (
    "webhooks.sign_payload",
    "webhooks.verify_signature",
    "webhooks.deliver",
    "webhooks.generate_secret",
)
SECRET = "whsec_test_secret_0123456789"
T0 = 1_700_000_000


# ---- a real HTTP receiver on 127.0.0.1 -------------------------------------------------------


@dataclass
class Receiver:
    """Answers each POST with the next scripted (status, delay, headers); records requests."""

    script: list[tuple[int, float, dict[str, str]]] = field(default_factory=list)
    requests: list[tuple[dict[str, str], bytes]] = field(default_factory=list)
    url: str = ""


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    state = Receiver()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            state.requests.append(({k.lower(): v for k, v in self.headers.items()}, body))
            status, delay, headers = state.script.pop(0) if state.script else (200, 0.0, {})
            time.sleep(delay)
            try:
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", "0")
                self.end_headers()
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client timed out and left

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    state.url = f"http://127.0.0.1:{server.server_address[1]}/hooks"
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def deliver_data(url: str, **extra):
    return {
        "url": url,
        "payload": {"event": "invoice.paid", "amount": "12.50", "name": "Zoë"},
        "secret": SECRET,
        "backoff_seconds": 0.01,
        **extra,
    }


# ---- signing and verification ----------------------------------------------------------------


def test_sign_payload_is_hmac_sha256_over_timestamp_and_body():
    out = run(sign_payload, {"payload": {"b": 1, "a": [1, 2]}, "secret": SECRET, "timestamp": T0})
    assert out.body == '{"a":[1,2],"b":1}'
    expected = hmac.new(SECRET.encode(), f"{T0}.".encode() + out.body.encode(), hashlib.sha256)
    assert out.header_value == f"t={T0},v1={expected.hexdigest()}"
    assert out.header_name == SIGNATURE_HEADER == "Acme-Signature"


def test_sign_payload_defaults_to_now():
    before = int(time.time())
    out = run(sign_payload, {"payload": {}, "secret": SECRET})
    assert before <= out.timestamp <= int(time.time())


def verify_with(header: str, body: str, now: int, **extra):
    data = {"body": body, "header": header, "secrets": [SECRET], "now": now, **extra}
    return run(verify_signature, data)


def test_verify_accepts_a_fresh_signature():
    header = sign(SECRET, b'{"x":1}', T0)
    out = verify_with(header, '{"x":1}', T0 + 10)
    assert (out.valid, out.reason, out.timestamp, out.age_seconds) == (True, "ok", T0, 10)


def test_verify_gives_distinct_reasons():
    body = '{"x":1}'
    header = sign(SECRET, body.encode(), T0)
    assert verify_with(header, '{"x":2}', T0).reason == "bad_signature"
    assert verify_with(sign("another_secret_abcdef", body.encode(), T0), body, T0).reason == (
        "bad_signature"
    )
    assert verify_with(header, body, T0 + 301).reason == "too_old"
    assert verify_with(header, body, T0 + 300).reason == "ok"
    assert verify_with(header, body, T0 - 61).reason == "from_future"
    assert verify_with(header, body, T0 - 60).reason == "ok"
    assert verify_with(header, body, T0 + 1000, tolerance_seconds=3600).reason == "ok"
    # A forged, old request is reported as forged: the signature is checked first.
    assert verify_with(header, '{"x":2}', T0 + 10_000).reason == "bad_signature"
    # A replayed signature under a new timestamp does not verify.
    forged = header.replace(f"t={T0}", f"t={T0 + 5000}")
    assert verify_with(forged, body, T0 + 5000).reason == "bad_signature"


@pytest.mark.parametrize(
    "header",
    [
        "garbage",
        f"t={T0}",
        "v1=" + "a" * 64,
        f"t=abc,v1={'a' * 64}",
        f"t={T0},v1=xyz",
        f"t={T0},t={T0},v1={'a' * 64}",
        f"t={T0},,v1={'a' * 64}",
    ],
)
def test_verify_rejects_malformed_headers(header):
    out = verify_with(header, "{}", T0)
    assert (out.valid, out.reason, out.timestamp) == (False, "malformed_header", None)


def test_verify_supports_secret_rotation_and_extra_schemes():
    body = b"{}"
    old, new = "old_secret_0123456789", "new_secret_0123456789"
    both = f"{sign(new, body, T0)},v1={sign(old, body, T0).split('v1=')[1]},v0=legacy"
    assert verify(both, body, [old], now=T0)[0] == "ok"
    assert verify(both, body, [new], now=T0)[0] == "ok"
    assert verify(both, body, ["third_secret_0123456789"], now=T0)[0] == "bad_signature"


# ---- delivery against a real local server ----------------------------------------------------


def test_deliver_posts_a_verifiable_signed_body(receiver):
    out = run(deliver, deliver_data(receiver.url, event_id="evt_1", headers={"X-Tenant": "t1"}))
    assert (out.delivered, out.status_code, out.event_id, len(out.attempts)) == (
        True,
        200,
        "evt_1",
        1,
    )
    headers, body = receiver.requests[0]
    assert json.loads(body) == {"amount": "12.50", "event": "invoice.paid", "name": "Zoë"}
    assert headers["content-type"] == "application/json"
    assert headers["x-tenant"] == "t1"
    assert (headers["acme-event-id"], headers["acme-delivery-attempt"]) == ("evt_1", "1")
    verdict = verify_with(headers["acme-signature"], body.decode(), int(time.time()))
    assert verdict.valid


def test_deliver_retries_server_errors_then_succeeds(receiver):
    receiver.script = [(503, 0.0, {}), (500, 0.0, {}), (204, 0.0, {})]
    out = run(deliver, deliver_data(receiver.url))
    assert out.delivered
    assert out.status_code == 204
    assert [a.status_code for a in out.attempts] == [503, 500, 204]
    assert [a.waited_seconds for a in out.attempts] == [0.0, 0.01, 0.02]
    ids = {h["acme-event-id"] for h, _ in receiver.requests}
    assert len(ids) == 1
    assert [h["acme-delivery-attempt"] for h, _ in receiver.requests] == [
        "1",
        "2",
        "3",
    ]


def test_deliver_does_not_retry_a_client_error(receiver):
    receiver.script = [(410, 0.0, {})]
    out = run(deliver, deliver_data(receiver.url))
    assert (out.delivered, out.status_code, len(out.attempts)) == (False, 410, 1)
    assert len(receiver.requests) == 1


def test_deliver_honours_retry_after_and_gives_up(receiver):
    receiver.script = [(429, 0.0, {"Retry-After": "1"})] + [(503, 0.0, {})] * 5
    slept: list[float] = []
    result = deliver_fn(
        receiver.url,
        b"{}",
        secret=SECRET,
        event_id="e",
        max_attempts=3,
        backoff=0.25,
        sleep=slept.append,
    )
    assert not result.delivered
    assert result.status_code == 503
    assert slept == [1.0, 0.5]  # Retry-After beats the 0.25 s backoff; then 0.25 * 2


def test_deliver_retries_timeouts(receiver):
    # Generous margins: the second, prompt answer must arrive within the timeout on a busy machine.
    receiver.script = [(200, 1.5, {}), (200, 0.0, {})]
    out = run(deliver, deliver_data(receiver.url, timeout_seconds=0.5))
    assert out.delivered
    assert len(out.attempts) == 2
    assert out.attempts[0].status_code is None
    assert (out.attempts[0].error or "").startswith("ReadTimeout")


def test_deliver_reports_connection_refused():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    out = run(deliver, deliver_data(f"http://127.0.0.1:{port}/", max_attempts=2))
    assert not out.delivered
    assert out.status_code is None
    assert [(a.error or "").split(":")[0] for a in out.attempts] == ["ConnectError"] * 2


# ---- validation, registry --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("act", "data", "field"),
    [
        (deliver, {**deliver_data("ftp://example.com/x")}, "url"),
        (deliver, {**deliver_data("http://127.0.0.1/"), "secret": "short"}, "secret"),
        (deliver, {**deliver_data("http://127.0.0.1/"), "max_attempts": 0}, "max_attempts"),
        (
            deliver,
            {**deliver_data("http://127.0.0.1/"), "payload": {"x": "y" * 300_000}},
            "payload",
        ),
        (deliver, {**deliver_data("http://127.0.0.1/"), "event_id": "has space"}, "event_id"),
        (sign_payload, {"payload": [1, 2], "secret": SECRET}, "payload"),
        (sign_payload, {"payload": {}, "secret": SECRET, "timestamp": -1}, "timestamp"),
        (verify_signature, {"body": "", "header": "t=1", "secrets": []}, "secrets"),
        (verify_signature, {"body": "", "header": "", "secrets": [SECRET]}, "header"),
        (generate_secret, {"entropy_bytes": 8}, "entropy_bytes"),
    ],
)
def test_bad_input_names_the_field(act, data, field):
    with pytest.raises(InvalidInputError) as info:
        run(act, data)
    assert [e.loc for e in info.value.errors] == [field]
    assert f"{field}:" in str(info.value)


def test_generate_secret_is_random_and_long_enough():
    a = run(generate_secret, {}).secret
    b = run(generate_secret, {"entropy_bytes": 48}).secret
    assert a.startswith("whsec_")
    assert a != b
    assert len(a) == len("whsec_") + 43
    assert len(b) == len("whsec_") + 64


def test_call_action_through_an_in_memory_registry():
    with use_registry(make_registry(sign_payload, verify_signature)):
        signed = call_action("webhooks.sign_payload", {"payload": {"k": 1}, "secret": SECRET})
        out = call_action(
            "webhooks.verify_signature",
            {"body": signed.body, "header": signed.header_value, "secrets": [SECRET]},
        )
    assert out.valid


def test_actions_are_registered_as_entry_points():
    registry = Registry.from_entry_points()
    for name in ACTIONS:
        assert registry.info(name).distribution == "acme-webhooks"
    assert registry.resolve("webhooks.deliver") is deliver


def test_root_routing_puts_the_actions_on_a_shared_queue():
    config = load_config(Path(__file__).parent)
    assert config.route("webhooks.deliver") == "bulk"
    assert config.route("webhooks.verify_signature") == "interactive"
