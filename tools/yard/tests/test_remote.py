"""The remote cache against a real nginx (WebDAV PUT), as yard's users run one.

Every test uses its own URL path on the session's nginx (a cache of its own), or an nginx of its
own when it stops the server.
"""

from __future__ import annotations

import hashlib
import socket
import time
from pathlib import Path

import pytest
from yard._acproto import decode


@pytest.fixture
def marks(tmp_path, monkeypatch) -> Path:
    folder = tmp_path / "marks"
    folder.mkdir()
    monkeypatch.setenv("YARD_TEST_MARKS", str(folder))
    return folder


def ran(marks: Path) -> list[str]:
    names = sorted(p.name for p in marks.iterdir())
    for p in marks.iterdir():
        p.unlink()
    return names


def ytest(repo, cache, *args, expect=0):
    argv = ["test", "--root", str(repo.path), "--json", "--cache-dir", str(cache), *args]
    result = repo.yard(*argv, root=False)
    assert result.code == expect, result.err
    return result


def how(result) -> dict[str, str]:
    return {m["name"]: f"{m['result']}/{m['source']}" for m in result.json()["members"]}


ALL = ("base", "mid", "leaf", "other")


def test_a_fresh_clone_gets_every_result_from_the_remote_and_runs_nothing(
    nginx, clone, marks, tmp_path
):
    url = f"{nginx.url}/two-clones"
    first = ytest(clone(), tmp_path / "cache1", "--remote-cache", url)
    assert how(first) == dict.fromkeys(ALL, "passed/run")
    assert ran(marks) == sorted(ALL)
    assert first.json()["remote"]["uploaded"] == 4
    keys = {m["name"]: m["key"] for m in first.json()["members"]}
    puts = [r for r in nginx.requests() if r.startswith("PUT /two-clones/ac/")]
    assert sorted(r.split()[1].rsplit("/", 1)[1] for r in puts) == sorted(keys.values())
    assert all(r.endswith(" 201") for r in puts)

    second_clone = clone()
    second = ytest(second_clone, tmp_path / "cache2", "--remote-cache", url)
    assert how(second) == dict.fromkeys(ALL, "passed/remote")
    assert ran(marks) == []
    assert second.json()["remote"]["hits"] == 4
    assert second.err == ""
    assert {m["name"]: m["key"] for m in second.json()["members"]} == keys

    before = len(nginx.requests())
    third = ytest(second_clone, tmp_path / "cache2", "--remote-cache", url)
    assert how(third) == dict.fromkeys(ALL, "passed/local")
    assert len(nginx.requests()) == before  # the local cache answers first


def test_yard_build_shares_wheels_through_the_remote(nginx, clone, tmp_path):
    url = f"{nginx.url}/wheels"
    first = clone()
    built = first.yard("build", "base", "other", "--json", "--cache-dir", str(tmp_path / "c1"))
    assert built.code == 0, built.err
    assert built.json()["summary"]["built"] == 2
    assert "remote" not in built.json()  # no remote configured: none used
    upload = first.yard(
        "build", "base", "other", "--json", "--cache-dir", str(tmp_path / "c2"),
        "--remote-cache", url, "--out", str(tmp_path / "out1"),
    )  # fmt: skip
    assert upload.json()["summary"]["built"] == 2
    assert upload.json()["remote"]["uploaded"] == 2
    second = clone()
    fetched = second.yard(
        "build", "base", "other", "--json", "--cache-dir", str(tmp_path / "c3"),
        "--remote-cache", url, "--out", str(tmp_path / "out2"),
    )  # fmt: skip
    assert fetched.code == 0, fetched.err
    data = fetched.json()
    assert data["summary"] == {**data["summary"], "built": 0, "from_cache": 2}
    assert {m["reason"] for m in data["members"]} == {"from the remote cache"}
    for name in ("base", "other"):
        wheel = f"{name}-0.1.0-py3-none-any.whl"
        assert (tmp_path / "out2" / wheel).read_bytes() == (tmp_path / "out1" / wheel).read_bytes()
    text = second.yard("build", "base", "--cache-dir", str(tmp_path / "c4"), "--remote-cache", url)
    assert "from cache base: from the remote cache" in text.out


