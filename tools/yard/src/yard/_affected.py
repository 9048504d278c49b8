"""What a git change affects, and why: files, global inputs, uv.lock, then dependents."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import NamedTuple

from . import _git
from ._errors import YardError
from ._graph import Graph
from ._model import Member
from ._names import glob_match
from ._workspace import Workspace

LOCK_FILE = "uv.lock"
MAX_EXPLAINED_FILES = 10


class Affected(NamedTuple):
    """The members a change affects, the ones it changes directly, and the reasons."""

    base: str
    head: str | None
    """The head ref, or None for the working tree (commits, staged, unstaged, untracked)."""
    merge_base: str
    changed_files: tuple[str, ...]
    changed: tuple[str, ...]
    affected: tuple[str, ...]
    reasons: dict[str, list[str]]
    warnings: tuple[str, ...] = ()
    """What yard could not read and worked around (also printed on stderr)."""
    removed: tuple[str, ...] = ()
    """Members of the workspace at the merge base that the head's workspace no longer has."""

    def as_dict(self) -> dict[str, object]:
        """The JSON form: base, head, merge_base, changed_files, changed, affected, reasons,
        removed, warnings."""
        return {
            "base": self.base,
            "head": self.head,
            "merge_base": self.merge_base,
            "changed_files": list(self.changed_files),
            "changed": list(self.changed),
            "affected": list(self.affected),
            "reasons": {name: self.reasons[name] for name in self.affected},
            "removed": list(self.removed),
            "warnings": list(self.warnings),
        }

    def shard(self, index: int, count: int) -> Affected:
        """Shard ``index`` of ``count`` (1-based): every count-th member of the sorted set.

        Deterministic (it depends on the names only) and balanced (shard sizes differ by at
        most one), so N parallel CI jobs each run ``--shard I/N`` and cover the set once.
        """
        if not 1 <= index <= count:
            raise YardError(f"--shard {index}/{count}: I must be between 1 and N")
        keep = self.affected[index - 1 :: count]
        return Affected(
            base=self.base,
            head=self.head,
            merge_base=self.merge_base,
            changed_files=self.changed_files,
            changed=tuple(n for n in self.changed if n in keep),
            affected=keep,
            reasons={n: self.reasons[n] for n in keep},
            warnings=self.warnings,
            removed=self.removed,
        )

    def explain(self) -> str:
        """The same facts as the JSON, for people."""
        head = self.head or "the working tree"
        lines = [
            f"{len(self.changed_files)} changed file(s) between {self.base} "
            f"(merge base {self.merge_base[:12]}) and {head}",
        ]
        if self.removed:
            lines.append(f"removed from the workspace: {' '.join(self.removed)}")
        if not self.affected:
            lines.append("nothing is affected")
            return "\n".join(lines)
        lines.append(f"{len(self.affected)} affected member(s), {len(self.changed)} changed:")
        for name in self.affected:
            lines.append(f"  {name}")
            files = [r for r in self.reasons[name] if r.startswith("file ")]
            others = [r for r in self.reasons[name] if not r.startswith("file ")]
            for reason in others + files[:MAX_EXPLAINED_FILES]:
                lines.append(f"    {reason}")
            if len(files) > MAX_EXPLAINED_FILES:
                lines.append(f"    ... and {len(files) - MAX_EXPLAINED_FILES} more file(s)")
        return "\n".join(lines)


