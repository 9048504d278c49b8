"""``yard build``: wheels from the members' build backends, in parallel, from the cache.

Every member of the plan gets its key first (that needs no build). A key found in the cache is
delivered at once, whatever else happens. The others build in up to ``jobs`` processes, all
startable at once (a wheel build does not use its dependencies' wheels), through the backend's
PEP 517 hooks in the pinned backend venv (``uv build --package NAME --wheel`` as the fallback);
a member completes (stored, delivered, reported) only after its dependencies, and a failure
skips the members that depend on it and nothing else.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO, Final, Literal, Protocol

from ._cache import BuildCache, Entry, copy_atomic
from ._errors import YardError
from ._graph import component_waves, components
from ._keys import compute_keys, runtime_closure, runtime_deps
from ._toolchain import BuildSpec, backend_python, build_specs, toolchain
from ._workspace import Workspace

if TYPE_CHECKING:
    from ._progress import Shown
    from ._remote import RemoteCache

State = Literal["waiting", "building", "built", "cache", "skipped", "failed"]
DONE: Final = frozenset({"built", "cache", "skipped", "failed"})
LOG_TAIL: Final = 25
NOT_BUILT: Final = "not built"


class Reporter(Protocol):
    """Where a build (or a test run) tells people what it is doing (see ``_progress``)."""

    def begin(self, names: list[str]) -> None: ...

    def update(self, result: Shown) -> None: ...

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
    remote: RemoteCache | None = None
    """Where entries missing locally are looked for, and new ones uploaded (``_remote``)."""


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
    fetched: set[str] = field(default_factory=set)
    """Keys this build took from the remote cache."""

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
    """``names`` in a dependencies-first order (by run-time edges), ties by name; the members
    of a run-time cycle come together, in the step after what the cycle depends on."""
    selected = set(names)
    forward = {n: [d for d in runtime_deps(workspace, n) if d in selected] for n in selected}
    return [name for wave in component_waves(forward) for group in wave for name in group]


def member_keys(
    workspace: Workspace,
    names: Iterable[str],
    *,
    python: str,
    cache: BuildCache,
    no_sources: bool = False,
) -> tuple[dict[str, str], dict[str, BuildSpec], dict[str, Path]]:
    """The build key of each named member and of its run-time dependencies, their build specs,
    and the pinned backend constraints file of each requirement set."""
    needed = runtime_closure(workspace, names)
    specs = build_specs(workspace, needed)
    chain, constraints = toolchain(
        [s for s in specs.values() if s.package], python=python, folder=cache.root / "backends"
    )
    chain = chain._replace(backends={**chain.backends, "": NOT_BUILT})
    requires = {n: (s.requires if s.package else "") for n, s in specs.items()}
    lock_path = workspace.root / "uv.lock"
    lock_text = lock_path.read_text(encoding="utf-8") if lock_path.is_file() else None
    flags = ["no-sources"] if no_sources else []
    keys = compute_keys(
        workspace, needed, toolchain=chain, requires=requires, options=flags, lock_text=lock_text
    )
    return {n: k for n, (k, _) in keys.items()}, specs, constraints


def build(
    workspace: Workspace,
    targets: Collection[str],
    options: BuildOptions,
    reporter: Reporter,
    *,
    support: Collection[str] = (),
    after: Sequence[AfterTask] = (),
) -> BuildReport:
    """Build ``targets`` into ``options.out`` (and ``support`` into the cache only)."""
    started = time.perf_counter()
    cache = BuildCache(options.cache)
    cache.check_writable()
    check_out_dir(options.out)
    plan = plan_order(workspace, set(targets) | set(support))
    keys, specs, constraints = member_keys(
        workspace, plan, python=options.python, cache=cache, no_sources=options.no_sources
    )
    results = {
        name: MemberResult(name, workspace.members[name].version, name in targets, key=keys[name])
        for name in plan
    }
    report = BuildReport(results, out=options.out, cache=options.cache)
    reporter.begin(plan)
    suffixes = (".whl", ".tar.gz") if options.sdist else (".whl",)
    remote = options.remote
    if remote is not None:  # fetch what the local cache lacks, all at once
        wanted = {
            keys[n]: n
            for n in plan
            if specs[n].package and cache.lookup(keys[n], suffixes, touch=False) is None
        }
        report.fetched = set(remote.fetch_many(wanted, cache))
    misses: list[str] = []
    for name in plan:
        result = results[name]
        if not specs[name].package:
            _finish(result, "skipped", "not a package ([tool.uv] package = false)", reporter)
            continue
        entry = cache.lookup(result.key, suffixes)
        if entry is not None and _deliver(result, entry, suffixes, options.out):
            reason = "from the remote cache" if result.key in report.fetched else ""
            _finish(result, "cache", reason, reporter)
        else:
            misses.append(name)
    _run_misses(
        workspace, misses, results, specs, constraints, options, cache, suffixes, reporter, after
    )
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


@dataclass(frozen=True, slots=True)
class AfterTask:
    """Work that needs some members' wheels (a manifest): it runs in the build's pool as soon
    as every member in ``needs`` is done (built, from the cache, skipped or failed)."""

    needs: frozenset[str]
    run: Callable[[Mapping[str, MemberResult]], None]
    """Called with the build's results (read-only) in a pool thread."""


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
    after: Sequence[AfterTask] = (),
) -> None:
    """Build ``misses``, all of them at once up to ``jobs`` processes.

    A wheel build of a member does not use its dependencies' wheels (only its key needs their
    keys, and those are known), so nothing waits for a dependency to *build*. What keeps
    dependencies first is completion: a member's wheel is stored and delivered only once its
    dependencies are done, and when one of them failed it is skipped (not built at all if it
    had not started yet; its finished wheel discarded if it had). The members of a run-time
    cycle complete together, once all of them are built.
    """
    missing = set(misses)
    deps = {n: set(runtime_deps(workspace, n)) & missing for n in misses}
    peers = {n: group for group in components(deps) for n in group}
    wanted = {n for task in after for n in task.needs}  # start what a manifest waits for first
    queue = sorted(misses, key=lambda n: (n not in wanted, -_downstream(n, deps), misses.index(n)))
    held: dict[str, tuple[int, Path, float]] = {}
    failed: dict[str, str] = {}
    pending_after = list(after)
    running: dict[Future[Any], str] = {}
    jobs = max(1, options.jobs)

    def done(name: str) -> bool:
        return results[name].state in DONE

    with ThreadPoolExecutor(max_workers=jobs + 1, thread_name_prefix="yard-build") as pool:
        while True:
            for task in [t for t in pending_after if all(done(n) for n in t.needs)]:
                pending_after.remove(task)
                running[pool.submit(task.run, results)] = ""
            while queue and sum(1 for n in running.values() if n) < jobs:
                name = queue.pop(0)
                blocker = next((d for d in sorted(deps[name]) if d in failed), None)
                if blocker is not None:
                    failed[name] = failed[blocker]
                    reason = f"needs {failed[blocker]}, which failed"
                    _finish(results[name], "skipped", reason, reporter)
                    continue
                result = results[name]
                result.state = "building"
                result.started = time.perf_counter()
                reporter.update(result)
                constraint = constraints[specs[name].requires]
                directory = workspace.members[name].directory
                future = pool.submit(
                    _uv_build, workspace.root, name, directory, constraint, options
                )
                running[future] = name
            if _complete_held(
                held, deps, peers, failed, results, cache, suffixes, options, reporter
            ):
                continue
            if not running:
                if any(all(done(n) for n in t.needs) for t in pending_after):
                    continue
                break
            finished, _ = wait(running, return_when=FIRST_COMPLETED)
            for future in finished:
                name = running.pop(future)
                if not name:
                    future.result()  # an after-task's own errors are its business; raise bugs
                    continue
                held[name] = future.result()
    if held or pending_after:  # pragma: no cover - completion always drains
        raise YardError("internal error: build plan stalled")


