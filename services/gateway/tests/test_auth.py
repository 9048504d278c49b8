"""Auth at the edge, end to end: API keys from a settings file and the environment, JWTs HS256
and RS256 (JWKS), scopes per action glob, per-key rates, on a real gateway process."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time

import pytest
from switchyard_gateway import hash_key

BILLING_KEY = "sy_billing-key-for-tests-0123456789abcdef"
ADMIN_KEY = "sy_admin-key-for-tests-0123456789abcdef"
ENV_KEY = "sy_env-key-for-tests-0123456789abcdef"
VIEWER_KEY = "sy_viewer-key-for-tests-0123456789abcdef"
SECRET = "hs256-secret-for-the-tests"


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def hs256(claims: dict, secret: str = SECRET, alg: str = "HS256") -> str:
    head = _b64(json.dumps({"alg": alg, "typ": "JWT"}).encode())
    body = _b64(json.dumps(claims).encode())
    signature = hmac.new(secret.encode(), f"{head}.{body}".encode(), hashlib.sha256).digest()
    return f"{head}.{body}.{_b64(signature)}"


@pytest.fixture(scope="module")
def rsa_key():
    from cryptography.hazmat.primitives.asymmetric import rsa

    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def rs256(claims: dict, key, kid: str = "k1") -> str:
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import padding

    head = _b64(json.dumps({"alg": "RS256", "typ": "JWT", "kid": kid}).encode())
    body = _b64(json.dumps(claims).encode())
    signature = key.sign(f"{head}.{body}".encode(), padding.PKCS1v15(), hashes.SHA256())
    return f"{head}.{body}.{_b64(signature)}"


@pytest.fixture
def secured(start_gateway, redis_db, tmp_path, rsa_key):
    numbers = rsa_key.public_key().public_numbers()

    def part(n: int) -> str:
        return _b64(n.to_bytes((n.bit_length() + 7) // 8, "big"))

    jwks = tmp_path / "jwks.json"
    jwks.write_text(
        json.dumps(
            {"keys": [{"kty": "RSA", "kid": "k1", "n": part(numbers.n), "e": part(numbers.e)}]}
        )
    )
    config = tmp_path / "gateway.toml"
    config.write_text(
        f"""
rate = "1000/s"

[[keys]]
client = "billing"
hash = "{hash_key(BILLING_KEY)}"
scopes = ["gtest.echo", "gtest.a*"]
rate = "20/min"  # a burst of 2

[[keys]]
client = "ops"
hash = "{hash_key(ADMIN_KEY)}"
scopes = ["*"]