def compute_affected(
    workspace: Workspace,
    graph: Graph,
    *,
    base: str,
    head: str | None = None,
    pending: _git.PendingChange | None = None,
) -> Affected:
    """The members that the change from the merge base of ``base`` to ``head`` affects.

    ``workspace`` (and ``graph``, its graph) is the workspace as of ``head``: read with
    ``load_workspace(root, rev=head)``, or from the working tree without ``head``. Without
    ``head`` the working tree counts: commits since the merge base, staged, unstaged and
    untracked files. ``pending`` is the git query already started for the same refs.

    When a pyproject.toml changed, the workspace as of the merge base is read too (from git
    objects): files of members that left the workspace, and members that depended on them,
    are found there.
    """
    if pending is None:
        pending = _git.PendingChange(workspace.root, base, head)
    change = pending.result()
    reasons: dict[str, list[str]] = {}
    warnings = list(workspace.warnings)
    owners = [{m.path: m for m in workspace.members.values()}]
    before, removed = _before(workspace, change, warnings)
    if before is not None:
        owners.append({m.path: m for m in before.members.values()})
    everyone = list(workspace.members)
    lock_changed = False
    for path in change.files:
        if path == LOCK_FILE:
            lock_changed = True
            continue
        for pattern, targets in workspace.config.global_inputs.items():
            if glob_match(path, (pattern,)):
                for name in targets if targets is not None else everyone:
                    reasons.setdefault(name, []).append(f"global input {path} changed")
        member = _owning(path, owners)
        if member is None:
            continue
        inner = path if member.path == "." else path[len(member.path) + 1 :]
        if glob_match(inner, workspace.config.ignore) or glob_match(inner, member.ignore):
            continue
        if member.name in workspace.members:  # else it left the workspace (see removed)
            reasons.setdefault(member.name, []).append(f"file {path}")
    if lock_changed:
        for name, why in _lock_reasons(workspace, change.merge_base, head).items():
            reasons.setdefault(name, []).extend(why)
    if before is not None and removed:
        graph_before = Graph(before.members)
        for name in removed:
            for dependent in graph_before.dependents(name, direct=True):
                if dependent in workspace.members:
                    text = f"depended on {name}, which left the workspace"
                    reasons.setdefault(dependent, []).append(text)

    changed = sorted(reasons)
    for name, chain in graph.dependent_paths(changed).items():
        target = chain[-1]
        via = chain[1:-1]
        if via:
            text = f"reaches {target} via {' -> '.join(via)}"
        else:
            labels = sorted({e.label() for e in workspace.members[name].edges if e.to == target})
            kinds = f" ({', '.join(labels)})" if labels != ["dependency"] else ""
            text = f"depends on {target}{kinds}"
        reasons.setdefault(name, []).append(text)
    return Affected(
        base=base,
        head=head,
        merge_base=change.merge_base,
        changed_files=change.files,
        changed=tuple(changed),
        affected=tuple(sorted(reasons)),
        reasons=reasons,
        warnings=tuple(warnings),
        removed=removed,
    )


def _before(
    workspace: Workspace, change: _git.Change, warnings: list[str]
) -> tuple[Workspace | None, tuple[str, ...]]:
    """The workspace as of the merge base and the members it has that the head's has not,
    when a member can have left: read (from git objects) only then."""
    if not _may_have_left(workspace, change):
        return None, ()
    from ._workspace import load_workspace

    try:
        before = load_workspace(workspace.root, rev=change.merge_base)
    except YardError as exc:
        warnings.append(
            f"the workspace at the merge base {change.merge_base[:12]} cannot be read ({exc}): "
            "members that left the workspace since are not known"
        )
        return None, ()
    return before, tuple(sorted(set(before.members) - set(workspace.members)))


def _may_have_left(workspace: Workspace, change: _git.Change) -> bool:
    """Whether a member of the merge base's workspace may be missing from the head's.

    Members come and go only with a pyproject.toml. With the root's unchanged (the same
    member globs), every member of the merge base is still one unless the pyproject of its
    folder changed so that its folder holds no member of that name now; only those changed
    pyprojects are read as of the merge base (the usual edit, a dependency bump, costs one
    blob, not the whole workspace).
    """
    changed = [p for p in change.files if p == "pyproject.toml" or p.endswith("/pyproject.toml")]
    if not changed:
        return False
    if "pyproject.toml" in changed:
        return True
    from ._snapshot import Snapshot
    from ._tree import read_at

    by_path = {m.path: m for m in workspace.members.values()}
    snapshot = Snapshot(workspace.root, adding=True)
    try:
        for path, content in read_at(workspace.root, change.merge_base, changed).items():
            if content is None:  # no pyproject there at the merge base: no member left
                continue
            record = snapshot.record(content, f"{change.merge_base}:{path}")
            if not (record["project"] and record["managed"]):
                continue
            now = by_path.get(path.rsplit("/", 1)[0])
            if now is None or now.name != record["name"]:
                return True
    except YardError:
        return True  # the full read says what is wrong
    finally:
        snapshot.save()
    return False


