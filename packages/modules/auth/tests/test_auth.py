from __future__ import annotations

import base64
import json
import logging
import re
from datetime import datetime, timedelta

import acme_auth
import pytest
from switchyard import HandlerError, InvalidInputError, Registry, call_action
from switchyard.testing import make_registry, use_registry

SECRET = "s3cret-for-tests-" + "x" * 32
FAST = {"n": 1024, "r": 8, "p": 1}  # cheap scrypt costs so the suite stays fast


@pytest.fixture(autouse=True)
def registry():
    reg = make_registry(*acme_auth.ACTIONS)
    with use_registry(reg):
        yield reg


def fields(exc: pytest.ExceptionInfo[InvalidInputError]) -> list[str]:
    return [error.loc for error in exc.value.errors]


# --- passwords -------------------------------------------------------------------------


def test_hash_encodes_scheme_parameters_salt_and_key():
    out = call_action("auth.hash_password", {"password": "correct horse"})
    match = re.fullmatch(r"scrypt\$n=16384,r=8,p=1\$([A-Za-z0-9+/]+)\$([A-Za-z0-9+/]+)", out.hash)
    assert match is not None
    salt, key = (base64.b64decode(part + "=" * (-len(part) % 4)) for part in match.groups())
    assert (len(salt), len(key)) == (16, 32)


def test_same_password_gets_a_different_salt_each_time():
    first = call_action("auth.hash_password", {"password": "correct horse", **FAST}).hash
    second = call_action("auth.hash_password", {"password": "correct horse", **FAST}).hash
    assert first != second
    for hashed in (first, second):
        assert call_action(
            "auth.verify_password", {"password": "correct horse", "hash": hashed}
        ).valid


def test_verify_rejects_a_wrong_password():
    hashed = call_action("auth.hash_password", {"password": "correct horse", **FAST}).hash
    out = call_action("auth.verify_password", {"password": "correct horsf", "hash": hashed})
    assert out.valid is False


def test_verify_flags_weak_parameters_for_rehash():
    weak = call_action("auth.hash_password", {"password": "correct horse", **FAST}).hash
    strong = call_action("auth.hash_password", {"password": "correct horse"}).hash
    assert call_action("auth.verify_password", {"password": "x", "hash": weak}).needs_rehash
    assert not call_action("auth.verify_password", {"password": "x", "hash": strong}).needs_rehash


def test_verify_uses_the_parameters_stored_in_the_hash():
    hashed = call_action(
        "auth.hash_password", {"password": "correct horse", "n": 2048, "r": 4}
    ).hash
    assert hashed.startswith("scrypt$n=2048,r=4,p=1$")
    assert call_action("auth.verify_password", {"password": "correct horse", "hash": hashed}).valid
    altered = hashed.replace("n=2048", "n=4096")
    assert not call_action(
        "auth.verify_password", {"password": "correct horse", "hash": altered}
    ).valid


@pytest.mark.parametrize(
    "bad_hash",
    [
        "not-a-hash",
        "bcrypt$n=16384,r=8,p=1$c2FsdHNhbHRzYWx0$a2V5a2V5a2V5a2V5a2V5a2V5",
        "scrypt$n=1000,r=8,p=1$c2FsdHNhbHRzYWx0$a2V5a2V5a2V5a2V5a2V5a2V5",  # n not 2**k
        "scrypt$n=16384,r=99,p=1$c2FsdHNhbHRzYWx0$a2V5a2V5a2V5a2V5a2V5a2V5",
        "scrypt$n=16384,r=8,p=1$c2FsdA$a2V5a2V5a2V5a2V5a2V5a2V5",  # salt too short
        "scrypt$n=1048576,r=32,p=1$c2FsdHNhbHRzYWx0$a2V5a2V5a2V5a2V5a2V5a2V5",  # 4 GiB to verify
    ],
)
def test_malformed_hash_is_an_input_error_on_the_hash_field(bad_hash):
    with pytest.raises(InvalidInputError) as exc:
        call_action("auth.verify_password", {"password": "whatever", "hash": bad_hash})
    assert fields(exc) == ["hash"]
    assert bad_hash not in str(exc.value)


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"password": "short"}, "password"),
        ({"password": "long enough", "n": 1000}, "n"),
        ({"password": "long enough", "n": 2**20, "r": 32}, "r"),
        ({"password": "long enough", "p": 0}, "p"),
        ({"password": "long enough", "salt": "mine"}, "salt"),
    ],
)
def test_hash_password_bad_input_names_the_field(data, field):
    with pytest.raises(InvalidInputError) as exc:
        call_action("auth.hash_password", data)
    assert fields(exc) == [field]
    assert exc.value.action == "auth.hash_password"


# --- tokens ----------------------------------------------------------------------------


def issue(**overrides):
    return call_action(
        "auth.issue_token",
        {"subject": "user:42", "audience": "web", "secret": SECRET, **overrides},
    )


def verify(token, **overrides):
    return call_action(
        "auth.verify_token", {"token": token, "audience": "web", "secret": SECRET, **overrides}
    )


def test_issued_token_verifies_with_its_claims():
    issued = issue(ttl_seconds=600)
    assert issued.expires_at - issued.issued_at == timedelta(seconds=600)
    out = verify(issued.token)
    assert out.model_dump() == {
        "valid": True,
        "reason": None,
        "subject": "user:42",
        "audience": "web",
        "expires_at": issued.expires_at,
    }


