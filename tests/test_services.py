"""The workspace's conftest.py: a skip for a missing service fails where services are required
(CI), and stays a skip elsewhere; other skips stay skips everywhere."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path
from xml.etree import ElementTree

import pytest

WORKSPACE = Path(__file__).resolve().parents[1]

TESTS = """
import pytest


@pytest.fixture
def server():
    pytest.skip("missing service: redis-server (Debian package redis-server)")


def test_fixture(server):
    pass


def test_body():
    pytest.skip("missing service: nginx")


@pytest.mark.skipif(True, reason="missing service: Redis at 127.0.0.1:6379")
def test_mark():
    pass


def test_other_reason():
    pytest.skip("needs fork")


@pytest.mark.xfail(reason="missing service: not a skip", strict=True)
def test_xfail():
    raise AssertionError


def test_runs():
    assert True
"""

MODULE_SKIP = """
import pytest

pytest.skip("missing service: postgresql", allow_module_level=True)


def test_never():
    pass
"""


def run_pytest(tmp_path: Path, env: dict[str, str]) -> tuple[int, dict[str, str]]:
    """pytest in a project of its own that has the workspace's conftest.py: (exit status,
    outcome per test, or per module for one skipped as a whole)."""
    (tmp_path / "conftest.py").write_text((WORKSPACE / "conftest.py").read_text())
    (tmp_path / "pyproject.toml").write_text(
        '[tool.pytest.ini_options]\naddopts = ["--import-mode=importlib", "--strict-markers"]\n'
    )
    (tmp_path / "test_needs.py").write_text(TESTS)
    (tmp_path / "test_module.py").write_text(MODULE_SKIP)
    clean = {k: v for k, v in os.environ.items() if k not in ("CI", "SWITCHYARD_REQUIRE_SERVICES")}
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "--junitxml=results.xml",
         "--continue-on-collection-errors"],
        cwd=tmp_path, env={**clean, **env}, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    outcomes = {}
    for case in ElementTree.parse(tmp_path / "results.xml").iter("testcase"):
        tags = [(child.tag, child.get("type")) for child in case]
        outcome = {
            (): "passed",
            (("skipped", "pytest.xfail"),): "xfailed",
            (("failure", None),): "failed",
            (("error", None),): "error",
        }.get(tuple(tags), "skipped" if tags and tags[0][0] == "skipped" else str(tags))
        outcomes[case.get("name", "")] = outcome
    return done.returncode, outcomes


def test_a_missing_service_fails_where_services_are_required(tmp_path):
    code, outcomes = run_pytest(tmp_path, {"SWITCHYARD_REQUIRE_SERVICES": "1"})
    assert outcomes == {
        "test_module": "error",  # collecting it
        "test_fixture": "error",  # in its setup
        "test_body": "failed",
        "test_mark": "error",
        "test_other_reason": "skipped",
        "test_xfail": "xfailed",
        "test_runs": "passed",
    }
    assert code == 1


def test_a_missing_service_skips_elsewhere(tmp_path):
    code, outcomes = run_pytest(tmp_path, {"SWITCHYARD_REQUIRE_SERVICES": "0", "CI": "false"})
    assert outcomes == {
        "test_module": "skipped",
        "test_fixture": "skipped",
        "test_body": "skipped",
        "test_mark": "skipped",
        "test_other_reason": "skipped",
        "test_xfail": "xfailed",
        "test_runs": "passed",
    }
    assert code == 0


@pytest.mark.parametrize(
    ("env", "required"),
    [
        ({}, None),
        ({"SWITCHYARD_REQUIRE_SERVICES": "1"}, "SWITCHYARD_REQUIRE_SERVICES"),
        ({"CI": "true"}, "CI"),
        ({"CI": "1", "SWITCHYARD_REQUIRE_SERVICES": "yes"}, "SWITCHYARD_REQUIRE_SERVICES"),
        ({"CI": "", "SWITCHYARD_REQUIRE_SERVICES": "0"}, None),
        ({"CI": "False"}, None),
    ],
)
def test_which_variable_requires_services(monkeypatch, env, required):
    spec = importlib.util.spec_from_file_location("workspace_conftest", WORKSPACE / "conftest.py")
    assert spec is not None
    assert spec.loader is not None
    plugin = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(plugin)
    monkeypatch.delenv("CI", raising=False)
    monkeypatch.delenv("SWITCHYARD_REQUIRE_SERVICES", raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert plugin.services_required() == required
