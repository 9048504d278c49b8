"""Reading one pyproject.toml into the plain record yard needs, with file-and-line errors.

A record depends on the file's text only (not on the rest of the workspace), so records can be
cached by content (see ``_snapshot``). It holds plain builtins: str, list, dict, bool, None.
"""

from __future__ import annotations

from typing import Any

from . import _toml
from ._errors import WorkspaceError
from ._names import normalize, requirement_name

Record = dict[str, Any]

DEFAULTS: Record = {
    "project": False,
    "managed": True,
    "name": None,
    "version": None,
    "deps": [],
    "optional": {},
    "groups": {},
    "sources": {},
    "provides": [],
    "consumes": [],
    "ignore": [],
    "allow_unused": [],
    "workspace": None,
    "global_inputs": {},
    "cycles": "warn",
    "dynamic": [],
}
"""Every record field and its value when a pyproject does not set it."""


def compact(record: Record) -> Record:
    """The record without the fields that hold their default (what the cache stores)."""
    return {k: v for k, v in record.items() if v != DEFAULTS[k]}


def expand(stored: Record) -> Record:
    """A record from its compact form."""
    return {**DEFAULTS, **stored}


class _Reader:
    """Typed access to a parsed pyproject, raising errors that point at the line."""

    __slots__ = ("data", "text", "where")

    def __init__(self, data: dict[str, Any], text: str, where: str) -> None:
        self.data = data
        self.text = text
        self.where = where

    def fail(self, needle: str, message: str) -> WorkspaceError:
        return WorkspaceError(f"{self.where}:{_toml.line_of(self.text, needle)}: {message}")

    def table(self, *keys: str) -> dict[str, Any]:
        node: Any = self.data
        for key in keys:
            if not isinstance(node, dict):
                return {}
            node = node.get(key, {})
        if not isinstance(node, dict):
            raise self.fail(keys[-1], f"[{'.'.join(keys)}] must be a table")
        return node

    def strings(self, value: Any, what: str, needle: str) -> list[str]:
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise self.fail(needle, f"{what} must be a list of strings")
        return value


def read(text: str, where: str) -> Record:
    """The record of one pyproject.toml: raises WorkspaceError naming ``where`` and the line."""
    reader = _Reader(_toml.parse(text, where), text, where)
    project = reader.table("project")
    uv = reader.table("tool", "uv")
    yard = reader.table("tool", "yard")
    record: Record = {
        "project": "project" in reader.data,
        "managed": uv.get("managed") is not False,
        "name": None,
        "version": None,
        "deps": [],
        "optional": {},
        "groups": {},
        "sources": _sources(reader),
        "provides": [],
        "consumes": reader.strings(yard.get("consumes", []), "tool.yard.consumes", "consumes"),
        "ignore": reader.strings(yard.get("ignore", []), "tool.yard.ignore", "ignore"),
        "allow_unused": [
            normalize(n)
            for n in reader.strings(
                yard.get("allow-unused", []), "tool.yard.allow-unused", "allow-unused"
            )
        ],
        "workspace": None,
        "global_inputs": _global_inputs(reader),
        "cycles": _cycles(reader, yard),
    }
    if "workspace" in uv:
        workspace = reader.table("tool", "uv", "workspace")
        record["workspace"] = {
            "members": reader.strings(
                workspace.get("members", []), "tool.uv.workspace.members", "members"
            ),
            "exclude": reader.strings(
                workspace.get("exclude", []), "tool.uv.workspace.exclude", "exclude"
            ),
        }
    if record["project"] and record["managed"]:
        _project(reader, project, record)
    return record


def _project(reader: _Reader, project: dict[str, Any], record: Record) -> None:
    name = project.get("name")
    if not isinstance(name, str) or requirement_name(name) != normalize(name):
        raise reader.fail("name", "project.name must be a valid project name")
    record["name"] = normalize(name)
    version = project.get("version")
    record["version"] = version if isinstance(version, str) else None
    deps = reader.strings(project.get("dependencies", []), "project.dependencies", "dependencies")
    record["deps"] = _checked(reader, deps, "project.dependencies")
    record["optional"] = {
        normalize(extra): _checked(
            reader,
            reader.strings(reqs, f"project.optional-dependencies.{extra}", extra),
            f"project.optional-dependencies.{extra}",
        )
        for extra, reqs in reader.table("project", "optional-dependencies").items()
    }
    record["groups"] = {
        group: _checked(reader, reqs, f"dependency-groups.{group}")
        for group, reqs in _dependency_groups(reader).items()
    }
    provides = sorted(reader.table("project", "entry-points"))
    if reader.table("project", "scripts"):
        provides.append("console_scripts")
    if reader.table("project", "gui-scripts"):
        provides.append("gui_scripts")
    record["provides"] = provides
    dynamic = reader.strings(project.get("dynamic", []), "project.dynamic", "dynamic")
    record["dynamic"] = sorted(set(dynamic) & DYNAMIC_EDGES)


