"""``switchyard-gateway``'s command line and settings: every documented form, every bad value
as one line on stderr (exit 2), never a traceback."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from switchyard_gateway import Settings, SettingsError, hash_key

GATEWAY = Path(sys.executable).parent / "switchyard-gateway"


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    import os

    full = {k: v for k, v in os.environ.items() if not k.startswith("SWITCHYARD_GATEWAY_")}
    full.update(env or {})
    return subprocess.run(
        [str(GATEWAY), *args], capture_output=True, text=True, env=full, timeout=30
    )


def test_hash_key_makes_a_key_or_hashes_one():
    made = run("hash-key")
    assert made.returncode == 0
    lines = dict(line.split(": ", 1) for line in made.stdout.strip().splitlines())
    key = lines["key"].strip()
    assert key.startswith("sy_")
    assert lines["hash"].strip() == hash_key(key)
    given = run("hash-key", "my-key")
    assert given.stdout.strip() == f"hash: {hash_key('my-key')}"


def test_help_lists_every_flag():
    text = run("--help").stdout
    for flag in ("--host", "--port", "--workers", "--config", "--auth", "--max-body", "--rate",
                 "--log-level", "--debug", "serve", "hash-key"):  # fmt: skip
        assert flag in text
    assert "--rate" in run("serve", "--help").stdout


@pytest.mark.parametrize(
    ("args", "env", "message"),
    [
        (["--port", "99999"], {}, "--port: must be a port number from 0 to 65535, got '99999'"),
        (["serve", "--port", "x"], {}, "--port: must be an integer, got 'x'"),
        (["--workers", "0", "serve"], {}, "--workers: must be an integer >= 1, got '0'"),
        (["--auth", "maybe"], {}, "--auth: must be on, off or auto, got 'maybe'"),
        (["--max-body", "big"], {}, "--max-body: must be a size in bytes"),
        (["--rate", "fast"], {}, "--rate: rate must be '<count>/<period>'"),
        (["--log-level", "loud"], {}, "--log-level: must be critical, error, warning"),
        ([], {"SWITCHYARD_GATEWAY_PORTT": "1"}, "SWITCHYARD_GATEWAY_PORTT: unknown variable"),
        ([], {"SWITCHYARD_GATEWAY_RATE": "x"}, "SWITCHYARD_GATEWAY_RATE: rate must be"),
        (
            [],
            {"SWITCHYARD_GATEWAY_KEYS": "a sha256:00 *"},
            "SWITCHYARD_GATEWAY_KEYS entry 1: hash must be 'sha256:' and 64 lowercase hex",
        ),
        (
            [],
            {"SWITCHYARD_GATEWAY_KEYS": "onlyclient"},
            "SWITCHYARD_GATEWAY_KEYS entry 1: expected 'CLIENT sha256:HEX SCOPE[,SCOPE...] [RATE]'",
        ),
        (["--config", "/nonexistent/gw.toml"], {}, "/nonexistent/gw.toml: cannot read it"),
        ([], {"SWITCHYARD_GATEWAY_JWKS": "/nonexistent.json"}, "jwks: no JWKS file at"),
    ],
)
def test_bad_settings_are_one_line(args, env, message):
    result = run(*args, env=env)
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("switchyard-gateway: error: ")
    assert message in lines[0]


def test_bad_flag_is_argparse_usage():
    result = run("--nope")
    assert result.returncode == 2
    assert "unrecognized arguments: --nope" in result.stderr


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("port = 'x'", "gw.toml: port: must be an integer"),
        ("colour = 1", "gw.toml: colour: unknown setting"),
        ("[[keys]]\nclient = 'a b'\nhash = 'sha256:" + "0" * 64 + "'", "keys[0]: client must be"),
        (
            "[[keys]]\nclient = 'a'\nhash = 'sha256:" + "0" * 64 + "'\nrole = 1",
            "unknown field 'role'",
        ),
        ("[jwt]\nsecret-env = 'GTEST_UNSET_VARIABLE'", "jwt.secret-env: the variable"),
        ("[jwt]\nkid = 1", "jwt.kid: unknown setting"),
        ("x = [", "gw.toml: not valid TOML"),
        (
            "[[keys]]\nclient = 'a'\nhash = 'sha256:" + "0" * 64 + "'\n"
            "[[keys]]\nclient = 'a'\nhash = 'sha256:" + "1" * 64 + "'",
            "client 'a' has two keys",
        ),
    ],
)
def test_bad_settings_file(tmp_path, text, message):
    path = tmp_path / "gw.toml"
    path.write_text(text)
    with pytest.raises(SettingsError) as caught:
        Settings.load({}, {"config": str(path)})
    assert message in str(caught.value)
    result = run("--config", str(path))
    assert result.returncode == 2
    assert message in result.stderr


def test_settings_layers_file_then_env_then_flags(tmp_path):
    path = tmp_path / "gw.toml"
    path.write_text("port = 9001\nworkers = 3\nrate = '5/s'\nmax-body = '2KiB'\nauth = 'off'\n")
    settings = Settings.load(
        {"SWITCHYARD_GATEWAY_CONFIG": str(path), "SWITCHYARD_GATEWAY_WORKERS": "2"},
        {"port": "9002"},
    )
    assert (settings.port, settings.workers, settings.max_body) == (9002, 2, 2048)
    assert str(settings.rate) == "5/s"
    assert settings.auth_on is False
    assert Settings.load({}).auth_on is False  # auto, nothing configured
    key = f"a {hash_key('k')} text.*,dashboard 10/s"
    with_key = Settings.load({"SWITCHYARD_GATEWAY_KEYS": key})
    assert with_key.auth_on is True
    assert with_key.keys[0].scopes == ("text.*", "dashboard")
    assert str(with_key.keys[0].rate) == "10/s"


@pytest.mark.parametrize("where", ["before", "after"])
def test_serve_options_before_and_after_the_subcommand(start_gateway, redis_db, where):
    args = ("--rate", "7/s", "serve") if where == "before" else ("serve", "--rate", "7/s")
    gw = start_gateway(*args)
    assert "client rate 7/s" in gw.boot
    assert gw.request("POST", "/v1/actions/gtest.echo", {"text": "x"})[0] == 200
