"""Test result keys: what one member's test run is a function of, hashed.

A member's test key covers, and only covers:

- its build key (``_keys``: its files, its run-time dependencies' keys, its locked third-party
  closure, the toolchain);
- its test files: every file under its ``tests/`` folder that git tracks or would track, even
  where ``[tool.yard] ignore`` leaves them out of the build key;
- its test dependency closure: the build keys of the members its dependency groups name, the
  uv.lock blocks its groups reach, and the runner (pytest and its dependencies, at the versions
  uv.lock pins);
- the Python and platform that run the tests;
- the workspace's global inputs that apply to it (``[tool.yard] global-inputs``, by default
  the root ``pyproject.toml``, ``noxfile.py`` and ``.python-version``), and the extra inputs
  it declares (``[tool.yard.test] inputs``, globs from the workspace root);
- the environment variables it declares (``[tool.yard.test] env``), by value;
- the arguments given to pytest.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import tomllib
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, Final, NamedTuple

from . import _lock
from ._errors import YardError
from ._keys import _git_files, _walk_files, file_digests
from ._names import glob_match, normalize
from ._workspace import Workspace

TEST_KEY_FORMAT: Final = "yard-test-key 1"
RUNNER: Final = "pytest"
TESTS: Final = "tests"
_ENV_NAME: Final = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_SETTINGS: Final = ("env", "inputs")


FileDigests = tuple[tuple[str, str], ...]
"""Files (relative paths) and the SHA-256 of their content."""


class TestConfig(NamedTuple):
    """``[tool.yard.test]``: the root's and the member's, together."""

    env: tuple[str, ...] = ()
    """Environment variables whose values the results depend on."""
    inputs: tuple[str, ...] = ()
    """Globs, from the workspace root, of more files the results depend on."""


class Runner(NamedTuple):
    """What runs the tests: requirement lines pinned from uv.lock, and their blocks' digest."""

    requirements: tuple[str, ...]
    digest: str


def test_configs(workspace: Workspace, names: Iterable[str]) -> dict[str, TestConfig]:
    """Each named member's test settings (the root's, plus its own)."""
    root = _read_table(workspace.root / "pyproject.toml", "pyproject.toml")
    out: dict[str, TestConfig] = {}
    for name in names:
        member = workspace.members[name]
        where = f"{member.path}/pyproject.toml"
        own = _read_table(member.directory / "pyproject.toml", where)
        out[name] = TestConfig(
            env=tuple(sorted(set(root.env) | set(own.env))),
            inputs=tuple(sorted(set(root.inputs) | set(own.inputs))),
        )
    return out


def _read_table(path: Path, where: str) -> TestConfig:
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise YardError(f"{where}: cannot read: {exc}") from None
    table = data.get("tool", {}).get("yard", {}).get("test", {})
    if not isinstance(table, dict):
        raise YardError(f"{where}: [tool.yard.test] must be a table")
    for key in table:
        if key not in _SETTINGS:
            known = ", ".join(_SETTINGS)
            raise YardError(f"{where}: [tool.yard.test]: unknown setting {key!r} (known: {known})")
    env = _strings(table.get("env", []), f"{where}: tool.yard.test.env")
    for name in env:
        if not _ENV_NAME.fullmatch(name):
            raise YardError(f"{where}: tool.yard.test.env: {name!r} is not a variable name")
    inputs = _strings(table.get("inputs", []), f"{where}: tool.yard.test.inputs")
    return TestConfig(tuple(env), tuple(i.strip("/") for i in inputs))


def _strings(value: Any, where: str) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise YardError(f"{where} must be a list of strings")
    return list(value)