def _blob(nginx, prefix: str, key: str, name: str) -> Path:
    record = decode((nginx.data / prefix / "ac" / key).read_bytes())
    [item] = [f for f in record if f.path == name]
    return nginx.data / prefix / "cas" / item.sha256


def test_tampered_truncated_and_malformed_entries_are_refused_then_replaced(
    nginx, clone, marks, tmp_path
):
    url = f"{nginx.url}/tamper"
    first = ytest(clone(), tmp_path / "c1", "--remote-cache", url)
    keys = {m["name"]: m["key"] for m in first.json()["members"]}
    ran(marks)
    log = _blob(nginx, "tamper", keys["leaf"], "output.log")
    data = bytearray(log.read_bytes())
    data[-3] ^= 1  # one bit, same size
    log.write_bytes(bytes(data))
    description = _blob(nginx, "tamper", keys["mid"], "yard-entry.json")
    description.write_bytes(description.read_bytes()[:-10])
    ac = nginx.data / "tamper" / "ac"
    (ac / keys["other"]).write_bytes((ac / keys["base"]).read_bytes())  # base's record, moved
    (ac / keys["base"]).write_bytes(b"\x12\x05garbage")

    second = ytest(clone(), tmp_path / "c2", "--remote-cache", url)
    assert how(second) == dict.fromkeys(ALL, "passed/run")
    assert ran(marks) == sorted(ALL)
    warnings = second.err.splitlines()
    assert len(warnings) == 4
    assert all(w.startswith("yard: warning: remote cache entry for ") for w in warnings)
    assert any(
        "for leaf (key " in w and "output.log does not match its SHA-256" in w for w in warnings
    )
    assert any("for mid (key " in w and "yard-entry.json does not match" in w for w in warnings)
    assert any("for base (key " in w and "record is malformed" in w for w in warnings)
    assert any(
        "for other (key " in w and "description belongs to another key" in w for w in warnings
    )
    assert second.json()["remote"]["refused"] == 4
    # the good results went up again, and the records point at whole copies once more
    for name in ALL:
        for item in decode((nginx.data / "tamper" / "ac" / keys[name]).read_bytes()):
            blob = nginx.data / "tamper" / "cas" / item.sha256
            assert hashlib.sha256(blob.read_bytes()).hexdigest() == item.sha256
    third = ytest(clone(), tmp_path / "c3", "--remote-cache", url)
    assert how(third) == dict.fromkeys(ALL, "passed/remote")
    assert third.err == ""
    assert ran(marks) == []


def test_a_server_stopped_mid_run_leaves_a_warning_and_a_passing_run(
    fresh_nginx, clone, marks, tmp_path, monkeypatch
):
    repo = clone()
    # other's test stops the server: base and mid have run (and gone up) by then, leaf not
    repo.write(
        "packages/other/tests/test_stop.py",
        "import os, signal\n\n\ndef test_stop():\n"
        "    os.kill(int(os.environ['STOP_NGINX']), signal.SIGTERM)\n",
    )
    assert fresh_nginx.proc is not None
    monkeypatch.setenv("STOP_NGINX", str(fresh_nginx.proc.pid))
    url = f"{fresh_nginx.url}/stop"
    result = ytest(repo, tmp_path / "cache", "--remote-cache", url, "--jobs", "1")
    assert how(result) == dict.fromkeys(ALL, "passed/run")
    assert fresh_nginx.proc.wait(timeout=10) is not None
    [warning] = result.err.splitlines()
    assert warning.startswith(f"yard: warning: remote cache {url} is unavailable (")
    assert warning.endswith("); continuing with the local cache only")
    remote = result.json()["remote"]
    assert remote["down"] is True
    assert 1 <= remote["uploaded"] < 4
    local = ytest(repo, tmp_path / "cache", "--remote-cache", url)
    assert how(local) == dict.fromkeys(ALL, "passed/local")
    assert local.err == ""  # nothing to fetch, nothing to upload: the server is not asked


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_a_remote_that_refuses_connections_is_one_warning(clone, marks, tmp_path, monkeypatch):
    monkeypatch.setenv("YARD_REMOTE_CACHE", f"http://127.0.0.1:{_closed_port()}/x")
    result = ytest(clone(), tmp_path / "cache", "base")
    assert how(result) == {"base": "passed/run"}
    [warning] = result.err.splitlines()
    assert "is unavailable (Connection refused); continuing with the local cache only" in warning
    quiet = ytest(clone(), tmp_path / "cache2", "base", "--no-remote-cache")
    assert quiet.err == ""
    assert "remote" not in quiet.json()


