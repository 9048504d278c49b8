"""The CI entry points of the Switchyard workspace.

``uv run nox`` runs the default sessions (lint, typecheck, tests): it is the project's test
command, and ``.ci/run`` calls exactly that. Every session builds its environment with uv from
the committed ``uv.lock`` (``uv sync --frozen``), so what CI tests is what the lock says.

``nox -s affected -- --base REF`` tests only what a change affects (``yard test --affected``),
each member in its own exact environment, replaying passes cached locally or in the remote cache;
``nox -s "test(member='acme-auth')"`` tests one member so.
``nox -s build`` builds wheels through yard's cache; ``nox -s bench -- NAME`` runs a benchmark.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import nox
import yard
from nox.command import CommandFailed

nox.options.default_venv_backend = "uv"
nox.options.sessions = ["lint", "typecheck", "tests"]
nox.options.reuse_existing_virtualenvs = True

ROOT = Path(__file__).parent
MEMBER_GLOBS = ("packages/*", "packages/modules/*", "services/*", "tools/*")


def members() -> list[Path]:
    """Every workspace member folder (one holding a pyproject.toml), sorted."""
    found = {p.parent for g in MEMBER_GLOBS for p in ROOT.glob(f"{g}/pyproject.toml")}
    return sorted(found)


WORKSPACE = yard.load_workspace(ROOT)


def sync(session: nox.Session, *args: str) -> None:
    """Install the whole workspace into the session's venv from uv.lock, exactly."""
    session.run_install(
        "uv",
        "sync",
        "--frozen",
        "--all-packages",
        *args,
        env={"UV_PROJECT_ENVIRONMENT": session.virtualenv.location},
        external=True,
    )


@nox.session
def lint(session: nox.Session) -> None:
    """ruff check and ruff format --check over the whole tree; yard check of the imports."""
    sync(session, "--only-group", "dev")
    session.run("ruff", "check", ".", *session.posargs)
    session.run("ruff", "format", "--check", ".")
    session.run("yard", "check", "--root", str(ROOT))


@nox.session
def typecheck(session: nox.Session) -> None:
    """mypy (strict, pydantic plugin) on every member's src/ and the noxfile."""
    sync(session)
    sources = [str(m / "src") for m in members() if (m / "src").is_dir()]
    # Every src/ on the search path, so each file maps to its import name, not its folder path.
    session.run(
        "mypy", *sources, "noxfile.py", *session.posargs, env={"MYPYPATH": os.pathsep.join(sources)}
    )


@nox.session
def tests(session: nox.Session) -> None:
    """Every member's tests/ and the root tests/, in one pytest run."""
    sync(session)
    paths = [str(m / "tests") for m in members() if (m / "tests").is_dir()]
    if (ROOT / "tests").is_dir() and any((ROOT / "tests").glob("test_*.py")):
        paths.append("tests")
    env = {"PYTHONDONTWRITEBYTECODE": "1"}
    if "SWITCHYARD_REDIS_URL" in os.environ:
        env["SWITCHYARD_REDIS_URL"] = os.environ["SWITCHYARD_REDIS_URL"]
    session.run("pytest", "--durations=15", *paths, *session.posargs, env=env)


def redis_env() -> dict[str, str]:
    """The environment the tests get: no bytecode files, and the machine's Redis if named."""
    env = {"PYTHONDONTWRITEBYTECODE": "1"}
    if "SWITCHYARD_REDIS_URL" in os.environ:
        env["SWITCHYARD_REDIS_URL"] = os.environ["SWITCHYARD_REDIS_URL"]
    return env


YARD = (sys.executable, "-m", "yard")
"""yard from nox's own environment (the dev group has it)."""


@nox.session(default=False, venv_backend="none")
@nox.parametrize("member", sorted(WORKSPACE.members))
def test(session: nox.Session, member: str) -> None:
    """One member's tests in its own exact environment, through yard's test cache:
    ``nox -s "test(member='NAME')" [-- PYTEST ARGS]``."""
    session.run(*YARD, "test", "--root", str(ROOT), member, "--", *session.posargs, external=True)


