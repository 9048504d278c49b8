"""The CI entry points of the Switchyard workspace.

``uv run nox`` runs the default sessions (lint, typecheck, tests): it is the project's test
command, and ``.ci/run`` calls exactly that. Every session builds its environment with uv from
the committed ``uv.lock`` (``uv sync --frozen``), so what CI tests is what the lock says.

``nox -s affected -- --base REF`` tests only what a change affects (``yard affected``), each
member in its own exact environment; ``nox -s "test(member='acme-auth')"`` tests one member so.
``nox -s build`` builds wheels through yard's cache; ``nox -s bench -- NAME`` runs a benchmark.
"""

from __future__ import annotations

import json
import os
import re
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
MEMBER_ENVS = ROOT / ".nox" / "_members"
"""One virtual environment per member for the isolated test runs, kept between runs."""


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


def locked_version(name: str) -> str:
    """The version of a package that uv.lock pins (pytest for the isolated runs)."""
    text = (ROOT / "uv.lock").read_text(encoding="utf-8")
    found = re.search(rf'\n\[\[package\]\]\nname = "{re.escape(name)}"\nversion = "([^"]+)"', text)
    if found is None:
        raise RuntimeError(f"uv.lock does not lock {name}; run `uv lock`")
    return found.group(1)


def test_member(session: nox.Session, name: str, *pytest_args: str) -> None:
    """Run one member's tests in its own exact environment.

    ``uv run --exact --package NAME`` installs the member, what it declares (its dependencies
    and its dev group) and nothing else, from uv.lock; pytest comes in as a locked-version
    overlay. A test that imports something the member forgot to declare fails here.
    """
    member = WORKSPACE.member(name)
    tests = member.directory / "tests"
    if not tests.is_dir():
        session.log(f"{member.name}: no tests/ folder, nothing to run")
        return
    venv = str(MEMBER_ENVS / member.name)
    env = {**redis_env(), "UV_PROJECT_ENVIRONMENT": venv, "VIRTUAL_ENV": venv}
    session.run(
        "uv",
        "run",
        "--frozen",
        "--exact",
        "--package",
        member.name,
        "--with",
        f"pytest=={locked_version('pytest')}",
        "pytest",
        str(tests),
        *pytest_args,
        env=env,
        external=True,
        success_codes=[0, 5],  # 5: the folder holds no test yet
    )


@nox.session(default=False, venv_backend="none")
@nox.parametrize("member", sorted(WORKSPACE.members))
def test(session: nox.Session, member: str) -> None:
    """One member's tests in its own exact environment: ``nox -s "test(member='NAME')"``."""
    test_member(session, member, *session.posargs)


@nox.session(default=False)
def affected(session: nox.Session) -> None:
    """The tests of what a change affects: ``nox -s affected -- --base REF [--head REF]``.

    ``yard affected`` names the members (changed ones and their dependents, uv.lock changes
    included); each runs its tests in its own exact environment, then the root tests/ run
    when anything is affected (or when they changed themselves).
    """
    if not session.posargs:
        session.error("give the base ref: nox -s affected -- --base REF [--head REF]")
    yard_command = (sys.executable, "-m", "yard")  # nox's own environment has yard
    output = session.run(
        *yard_command,
        "affected",
        "--json",
        "--root",
        str(ROOT),
        *session.posargs,
        silent=True,
        external=True,
    )
    result = json.loads(str(output))
    names: list[str] = result["affected"]
    root_tests = any(f.startswith("tests/") for f in result["changed_files"])
    if not names and not root_tests:
        session.log(f"nothing is affected since {result['base']}: no tests to run")
        return
    session.log(f"affected: {', '.join(names) or 'none'}")
    failed: list[str] = []
    for name in names:
        session.log(f"{name}: {'; '.join(result['reasons'][name][:3])}")
        try:
            test_member(session, name)
        except CommandFailed:  # test the other members too, then fail naming them all
            failed.append(name)
    if (ROOT / "tests").is_dir() and any((ROOT / "tests").glob("test_*.py")):
        sync(session)
        try:
            session.run("pytest", "tests", env=redis_env())
        except CommandFailed:
            failed.append("root tests/")
    if failed:
        session.error(f"tests failed for: {', '.join(failed)}")


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
    "coldstart": "coldstart.py",
    "yard-affected": "yard_affected.py",
    "yard-build": "yard_build.py",
}


@nox.session(default=False)
def bench(session: nox.Session) -> None:
    """One benchmark of benchmarks/ in a venv from uv.lock (with the ``bench`` group):
    ``nox -s bench -- throughput --only cd``; names: throughput, concurrency, coldstart,
    yard-affected, yard-build. Results print as markdown; docs/benchmarks.md keeps the quoted
    runs."""
    if not session.posargs or session.posargs[0] not in BENCHMARKS:
        session.error(f"name a benchmark first: nox -s bench -- {{{','.join(BENCHMARKS)}}} [ARGS]")
    name, *args = session.posargs
    sync(session, "--group", "bench")
    session.run("python", str(ROOT / "benchmarks" / BENCHMARKS[name]), *args)
