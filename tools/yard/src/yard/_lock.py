"""uv.lock: which third-party packages changed between two locks, and who reaches them.

uv writes its lock in one canonical layout: a header, then one ``[[package]]`` block per
locked package. yard splits the text into those blocks, compares blocks as text (a block that
did not change cannot have changed its version, source, hashes, markers or dependencies), and
parses each distinct block once (line by line when in uv's layout, else with tomllib), leaving
out the bulky sdist and wheel lists; the header is plain TOML for the fast reader.
"""

from __future__ import annotations

import re
from collections import deque
from collections.abc import Iterable, Mapping
from typing import Any, Final, NamedTuple

from ._fasttoml import loads

_SEPARATOR: Final = "\n[[package]]\n"
_NAME_LINE = re.compile(r'^name = "([^"]+)"', re.MULTILINE)
_VERSION_LINE = re.compile(r'^version = "([^"]+)"', re.MULTILINE)
_AT_LINE = re.compile(r"\s*\(at line (\d+), column \d+\)$")
_BULKY = re.compile(r"^(?:sdist = .*|wheels = \[\n(?:[^\n]*\n)*?\])\n", re.MULTILINE)

DepRef = tuple[str, str | None, str | None, tuple[str, ...]]
"""A dependency entry of a lock package: name, version and source (given when several
versions are locked), and the extras requested."""


class LockError(Exception):
    """The lock cannot be read; the message says where and why."""


class Package:
    """One ``[[package]]`` block of a lock; its details are filled in when first needed."""

    __slots__ = ("deps", "groups", "line", "name", "optional", "source", "text", "version")

    def __init__(self, name: str, version: str | None, text: str, line: int) -> None:
        self.name = name
        self.version = version
        self.text = text
        self.line = line
        self.source = ""
        self.deps: list[DepRef] = []
        self.optional: dict[str, list[DepRef]] = {}
        self.groups: dict[str, list[DepRef]] = {}


class Lock(NamedTuple):
    """A parsed lock: its packages, the packages of each name, what the dependency groups
    of a virtual workspace root (``[manifest.dependency-groups]``) require, and the workspace
    members it was locked for (``[manifest] members``, when uv writes it)."""

    packages: list[Package]
    by_name: dict[str, list[int]]
    root_refs: list[DepRef]
    members: frozenset[str] = frozenset()


WORKSPACE_ROOT: Final = ""
"""The name :func:`reaching_members` gives the dependency groups of a virtual workspace root:
what they install (test and lint tools) is in every member's environment."""


State = tuple[int, str]
"""A node of the closure walk: a package index and an extra ("" for the package itself)."""

Details = tuple[str, list[DepRef], dict[str, list[DepRef]], dict[str, list[DepRef]]]
"""A block's source (as a key) and its dependencies, extras' and groups' dependencies."""

_PARSED: dict[str, Details] = {}


def parse_lock(text: str, where: str = "uv.lock") -> Lock:
    """Parse a uv.lock text; raises LockError naming the line when it cannot."""
    header, *blocks = text.split(_SEPARATOR)
    header_data = _loads(header, where, 1)
    version = header_data.get("version")
    if version != 1:
        raise LockError(f"{where}: unsupported lock version {version!r} (yard reads version 1)")
    if header.lstrip().startswith("[[package]]") or (not blocks and "[[package]]" in text):
        raise LockError(f"{where}: not in uv's layout (one [[package]] block per package)")
    packages: list[Package] = []
    by_name: dict[str, list[int]] = {}
    line = header.count("\n") + 2
    for block in blocks:
        name_match = _NAME_LINE.match(block)
        if name_match is None:
            raise LockError(f"{where}:{line + 1}: a [[package]] block must start with its name")
        version_match = _VERSION_LINE.search(block)
        package = Package(
            name=name_match.group(1),
            version=version_match.group(1) if version_match else None,
            text=block,
            line=line,
        )
        by_name.setdefault(package.name, []).append(len(packages))
        packages.append(package)
        line += block.count("\n") + 2
    members = header_data.get("manifest", {}).get("members", [])
    return Lock(
        packages=packages,
        by_name=by_name,
        root_refs=_root_refs(header_data, where),
        members=frozenset(m for m in members if isinstance(m, str)),
    )


