"""``yard build``: wheels through ``uv build``, dependencies first, in parallel, from the cache.

Every member of the plan gets its key first (that needs no build). A key found in the cache is
delivered at once, whatever else happens. The others build with ``uv build --package NAME
--wheel`` in up to ``jobs`` processes, each after the members it depends on at run time; a
failure skips the members that depend on it and nothing else.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Collection, Iterable, Mapping
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO, Final, Literal, Protocol

from ._cache import BuildCache, Entry, copy_atomic
from ._errors import YardError
from ._keys import compute_keys, runtime_closure, runtime_deps
from ._toolchain import BuildSpec, build_specs, toolchain
from ._workspace import Workspace

State = Literal["waiting", "building", "built", "cache", "skipped", "failed"]
DONE: Final = frozenset({"built", "cache", "skipped", "failed"})
LOG_TAIL: Final = 25
NOT_BUILT: Final = "not built"


class Reporter(Protocol):
    """Where a build tells people what it is doing (see ``_progress``)."""

    def begin(self, names: list[str]) -> None: ...

    def update(self, result: MemberResult) -> None: ...

    def end(self) -> None: ...


@dataclass(slots=True)
class MemberResult:
    """What happened to one member of a build."""

    name: str
    version: str | None
    target: bool
    """True for a requested member (its artifacts go to the output folder), False for one
    built only because a later step (a manifest) needs its wheel."""
    state: State = "waiting"
    key: str = ""
    seconds: float = 0.0
    started: float = 0.0
    reason: str = ""
    log_tail: list[str] = field(default_factory=list)
    artifacts: list[Path] = field(default_factory=list)
    """Output files: in the output folder for targets, in the cache for the others."""
    cached: Entry | None = None

    def as_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "name": self.name,
            "version": self.version,
            "state": self.state,
            "seconds": round(self.seconds, 3),
            "key": self.key,
            "artifacts": [str(p) for p in self.artifacts],
        }
        if not self.target:
            data["needed_by"] = "manifest"
        if self.reason:
            data["reason"] = self.reason
        if self.log_tail:
            data["log_tail"] = self.log_tail
        return data


@dataclass(frozen=True, slots=True)
class BuildOptions:
    """How to build: see ``yard build --help``."""

    out: Path
    cache: Path
    jobs: int
    sdist: bool = False
    no_sources: bool = False
    python: str = sys.executable


@dataclass(slots=True)
class BuildReport:
    """All members of a build, in plan order, and the totals."""

    results: dict[str, MemberResult]
    seconds: float = 0.0
    out: Path | None = None
    cache: Path | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)
    """Problems found after building (pins, manifests), one line each."""

    def count(self, state: str) -> int:
        return sum(1 for r in self.results.values() if r.state == state)

    @property
    def ok(self) -> bool:
        """No member failed (a skipped dependent implies a failure) and no later step did."""
        return not self.errors and self.count("failed") == 0

    def summary(self) -> dict[str, Any]:
        return {
            "built": self.count("built"),
            "from_cache": self.count("cache"),
            "skipped": self.count("skipped"),
            "failed": self.count("failed"),
            "seconds": round(self.seconds, 3),
        }

    def as_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "out": str(self.out) if self.out else None,
            "cache": str(self.cache) if self.cache else None,
            "summary": self.summary(),
            "members": [r.as_dict() for r in self.results.values()],
            **self.extra,
            "errors": self.errors,
        }


def check_out_dir(out: Path) -> None:
    """Create the output folder, or fail with one line saying why.

    A folder yard creates gets a ``.gitignore`` of ``*`` (as ``uv build`` does), so that its
    wheels never count as untracked inputs of a member.
    """
    try:
        if not out.is_dir():
            out.mkdir(parents=True)
            (out / ".gitignore").write_text("*\n", encoding="utf-8")
        probe = out / f".yard-probe.{os.getpid()}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        raise YardError(
            f"output folder {out} is not writable ({exc.strerror}); pass --out DIR"
        ) from None


def plan_order(workspace: Workspace, names: Iterable[str]) -> list[str]:
    """``names`` in a dependencies-first order (by run-time edges), ties by name."""
    selected = set(names)
    pending = {n: set(runtime_deps(workspace, n)) & selected for n in selected}
    order: list[str] = []
    while pending:
        ready = sorted(n for n, deps in pending.items() if not deps)
        order.extend(ready)
        for name in ready:
            del pending[name]
        for deps in pending.values():
            deps.difference_update(ready)
    return order


def build(
    workspace: Workspace,
    targets: Collection[str],
    options: BuildOptions,
    reporter: Reporter,
    *,
    support: Collection[str] = (),
) -> BuildReport:
    """Build ``targets`` into ``options.out`` (and ``support`` into the cache only)."""
    started = time.perf_counter()
    cache = BuildCache(options.cache)
    cache.check_writable()
    check_out_dir(options.out)
    plan = plan_order(workspace, set(targets) | set(support))
    needed = runtime_closure(workspace, plan)
    specs = build_specs(workspace, needed)
    chain, constraints = toolchain(
        [s for s in specs.values() if s.package],
        python=options.python,
        folder=cache.root / "backends",
    )
    backends = {**chain.backends, "": NOT_BUILT}
    chain = chain._replace(backends=backends)
    requires = {n: (s.requires if s.package else "") for n, s in specs.items()}
    lock_path = workspace.root / "uv.lock"
    lock_text = lock_path.read_text(encoding="utf-8") if lock_path.is_file() else None
    flags = ["no-sources"] if options.no_sources else []
    keys = compute_keys(
        workspace, plan, toolchain=chain, requires=requires, options=flags, lock_text=lock_text
    )
    results = {
        name: MemberResult(
            name, workspace.members[name].version, name in targets, key=keys[name][0]
        )
        for name in plan
    }
    report = BuildReport(results, out=options.out, cache=options.cache)
    reporter.begin(plan)
    suffixes = (".whl", ".tar.gz") if options.sdist else (".whl",)
    misses: list[str] = []
    for name in plan:
        result = results[name]
        if not specs[name].package:
            _finish(result, "skipped", "not a package ([tool.uv] package = false)", reporter)
            continue
        entry = cache.lookup(result.key, suffixes)
        if entry is not None and _deliver(result, entry, suffixes, options.out):
            _finish(result, "cache", "", reporter)
        else:
            misses.append(name)
    _run_misses(workspace, misses, results, specs, constraints, options, cache, suffixes, reporter)
    report.seconds = time.perf_counter() - started
    reporter.end()
    return report


def _finish(result: MemberResult, state: State, reason: str, reporter: Reporter) -> None:
    result.state = state
    result.reason = reason
    reporter.update(result)


def _deliver(result: MemberResult, entry: Entry, suffixes: Iterable[str], out: Path) -> bool:
    """Copy a cache entry's artifacts to the output (targets) or point at them; False when the
    entry vanished meanwhile (pruned by another process)."""
    result.cached = entry
    paths = [entry.path(s) for s in suffixes]
    try:
        if result.target:
            result.artifacts = []
            for path in paths:
                assert path is not None
                copy_atomic(path, out / path.name)
                result.artifacts.append(out / path.name)
        else:
            result.artifacts = [p for p in paths if p is not None]
    except OSError:
        return False
    return True


def _run_misses(
    workspace: Workspace,
    misses: list[str],
    results: dict[str, MemberResult],
    specs: Mapping[str, BuildSpec],
    constraints: Mapping[str, Path],
    options: BuildOptions,
    cache: BuildCache,
    suffixes: tuple[str, ...],
    reporter: Reporter,
) -> None:
    waiting = {n: set(runtime_deps(workspace, n)) & set(misses) for n in misses}
    running: dict[Future[tuple[int, Path, float]], str] = {}
    jobs = max(1, options.jobs)
    with ThreadPoolExecutor(max_workers=jobs, thread_name_prefix="yard-build") as pool:
        while waiting or running:
            for name in sorted(n for n, deps in waiting.items() if not deps):
                if len(running) >= jobs:
                    break
                del waiting[name]
                result = results[name]
                result.state = "building"
                result.started = time.perf_counter()
                reporter.update(result)
                constraint = constraints[specs[name].requires]
                future = pool.submit(_uv_build, workspace.root, name, constraint, options)
                running[future] = name
            if not running:  # pragma: no cover - every waiting member has a waiting dependency
                raise YardError("internal error: build plan stalled")
            done, _ = wait(running, return_when=FIRST_COMPLETED)
            for future in done:
                name = running.pop(future)
                result = results[name]
                code, folder, seconds = future.result()
                result.seconds = seconds
                if code == 0 and _store(result, folder, cache, suffixes, options):
                    _finish(result, "built", "", reporter)
                    for deps in waiting.values():
                        deps.discard(name)
                else:
                    result.log_tail = _tail(folder / "build.log")
                    _finish(result, "failed", f"uv build exited with {code}", reporter)
                    for blocked in _dependents_of(name, waiting, workspace):
                        del waiting[blocked]
                        _finish(
                            results[blocked], "skipped", f"needs {name}, which failed", reporter
                        )
                shutil.rmtree(folder, ignore_errors=True)


def _dependents_of(name: str, waiting: Mapping[str, set[str]], workspace: Workspace) -> list[str]:
    """The waiting members that depend on ``name``, directly or through other waiting ones."""
    hit = {name}
    changed = True
    while changed:
        changed = False
        for other in waiting:
            if other not in hit and hit & set(runtime_deps(workspace, other)):
                hit.add(other)
                changed = True
    hit.discard(name)
    return sorted(hit)


def _uv_build(
    root: Path, name: str, constraint: Path, options: BuildOptions
) -> tuple[int, Path, float]:
    """Run ``uv build`` for one member into a fresh folder; (exit code, folder, seconds).

    Once a build with these backend pins has succeeded, uv's cache holds them, so later builds
    run ``--offline`` and skip uv's index revalidation (a third of a small build's time); when
    an offline build misses something in uv's cache it runs again online.
    """
    folder = options.cache / "tmp" / f"{name}-{uuid.uuid4().hex[:12]}"
    (folder / "out").mkdir(parents=True)
    cmd = ["uv", "build", "--package", name, "--wheel", "--out-dir", str(folder / "out")]
    if options.sdist:
        cmd.append("--sdist")
    if options.no_sources:
        cmd.append("--no-sources")
    cmd += ["--python", options.python, "--build-constraints", str(constraint)]
    cmd.append("--no-create-gitignore")
    warm = constraint.with_suffix(".warm")
    offline = warm.exists()
    started = time.perf_counter()
    with open(folder / "build.log", "w+b") as log:
        code = _run_logged([*cmd, "--offline"] if offline else cmd, root, log)
        if code and offline and any(m in _read_from(log, 0) for m in _OFFLINE_MISS):
            code = _run_logged(cmd, root, log)
        if code == 0 and not offline:
            with contextlib.suppress(OSError):
                warm.touch()
    return code, folder, time.perf_counter() - started


_OFFLINE_MISS: Final = (
    b"network was disabled",
    b"Network connectivity is disabled",
    b"not found in the cache",
)
"""What uv says when ``--offline`` needed something that its cache lacks."""


def _run_logged(cmd: list[str], root: Path, log: BinaryIO) -> int:
    env = {**os.environ, "NO_COLOR": "1", "UV_NO_PROGRESS": "1"}
    log.write(("$ " + " ".join(cmd) + "\n").encode())
    log.flush()
    try:
        return subprocess.run(
            cmd, cwd=root, stdout=log, stderr=subprocess.STDOUT, env=env, check=False
        ).returncode
    except OSError as exc:
        log.write(f"cannot run uv: {exc}\n".encode())
        return 127


def _read_from(log: BinaryIO, offset: int) -> bytes:
    log.flush()
    log.seek(offset)
    data = log.read()
    log.seek(0, os.SEEK_END)
    return data


def _store(
    result: MemberResult,
    folder: Path,
    cache: BuildCache,
    suffixes: tuple[str, ...],
    options: BuildOptions,
) -> bool:
    built = sorted((folder / "out").iterdir())
    files: list[Path] = []
    for suffix in suffixes:
        found = [p for p in built if p.name.endswith(suffix)]
        if len(found) != 1:
            with open(folder / "build.log", "a", encoding="utf-8") as log:
                log.write(f"yard: expected one *{suffix} from uv build, found {len(found)}\n")
            return False
        files.append(found[0])
    meta = {"member": result.name, "version": result.version, "seconds": result.seconds}
    entry = cache.store(result.key, files, meta)
    return _deliver(result, entry, suffixes, options.out)


def _tail(log: Path) -> list[str]:
    try:
        lines = log.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return []
    return lines[-LOG_TAIL:]
