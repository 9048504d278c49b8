"""The workspace's pytest plugin: CI never passes by skipping a test whose service is missing.

A test (or fixture) that needs a service the machine may lack (a Redis, PostgreSQL, PgBouncer,
nginx, a TLS-capable redis-server, openssl, uv, git) skips when it is missing, with a reason
that starts with ``missing service:``::

    pytest.skip("missing service: pgbouncer (Debian package pgbouncer)")
    @pytest.mark.skipif(not redis_up(), reason="missing service: Redis at 127.0.0.1:6379")

On a laptop that is a skip (listed in the ``-ra`` summary). Where services are required, when
``SWITCHYARD_REQUIRE_SERVICES`` or ``CI`` is set (to anything but empty, ``0`` or ``false``),
the skip is reported as a failure instead: ``.ci/run`` installs every service and sets
``SWITCHYARD_REQUIRE_SERVICES=1``, so a skip there is a broken CI machine, not a pass.

Every run that starts at the workspace root or below loads this file (pytest reads the
conftest.py files from the rootdir, where pyproject.toml holds pytest's settings, down to the
tests): ``uv run pytest``, ``uv run nox``, and ``yard test`` / ``nox -s affected``, which run each
member's tests from the root in the member's own environment (this file needs only pytest).
Both variables are in ``[tool.yard.test] env``, so a pass recorded with skips is never replayed
where services are required. Skips for other reasons (a platform without fork, no network for
the package index) stay skips.
"""

from __future__ import annotations

import os
from collections.abc import Generator

import pytest

MISSING_SERVICE = "missing service:"
"""How the reason of a skip caused by a missing service starts."""
REQUIRE_SERVICES = ("SWITCHYARD_REQUIRE_SERVICES", "CI")
"""The variables that, set, make such a skip a failure."""


def services_required() -> str | None:
    """The first of :data:`REQUIRE_SERVICES` that is set (not empty, 0 or false), else None."""
    for name in REQUIRE_SERVICES:
        if os.environ.get(name, "").strip().lower() not in ("", "0", "false"):
            return name
    return None


def _missing_service(report: pytest.TestReport | pytest.CollectReport) -> str | None:
    """The reason of a skip caused by a missing service, else None."""
    if not report.skipped or hasattr(report, "wasxfail"):
        return None
    longrepr = report.longrepr
    if not isinstance(longrepr, tuple) or len(longrepr) != 3:
        return None
    reason = str(longrepr[2]).removeprefix("Skipped: ")
    return reason if reason.startswith(MISSING_SERVICE) else None


def _fail(report: pytest.TestReport | pytest.CollectReport, reason: str, variable: str) -> None:
    report.outcome = "failed"
    report.longrepr = (
        f"{reason}\n({variable} is set, so every service the tests need must be there: "
        ".ci/run installs them; see the README, 'Running the tests')"
    )


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    reason = _missing_service(report)
    variable = services_required()
    if reason is not None and variable is not None:
        _fail(report, reason, variable)
    return report


@pytest.hookimpl(wrapper=True)
def pytest_make_collect_report(
    collector: pytest.Collector,
) -> Generator[None, pytest.CollectReport, pytest.CollectReport]:
    report = yield
    reason = _missing_service(report)
    variable = services_required()
    if reason is not None and variable is not None:
        _fail(report, reason, variable)
    return report