def _root_refs(header: dict[str, Any], where: str) -> list[DepRef]:
    groups = header.get("manifest", {}).get("dependency-groups", {})
    refs: list[DepRef] = []
    for entries in groups.values() if isinstance(groups, dict) else ():
        for entry in entries if isinstance(entries, list) else ():
            if not isinstance(entry, dict) or not isinstance(entry.get("name"), str):
                raise LockError(f"{where}: [manifest.dependency-groups]: bad entry {entry!r}")
            refs.append((entry["name"], None, None, tuple(entry.get("extras", ()))))
    return refs


def _loads(text: str, where: str, first_line: int) -> dict[str, Any]:
    fast = loads(text)  # the header is plain TOML: no tomllib import on the usual path
    if fast is not None:
        return fast
    import tomllib

    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        message = str(exc)
        at = _AT_LINE.search(message)
        line = first_line + int(at.group(1)) - 1 if at else first_line
        raise LockError(f"{where}:{line}: invalid TOML: {_AT_LINE.sub('', message)}") from None


def details(package: Package, where: str) -> None:
    """Fill in a package's source and dependency lists, parsing its block once."""
    cached = _PARSED.get(package.text)
    if cached is None:
        body = _BULKY.sub("", package.text.split("\n[package.metadata]", 1)[0])
        cached = _fast(body) or _slow(body, where, package)
        _PARSED[package.text] = cached
    package.source, package.deps, package.optional, package.groups = cached


_ENTRY = re.compile(
    r'\s*\{ name = "([^"]+)"(?:, version = "([^"]+)")?(?:, source = (\{[^}]*\}))?'
    r'(?:, extra = \[([^\]]*)\])?(?:, marker = "(?:[^"\\]|\\.)*")? \},?'
)
_PAIR = re.compile(r'([A-Za-z][\w-]*) = "([^"]*)"')
_QUOTED = re.compile(r'"([^"]*)"')


def _fast(body: str) -> Details | None:
    """Read the dependency lists of a block in uv's canonical layout, line by line; None when
    a line is not in that layout (the block is then read with tomllib)."""
    source = ""
    deps: list[DepRef] = []
    tables: dict[str, dict[str, list[DepRef]]] = {"optional": {}, "groups": {}}
    section = "package"
    target: list[DepRef] | None = None
    skipping = False
    for line in body.split("\n"):
        if skipping:  # inside an array yard does not need (resolution-markers)
            skipping = line != "]"
            continue
        if target is not None:
            if line == "]":
                target = None
                continue
            entry = _ENTRY.fullmatch(line)
            if entry is None:
                return None
            name, version, src, extra = entry.group(1, 2, 3, 4)
            extras = tuple(_QUOTED.findall(extra)) if extra else ()
            target.append((name, version, _pair_key(src) if src else None, extras))
            continue
        if not line:
            continue
        if line.startswith("["):
            section = {
                "[package.optional-dependencies]": "optional",
                "[package.dev-dependencies]": "groups",
            }.get(line, "")
            if not section:
                return None
            continue
        key, sep, value = line.partition(" = ")
        if not sep:
            return None
        if section == "package":
            if key == "dependencies" and value == "[":
                target = deps
            elif key == "source":
                source = _pair_key(value)
            elif value == "[":
                skipping = True
            elif value.endswith("["):
                return None
        elif value == "[":
            target = tables[section].setdefault(key, [])
        else:
            return None
    if target is not None or skipping:
        return None
    return source, deps, tables["optional"], tables["groups"]


def _pair_key(inline: str) -> str:
    return ",".join(f"{k}={v}" for k, v in sorted(_PAIR.findall(inline)))