def test_expired_token_is_rejected_as_expired():
    issued = issue(ttl_seconds=60)
    out = verify(issued.token, at=(issued.expires_at + timedelta(seconds=1)).isoformat())
    assert (out.valid, out.reason, out.subject) == (False, "expired", "user:42")
    # within the leeway it still passes
    late = verify(issued.token, at=issued.expires_at.isoformat(), leeway_seconds=5)
    assert late.valid


def test_token_from_the_future_is_not_yet_valid():
    issued = issue()
    out = verify(issued.token, at=(issued.issued_at - timedelta(hours=1)).isoformat())
    assert (out.valid, out.reason) == (False, "not_yet_valid")


def test_wrong_audience_is_rejected_as_such():
    issued = issue(audience="admin")
    out = verify(issued.token)
    assert (out.valid, out.reason, out.audience) == (False, "wrong_audience", "admin")


def test_tampered_payload_is_rejected_as_tampered():
    version, payload, signature = issue().token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims["sub"] = "user:1"  # escalate to another user, keep the old signature
    forged = base64.urlsafe_b64encode(json.dumps(claims).encode()).decode().rstrip("=")
    out = verify(f"{version}.{forged}.{signature}")
    assert (out.valid, out.reason, out.subject) == (False, "tampered", None)


def test_token_signed_with_another_secret_is_rejected_as_tampered():
    issued = issue(secret="another-secret-" + "y" * 32)
    assert verify(issued.token).reason == "tampered"


@pytest.mark.parametrize("token", ["garbage", "v1.only-two", "v2.abc.def", "v1..sig", "v1.@@@.###"])
def test_malformed_token_is_rejected_as_malformed(token):
    out = verify(token)
    assert (out.valid, out.reason) == (False, "malformed")


def test_secret_comes_from_the_environment_when_not_given(monkeypatch):
    monkeypatch.setenv(acme_auth.SECRET_ENV, SECRET)
    issued = call_action("auth.issue_token", {"subject": "user:7", "audience": "web"})
    assert verify(issued.token).valid  # the explicit secret is the same one
    assert call_action("auth.verify_token", {"token": issued.token, "audience": "web"}).valid


def test_missing_secret_fails_with_a_message_saying_what_to_set(monkeypatch):
    monkeypatch.delenv(acme_auth.SECRET_ENV, raising=False)
    with pytest.raises(HandlerError) as exc:
        call_action("auth.issue_token", {"subject": "user:7", "audience": "web"})
    assert exc.value.error_type == "MissingSecretError"
    assert "ACME_AUTH_SECRET" in str(exc.value)


def test_secret_stays_out_of_logs_reprs_and_errors(caplog):
    caplog.set_level(logging.DEBUG)
    issued = issue()
    model = acme_auth.IssueTokenIn(subject="a", audience="web", secret=SECRET)
    assert SECRET not in repr(model)
    assert SECRET not in issued.model_dump_json()
    assert SECRET not in caplog.text
    short = "too-short-secret"
    with pytest.raises(InvalidInputError) as exc:
        issue(secret=short)
    assert fields(exc) == ["secret"]
    assert short not in str(exc.value)


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"subject": "", "audience": "web"}, "subject"),
        ({"subject": "user 42", "audience": "web"}, "subject"),
        ({"subject": "user:42", "audience": "Web App"}, "audience"),
        ({"subject": "user:42", "audience": "web", "ttl_seconds": 0}, "ttl_seconds"),
        ({"subject": "user:42", "audience": "web", "ttl_seconds": 10**9}, "ttl_seconds"),
    ],
)
def test_issue_token_bad_input_names_the_field(data, field):
    with pytest.raises(InvalidInputError) as exc:
        call_action("auth.issue_token", {**data, "secret": SECRET})
    assert fields(exc) == [field]


def test_verify_token_requires_an_aware_instant():
    naive = datetime(2030, 1, 1).isoformat()
    with pytest.raises(InvalidInputError) as exc:
        verify(issue().token, at=naive)
    assert fields(exc) == ["at"]


# --- packaging -------------------------------------------------------------------------


def test_every_entry_point_resolves_to_the_action_it_names():
    installed = Registry.from_entry_points()
    ours = sorted(action.name for action in acme_auth.ACTIONS)
    assert [name for name in installed.names() if name.startswith("auth.")] == ours
    for name in ours:
        assert installed.info(name).distribution == "acme-auth"
        assert installed.resolve(name).name == name


def test_a_queued_call_round_trips_through_json():
    # schedule_action sends model_dump_json() of the validated input; the worker revalidates
    queued = acme_auth.IssueTokenIn(subject="user:42", audience="web").model_dump_json()
    with pytest.MonkeyPatch.context() as env:
        env.setenv(acme_auth.SECRET_ENV, SECRET)
        issued = call_action("auth.issue_token", queued)
    assert verify(issued.token).valid


def test_a_secret_never_travels_through_the_queue_and_says_so():
    queued = acme_auth.IssueTokenIn(
        subject="user:42", audience="web", secret=SECRET
    ).model_dump_json()
    assert SECRET not in queued
    with pytest.raises(InvalidInputError) as exc:
        call_action("auth.issue_token", queued)
    assert fields(exc) == ["secret"]
    assert "ACME_AUTH_SECRET" in str(exc.value)