def _owning(path: str, owners: list[dict[str, Member]]) -> Member | None:
    """The member whose folder holds ``path``: the deepest folder as of the head or, for a
    file of a folder that left, as of the merge base (the head's wins a tie)."""
    best: Member | None = None
    for by_path in owners:
        owner = _owner(path, by_path)
        if owner is not None and (best is None or _depth(owner) > _depth(best.path)):
            best = by_path[owner]
    return best


def _depth(folder: str) -> int:
    return 0 if folder == "." else folder.count("/") + 1


def _owner(path: str, by_path: Mapping[str, object]) -> str | None:
    """The deepest member folder holding ``path``, or None."""
    folder = path
    while "/" in folder:
        folder = folder.rsplit("/", 1)[0]
        if folder in by_path:
            return folder
    return "." if "." in by_path else None


def _lock_reasons(workspace: Workspace, merge_base: str, head: str | None) -> dict[str, list[str]]:
    """Members whose locked closure reaches a package that changed in uv.lock, with why."""
    from . import _lock  # only a lock change needs it

    names = list(workspace.members)
    old_text = _git.show(workspace.root, merge_base, LOCK_FILE)
    if head is None:
        lock_path = Path(workspace.root, LOCK_FILE)
        new_text = lock_path.read_text(encoding="utf-8") if lock_path.is_file() else None
    else:
        new_text = _git.show(workspace.root, head, LOCK_FILE)
    problem = None
    if old_text is None:
        problem = "uv.lock did not exist at the merge base"
    elif new_text is None:
        problem = "uv.lock was deleted"
    if problem is None:
        assert old_text is not None
        assert new_text is not None
        try:
            old = _lock.parse_lock(old_text, f"uv.lock at {merge_base[:12]}")
            new = _lock.parse_lock(new_text, "uv.lock" if head is None else f"uv.lock at {head}")
            found_changes = _lock.changed_packages(old, new, names)
            changes = {i: c.description for c in found_changes for i in c.new}
            removed = {i: c.description for c in found_changes if not c.new for i in c.old}
            found: dict[str, list[str]] = {}
            root_groups = _lock.WORKSPACE_ROOT
            # Every member reaching a changed package reaches it, or a changed package above
            # it, in the new lock; the old lock is walked only to explain removed packages.
            walks = [(new, changes, "uv.lock")]
            if removed:
                walks.append((old, removed, "uv.lock at the merge base"))
            for lock, wanted, where in walks:
                reached = _lock.reaching_members(lock, wanted, names, where)
                for member, hits in sorted(reached.items(), key=lambda i: i[0] == root_groups):
                    for description, path in hits:
                        if member == root_groups:  # the root's dev tools are everyone's
                            via = " -> ".join(
                                ["the workspace root's dependency groups", *path[:-1]]
                            )
                            text, targets = f"uv.lock: {description}, via {via}", names
                        else:
                            text, targets = _lock_text(description, path), [member]
                        for target in targets:
                            if text not in found.setdefault(target, []):
                                found[target].append(text)
            for member in _lock.changed_member_blocks(old, new, names):
                if member not in found:  # else the changes it reaches say why already
                    found[member] = ["uv.lock: its own locked entry changed"]
            return found
        except _lock.LockError as exc:
            problem = f"uv.lock unreadable ({exc})"
    return {name: [f"{problem}: every member is affected"] for name in names}


def _lock_text(description: str, path: list[str]) -> str:
    via = path[:-1]
    if via:
        return f"uv.lock: {description}, via {' -> '.join(via)}"
    return f"uv.lock: {description}, a direct dependency"
