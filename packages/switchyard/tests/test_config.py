from __future__ import annotations

import dataclasses
import textwrap
from pathlib import Path

import pytest
from switchyard import Config, ConfigError, load_config


def write(folder: Path, text: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "pyproject.toml"
    path.write_text(textwrap.dedent(text).lstrip())
    return path


@pytest.fixture(autouse=True)
def _no_env(monkeypatch):
    for name in (
        "SWITCHYARD_DEFAULT_QUEUE",
        "SWITCHYARD_REDIS_URL",
        "SWITCHYARD_MANIFEST",
        "SWITCHYARD_MAX_PAYLOAD_BYTES",
    ):
        monkeypatch.delenv(name, raising=False)


def test_reads_the_nearest_workspace_root(tmp_path):
    write(
        tmp_path,
        """
        [tool.uv.workspace]
        members = ["packages/*"]

        [tool.switchyard]
        default-queue = "normal"
        redis-url = "redis://example:6379/3"
        manifest = "build/manifest.json"
        max-payload-bytes = 2048

        [tool.switchyard.routing]
        "auth.hash_*" = "cpu"
        "auth.*" = "fast"
        "*.export_*" = "bulk"
        """,
    )
    member = tmp_path / "packages" / "thing"
    write(member, '[project]\nname = "thing"\n')  # not a root: skipped
    config = load_config(member)
    assert config.root == tmp_path.resolve()
    assert config.default_queue == "normal"
    assert config.redis_url == "redis://example:6379/3"
    assert config.manifest == tmp_path.resolve() / "build" / "manifest.json"
    assert config.max_payload_bytes == 2048
    assert config.routing == (("auth.hash_*", "cpu"), ("auth.*", "fast"), ("*.export_*", "bulk"))
    assert config.route("auth.hash_password") == "cpu"  # first match wins, in file order
    assert config.route("auth.verify_token", hint="slow") == "fast"  # rules beat the hint
    assert config.route("reports.export_csv") == "bulk"
    assert config.route("geo.distance", hint="interactive") == "interactive"
    assert config.route("geo.distance") == "normal"
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.default_queue = "x"  # type: ignore[misc]


def test_defaults_without_a_project(tmp_path):
    config = load_config(tmp_path)
    assert config == Config()
    assert config.root is None
    assert config.max_payload_bytes == 1_048_576


def test_environment_overrides_the_file(tmp_path, monkeypatch):
    write(tmp_path, '[tool.switchyard]\ndefault-queue = "normal"\nredis-url = "redis://a"\n')
    monkeypatch.setenv("SWITCHYARD_REDIS_URL", "redis://b:1/0")
    monkeypatch.setenv("SWITCHYARD_DEFAULT_QUEUE", "other")
    monkeypatch.setenv("SWITCHYARD_MANIFEST", "m.json")
    monkeypatch.setenv("SWITCHYARD_MAX_PAYLOAD_BYTES", "10")
    config = load_config(tmp_path)
    assert (config.redis_url, config.default_queue, config.max_payload_bytes) == (
        "redis://b:1/0",
        "other",
        10,
    )
    assert config.manifest == Path("m.json").absolute()


def test_bad_environment_value(tmp_path, monkeypatch):
    monkeypatch.setenv("SWITCHYARD_MAX_PAYLOAD_BYTES", "lots")
    with pytest.raises(ConfigError, match=r"^\$SWITCHYARD_MAX_PAYLOAD_BYTES: must be a positive"):
        load_config(tmp_path)


def test_malformed_toml_names_file_and_line(tmp_path):
    path = write(tmp_path, '[tool.switchyard]\ndefault-queue = "a"\nrouting = = 3\n')
    with pytest.raises(ConfigError) as caught:
        load_config(tmp_path)
    error = caught.value
    assert (error.path, error.line) == (str(path), 3)
    assert str(error).startswith(f"{path}:3: invalid TOML: ")


@pytest.mark.parametrize(
    ("body", "line", "message"),
    [
        (
            '[tool.switchyard]\ndefault-queue = "a"\n\n[tool.switchyard.routing]\n'
            '"auth.*" = "fast"\n"geo.*" = 3\n',
            6,
            "routing rule 'geo.*': the queue must be a non-empty string, got 3",
        ),
        (
            '[tool.switchyard]\nrouting = {"auth.*" = ""}\n',
            None,
            "routing rule 'auth.*'",
        ),
        ('[tool.switchyard]\nrouting = "fast"\n', 2, "routing must be a table"),
        ("[tool.switchyard]\n\nmax-payload-bytes = -1\n", 3, "max-payload-bytes must be"),
        ("[tool.switchyard]\ndefault-queue = 5\n", 2, "default-queue must be a non-empty string"),
        ("[tool.switchyard]\nredis_url = true\n", 2, "redis_url must be a non-empty string"),
    ],
)
def test_bad_values_name_file_and_line(tmp_path, body, line, message):
    path = write(tmp_path, body)
    with pytest.raises(ConfigError) as caught:
        load_config(tmp_path)
    assert caught.value.path == str(path)
    assert caught.value.line == line
    assert message in str(caught.value)
    where = f"{path}:{line}" if line else str(path)
    assert str(caught.value).startswith(where + ": [tool.switchyard")
