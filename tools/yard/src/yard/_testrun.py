"""``yard test``: each member's tests in its own exact environment, in parallel, from the cache.

Every member gets its test key first (``_testkeys``). A key whose pass is in the local cache, or
else in the remote one, is replayed: its output summary is shown and nothing runs. The others
run at once up to ``jobs`` processes, each ``uv run --frozen --exact --package NAME`` with pytest
pinned from uv.lock, so a member's tests see exactly what it declares. A pass is stored (and
uploaded); a failure never is.

Order: test runs do not use each other, so none waits for another, and a failure skips nothing
(each member's own result is worth knowing). Members that more others depend on start first, so
a broken base package shows early; results are listed dependencies first.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, Literal

from ._build import Reporter, member_keys, plan_order
from ._cache import BuildCache, Entry, write_atomic
from ._keys import runtime_deps
from ._testkeys import TESTS, group_members, runner, test_keys
from ._toolchain import python_id
from ._workspace import Workspace

if TYPE_CHECKING:
    from ._remote import RemoteCache

State = Literal["waiting", "testing", "passed", "failed", "cached", "none", "planned"]
Source = Literal["run", "local", "remote", "-"]
LOG: Final = "output.log"
KIND: Final = "test"
NO_TESTS: Final = 5
"""pytest's exit status when it collected no test: a pass with nothing in it."""
_SUMMARY: Final = re.compile(r"^=+ (.+?) =+$")


@dataclass(slots=True)
class TestResult:
    """What happened to one member's tests."""

    name: str
    version: str | None
    state: State = "waiting"
    source: Source = "-"
    key: str = ""
    seconds: float = 0.0
    """Time spent on it in this run (0 when replayed)."""
    ran_seconds: float = 0.0
    """How long the run took that produced the result (for a replayed pass, the original)."""
    summary: str = ""
    """pytest's last line, e.g. ``12 passed in 0.41s``."""
    log: Path | None = None
    code: int | None = None

    @property
    def reason(self) -> str:
        """What the progress display adds after the name."""
        if self.state == "cached":
            where = "remote cache" if self.source == "remote" else "local cache"
            return f"{self.summary} (from the {where})"
        return self.summary

    @property
    def result(self) -> str:
        """passed, failed, no tests, or not run (``--dry-run``)."""
        return {"cached": "passed", "none": "no tests", "planned": "not run"}.get(
            self.state, self.state
        )

    def as_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "name": self.name,
            "version": self.version,
            "result": self.result,
            "source": "would run" if self.state == "planned" else self.source,
            "seconds": round(self.seconds, 3),
            "ran_seconds": round(self.ran_seconds, 3),
            "key": self.key,
            "summary": self.summary,
            "log": str(self.log) if self.log else None,
        }
        if self.code is not None:
            data["exit_code"] = self.code
        return data


@dataclass(frozen=True, slots=True)
class TestOptions:
    """How to test: see ``yard test --help``."""

    cache: Path
    jobs: int
    use_cache: bool = True
    pytest_args: tuple[str, ...] = ()
    dry_run: bool = False
    python: str = sys.executable
    remote: RemoteCache | None = None


@dataclass(slots=True)
class TestReport:
    """All members of a test run, dependencies first, and the totals."""

    results: dict[str, TestResult]
    seconds: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)

    def count(self, predicate: Any) -> int:
        return sum(1 for r in self.results.values() if predicate(r))

    @property
    def ok(self) -> bool:
        return self.count(lambda r: r.state == "failed") == 0

    def summary(self) -> dict[str, Any]:
        return {
            "passed": self.count(lambda r: r.state in ("passed", "cached")),
            "failed": self.count(lambda r: r.state == "failed"),
            "no_tests": self.count(lambda r: r.state == "none"),
            "run": self.count(lambda r: r.source == "run"),
            "cached": self.count(lambda r: r.state == "cached"),
            "from_remote": self.count(lambda r: r.source == "remote"),
            "seconds": round(self.seconds, 3),
            "saved_seconds": round(
                sum(r.ran_seconds for r in self.results.values() if r.state == "cached"), 3
            ),
        }