def _checked(reader: _Reader, requirements: list[str], where: str) -> list[tuple[str, str]]:
    """Each requirement with the normalized name it starts with (the rest of a requirement is
    parsed with ``packaging`` when it names a member)."""
    out = []
    for raw in requirements:
        name = requirement_name(raw)
        if name is None:
            raise reader.fail(raw, f"invalid requirement {raw!r} in {where}")
        out.append((raw, name))
    return out


def _sources(reader: _Reader) -> dict[str, list[dict[str, Any]]]:
    """``[tool.uv.sources]`` by normalized name, each as a list of source tables."""
    sources: dict[str, list[dict[str, Any]]] = {}
    for key, value in reader.table("tool", "uv", "sources").items():
        entries = value if isinstance(value, list) else [value]
        if not all(isinstance(e, dict) for e in entries):
            raise reader.fail(key, f"tool.uv.sources.{key} must be a table or a list of tables")
        sources[normalize(key)] = entries
    return sources


DYNAMIC_EDGES = frozenset({"dependencies", "optional-dependencies"})
"""The ``project.dynamic`` fields that hold internal edges (groups cannot be dynamic)."""

CYCLES = ("warn", "error", "allow")
"""What ``yard check`` does with a dependency cycle (``[tool.yard] cycles``): warn (the
default), fail, or say nothing."""


def _cycles(reader: _Reader, yard: dict[str, Any]) -> str:
    value = yard.get("cycles", "warn")
    if value not in CYCLES:
        raise reader.fail("cycles", 'tool.yard.cycles must be "warn", "error" or "allow"')
    return str(value)


def _global_inputs(reader: _Reader) -> dict[str, list[str] | None]:
    found: dict[str, list[str] | None] = {}
    for pattern, target in reader.table("tool", "yard", "global-inputs").items():
        if target in ("all", "*"):
            found[pattern] = None
        elif isinstance(target, list) and all(isinstance(t, str) for t in target):
            found[pattern] = [normalize(t) for t in target]
        else:
            raise reader.fail(
                pattern,
                f'tool.yard.global-inputs.{pattern!r} must be "all" or a list of member names',
            )
    return found


def _dependency_groups(reader: _Reader) -> dict[str, list[str]]:
    """PEP 735 groups (and uv's legacy ``tool.uv.dev-dependencies``), include-group expanded."""
    declared: dict[str, list[Any]] = {}
    for group, entries in reader.table("dependency-groups").items():
        if not isinstance(entries, list):
            raise reader.fail(group, f"dependency-groups.{group} must be a list")
        declared[normalize(group)] = entries
    legacy = reader.table("tool", "uv").get("dev-dependencies")
    if legacy is not None:
        declared["dev"] = declared.get("dev", []) + reader.strings(
            legacy, "tool.uv.dev-dependencies", "dev-dependencies"
        )

    resolved: dict[str, list[str]] = {}

    def expand(group: str, stack: tuple[str, ...]) -> list[str]:
        if group in resolved:
            return resolved[group]
        if group in stack:
            cycle = " -> ".join((*stack[stack.index(group) :], group))
            raise reader.fail("include-group", f"dependency-groups include each other: {cycle}")
        out: list[str] = []
        for entry in declared[group]:
            if isinstance(entry, str):
                out.append(entry)
            elif isinstance(entry, dict) and isinstance(entry.get("include-group"), str):
                included = normalize(entry["include-group"])
                if included not in declared:
                    raise reader.fail(
                        entry["include-group"],
                        f"dependency-groups.{group} includes unknown group "
                        f"{entry['include-group']!r}",
                    )
                out.extend(expand(included, (*stack, group)))
            else:
                raise reader.fail(
                    group,
                    f"dependency-groups.{group}: entries must be requirement strings "
                    'or {include-group = "name"}',
                )
        resolved[group] = out
        return out

    return {group: expand(group, ()) for group in declared}
