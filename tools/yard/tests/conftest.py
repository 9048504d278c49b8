"""Small generated uv workspaces in real git repositories, and yard run as a user runs it."""

from __future__ import annotations

import contextlib
import io
import json
import re
import shutil
import subprocess
import textwrap
from pathlib import Path
from typing import Any

import pytest
from yard._cli import main

GIT_ENV = {
    "GIT_AUTHOR_NAME": "t",
    "GIT_AUTHOR_EMAIL": "t@example.com",
    "GIT_COMMITTER_NAME": "t",
    "GIT_COMMITTER_EMAIL": "t@example.com",
    "GIT_CONFIG_GLOBAL": "/dev/null",
    "GIT_CONFIG_NOSYSTEM": "1",
}


# --- Services and the workspace yard test runs on (yard test, the remote cache) ----------

NGINX_CONF = """
daemon off;
master_process off;
pid {prefix}/nginx.pid;
error_log {prefix}/error.log warn;
events {{ worker_connections 64; }}
http {{
    access_log {prefix}/access.log;
    client_body_temp_path {prefix}/tmp/body;
    proxy_temp_path {prefix}/tmp/proxy;
    fastcgi_temp_path {prefix}/tmp/fastcgi;
    uwsgi_temp_path {prefix}/tmp/uwsgi;
    scgi_temp_path {prefix}/tmp/scgi;
    client_max_body_size 64m;
    server {{
        listen 127.0.0.1:{port};
        root {prefix}/data;
        location / {{
            dav_methods PUT;
            create_full_put_path on;
        }}
        location /private/ {{
            if ($http_authorization != "Bearer s3cret") {{ return 401; }}
            dav_methods PUT;
            create_full_put_path on;
        }}
        location /readonly/ {{
            limit_except GET HEAD {{ deny all; }}
        }}
    }}
}}
"""


class Nginx:
    """Debian's nginx on a free loopback port, serving ``data/`` with WebDAV PUT: a remote cache
    as yard's users run one. ``/private/`` wants ``Authorization: Bearer s3cret``;
    ``/readonly/`` refuses uploads."""

    def __init__(self, prefix: Path) -> None:
        self.prefix = prefix
        self.data = prefix / "data"
        self.proc: subprocess.Popen[bytes] | None = None
        self.port = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> Nginx:
        import os
        import shutil
        import socket
        import time

        binary = os.environ.get("YARD_TEST_NGINX") or shutil.which("nginx") or "/usr/sbin/nginx"
        if not os.access(binary, os.X_OK):
            # a failure where services are required (the workspace's conftest.py)
            pytest.skip("missing service: nginx (Debian: apt-get install nginx)")
        for sub in ("data", "tmp"):
            (self.prefix / sub).mkdir(parents=True, exist_ok=True)
        for _attempt in range(5):
            with socket.socket() as probe:
                probe.bind(("127.0.0.1", 0))
                self.port = probe.getsockname()[1]
            conf = self.prefix / "nginx.conf"
            conf.write_text(NGINX_CONF.format(prefix=self.prefix, port=self.port))
            cmd = [
                binary,
                "-p",
                str(self.prefix),
                "-c",
                str(conf),
                "-e",
                str(self.prefix / "error.log"),
            ]
            log = open(self.prefix / "stderr.log", "ab")  # noqa: SIM115 - nginx writes while it runs
            self.proc = subprocess.Popen(cmd, stdout=log, stderr=log)
            log.close()
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline and self.proc.poll() is None:
                with socket.socket() as client:
                    if client.connect_ex(("127.0.0.1", self.port)) == 0:
                        return self
                time.sleep(0.02)
            self.stop()
        errors = (self.prefix / "error.log").read_text(errors="replace")[-500:]
        raise RuntimeError(f"nginx did not start: {errors}")

    def stop(self) -> None:
        """Stop it by its PID (the one process: master_process off)."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def requests(self) -> list[str]:
        """The access log's request lines, e.g. ``PUT /ac/... HTTP/1.1 201``."""
        path = self.prefix / "access.log"
        if not path.exists():
            return []
        out = []
        for line in path.read_text().splitlines():
            quoted = line.split('"')
            if len(quoted) > 2:
                out.append(f"{quoted[1]} {quoted[2].split()[0]}")
        return out

    def clear(self) -> None:
        import shutil

        shutil.rmtree(self.data, ignore_errors=True)
        self.data.mkdir()


@pytest.fixture(scope="session")
def nginx(tmp_path_factory: pytest.TempPathFactory):
    """One nginx for the session; tests use their own folders under it (a URL path each)."""
    server = Nginx(tmp_path_factory.mktemp("nginx")).start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def fresh_nginx(tmp_path: Path):
    """An nginx of the test's own, which the test may stop."""
    server = Nginx(tmp_path / "nginx").start()
    try:
        yield server
    finally:
        server.stop()