def _slow(body: str, where: str, package: Package) -> Details:
    data = _loads("[[package]]\n" + body, where, package.line - 1)
    entries = data.get("package")
    if not isinstance(entries, list) or len(entries) != 1:
        raise LockError(f"{where}:{package.line}: one [[package]] block expected here")
    entry = entries[0]
    return (
        _source_key(entry.get("source")),
        _refs(entry.get("dependencies", []), where, package),
        {
            extra: _refs(refs, where, package)
            for extra, refs in entry.get("optional-dependencies", {}).items()
        },
        {
            group: _refs(refs, where, package)
            for group, refs in entry.get("dev-dependencies", {}).items()
        },
    )


def _source_key(source: Any) -> str:
    if not isinstance(source, dict):
        return ""
    return ",".join(f"{k}={v}" for k, v in sorted(source.items()))


def _refs(entries: Any, where: str, package: Package) -> list[DepRef]:
    if not isinstance(entries, list):
        raise LockError(f"{where}:{package.line}: {package.name}: dependency lists must be arrays")
    refs: list[DepRef] = []
    for entry in entries:
        if not isinstance(entry, dict) or not isinstance(entry.get("name"), str):
            raise LockError(f"{where}:{package.line}: {package.name}: bad dependency entry")
        source = entry.get("source")
        refs.append(
            (
                entry["name"],
                entry.get("version"),
                _source_key(source) if source is not None else None,
                tuple(entry.get("extra", ())),
            )
        )
    return refs


class LockChange(NamedTuple):
    """One third-party package that changed between two locks, described for people.

    A name can be locked at several versions (a resolution fork): ``old`` and ``new`` are the
    indices of the blocks that changed, in the old and the new lock.
    """

    name: str
    description: str
    old: tuple[int, ...]
    new: tuple[int, ...]


def changed_packages(old: Lock, new: Lock, members: Iterable[str]) -> list[LockChange]:
    """Third-party packages whose blocks differ between the locks, or that were added or
    removed; workspace members' own blocks are left out (their pyprojects speak for them), and
    so are those of members that joined or left the workspace between the two locks."""
    skip = set(members) | old.members | new.members
    changes: list[LockChange] = []
    for name in sorted(old.by_name.keys() | new.by_name.keys()):
        if name in skip:
            continue
        before = {old.packages[i].text: i for i in old.by_name.get(name, ())}
        after = {new.packages[i].text: i for i in new.by_name.get(name, ())}
        gone = tuple(i for text, i in before.items() if text not in after)
        came = tuple(i for text, i in after.items() if text not in before)
        if gone or came:
            description = _describe(
                name, [old.packages[i] for i in gone], [new.packages[i] for i in came]
            )
            changes.append(LockChange(name, description, gone, came))
    return changes


def changed_member_blocks(old: Lock, new: Lock, members: Iterable[str]) -> list[str]:
    """Members whose own lock block changed (their locked dependencies were re-resolved)."""
    out = []
    for name in members:
        before = sorted(old.packages[i].text for i in old.by_name.get(name, ()))
        after = sorted(new.packages[i].text for i in new.by_name.get(name, ()))
        if before != after and before and after:
            out.append(name)
    return out


def _describe(name: str, before: list[Package], after: list[Package]) -> str:
    old_versions = sorted({p.version or "?" for p in before})
    new_versions = sorted({p.version or "?" for p in after})
    if not before:
        return f"{name} {', '.join(new_versions)} added"
    if not after:
        return f"{name} {', '.join(old_versions)} removed"
    if old_versions != new_versions:
        return f"{name} {', '.join(old_versions)} -> {', '.join(new_versions)}"
    what = []
    old_lines = {line for p in before for line in p.text.splitlines()}
    new_lines = {line for p in after for line in p.text.splitlines()}
    differing = old_lines ^ new_lines
    if any(line.startswith("source = ") for line in differing):
        what.append("source")
    if any("hash = " in line for line in differing):
        what.append("hashes")
    if any("marker" in line for line in differing):
        what.append("markers")
    if not what:
        what.append("dependencies")
    return f"{name} {', '.join(new_versions)} ({', '.join(what)} changed)"