def test(
    workspace: Workspace, names: Sequence[str], options: TestOptions, reporter: Reporter
) -> TestReport:
    """Test ``names``: replay cached passes, run the rest (see the module's docstring)."""
    started = time.perf_counter()
    plan = plan_order(workspace, names)
    results = {n: TestResult(n, workspace.members[n].version) for n in plan}
    report = TestReport(results)
    keyed = [n for n in plan if (workspace.members[n].directory / TESTS).is_dir()]
    cache = BuildCache(options.cache)
    if options.use_cache:
        cache.check_writable()
    lock_path = workspace.root / "uv.lock"
    lock_text = lock_path.read_text(encoding="utf-8") if lock_path.is_file() else None
    pinned = runner(lock_text)  # no uv.lock or no pytest in it: one clear error, before work
    if keyed:
        support = {g for n in keyed for g in group_members(workspace, n)}
        build_keys, _, _ = member_keys(
            workspace, [*keyed, *support], python=options.python, cache=cache
        )
        keys = test_keys(
            workspace,
            keyed,
            build_keys=build_keys,
            lock_text=lock_text,
            python=python_id(options.python),
            args=options.pytest_args,
        )
        for name in keyed:
            results[name].key = keys[name]
    reporter.begin(plan)
    for name in plan:
        if name not in keyed:
            results[name].summary = f"no {TESTS}/ folder"
            _finish(results[name], "none", reporter)
    todo = _replay(keyed, results, cache, options, reporter)
    if options.dry_run:
        for name in todo:
            _finish(results[name], "planned", reporter)
    elif todo:
        workdir = _workdir(workspace.root)
        requirements = workdir / f"runner-{pinned.digest[:16]}.txt"
        if not requirements.is_file():
            write_atomic(requirements, "".join(f"{r}\n" for r in pinned.requirements).encode())
        _run_all(workspace, todo, results, options, cache, requirements, workdir, reporter)
    report.seconds = time.perf_counter() - started
    reporter.end()
    return report


def _replay(
    keyed: list[str],
    results: dict[str, TestResult],
    cache: BuildCache,
    options: TestOptions,
    reporter: Reporter,
) -> list[str]:
    """Replay the cached passes (local first, then remote); the members left to run."""
    if not options.use_cache:
        return list(keyed)
    found: dict[str, tuple[Entry, Source]] = {}
    for name in keyed:
        entry = cache.lookup(results[name].key, (LOG,))
        if entry is not None:
            found[name] = (entry, "local")
    remote = options.remote
    if remote is not None:
        wanted = {results[n].key: n for n in keyed if n not in found}
        for key, entry in remote.fetch_many(wanted, cache).items():
            found[wanted[key]] = (entry, "remote")
    todo: list[str] = []
    for name in keyed:
        hit = found.get(name)
        if hit is None or hit[0].meta.get("kind") != KIND:
            todo.append(name)
            continue
        entry, source = hit
        result = results[name]
        result.source = source
        result.summary = str(entry.meta.get("summary", ""))
        result.ran_seconds = float(entry.meta.get("seconds", 0.0))
        result.log = entry.path(LOG)
        _finish(result, "cached", reporter)
    return todo


def _finish(result: TestResult, state: State, reporter: Reporter) -> None:
    result.state = state
    reporter.update(result)


def _workdir(root: Path) -> Path:
    """``.yard/`` at the workspace root (the members' environments, the logs), ignored by git."""
    folder = root / ".yard"
    if not folder.is_dir():
        folder.mkdir()
        (folder / ".gitignore").write_text("*\n", encoding="utf-8")
    for sub in ("envs", "logs"):
        (folder / sub).mkdir(exist_ok=True)
    return folder


def _downstream(workspace: Workspace, names: list[str]) -> dict[str, int]:
    """How many of ``names`` depend on each, directly or not (start those first)."""
    deps = {n: set(runtime_deps(workspace, n)) for n in workspace.members}
    count = dict.fromkeys(names, 0)
    for name in names:
        seen: set[str] = set()
        stack = list(deps[name])
        while stack:
            dep = stack.pop()
            if dep not in seen:
                seen.add(dep)
                stack.extend(deps[dep])
        for dep in seen & set(names):
            count[dep] += 1
    return count


