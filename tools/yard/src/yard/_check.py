"""``yard check``: every member's imports (read with ast) against its declared internal deps."""

from __future__ import annotations

import ast
import os
from pathlib import Path
from typing import NamedTuple

from ._model import Member
from ._workspace import Workspace

_SKIP_DIRS = frozenset(
    {"__pycache__", "build", "dist", "node_modules", "site-packages", "templates"}
)
_PACKAGE_KINDS = frozenset({"dependency", "optional"})


class Finding(NamedTuple):
    """One mismatch between what a member imports and what it declares."""

    member: str
    kind: str
    """``undeclared`` (imports a member it does not declare), ``unused`` (never imports a
    declared one), ``unparsable`` (a Python file ast cannot read) or ``cycle`` (the member is
    the first of a dependency cycle)."""
    target: str
    where: str
    message: str
    severity: str = "error"
    """``error`` (``yard check`` fails) or ``warning`` (reported only)."""

    def as_dict(self) -> dict[str, str]:
        return {
            "member": self.member,
            "kind": self.kind,
            "target": self.target,
            "where": self.where,
            "message": self.message,
            "severity": self.severity,
        }


def check(workspace: Workspace) -> list[Finding]:
    """Compare each member's imports with its declared internal dependencies.

    Code in the member's package must import only members declared in ``project.dependencies``
    or an extra; other files (tests, scripts) may also use dependency groups. A declared
    internal dependency (of any kind) that no file imports is reported as unused unless the
    member lists it in ``[tool.yard] allow-unused``. Entry-point edges are not declarations.
    A dependency cycle is a warning, an error or nothing, as ``[tool.yard] cycles`` says.
    """
    findings = _cycles(workspace)
    providers = _import_map(workspace)
    member_paths = {m.path for m in workspace.members.values()}
    for member in workspace.members.values():
        own = {name for name, owners in providers.items() if owners == [member.name]}
        package_dirs = _package_dirs(member)
        declared = {e.to for e in member.edges if e.kind in _PACKAGE_KINDS}
        declared_any = {e.to for e in member.edges if e.kind != "entry-point"}
        used: set[str] = set()
        for path in _python_files(member, workspace.root, member_paths):
            relative = path.relative_to(workspace.root).as_posix()
            in_package = any(path.is_relative_to(d) for d in package_dirs)
            try:
                tree = ast.parse(path.read_bytes(), filename=relative)
            except (SyntaxError, ValueError) as exc:
                line = getattr(exc, "lineno", None) or 1
                findings.append(
                    Finding(
                        member.name, "unparsable", "", f"{relative}:{line}", f"cannot parse: {exc}"
                    )
                )
                continue
            for module, line in _imports(tree):
                target = _provider(module, providers)
                if target is None or target == member.name or module.split(".")[0] in own:
                    continue
                used.add(target)
                allowed = declared if in_package else declared_any
                if target not in allowed:
                    how = (
                        "project.dependencies"
                        if in_package
                        else "project.dependencies or a dependency group"
                    )
                    findings.append(
                        Finding(
                            member.name,
                            "undeclared",
                            target,
                            f"{relative}:{line}",
                            f"imports {module} from member {target}, which {member.name} does "
                            f"not declare; add {target} to {how}",
                        )
                    )
        allow = set(workspace.allow_unused.get(member.name, ()))
        reported: set[str] = set()
        for edge in member.edges:
            if edge.kind == "entry-point" or edge.to in used | allow | reported:
                continue
            reported.add(edge.to)
            findings.append(
                Finding(
                    member.name,
                    "unused",
                    edge.to,
                    f"{member.path}/pyproject.toml",
                    f"{'depends on' if edge.origin else 'declares'} {edge.to} ({edge.label()}) "
                    "but never imports it; remove it or list it in [tool.yard] allow-unused",
                )
            )
    return findings


def _cycles(workspace: Workspace) -> list[Finding]:
    """One finding per dependency cycle, on its first member, unless cycles are allowed."""
    if workspace.config.cycles == "allow":
        return []
    from ._graph import Graph

    graph = Graph(workspace.members)
    severity = "error" if workspace.config.cycles == "error" else "warning"
    findings = []
    for cycle in graph.cycles:
        first = workspace.members[cycle[0]]
        steps = graph.cycle_path(cycle)
        way = " ".join(f"{name} -[{label}]->" for name, label in steps)
        findings.append(
            Finding(
                first.name,
                "cycle",
                " ".join(cycle[1:]),
                f"{'' if first.path == '.' else first.path + '/'}pyproject.toml",
                f"dependency cycle of {len(cycle)} members ({', '.join(cycle)}): "
                f"{way} {first.name}",
                severity,
            )
        )
    return findings


def _imports(tree: ast.AST) -> list[tuple[str, int]]:
    found: list[tuple[str, int]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.extend((alias.name, node.lineno) for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.append((node.module, node.lineno))
            found.extend((f"{node.module}.{alias.name}", node.lineno) for alias in node.names)
    return found


def _provider(module: str, providers: dict[str, list[str]]) -> str | None:
    """The member providing a dotted module, by its longest known prefix."""
    parts = module.split(".")
    for end in range(len(parts), 0, -1):
        owners = providers.get(".".join(parts[:end]))
        if owners and len(owners) == 1:
            return owners[0]
    return None


def _import_map(workspace: Workspace) -> dict[str, list[str]]:
    """Import names (dotted, for namespace packages) -> the members that provide them."""
    providers: dict[str, list[str]] = {}
    for member in workspace.members.values():
        for name in _provided(member):
            owners = providers.setdefault(name, [])
            if member.name not in owners:
                owners.append(member.name)
    return providers


def _package_dirs(member: Member) -> list[Path]:
    src = member.directory / "src"
    if src.is_dir():
        return [src]
    return [member.directory / n.replace(".", "/") for n in _provided(member)]


def _provided(member: Member) -> set[str]:
    """The importable names a member's distribution provides: src layout, flat layout, or the
    distribution name with dashes as underscores."""
    names = {member.name.replace("-", "_")}
    src = member.directory / "src"
    base = src if src.is_dir() else member.directory
    for entry in _listdir(base):
        path = base / entry
        if entry.startswith((".", "_")) or entry in {"tests", "test", "docs", "benchmarks"}:
            continue
        if path.is_dir() and entry.isidentifier():
            if (path / "__init__.py").is_file():
                names.add(entry)
            elif base == src:  # a namespace package: name its subpackages
                names.update(
                    f"{entry}.{child}"
                    for child in _listdir(path)
                    if child.isidentifier() and (path / child).is_dir()
                )
        elif entry.endswith(".py") and base == src and entry[:-3].isidentifier():
            names.add(entry[:-3])
    return names


def _listdir(path: Path) -> list[str]:
    try:
        return sorted(os.listdir(path))
    except OSError:
        return []


def _python_files(member: Member, root: Path, member_paths: set[str]) -> list[Path]:
    """The member's .py files, leaving out nested members, caches, venvs and build output."""
    files: list[Path] = []
    for dirpath, dirnames, filenames in os.walk(member.directory):
        folder = Path(dirpath)
        keep = []
        for d in sorted(dirnames):
            if d.startswith(".") or d in _SKIP_DIRS:
                continue
            if (folder / d).relative_to(root).as_posix() in member_paths:
                continue
            keep.append(d)
        dirnames[:] = keep
        files.extend(folder / f for f in sorted(filenames) if f.endswith(".py"))
    return files