@nox.session(default=False)
def affected(session: nox.Session) -> None:
    """The tests of what a change affects: ``nox -s affected -- --base REF [--head REF]``.

    ``yard test --affected`` names the members (changed ones and their dependents, uv.lock
    changes included) and runs each one's tests in its own exact environment (only what the
    member declares, from uv.lock), in parallel; a member whose test key has a cached pass,
    locally or in the remote cache (``YARD_REMOTE_CACHE``, see README), is not run again.
    Then the root tests/ run when anything is affected (or when they changed themselves).
    Other ``yard test`` options pass through: ``-- --base main --jobs 2``.
    """
    if not session.posargs:
        session.error("give the base ref: nox -s affected -- --base REF [--head REF]")
    failed: list[str] = []
    try:
        session.run(
            *YARD, "test", "--root", str(ROOT), "--affected", *session.posargs, external=True
        )
    except CommandFailed:  # the root tests too, then fail naming both
        failed.append("members (see yard's table)")
    output = session.run(
        *YARD, "affected", "--json", "--root", str(ROOT), *_base_head(session.posargs),
        silent=True, external=True,
    )  # fmt: skip
    result = json.loads(str(output))
    root_tests = any(f.startswith("tests/") for f in result["changed_files"])
    if (result["affected"] or root_tests) and any((ROOT / "tests").glob("test_*.py")):
        sync(session)
        try:
            session.run("pytest", "tests", env=redis_env())
        except CommandFailed:
            failed.append("root tests/")
    if failed:
        session.error(f"tests failed for: {', '.join(failed)}")


def _base_head(args: list[str]) -> list[str]:
    """The ``--base``/``--head`` options (and their values) among ``yard test`` arguments."""
    out: list[str] = []
    for i, arg in enumerate(args):
        if arg == "--":  # pytest's arguments follow
            break
        name = arg.partition("=")[0]
        if name in ("--base", "--head"):
            out.append(arg)
            if "=" not in arg and i + 1 < len(args):
                out.append(args[i + 1])
    return out


@nox.session(default=False, venv_backend="none")
def build(session: nox.Session) -> None:
    """Wheels into dist/ through yard's build cache: ``nox -s build -- --affected --base REF``.

    Takes any ``yard build`` arguments (``--all`` when none are given); members whose cache key
    is unchanged are copied from the cache, not built (see docs/yard-build.md).
    """
    args = session.posargs or ["--all"]
    yard_command = (sys.executable, "-m", "yard")  # nox's own environment has yard
    session.run(*yard_command, "build", "--root", str(ROOT), *args, external=True)


BENCHMARKS = {
    "throughput": "throughput.py",
    "concurrency": "concurrency.py",
    "cluster": "cluster.py",
    "results": "results.py",
    "memory": "memory.py",
    "coldstart": "coldstart.py",
    "yard-affected": "yard_affected.py",
    "yard-build": "yard_build.py",
    "yard-test": "yard_test.py",
    "gateway": "gateway.py",
    "schedules": "schedules.py",
    "workflows": "workflows.py",
}


@nox.session(default=False)
def bench(session: nox.Session) -> None:
    """One benchmark of benchmarks/ in a venv from uv.lock (with the ``bench`` group):
    ``nox -s bench -- throughput --only cd``; names: throughput, concurrency, cluster, memory,
    results, coldstart, yard-affected, yard-build, yard-test, gateway, schedules, workflows.
    Results print as markdown; docs/benchmarks.md keeps the quoted runs."""
    if not session.posargs or session.posargs[0] not in BENCHMARKS:
        session.error(f"name a benchmark first: nox -s bench -- {{{','.join(BENCHMARKS)}}} [ARGS]")
    name, *args = session.posargs
    sync(session, "--group", "bench")
    session.run("python", str(ROOT / "benchmarks" / BENCHMARKS[name]), *args)
