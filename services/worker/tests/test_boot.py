"""Boot helpers: where the registry comes from, which queues are served, URLs in logs."""

from __future__ import annotations

import logging
import sys

import pytest
from pydantic import BaseModel
from switchyard import Config, ManifestError, Registry, action, write_manifest
from switchyard.testing import make_registry
from switchyard_rq import redact_url
from switchyard_worker._boot import load_registry, served_queues


class In(BaseModel):
    x: int = 0


@action("mail.send", queue="slow")
def send(data: In) -> In:
    return data


@action("auth.login")
def login(data: In) -> In:
    return data


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("redis://127.0.0.1:6379/0", "redis://127.0.0.1:6379/0"),
        ("redis://:hunter2@db:6379/1", "redis://:***@db:6379/1"),
        ("rediss://app:s3cret@db.internal:6380/0", "rediss://app:***@db.internal:6380/0"),
        ("redis://app@db/0", "redis://app@db/0"),
    ],
)
def test_urls_in_the_boot_line_never_show_a_password(url, shown):
    assert redact_url(url) == shown


def boot_for(registry, config):
    from switchyard_worker._boot import Boot

    return Boot(registry, "test", None, config)


def test_served_queues_are_the_default_the_rules_and_the_actions_queues():
    config = Config(routing=(("auth.*", "fast"), ("billing.*", "billing")))
    boot = boot_for(make_registry(send, login), config)
    # mail.send's own queue hint is known (in-memory registry); billing comes from a rule alone
    assert served_queues(boot, ()) == ("billing", "default", "fast", "slow")


def test_requested_queues_win_in_their_order():
    boot = boot_for(make_registry(send), Config())
    assert served_queues(boot, ("slow", "default")) == ("slow", "default")


def test_without_a_manifest_the_registry_comes_from_metadata():
    boot = load_registry(Config(), None)
    assert boot.source == "metadata"
    assert boot.manifest is None


def test_a_missing_manifest_that_was_asked_for_is_an_error(tmp_path):
    with pytest.raises(ManifestError, match=r"nope\.json"):
        load_registry(Config(), tmp_path / "nope.json")


def test_a_relative_manifest_is_found_from_the_project_root(
    tmp_path, clean_plugin_dir, monkeypatch
):
    monkeypatch.syspath_prepend(str(clean_plugin_dir))
    write_manifest(tmp_path / "m.json", registry=Registry.from_entry_points())
    boot = load_registry(Config(root=tmp_path, manifest="m.json"), None)
    assert boot.source == f"manifest {tmp_path / 'm.json'}"
    assert "wtest.echo" in boot.registry.names()


def test_a_stale_manifest_is_ignored_with_a_warning(tmp_path, clean_plugin_dir, caplog):
    sys.path.insert(0, str(clean_plugin_dir))
    try:
        write_manifest(tmp_path / "m.json", registry=Registry.from_entry_points())
    finally:
        sys.path.remove(str(clean_plugin_dir))
    # wtest-plugin is no longer installed: the manifest describes another environment
    with caplog.at_level(logging.WARNING, logger="switchyard_worker"):
        boot = load_registry(Config(), tmp_path / "m.json")
    assert boot.source == "metadata"
    assert "wtest.echo" not in boot.registry.names()
    assert "ignoring stale manifest" in caplog.text
