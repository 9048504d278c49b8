"""Internal edges of members whose dependencies are dynamic, read from uv.lock.

A member that lists ``dependencies`` (or ``optional-dependencies``) in ``project.dynamic`` has
them filled in by its build backend (a hatch metadata hook, setuptools' ``dynamic`` table, a
versioning plugin that pins its siblings): the pyproject cannot say what they are. uv can: it
asks the backend when it locks, and writes the resolved dependencies of every member into its
block of uv.lock. yard reads them there, as edges whose ``origin`` is ``uv.lock``; when the
lock cannot say either (no lock, no block for the member, a lock yard cannot read), yard warns
that the member's internal dependencies are unknown.
"""

from __future__ import annotations

from collections.abc import Mapping

from . import _lock
from ._model import Edge, EdgeKind, Member

LOCK: str = "uv.lock"


def lock_edges(
    members: Mapping[str, Member], lock_text: str | None, where: str = LOCK
) -> tuple[dict[str, list[Edge]], list[str]]:
    """For each member with dynamic dependencies, its internal edges from the lock; and one
    warning for each such member the lock cannot speak for.

    ``where`` names the lock in messages (``uv.lock``, or ``REV:uv.lock`` read from git).
    """
    dynamic = [m for m in members.values() if m.dynamic]
    edges: dict[str, list[Edge]] = {}
    warnings: list[str] = []
    if not dynamic:
        return edges, warnings
    lock: _lock.Lock | None = None
    problem = f"there is no {where} to read them from"
    if lock_text is not None:
        try:
            lock = _lock.parse_lock(lock_text, where)
        except _lock.LockError as exc:
            problem = f"{where} cannot be read ({exc})"
    for member in dynamic:
        fields = " and ".join(member.dynamic)
        pyproject = "pyproject.toml" if member.path == "." else f"{member.path}/pyproject.toml"
        package, why = None, problem
        if lock is not None:
            try:
                package = _block(lock, member, where)
                why = f"{where} has no entry for {member.name}"
            except _lock.LockError as exc:
                why = f"{where} cannot be read ({exc})"
        if package is None:
            warnings.append(
                f"{pyproject}: {member.name}'s {fields} are dynamic and {why}: its internal "
                "dependencies are unknown to yard (run uv lock)"
            )
            continue
        found: list[Edge] = []
        if "dependencies" in member.dynamic:
            found += _edges(package.deps, members, member, "dependency", None)
        if "optional-dependencies" in member.dynamic:
            for extra, refs in sorted(package.optional.items()):
                found += _edges(refs, members, member, "optional", extra)
        edges[member.name] = found
    return edges, warnings


def _block(lock: _lock.Lock, member: Member, where: str) -> _lock.Package | None:
    """The member's own block: its name, from its own folder (an editable, virtual or
    directory source), not a release of the same name from an index."""
    candidates = [lock.packages[i] for i in lock.by_name.get(member.name, ())]
    for package in candidates:
        _lock.details(package, where)
        kind, _, path = package.source.partition("=")
        if kind in ("editable", "virtual", "directory") and _same(path, member.path):
            return package
    return candidates[0] if len(candidates) == 1 else None


def _same(lock_path: str, member_path: str) -> bool:
    import posixpath

    return posixpath.normpath(lock_path or ".") == posixpath.normpath(member_path)


def _edges(
    refs: list[_lock.DepRef],
    members: Mapping[str, Member],
    member: Member,
    kind: EdgeKind,
    extra: str | None,
) -> list[Edge]:
    out: list[Edge] = []
    seen: set[str] = set()
    for name, _version, source, extras in refs:
        target = members.get(name)
        if target is None or name == member.name or name in seen:
            continue
        if source is not None:  # several packages of that name are locked: is it the member?
            src_kind, _, path = source.partition("=")
            if src_kind not in ("editable", "virtual", "directory") or not _same(path, target.path):
                continue
        seen.add(name)
        out.append(
            Edge(
                to=name,
                kind=kind,
                extra=extra,
                extras=tuple(sorted(extras)),
                origin=LOCK,
            )
        )
    return out