def runner(lock_text: str | None) -> Runner:
    """pytest and its dependencies at the versions uv.lock pins, as requirement lines (with
    their markers), and the digest of their lock blocks."""
    if lock_text is None:
        raise YardError("yard test installs what uv.lock pins, but there is no uv.lock: uv lock")
    try:
        lock = _lock.parse_lock(lock_text)
    except _lock.LockError as exc:
        raise YardError(f"{exc}; fix or regenerate it with uv lock") from None
    starts = lock.by_name.get(RUNNER)
    if not starts:
        raise YardError(
            f"uv.lock does not lock {RUNNER}, which yard test runs: add it to a dependency "
            "group (the workspace's dev group, say) and run uv lock"
        )
    lines: list[str] = []
    texts: list[str] = []
    seen: set[int] = set()
    stack: list[tuple[int, tuple[str, ...], str]] = [(starts[0], (), "")]
    while stack:
        index, extras, marker = stack.pop()
        if index in seen:
            continue
        seen.add(index)
        package = lock.packages[index]
        texts.append(package.text)
        data = _block(package)
        name = package.name + (f"[{','.join(extras)}]" if extras else "")
        lines.append(f"{name}=={package.version}" + (f" ; {marker}" if marker else ""))
        entries = list(data.get("dependencies", []))
        optional = data.get("package", {}).get("optional-dependencies", {})
        for extra in extras:
            entries.extend(optional.get(extra, []))
        for entry in entries:
            inner = entry.get("marker", "")
            both = f"({marker}) and ({inner})" if marker and inner else marker or inner
            ref = (entry["name"], entry.get("version"), None, ())
            stack.extend(
                (i, tuple(entry.get("extra", ())), both) for i in _lock._resolve(lock, ref)
            )
    digest = _digest("\n\0".join(sorted(texts)))
    return Runner(tuple(sorted(lines)), digest)


def _block(package: _lock.Package) -> dict[str, Any]:
    body = _lock._BULKY.sub("", package.text.split("\n[package.metadata]", 1)[0])
    try:
        return tomllib.loads(body)
    except tomllib.TOMLDecodeError as exc:
        raise YardError(f"uv.lock:{package.line}: invalid TOML: {exc}") from None


def group_members(workspace: Workspace, name: str) -> list[str]:
    """The members that ``name``'s dependency groups name (installed for its tests)."""
    member = workspace.members[name]
    return sorted({e.to for e in member.edges if e.kind == "group"})


def group_lock_digests(
    lock_text: str | None, names: Iterable[str], members: set[str]
) -> dict[str, str]:
    """For each member, a digest of the uv.lock blocks its dependency groups reach (third-party
    packages only: members reached are keyed by their build keys)."""
    wanted = list(names)
    if lock_text is None:
        return {name: _digest("no lock") for name in wanted}
    lock = _lock.parse_lock(lock_text)
    parsed: dict[int, dict[str, Any]] = {}

    def block(index: int) -> dict[str, Any]:
        found = parsed.get(index)
        if found is None:
            found = parsed[index] = _block(lock.packages[index])
        return found

    def targets(entries: list[dict[str, Any]]) -> list[tuple[int, tuple[str, ...]]]:
        out: list[tuple[int, tuple[str, ...]]] = []
        for entry in entries:
            ref = (entry["name"], entry.get("version"), None, ())
            extras = tuple(entry.get("extra", ()))
            out.extend((i, extras) for i in _lock._resolve(lock, ref))
        return out

    out: dict[str, str] = {}
    for name in wanted:
        stack: list[tuple[int, tuple[str, ...]]] = []
        for index in lock.by_name.get(name, []):
            groups = block(index).get("package", {}).get("dev-dependencies", {})
            for entries in groups.values():
                stack.extend(targets(entries))
        seen: set[int] = set()
        visited: set[tuple[int, tuple[str, ...]]] = set()
        while stack:
            state = stack.pop()
            index, extras = state
            if state in visited or normalize(lock.packages[index].name) in members:
                continue
            visited.add(state)
            seen.add(index)
            data = block(index)
            entries = list(data.get("dependencies", []))
            optional = data.get("package", {}).get("optional-dependencies", {})
            for extra in extras:
                entries.extend(optional.get(extra, []))
            stack.extend(targets(entries))
        out[name] = _digest("\n\0".join(sorted(lock.packages[i].text for i in seen)))
    return out


def test_files(workspace: Workspace, names: Iterable[str]) -> dict[str, FileDigests]:
    """Each member's files under ``tests/`` with their SHA-256, ignore globs or not."""
    folders: dict[str, str] = {}
    for name in names:
        path = workspace.members[name].path
        folders[name] = TESTS if path == "." else f"{path}/{TESTS}"
    listed = _git_files(workspace.root, sorted(folders.values()))
    if listed is None:
        listed = _walk_files(workspace.root, sorted(folders.values()))
    out: dict[str, FileDigests] = {}
    for name, folder in folders.items():
        inside = [p for p in listed if p.startswith(folder + "/")]
        out[name] = file_digests(workspace.root, inside)
    return out