def _run_all(
    workspace: Workspace,
    todo: list[str],
    results: dict[str, TestResult],
    options: TestOptions,
    cache: BuildCache,
    requirements: Path,
    workdir: Path,
    reporter: Reporter,
) -> None:
    downstream = _downstream(workspace, todo)
    queue = sorted(todo, key=lambda n: (-downstream[n], todo.index(n)))
    running: dict[Future[tuple[int, float]], str] = {}
    with ThreadPoolExecutor(max(1, options.jobs), thread_name_prefix="yard-test") as pool:
        while queue or running:
            while queue and len(running) < max(1, options.jobs):
                name = queue.pop(0)
                result = results[name]
                result.state = "testing"
                result.log = workdir / "logs" / f"{name}.log"
                reporter.update(result)
                future = pool.submit(
                    _run_one, workspace, name, options, requirements, workdir, result.log
                )
                running[future] = name
            finished, _ = wait(running, return_when=FIRST_COMPLETED)
            for future in finished:
                name = running.pop(future)
                code, seconds = future.result()
                _complete(results[name], code, seconds, options, cache, reporter)


def _run_one(
    workspace: Workspace,
    name: str,
    options: TestOptions,
    requirements: Path,
    workdir: Path,
    log_path: Path,
) -> tuple[int, float]:
    """Run one member's tests; (exit status, seconds). The output goes to ``log_path``."""
    member = workspace.members[name]
    venv = workdir / "envs" / name
    tests = TESTS if member.path == "." else f"{member.path}/{TESTS}"
    cmd = ["uv", "run", "--frozen", "--exact", "--package", name, "--python", options.python]
    cmd += ["--with-requirements", str(requirements), "pytest", tests, *options.pytest_args]
    env = {**os.environ, "UV_PROJECT_ENVIRONMENT": str(venv), "VIRTUAL_ENV": str(venv)}
    env["UV_NO_PROGRESS"] = "1"
    started = time.perf_counter()
    with open(log_path, "wb") as log:
        try:
            code = subprocess.run(
                cmd, cwd=workspace.root, stdout=log, stderr=subprocess.STDOUT, env=env, check=False
            ).returncode
        except OSError as exc:
            log.write(f"yard: cannot run uv: {exc}\n".encode())
            code = 127
    return code, time.perf_counter() - started


def _complete(
    result: TestResult,
    code: int,
    seconds: float,
    options: TestOptions,
    cache: BuildCache,
    reporter: Reporter,
) -> None:
    result.source = "run"
    result.code = code
    result.seconds = result.ran_seconds = seconds
    assert result.log is not None
    result.summary = summary_line(result.log)
    if code not in (0, NO_TESTS):
        _finish(result, "failed", reporter)
        return
    if options.use_cache:  # a pass is a fact about its key; a failure never is cached
        meta = {
            "kind": KIND,
            "member": result.name,
            "version": result.version,
            "result": "passed",
            "summary": result.summary,
            "seconds": round(seconds, 3),
            "args": list(options.pytest_args),
        }
        folder = cache.root / "tmp" / f"test-{uuid.uuid4().hex[:12]}"
        folder.mkdir(parents=True)
        try:
            shutil.copyfile(result.log, folder / LOG)
            entry = cache.store(result.key, [folder / LOG], meta)
        finally:
            shutil.rmtree(folder, ignore_errors=True)
        if options.remote is not None:
            options.remote.upload(entry)
    _finish(result, "passed", reporter)


def summary_line(log: Path) -> str:
    """pytest's closing line (``3 passed in 0.12s``), or the log's last line."""
    try:
        lines = log.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return ""
    for line in reversed(lines):
        match = _SUMMARY.match(line.strip())
        if match:
            return match.group(1)
    last = next((line.strip() for line in reversed(lines) if line.strip()), "")
    return last[-200:]


def tail(log: Path | None, count: int) -> list[str]:
    """The last ``count`` lines of a log."""
    if log is None:
        return []
    try:
        lines = log.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return []
    return lines[-count:]


def labels() -> Mapping[str, str]:
    """How the final states read in the progress display."""
    return {
        "passed": "passed",
        "failed": "FAILED",
        "cached": "cached",
        "none": "no tests",
        "planned": "would run",
    }