def _complete_held(
    held: dict[str, tuple[int, Path, float]],
    deps: Mapping[str, set[str]],
    peers: Mapping[str, list[str]],
    failed: dict[str, str],
    results: dict[str, MemberResult],
    cache: BuildCache,
    suffixes: tuple[str, ...],
    options: BuildOptions,
    reporter: Reporter,
) -> bool:
    """Store and report the finished builds whose dependencies are done; True if any was.

    A member completes with its cycle (``peers``, itself alone when in none): once every one of
    them has finished building and everything outside the cycle they need is done. A failure
    in the cycle skips the others.
    """
    progressed = False
    for name in sorted(held):
        if name not in held:  # completed with its cycle
            continue
        group = peers[name]
        if any(m not in held and results[m].state not in DONE for m in group):
            continue
        inside = set(group)
        outside = sorted({d for m in group for d in deps[m]} - inside)
        if any(results[d].state not in DONE for d in outside):
            continue
        finished = {m: held.pop(m) for m in group if m in held}
        blocker = next((d for d in outside if d in failed), None)
        broken = [m for m in sorted(finished) if finished[m][0] != 0]
        for member in sorted(finished, key=lambda m: m not in broken):
            code, folder, seconds = finished[member]
            result = results[member]
            result.seconds = seconds
            if blocker is not None:
                failed[member] = failed[blocker]
                _finish(result, "skipped", f"needs {failed[blocker]}, which failed", reporter)
            elif broken and member not in broken:
                failed[member] = broken[0]
                _finish(result, "skipped", f"needs {broken[0]}, which failed", reporter)
            elif code == 0 and _store(result, folder, cache, suffixes, options):
                _finish(result, "built", "", reporter)
            else:
                failed[member] = member
                result.log_tail = _tail(folder / "build.log")
                _finish(result, "failed", f"uv build exited with {code}", reporter)
            shutil.rmtree(folder, ignore_errors=True)
        progressed = True
    return progressed