def test_a_silent_remote_times_out_once(clone, marks, tmp_path, monkeypatch):
    with socket.socket() as silent:  # accepts connections (the kernel does), never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(16)
        port = silent.getsockname()[1]
        monkeypatch.setenv("YARD_REMOTE_CACHE_TIMEOUT", "0.5")
        started = time.perf_counter()
        result = ytest(
            clone(), tmp_path / "cache", "base", "--remote-cache", f"http://127.0.0.1:{port}"
        )
        seconds = time.perf_counter() - started
    assert how(result) == {"base": "passed/run"}
    [warning] = result.err.splitlines()
    assert warning.endswith("is unavailable (timed out); continuing with the local cache only")
    assert seconds < 30


def test_the_token_goes_in_a_header(nginx, clone, marks, tmp_path, monkeypatch):
    url = f"{nginx.url}/private"
    monkeypatch.setenv("YARD_REMOTE_CACHE_TOKEN", "s3cret")
    good = ytest(clone(), tmp_path / "c1", "base", "--remote-cache", url)
    assert good.err == ""
    assert good.json()["remote"]["uploaded"] == 1
    monkeypatch.setenv("YARD_REMOTE_CACHE_TOKEN", "wrong")
    bad = ytest(clone(), tmp_path / "c2", "base", "--remote-cache", url)
    assert how(bad) == {"base": "passed/run"}
    [warning] = bad.err.splitlines()
    assert warning == (
        f"yard: warning: remote cache {url} is unavailable (HTTP 401 Unauthorized; check "
        "YARD_REMOTE_CACHE_TOKEN); continuing with the local cache only"
    )
    monkeypatch.setenv("YARD_REMOTE_CACHE_TOKEN", "s3cret")
    again = ytest(clone(), tmp_path / "c3", "base", "--remote-cache", url)
    assert how(again) == {"base": "passed/remote"}


def test_the_remote_can_come_from_the_root_pyproject(nginx, clone, marks, tmp_path, monkeypatch):
    repo = clone()
    path = repo.path / "pyproject.toml"
    path.write_text(path.read_text() + f'[tool.yard.cache]\nremote = "{nginx.url}/configured"\n')
    first = ytest(repo, tmp_path / "c1", "base")
    assert first.json()["remote"]["url"] == f"{nginx.url}/configured"
    assert first.json()["remote"]["uploaded"] == 1
    monkeypatch.setenv("YARD_REMOTE_CACHE", f"{nginx.url}/from-env")  # the environment wins
    second = ytest(repo, tmp_path / "c2", "base")
    assert second.json()["remote"]["url"] == f"{nginx.url}/from-env"
    assert how(second) == {"base": "passed/run"}


@pytest.mark.parametrize("how_read_only", ["flag", "env"])
def test_read_only_downloads_and_never_uploads(
    nginx, clone, marks, tmp_path, monkeypatch, how_read_only
):
    url = f"{nginx.url}/ro-{how_read_only}"
    ytest(clone(), tmp_path / "c1", "base", "--remote-cache", url)
    ran(marks)
    repo = clone()
    repo.write("packages/other/src/other/__init__.py", "VALUE = 1  # a branch's change\n")
    flag = ["--remote-read-only"] if how_read_only == "flag" else []
    if how_read_only == "env":
        monkeypatch.setenv("YARD_REMOTE_CACHE_READ_ONLY", "1")
    before = len(nginx.requests())
    result = ytest(repo, tmp_path / "c2", "base", "other", "--remote-cache", url, *flag)
    assert how(result) == {"base": "passed/remote", "other": "passed/run"}
    assert result.json()["remote"]["read_only"] is True
    assert not [r for r in nginx.requests()[before:] if r.startswith("PUT")]
    assert result.err == ""


