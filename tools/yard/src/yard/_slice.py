"""``yard slice``: the wheels a consumer needs to serve a chosen set of plugins, and no others.

Plugins are found in the members' pyproject files (``[project.entry-points."<group>"]``), so
nothing is imported or installed to choose them. The slice is the consumer, the members
providing the chosen entry points, and the internal run-time dependencies of both; yard builds
(or takes from the cache) exactly those wheels, writes the consumer's manifest for the plugins
the slice ships (when the workspace declares ``[tool.yard.manifest]``), and a constraints file
with the third-party versions uv.lock pins.
"""

from __future__ import annotations

import fnmatch
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, NamedTuple

from . import _toml
from ._errors import WorkspaceError, YardError
from ._keys import runtime_closure
from ._manifests import root_table
from ._workspace import Workspace


class Selection(NamedTuple):
    """What a slice holds."""

    group: str
    plugins: tuple[str, ...]
    """Members providing a chosen entry point."""
    members: tuple[str, ...]
    """The consumer, the plugins and their internal run-time dependencies, sorted."""
    entry_points: tuple[str, ...]
    """Every entry point of ``group`` that the slice's members provide (what it serves)."""
    chosen: tuple[str, ...]
    """The entry points the selection named."""

    def as_dict(self) -> dict[str, Any]:
        return {
            "group": self.group,
            "plugins": list(self.plugins),
            "members": list(self.members),
            "entry_points": list(self.entry_points),
            "chosen": list(self.chosen),
        }


def consumer_group(workspace: Workspace, consumer: str, preferred: str | None) -> str:
    """The entry-point group the consumer loads plugins from."""
    member = workspace.member(consumer)
    if not member.consumes:
        raise YardError(
            f"{member.name} consumes no entry-point group; declare it in its pyproject: "
            '[tool.yard] consumes = ["<group>"]'
        )
    if preferred is not None and preferred in member.consumes:
        return preferred
    if len(member.consumes) == 1:
        return member.consumes[0]
    raise YardError(
        f"{member.name} consumes several groups ({', '.join(member.consumes)}); "
        "name the one to slice in [tool.yard.manifest] group"
    )


def routing(root: Path) -> tuple[list[tuple[str, str]], str | None] | None:
    """The routing table ``[tool.yard.slice]`` points at: (glob, queue) rules, default queue."""
    table, text = root_table(root)
    config = table.get("slice")
    if config is None:
        return None
    if not isinstance(config, dict):
        raise WorkspaceError(
            f"pyproject.toml:{_toml.line_of(text, 'slice')}: tool.yard.slice must be a table"
        )
    data = _toml.parse(text, "pyproject.toml")

    def lookup(key: str) -> Any:
        dotted = config.get(key)
        if dotted is None:
            return None
        if not isinstance(dotted, str):
            raise WorkspaceError(
                f"pyproject.toml:{_toml.line_of(text, key)}: tool.yard.slice.{key} must be a "
                'dotted key of this file, e.g. "tool.myapp.routing"'
            )
        node: Any = data
        for part in dotted.split("."):
            node = node.get(part) if isinstance(node, dict) else None
        return node

    rules = lookup("routing")
    if rules is not None and not (
        isinstance(rules, dict) and all(isinstance(v, str) for v in rules.values())
    ):
        raise WorkspaceError(
            f"pyproject.toml:{_toml.line_of(text, 'routing')}: tool.yard.slice.routing must "
            "name a table of glob = queue strings"
        )
    default = lookup("default-queue")
    return list((rules or {}).items()), default if isinstance(default, str) else None


def route(name: str, rules: Sequence[tuple[str, str]], default: str | None) -> str | None:
    for pattern, queue in rules:
        if fnmatch.fnmatchcase(name, pattern):
            return queue
    return default


def select(
    workspace: Workspace,
    *,
    consumer: str,
    group: str,
    providers: Mapping[str, Mapping[str, str]],
    include: Sequence[str],
    queues: Sequence[str],
) -> Selection:
    """The slice for entry points matching ``include`` globs or routed to ``queues``."""
    if not include and not queues:
        raise YardError("choose what the slice serves: --include GLOB[,GLOB] and/or --queue NAME")
    everything = {ep: member for member, eps in providers.items() for ep in eps}
    chosen: set[str] = set()
    for pattern in include:
        hits = {ep for ep in everything if fnmatch.fnmatchcase(ep, pattern)}
        if not hits:
            known = ", ".join(sorted(everything)[:8]) or "none"
            more = ", ..." if len(everything) > 8 else ""
            raise YardError(
                f"--include {pattern!r} matches no {group} entry point (known: {known}{more})"
            )
        chosen |= hits
    if queues:
        table = routing(workspace.root)
        if table is None:
            raise YardError(
                "--queue needs a routing table: declare [tool.yard.slice] routing = "
                '"<dotted key of a glob = queue table>" in the root pyproject'
            )
        rules, default = table
        for queue in queues:
            hits = {ep for ep in everything if route(ep, rules, default) == queue}
            if not hits:
                names = sorted({q for _, q in rules} | ({default} if default else set()))
                raise YardError(
                    f"--queue {queue!r}: no {group} entry point is routed there "
                    f"(queues: {', '.join(names) or 'none'})"
                )
            chosen |= hits
    plugins = sorted({everything[ep] for ep in chosen})
    members = sorted(runtime_closure(workspace, [workspace.member(consumer).name, *plugins]))
    served = sorted(ep for m in members for ep in providers.get(m, {}))
    return Selection(group, tuple(plugins), tuple(members), tuple(served), tuple(sorted(chosen)))


def split_globs(values: Sequence[str] | None) -> list[str]:
    """``--include 'a.*,b.*' --include c.x`` -> ``['a.*', 'b.*', 'c.x']``."""
    out: list[str] = []
    for value in values or ():
        out.extend(part.strip() for part in value.split(",") if part.strip())
    return out


def write_slice_files(
    out: Path, selection: Selection, wheels: Sequence[Path], constraints: str, manifest: Path | None
) -> dict[str, Any]:
    """The constraints file and ``slice.json`` next to the wheels; returns the description."""
    (out / "constraints.txt").write_text(constraints, encoding="utf-8")
    data: dict[str, Any] = {
        **selection.as_dict(),
        "wheels": sorted(p.name for p in wheels),
        "manifest": manifest.name if manifest else None,
        "constraints": "constraints.txt",
        "install": f"uv pip install {out}/*.whl -c {out}/constraints.txt",
    }
    (out / "slice.json").write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    return data