def _downstream(name: str, deps: Mapping[str, set[str]]) -> int:
    """How many members depend on ``name`` at run time, directly or not (start those first)."""
    hit = {name}
    changed = True
    while changed:
        changed = False
        for other, its in deps.items():
            if other not in hit and hit & its:
                hit.add(other)
                changed = True
    return len(hit) - 1


def _uv_build(
    root: Path, name: str, directory: Path, constraint: Path, options: BuildOptions
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
        if not options.sdist and _direct(
            root / directory, folder / "out", constraint, options, log
        ):
            return 0, folder, time.perf_counter() - started
        code = _run_logged([*cmd, "--offline"] if offline else cmd, root, log)
        if code and offline and any(m in _read_from(log, 0) for m in _OFFLINE_MISS):
            code = _run_logged(cmd, root, log)
        if code == 0 and not offline:
            with contextlib.suppress(OSError):
                warm.touch()
    return code, folder, time.perf_counter() - started


_PEP517: Final = """
import importlib, os, sys, tomllib
out = sys.argv[1]
with open("pyproject.toml", "rb") as f:
    system = tomllib.load(f).get("build-system") or {}
backend = system.get("build-backend") or sys.exit("yard: no build-backend")
for path in reversed(system.get("backend-path") or []):
    sys.path.insert(0, os.path.abspath(path))
module, _, attrs = backend.partition(":")
hooks = importlib.import_module(module)
for attr in filter(None, attrs.split(".")):
    hooks = getattr(hooks, attr)
extra = getattr(hooks, "get_requires_for_build_wheel", lambda settings: [])(None)
if extra:
    sys.exit(f"yard: the backend asks for more: {extra}")
print(hooks.build_wheel(out))
"""
"""A PEP 517 front end in a few lines: a wheel from the member folder (the working folder)."""


def _direct(
    directory: Path, out: Path, constraint: Path, options: BuildOptions, log: BinaryIO
) -> bool:
    """Build the wheel with the backend's own hooks in the pinned backend venv (see
    ``backend_python``); False when that did not work and ``uv build`` must do it."""
    python = backend_python(constraint, python=options.python, log=log)
    if python is None:
        return False
    cmd = [str(python), "-I", "-c", _PEP517, str(out)]
    log.write(f"$ (in {directory}) {python} -I -c <PEP 517 build_wheel> {out}\n".encode())
    log.flush()
    env = {**os.environ, "NO_COLOR": "1"}
    env.pop("VIRTUAL_ENV", None)
    try:
        code = subprocess.run(
            cmd, cwd=directory, stdout=log, stderr=subprocess.STDOUT, env=env, check=False
        ).returncode
    except OSError as exc:
        log.write(f"yard: {exc}\n".encode())
        return False
    if code:
        log.write(b"yard: the direct build failed; running uv build\n")
        for stale in out.iterdir():
            stale.unlink()
    return code == 0


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
    if options.remote is not None:
        options.remote.upload(entry)
    return _deliver(result, entry, suffixes, options.out)


def _tail(log: Path) -> list[str]:
    try:
        lines = log.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return []
    return lines[-LOG_TAIL:]