def test_a_server_refusing_uploads_is_one_warning(nginx, clone, marks, tmp_path):
    url = f"{nginx.url}/readonly"
    result = ytest(clone(), tmp_path / "c1", "base", "other", "--remote-cache", url)
    assert how(result) == {"base": "passed/run", "other": "passed/run"}
    [warning] = result.err.splitlines()
    assert warning == (
        f"yard: warning: remote cache {url} refused an upload (HTTP 403 Forbidden); not "
        "uploading for the rest of this run (set YARD_REMOTE_CACHE_READ_ONLY=1 to only read)"
    )


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"YARD_REMOTE_CACHE": "cache.example.com"}, "YARD_REMOTE_CACHE: 'cache.example.com' is"),
        ({"YARD_REMOTE_CACHE_TIMEOUT": "soon"}, "YARD_REMOTE_CACHE_TIMEOUT 'soon': expected"),
        ({"YARD_REMOTE_CACHE_READ_ONLY": "maybe"}, "YARD_REMOTE_CACHE_READ_ONLY='maybe': expected"),
        (
            {"YARD_REMOTE_CACHE": "http://u:p@h", "YARD_REMOTE_CACHE_TOKEN": "t"},
            "give the remote cache credentials in the URL or in YARD_REMOTE_CACHE_TOKEN",
        ),
        (
            {"YARD_REMOTE_CACHE": "http://h", "YARD_REMOTE_CACHE_TOKEN": "a\nb"},
            "YARD_REMOTE_CACHE_TOKEN holds characters an HTTP header cannot carry",
        ),
    ],
)
def test_bad_remote_settings_in_the_environment_are_one_line(
    clone, tmp_path, monkeypatch, env, message
):
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    repo = clone()
    result = repo.yard("test", "base", "--cache-dir", str(tmp_path / "c"))
    assert result.code == 2
    assert result.err.startswith(f"yard: error: {message}"), result.err
    assert result.err.count("\n") == 1
    build = repo.yard("build", "base", "--cache-dir", str(tmp_path / "c"))
    assert build.err == result.err


def test_build_takes_the_remote_options(nginx, clone, tmp_path, monkeypatch):
    repo = clone()
    monkeypatch.setenv("YARD_REMOTE_CACHE", "not a url")
    broken = repo.yard("build", "base", "--cache-dir", str(tmp_path / "c1"))
    assert broken.err.startswith("yard: error: YARD_REMOTE_CACHE: 'not a url' is not a remote")
    local = repo.yard(
        "build", "base", "--json", "--cache-dir", str(tmp_path / "c1"), "--no-remote-cache"
    )
    assert local.code == 0, local.err
    assert "remote" not in local.json()
    url = f"{nginx.url}/build-ro"
    before = len(nginx.requests())
    read_only = repo.yard(
        "build", "base", "other", "--json", "--cache-dir", str(tmp_path / "c2"),
        "--remote-cache", url, "--remote-read-only",
    )  # fmt: skip
    assert read_only.code == 0, read_only.err
    assert read_only.json()["remote"] == {**read_only.json()["remote"], "read_only": True}
    requests = nginx.requests()[before:]
    assert [r.split()[0] for r in requests] == ["GET", "GET"]  # two lookups, no upload


def test_slice_takes_the_remote_options(clone, tmp_path):
    repo = clone()
    result = repo.yard(
        "slice", "--consumer", "nosuch", "--out", str(tmp_path / "s"),
        "--remote-cache", "http://127.0.0.1:9", "--no-remote-cache", "--remote-read-only",
    )  # fmt: skip
    assert result.code == 2
    assert result.err.startswith("yard: error: no workspace member named 'nosuch'")


def test_head_goes_with_affected(clone, marks, tmp_path):
    repo = clone()
    repo.write("packages/other/src/other/__init__.py", "VALUE = 1  # edited\n")
    repo.commit("other")
    result = ytest(repo, tmp_path / "c", "--affected", "--base", "HEAD~1", "--head", "HEAD")
    assert how(result) == {"other": "passed/run"}
    none = ytest(repo, tmp_path / "c", "--affected", "--base", "HEAD", "--head", "HEAD")
    assert none.json()["members"] == []