ROOT_LOCK = Path(__file__).resolve().parents[3] / "uv.lock"

MEMBER_TEST = """\
import os
import pathlib

import {module}


def test_{module}():
    marks = os.environ.get("YARD_TEST_MARKS")
    if marks:  # say that this test ran (yard test must not run a cached one)
        with open(pathlib.Path(marks) / "{module}", "a") as f:
            f.write("ran\\n")
    assert {module}.VALUE == 1
"""


def _locked(name: str) -> str:
    import re

    found = re.search(rf'\nname = "{name}"\nversion = "([^"]+)"', ROOT_LOCK.read_text())
    assert found, f"{ROOT_LOCK} does not lock {name}"
    return found.group(1)


@pytest.fixture(scope="session")
def test_origin(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A git repository of a small locked workspace to test: base <- mid <- leaf, and other,
    each with one test (which notes in $YARD_TEST_MARKS that it ran). Clone it to use it."""
    import os

    origin = tmp_path_factory.mktemp("origin") / "ws"
    repo = Repo(origin)
    origin.mkdir()
    sources = "".join(f"{n} = {{ workspace = true }}\n" for n in ("base", "mid", "leaf", "other"))
    repo.write(
        "pyproject.toml",
        '[tool.uv.workspace]\nmembers = ["packages/*"]\n'
        f'[dependency-groups]\ndev = ["pytest=={_locked("pytest")}"]\n'
        f"[tool.uv.sources]\n{sources}",
    )
    repo.write(".gitignore", "__pycache__/\n*.pyc\n.venv/\ndist/\n.pytest_cache/\n")
    hatch = (
        'requires-python = ">=3.11"\n'
        '[build-system]\nrequires = ["hatchling"]\nbuild-backend = "hatchling.build"\n'
    )
    for name, deps in (("base", ()), ("mid", ("base",)), ("leaf", ("mid",)), ("other", ())):
        repo.member(f"packages/{name}", name, deps, extra=hatch, imports=deps)
        imports = "".join(f"import {d}\n" for d in deps)
        repo.write(f"packages/{name}/src/{name}/__init__.py", f"{imports}VALUE = 1\n")
        repo.write(f"packages/{name}/tests/test_{name}.py", MEMBER_TEST.format(module=name))
    env = {k: v for k, v in os.environ.items() if not k.startswith("UV_PROJECT")}
    lock = subprocess.run(
        ["uv", "lock", "--offline", "-q"], cwd=origin, env=env, capture_output=True, text=True
    )
    if lock.returncode:  # uv's cache lacks something: ask the index
        lock = subprocess.run(
            ["uv", "lock", "-q"], cwd=origin, env=env, capture_output=True, text=True
        )
    assert lock.returncode == 0, lock.stderr
    repo.git("init", "-q", "-b", "main")
    repo.commit("init")
    return origin


@pytest.fixture
def clone(test_origin: Path, tmp_path: Path):
    """A function making fresh clones of ``test_origin`` (a new machine's checkout)."""
    import os

    count = 0

    def make() -> Repo:
        nonlocal count
        count += 1
        target = tmp_path / f"clone{count}"
        subprocess.run(
            ["git", "clone", "-q", str(test_origin), str(target)],
            check=True,
            env={**GIT_ENV, "PATH": os.environ["PATH"]},
        )
        return Repo(target)

    return make


class Result:
    """What a user sees: the exit status, stdout and stderr."""

    def __init__(self, code: int, out: str, err: str) -> None:
        self.code = code
        self.out = out
        self.err = err

    def json(self) -> Any:
        return json.loads(self.out)

    def lines(self) -> list[str]:
        return self.out.split()


class Repo:
    """A uv workspace in a git repository, built file by file."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.revs: dict[str, str] = {}
        """Named commits, for a generated history."""

    def write(self, rel: str, text: str = "") -> Path:
        target = self.path / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(textwrap.dedent(text))
        return target

    def remove(self, rel: str) -> None:
        (self.path / rel).unlink()

    def member(
        self,
        folder: str,
        name: str,
        deps: tuple[str, ...] = (),
        *,
        extra: str = "",
        imports: tuple[str, ...] = (),
        version: str = "0.1.0",
    ) -> None:
        """A member with a pyproject, a src package importing ``imports``, and a test."""
        lines = ", ".join(f'"{d}"' for d in deps)
        pyproject = f'[project]\nname = "{name}"\nversion = "{version}"\ndependencies = [{lines}]\n'
        self.write(f"{folder}/pyproject.toml", pyproject + textwrap.dedent(extra))
        module = name.replace("-", "_").lower()
        body = "".join(f"import {m}\n" for m in imports)
        self.write(f"{folder}/src/{module}/__init__.py", body)
        self.write(f"{folder}/tests/test_{module}.py", f"import {module}\n")

    def git(self, *args: str) -> str:
        result = subprocess.run(
            ["git", *args],
            cwd=self.path,
            env={**GIT_ENV, "PATH": "/usr/bin:/bin:/usr/local/bin"},
            capture_output=True,
            text=True,
            check=True,
        )
        return result.stdout.strip()

    def commit(self, message: str = "change") -> str:
        self.git("add", "-A")
        self.git("commit", "-q", "--allow-empty", "-m", message)
        return self.git("rev-parse", "HEAD")

    def yard(self, *args: str, root: bool = True) -> Result:
        out, err = io.StringIO(), io.StringIO()
        argv = [*args, "--root", str(self.path)] if root else list(args)
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = main(argv)
        return Result(code, out.getvalue(), err.getvalue())

    def affected(self, *args: str) -> dict[str, Any]:
        result = self.yard("affected", "--json", *args)
        assert result.code == 0, result.err
        data: dict[str, Any] = result.json()
        return data


@pytest.fixture(autouse=True)
def _private_cache(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch):
    """Each test gets its own yard cache folder, never the user's."""
    monkeypatch.setenv("YARD_CACHE_DIR", str(tmp_path_factory.mktemp("yard-cache")))


@pytest.fixture
def repo_at() -> type[Repo]:
    """The Repo class, to wrap a folder made some other way (a clone)."""
    return Repo


@pytest.fixture
def repo(tmp_path: Path) -> Repo:
    """An empty workspace root (members under packages/*) in a fresh git repository."""
    r = Repo(tmp_path / "ws")
    r.path.mkdir()
    r.write("pyproject.toml", '[tool.uv.workspace]\nmembers = ["packages/*"]\n')
    r.write(".gitignore", "__pycache__/\n*.pyc\n.venv/\n")
    r.git("init", "-q", "-b", "main")
    return r


@pytest.fixture
def chain(repo: Repo) -> Repo:
    """base <- mid <- leaf, plus an unrelated member, committed on main."""
    repo.member("packages/base", "base")
    repo.member("packages/mid", "mid", ("base",), imports=("base",))
    repo.member("packages/leaf", "leaf", ("mid",), imports=("mid",))
    repo.member("packages/other", "other")
    repo.commit("init")
    return repo


# --- Generated workspaces with real `uv lock`, one per pattern of the real world -------------

HATCH = (
    'requires-python = ">=3.11"\n'
    '[build-system]\nrequires = ["hatchling"]\nbuild-backend = "hatchling.build"\n'
)
DYNAMIC_HOOK = """\
from hatchling.metadata.plugin.interface import MetadataHookInterface


class CustomMetadataHook(MetadataHookInterface):
    def update(self, metadata):
        metadata["dependencies"] = {deps!r}
        metadata["optional-dependencies"] = {optional!r}
"""


def uv_lock(repo: Repo, *args: str) -> None:
    """Lock the workspace with the real uv (skips the test when uv cannot reach an index)."""
    result = subprocess.run(
        ["uv", "lock", "--quiet", *args], cwd=repo.path, capture_output=True, text=True
    )
    if result.returncode and any(w in result.stderr.lower() for w in ("network", "dns", "connect")):
        pytest.skip(f"uv lock needs the package index: {result.stderr.strip()[:200]}")
    assert result.returncode == 0, result.stderr


def _lock_graph(text: str) -> set[tuple[str, str, str, str | None]]:
    """The member-to-member edges uv.lock records: (member, target, kind, extra or group)."""
    import tomllib

    data = tomllib.loads(text)
    packages = data.get("package", [])
    members = set(data.get("manifest", {}).get("members", ())) or {
        p["name"] for p in packages if {"editable", "virtual"} & set(p.get("source", {}))
    }
    edges = set()
    for package in packages:
        name = package["name"]
        if name not in members or not {"editable", "virtual"} & set(package["source"]):
            continue
        tables = [("dependency", {None: package.get("dependencies", [])})]
        tables.append(("optional", package.get("optional-dependencies", {})))
        tables.append(("group", package.get("dev-dependencies", {})))
        for kind, lists in tables:
            for label, refs in lists.items():
                for ref in refs:
                    if ref["name"] in members and ref["name"] != name:
                        edges.add((name, ref["name"], kind, label))
    return edges


def _yard_graph(data: dict[str, Any]) -> set[tuple[str, str, str, str | None]]:
    """The same edges from ``yard graph --format json`` (entry-point edges are yard's own)."""
    return {
        (m["name"], e["to"], e["kind"], e.get("extra") or e.get("group"))
        for m in data["members"]
        for e in m["edges"]
        if e["kind"] != "entry-point"
    }


@pytest.fixture
def relock() -> Any:
    """``relock(repo, *args)`` runs the real ``uv lock`` in the repository."""
    return uv_lock


@pytest.fixture
def lock_graph() -> Any:
    """(member, target, kind, extra or group) for each member-to-member edge of a uv.lock."""
    return _lock_graph


@pytest.fixture
def yard_graph() -> Any:
    """The same edges from ``yard graph --format json`` output."""
    return _yard_graph


def new_repo(path: Path) -> Repo:
    repo = Repo(path)
    path.mkdir(parents=True)
    repo.write("pyproject.toml", '[tool.uv.workspace]\nmembers = ["packages/*"]\n')
    repo.write(".gitignore", "__pycache__/\n*.pyc\n.venv/\n")
    repo.git("init", "-q", "-b", "main")
    return repo


def locked_member(repo: Repo, name: str, deps: tuple[str, ...] = (), extra: str = "") -> None:
    """A buildable member whose internal requirements have workspace sources, as uv wants."""
    internal = set(deps) | set(re.findall(r'"([a-z][a-z0-9-]*)"', extra)) - {name}
    sources = "".join(f"{d} = {{ workspace = true }}\n" for d in sorted(internal))
    python, build = HATCH.split("\n", 1)
    tail = build + (f"[tool.uv.sources]\n{sources}" if sources else "")
    repo.member(f"packages/{name}", name, deps, extra=f"{python}\n{extra}{tail}")


def extra_cycle(path: Path) -> Repo:
    """core's ``all`` extra lists the plugins that depend on it; app uses one plugin."""
    repo = new_repo(path)
    locked_member(
        repo, "core", extra='[project.optional-dependencies]\nall = ["plug-a", "plug-b"]\n'
    )
    locked_member(repo, "plug-a", ("core",))
    locked_member(repo, "plug-b", ("core",))
    locked_member(repo, "app", ("plug-a",))
    uv_lock(repo)
    repo.commit("extra cycle")
    return repo


def group_cycle(path: Path) -> Repo:
    """lib's test group uses testutils, which depends on lib."""
    repo = new_repo(path)
    locked_member(repo, "lib", extra='[dependency-groups]\ntest = ["testutils"]\n')
    locked_member(repo, "testutils", ("lib",))
    locked_member(repo, "user", ("lib",))
    uv_lock(repo)
    repo.commit("group cycle")
    return repo


def dynamic_dependencies(path: Path) -> Repo:
    """dyn's dependencies and extras come from a hatch metadata hook (core, and lib in the
    extra ``x``); top depends on dyn."""
    repo = new_repo(path)
    locked_member(repo, "core")
    locked_member(repo, "lib")
    repo.write(
        "packages/dyn/pyproject.toml",
        '[project]\nname = "dyn"\nversion = "0.1.0"\n'
        'dynamic = ["dependencies", "optional-dependencies"]\n'
        + HATCH
        + "[tool.uv.sources]\ncore = { workspace = true }\nlib = { workspace = true }\n"
        "[tool.hatch.metadata.hooks.custom]\n",
    )
    repo.write("packages/dyn/src/dyn/__init__.py", "import core\n")
    hook = DYNAMIC_HOOK.format(deps=["core"], optional={"x": ["lib"]})
    repo.write("packages/dyn/hatch_build.py", hook)
    locked_member(repo, "top", ("dyn",))
    uv_lock(repo)
    repo.commit("dynamic")
    return repo


def history(path: Path) -> tuple[Repo, dict[str, str]]:
    """Three locked commits: ``base`` (a, b, c; c -> b -> a), ``head`` (b removed, c -> a,
    d added: d -> c), ``later`` (checked out: e added, d removed)."""
    repo = new_repo(path)
    locked_member(repo, "a")
    locked_member(repo, "b", ("a",))
    locked_member(repo, "c", ("b",))
    locked_member(repo, "z")
    uv_lock(repo)
    revs = {"base": repo.commit("base")}
    shutil.rmtree(repo.path / "packages/b")
    locked_member(repo, "c", ("a",))
    locked_member(repo, "d", ("c",))
    uv_lock(repo)
    revs["head"] = repo.commit("head")
    shutil.rmtree(repo.path / "packages/d")
    locked_member(repo, "e", ("a",))
    uv_lock(repo)
    revs["later"] = repo.commit("later")
    return repo, revs


@pytest.fixture(scope="session")
def patterns(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Repo]:
    """Each pattern in its own git repository, locked by the real uv, made once a session."""
    if shutil.which("uv") is None:  # pragma: no cover - uv runs this project's CI
        pytest.skip("missing service: uv")
    base = tmp_path_factory.mktemp("patterns")
    made = {
        "extra-cycle": extra_cycle(base / "extra-cycle"),
        "group-cycle": group_cycle(base / "group-cycle"),
        "dynamic": dynamic_dependencies(base / "dynamic"),
    }
    made["history"], made["history"].revs = history(base / "history")
    return made