def reaching_members(
    lock: Lock, changed: Mapping[int, str], members: Iterable[str], where: str
) -> dict[str, list[tuple[str, list[str]]]]:
    """For each member whose locked closure reaches a changed package: (description, path).

    The dependency groups of a virtual workspace root count as one more member, named
    :data:`WORKSPACE_ROOT`.

    A member's closure starts from its own block with every extra and dependency group, then
    follows each package's dependencies and the extras requested of it; it stops at other
    members (a change they reach reaches their dependents through the member graph). The path
    lists the packages from the member's direct dependency to the changed package.
    """
    member_set = set(members)
    packages, by_name = lock.packages, lock.by_name
    # States are (package index, extra or "" for the package itself); member roots use "*".
    forward: dict[State, list[State]] = {}
    reverse: dict[State, list[State]] = {}
    blocks: list[tuple[int, list[tuple[str, list[DepRef]]]]] = [(-1, [("*", lock.root_refs)])]
    for index, package in enumerate(packages):
        details(package, where)
        if package.name in member_set:
            blocks.append((index, [("*", _all_refs(package))]))
        else:
            blocks.append((index, [("", package.deps), *package.optional.items()]))
    for index, lists in blocks:
        for key, refs in lists:
            if not refs:
                continue
            state = (index, key)
            out = forward.setdefault(state, [])
            for ref in refs:
                if ref[0] in member_set:
                    continue
                candidates = by_name.get(ref[0], ())
                if len(candidates) > 1 and (ref[1] is not None or ref[2] is not None):
                    candidates = _resolve(lock, ref)
                for target in candidates:
                    for reached in ((target, ""), *((target, extra) for extra in ref[3])):
                        out.append(reached)
                        back = reverse.get(reached)
                        if back is None:
                            reverse[reached] = [state]
                        else:
                            back.append(state)

    # Which member roots reach any changed package: one breadth-first walk back from all.
    starts = [(i, "") for i in changed]
    seen = set(starts)
    queue = deque(starts)
    roots: list[State] = []
    while queue:
        for source in reverse.get(queue.popleft(), ()):
            if source not in seen:
                seen.add(source)
                (roots if source[1] == "*" else queue).append(source)

    # For each of them, one shortest path to every changed package in its closure.
    found: dict[str, list[tuple[str, list[str]]]] = {}
    for root in sorted(roots):
        parent: dict[State, State | None] = {root: None}
        walk = deque([root])
        hits: dict[str, list[str]] = {}
        while walk:
            state = walk.popleft()
            found_change = changed.get(state[0]) if state[1] == "" else None
            if found_change is not None and found_change not in hits:
                path: list[str] = []
                node: State | None = state
                while node is not None and node != root:
                    step = lock.packages[node[0]].name
                    if not path or path[-1] != step:
                        path.append(step)
                    node = parent[node]
                hits[found_change] = path[::-1]
            for step_to in forward.get(state, ()):
                if step_to not in parent:
                    parent[step_to] = state
                    walk.append(step_to)
        found[WORKSPACE_ROOT if root[0] < 0 else lock.packages[root[0]].name] = [
            (description, path) for description, path in sorted(hits.items())
        ]
    return found


def _all_refs(package: Package) -> list[DepRef]:
    refs = list(package.deps)
    for extra_refs in package.optional.values():
        refs.extend(extra_refs)
    for group_refs in package.groups.values():
        refs.extend(group_refs)
    return refs


def _resolve(lock: Lock, ref: DepRef) -> list[int]:
    """The packages a dependency entry that gives a version or source means (several
    versions of one name are locked); all of them when none matches."""
    name, version, source, _ = ref
    candidates = lock.by_name.get(name, [])
    if len(candidates) <= 1 or (version is None and source is None):
        return candidates
    for index in candidates:
        details(lock.packages[index], "uv.lock")
    return [
        i
        for i in candidates
        if (version is None or lock.packages[i].version == version)
        and (source is None or lock.packages[i].source == source)
    ] or candidates