def root_files(workspace: Workspace) -> list[str]:
    """Every file of the repository that git tracks or would track (for global and declared
    inputs), relative to the workspace root."""
    listed = _git_files(workspace.root, ["."])
    return listed if listed is not None else _walk_files(workspace.root, ["."])


class InputFiles:
    """The repository's files, matched against input globs once per glob (many members share
    the global ones), with their digests read once."""

    __slots__ = ("_digests", "_matched", "files", "root")

    def __init__(self, root: Path, files: Sequence[str]) -> None:
        self.root = root
        self.files = files
        self._matched: dict[str, list[str]] = {}
        self._digests: dict[str, str] = {}

    def digests(self, patterns: Iterable[str]) -> FileDigests:
        chosen: set[str] = set()
        for pattern in patterns:
            found = self._matched.get(pattern)
            if found is None:
                found = self._matched[pattern] = [p for p in self.files if glob_match(p, [pattern])]
            chosen.update(found)
        unknown = sorted(p for p in chosen if p not in self._digests)
        self._digests.update(file_digests(self.root, unknown))
        return tuple((p, self._digests[p]) for p in sorted(chosen) if p in self._digests)


def input_patterns(workspace: Workspace, name: str, config: TestConfig) -> list[str]:
    """The global inputs that apply to ``name`` and the inputs it declares."""
    patterns = [
        pattern
        for pattern, targets in workspace.config.global_inputs.items()
        if targets is None or name in targets
    ]
    return patterns + list(config.inputs)


class TestKeyParts(NamedTuple):
    """What one member's test key is made of."""

    build: str
    tests: tuple[tuple[str, str], ...]
    groups: tuple[tuple[str, str], ...]
    group_lock: str
    runner: Runner
    python: str
    inputs: tuple[tuple[str, str], ...]
    env: tuple[str, ...]
    args: tuple[str, ...]

    def key(self, name: str, version: str | None) -> str:
        lines = [TEST_KEY_FORMAT, f"member {name} {version or '-'}", f"build {self.build}"]
        lines += [f"test-file {path} {digest}" for path, digest in self.tests]
        lines += [f"group-dep {dep} {key}" for dep, key in self.groups]
        lines.append(f"group-lock {self.group_lock}")
        lines += [f"runner {line}" for line in self.runner.requirements]
        lines.append(f"runner-lock {self.runner.digest}")
        lines.append(f"python {self.python}")
        lines += [f"input {path} {digest}" for path, digest in self.inputs]
        lines += [f"env {item}" for item in self.env]
        lines.append(f"args {json.dumps(list(self.args))}")
        return _digest("\n".join(lines) + "\n")


def env_values(names: Iterable[str]) -> tuple[str, ...]:
    """Each declared variable with a digest of its value (values can be secrets), or unset."""
    out: list[str] = []
    for name in names:
        value = os.environ.get(name)
        shown = "unset" if value is None else _digest(value)[:32]
        out.append(f"{name} {shown}")
    return tuple(out)


def test_keys(
    workspace: Workspace,
    names: Sequence[str],
    *,
    build_keys: Mapping[str, str],
    lock_text: str | None,
    python: str,
    args: Sequence[str],
) -> dict[str, str]:
    """The test key of each named member (``build_keys`` holds theirs and their group
    members')."""
    the_runner = runner(lock_text)
    configs = test_configs(workspace, names)
    tests = test_files(workspace, names)
    group_locks = group_lock_digests(lock_text, names, set(workspace.members))
    files = InputFiles(workspace.root, root_files(workspace))
    out: dict[str, str] = {}
    for name in names:
        parts = TestKeyParts(
            build=build_keys[name],
            tests=tests[name],
            groups=tuple((g, build_keys[g]) for g in group_members(workspace, name)),
            group_lock=group_locks[name],
            runner=the_runner,
            python=python,
            inputs=files.digests(input_patterns(workspace, name, configs[name])),
            env=env_values(configs[name].env),
            args=tuple(args),
        )
        out[name] = parts.key(name, workspace.members[name].version)
    return out


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8", "surrogateescape")).hexdigest()