[jwt]
secret-env = "GTEST_JWT_SECRET"
jwks = "jwks.json"
issuer = "https://issuer.test"
audience = "switchyard"
"""
    )
    env = {
        "GTEST_JWT_SECRET": SECRET,
        "SWITCHYARD_GATEWAY_KEYS": f"envclient {hash_key(ENV_KEY)} gtest.secret; "
        f"viewer {hash_key(VIEWER_KEY)} dashboard,gtest.echo",
    }
    return start_gateway("--config", str(config), env=env)


def _claims(**extra) -> dict:
    return {
        "sub": "svc-a",
        "scope": "gtest.echo gtest.secret",
        "iss": "https://issuer.test",
        "aud": "switchyard",
        "exp": time.time() + 60,
        **extra,
    }


def _status(gw, token=None, action="gtest.echo", header="Authorization", body=None):
    headers = {}
    if token is not None:
        headers[header] = f"Bearer {token}" if header == "Authorization" else token
    payload = {"text": "x"} if body is None else body
    status, found, answer = gw.request("POST", f"/v1/actions/{action}", payload, headers)
    if status >= 400:
        assert found["content-type"] == "application/problem+json"
    return status, found, answer


def test_boot_line_says_how_auth_is_on(secured):
    assert "auth on (4 API key(s), JWT HS256, JWT RS256)" in secured.boot


def test_no_or_bad_credentials_are_401(secured):
    status, headers, body = _status(secured)
    assert status == 401
    assert headers["www-authenticate"].startswith("Bearer")
    assert body["type"].endswith("unauthorized")
    assert _status(secured, "sy_not-a-key")[0] == 401
    assert _status(secured, "Basic abc", header="Authorization")[0] == 401
    status, _, body = secured.request(
        "POST", "/v1/actions/gtest.echo", {"text": "x"}, {"Authorization": "Basic dXNlcjpwdw=="}
    )
    assert status == 401
    assert "Bearer" in body["detail"]


def test_api_key_scopes_are_action_globs(secured):
    assert _status(secured, ADMIN_KEY, "gtest.secret", body={})[0] == 200
    assert _status(secured, BILLING_KEY)[0] == 200
    assert _status(secured, BILLING_KEY, "gtest.aecho")[0] == 200
    status, _, body = _status(secured, BILLING_KEY, "gtest.fail")
    assert status == 403
    assert "no scope for action 'gtest.fail'" in body["detail"]
    # X-API-Key works as well; keys from the environment join the file's
    assert _status(secured, ENV_KEY, "gtest.secret", header="X-API-Key", body={})[0] == 200
    assert _status(secured, ENV_KEY, "gtest.echo", header="X-API-Key")[0] == 403


def test_listing_shows_only_the_callers_actions(secured):
    _, _, body = secured.request("GET", "/v1/actions", headers={"X-API-Key": BILLING_KEY})
    assert {a["name"] for a in body["actions"]} == {"gtest.echo", "gtest.aecho"}
    assert secured.request("GET", "/v1/actions")[0] == 401


def test_unknown_action_suggests_only_what_the_caller_may_call(secured):
    _, _, body = _status(secured, ENV_KEY, "gtest.echoo", header="X-API-Key")
    assert "gtest.echo" not in body["suggestions"]
    _, _, body = _status(secured, BILLING_KEY, "gtest.echoo")
    assert body["suggestions"][0] == "gtest.echo"


def test_per_key_rate_is_429_with_retry_after(secured):
    assert _status(secured, BILLING_KEY)[0] == 200
    assert _status(secured, BILLING_KEY)[0] == 200
    status, headers, body = _status(secured, BILLING_KEY)
    assert status == 429
    assert int(headers["retry-after"]) >= 1
    assert body["retry_after"] > 0
    assert _status(secured, ADMIN_KEY)[0] == 200  # another client: its own rate


def test_jobs_are_visible_only_in_scope(secured):
    _, headers, _body = secured.request(
        "POST", "/v1/actions/gtest.fail", {"text": "j"},
        {"Prefer": "respond-async", "X-API-Key": ADMIN_KEY},
    )  # fmt: skip
    url = headers["location"]
    assert secured.request("GET", url)[0] == 401
    assert secured.request("GET", url, headers={"X-API-Key": BILLING_KEY})[0] == 403
    assert secured.request("DELETE", url, headers={"X-API-Key": BILLING_KEY})[0] == 403
    assert secured.request("GET", url, headers={"X-API-Key": ADMIN_KEY})[0] == 200


def test_jwt_hs256(secured):
    assert _status(secured, hs256(_claims()))[0] == 200
    assert _status(secured, hs256(_claims()), "gtest.fail")[0] == 403
    assert _status(secured, hs256(_claims(scope=["gtest.*"])), "gtest.aecho")[0] == 200
    for bad, why in (
        (hs256(_claims(exp=time.time() - 3600)), "expired"),
        (hs256(_claims(nbf=time.time() + 3600)), "not valid yet"),
        (hs256(_claims(iss="https://other")), "issuer"),
        (hs256(_claims(aud="other")), "audience"),
        (hs256(_claims(), secret="wrong"), "signature"),
        (hs256(_claims(), alg="none"), "not accepted"),
        (hs256({k: v for k, v in _claims().items() if k != "sub"}), "'sub'"),
        ("abc.def.ghi", "malformed"),
    ):
        status, _, body = _status(secured, bad)
        assert status == 401, why
        assert why in body["detail"], (why, body["detail"])


def test_jwt_rs256_from_jwks(secured, rsa_key):
    assert _status(secured, rs256(_claims(), rsa_key))[0] == 200
    status, _, body = _status(secured, rs256(_claims(), rsa_key, kid="other"))
    assert status == 401
    assert "not in the JWKS" in body["detail"]
    from cryptography.hazmat.primitives.asymmetric import rsa

    stranger = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    status, _, body = _status(secured, rs256(_claims(), stranger))
    assert status == 401
    assert "signature" in body["detail"]
    # an RS256 header must not be verified as HS256 with the public key (alg confusion)
    assert _status(secured, hs256(_claims(), alg="RS256"))[0] == 401


def test_open_routes_need_no_credentials(secured):
    for path in ("/healthz", "/readyz", "/metrics", "/openapi.json", "/docs"):
        assert secured.request("GET", path)[0] == 200, path


def test_dashboard_requires_sign_in_and_the_dashboard_scope(secured):
    status, headers, _ = _no_redirect(secured, "/ui/failed")
    assert status == 303
    assert headers["location"] == "/ui/login?next=%2Fui%2Ffailed"
    assert secured.request("GET", "/ui", headers={"X-API-Key": BILLING_KEY})[0] == 403
    status, _, page = secured.request("GET", "/ui", headers={"X-API-Key": ADMIN_KEY})
    assert status == 200
    assert "<h2>Queues</h2>" in page


def test_dashboard_shows_failed_jobs_only_in_scope(secured, start_worker, redis_db):
    from switchyard_gateway_testkit import wait_for

    headers = {"Prefer": "respond-async", "X-API-Key": ADMIN_KEY}
    _, found, _ = secured.request("POST", "/v1/actions/gtest.fail", {"text": "s"}, headers)
    start_worker(redis_db)
    wait_for(
        lambda: (
            secured.request("GET", found["location"], headers={"X-API-Key": ADMIN_KEY})[2]["status"]
            == "failed"
        ),
        what="the job to fail",
    )
    admin = secured.request("GET", "/ui/failed", headers={"X-API-Key": ADMIN_KEY})[2]
    assert "failed on purpose: s" in admin
    viewer = secured.request("GET", "/ui/failed", headers={"X-API-Key": VIEWER_KEY})[2]
    assert "No failed jobs." in viewer
    job_id = found["location"].rsplit("/", 1)[1]
    status = secured.request("GET", f"/ui/jobs/{job_id}", headers={"X-API-Key": VIEWER_KEY})[0]
    assert status == 403


def test_auth_off_flag_overrides_the_settings(start_gateway, redis_db, tmp_path):
    config = tmp_path / "gateway.toml"
    config.write_text(f'[[keys]]\nclient = "a"\nhash = "{hash_key(ADMIN_KEY)}"\nscopes = ["*"]\n')
    gw = start_gateway("--config", str(config), "--auth", "off")
    assert "auth off" in gw.boot
    assert _status(gw)[0] == 200


def _no_redirect(gw, path):
    import urllib.error
    import urllib.request

    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args, **kwargs):
            return None

    opener = urllib.request.build_opener(NoRedirect)
    try:
        with opener.open(gw.url + path, timeout=10) as response:
            return response.status, {k.lower(): v for k, v in response.headers.items()}, None
    except urllib.error.HTTPError as error:
        return error.code, {k.lower(): v for k, v in error.headers.items()}, None
