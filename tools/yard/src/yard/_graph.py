"""The member graph: cycles, dependencies and dependents, topological waves, renderings."""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Mapping

from ._errors import WorkspaceError
from ._model import DECLARED_KINDS, Member


class Graph:
    """The internal dependency graph of a workspace's members.

    Edges point from a member to what it depends on. Declared edges (dependencies, extras,
    groups) must form no cycle: a cycle is an error that prints it. Entry-point edges only
    widen what a change affects and take no part in cycles or build order.
    """

    __slots__ = ("_dependents", "_forward", "members")

    def __init__(self, members: Mapping[str, Member]) -> None:
        self.members = members
        self._forward: dict[str, list[str]] = {}
        self._dependents: dict[str, list[str]] = {name: [] for name in members}
        declared: dict[str, list[str]] = {}
        for name, member in members.items():
            edges = member.edges
            targets = sorted({edge.to for edge in edges})
            self._forward[name] = targets
            for target in targets:
                self._dependents[target].append(name)
            if any(edge.kind == "entry-point" for edge in edges):
                declared[name] = sorted({e.to for e in edges if e.kind in DECLARED_KINDS})
            else:
                declared[name] = targets
        if not _acyclic(declared):
            _check_cycles(members)

    def dependencies(self, name: str, *, direct: bool = False) -> list[str]:
        """What ``name`` depends on: directly, or transitively (the default), sorted."""
        return _reach(self._forward, name, direct=direct)

    def dependents(self, name: str, *, direct: bool = False) -> list[str]:
        """What depends on ``name``: directly, or transitively (the default), sorted."""
        return _reach(self._dependents, name, direct=direct)

    def dependent_paths(self, changed: Iterable[str]) -> dict[str, list[str]]:
        """Every member that transitively depends on a changed one, with one shortest path.

        The path runs from the dependent to the changed member, both included, following
        dependents breadth first from all changed members at once.
        """
        parent: dict[str, str | None] = {}
        queue: deque[str] = deque()
        for name in sorted(changed):
            parent[name] = None
            queue.append(name)
        while queue:
            name = queue.popleft()
            for dependent in self._dependents[name]:
                if dependent not in parent:
                    parent[dependent] = name
                    queue.append(dependent)
        paths: dict[str, list[str]] = {}
        for name, up in parent.items():
            if up is None:
                continue
            path = [name]
            node: str | None = up
            while node is not None:
                path.append(node)
                node = parent[node]
            paths[name] = path
        return paths

    def waves(self, names: Iterable[str] | None = None) -> list[list[str]]:
        """A topological order in parallel waves: each wave depends only on earlier ones.

        Only declared edges count; with ``names``, the order of that subset of members.
        """
        selected = set(self.members if names is None else names)
        pending = {
            name: {
                e.to
                for e in self.members[name].edges
                if e.kind in DECLARED_KINDS and e.to in selected
            }
            for name in selected
        }
        waves: list[list[str]] = []
        while pending:
            ready = sorted(name for name, deps in pending.items() if not deps)
            waves.append(ready)
            for name in ready:
                del pending[name]
            for deps in pending.values():
                deps.difference_update(ready)
        return waves

    def focus(self, name: str) -> list[str]:
        """The member, everything it depends on and everything that depends on it."""
        return sorted({name, *self.dependencies(name), *self.dependents(name)})


def _reach(adjacency: Mapping[str, list[str]], start: str, *, direct: bool) -> list[str]:
    if direct:
        return sorted(adjacency[start])
    seen: set[str] = set()
    stack = list(adjacency[start])
    while stack:
        name = stack.pop()
        if name not in seen:
            seen.add(name)
            stack.extend(adjacency[name])
    seen.discard(start)
    return sorted(seen)


def _acyclic(forward: Mapping[str, list[str]]) -> bool:
    """Whether the graph has no cycle: Kahn's walk, which removes members nothing depends on
    until none are left (the quick test; :func:`_check_cycles` finds the cycle to print)."""
    waiting = dict.fromkeys(forward, 0)
    for targets in forward.values():
        for target in targets:
            waiting[target] += 1
    ready = [name for name, count in waiting.items() if not count]
    removed = 0
    while ready:
        removed += 1
        for target in forward[ready.pop()]:
            waiting[target] -= 1
            if not waiting[target]:
                ready.append(target)
    return removed == len(forward)


def _check_cycles(members: Mapping[str, Member]) -> None:
    """Raise WorkspaceError printing the first cycle of declared edges (``a -> b -> a``)."""
    forward = {
        name: sorted({e.to for e in m.edges if e.kind in DECLARED_KINDS})
        for name, m in members.items()
    }
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    for start in sorted(forward):
        if start in state:
            continue
        path: list[str] = [start]
        iterators = [iter(forward[start])]
        state[start] = 1
        while iterators:
            target = next(iterators[-1], None)
            if target is None:
                state[path.pop()] = 2
                iterators.pop()
            elif state.get(target) == 1:
                cycle = [*path[path.index(target) :], target]
                raise WorkspaceError(f"dependency cycle between members: {' -> '.join(cycle)}")
            elif target not in state:
                state[target] = 1
                path.append(target)
                iterators.append(iter(forward[target]))


def render(graph: Graph, fmt: str, names: Iterable[str] | None = None) -> str:
    """The graph (or the subgraph of ``names``) as text, json, dot or mermaid."""
    selected = sorted(graph.members if names is None else names)
    keep = set(selected)
    members = [graph.members[n] for n in selected]
    if fmt == "json":
        import json

        data = {
            "members": [
                {
                    "name": m.name,
                    "version": m.version,
                    "path": m.path,
                    "depends_on": m.depends_on,
                    "edges": [e.as_dict() for e in m.edges],
                }
                for m in members
            ]
        }
        return json.dumps(data, indent=2)
    lines: list[str] = []
    if fmt == "text":
        for m in members:
            lines.append(f"{m.name} {m.version or '(dynamic)'}  {m.path}")
            for e in sorted(m.edges, key=lambda e: (e.to, e.label())):
                if e.to in keep:
                    lines.append(f"  -> {e.to}  ({e.label()})")
    elif fmt == "dot":
        lines.append("digraph workspace {")
        lines.append("  rankdir=LR;")
        for m in members:
            lines.append(f'  "{m.name}";')
        for m in members:
            for e in m.edges:
                if e.to in keep:
                    style = ", style=dashed" if e.kind != "dependency" else ""
                    lines.append(f'  "{m.name}" -> "{e.to}" [label="{e.label()}"{style}];')
        lines.append("}")
    elif fmt == "mermaid":
        ids = {name: f"m{i}" for i, name in enumerate(selected)}
        lines.append("graph LR")
        for m in members:
            lines.append(f'  {ids[m.name]}["{m.name}"]')
        for m in members:
            for e in m.edges:
                if e.to in keep:
                    arrow = "-->" if e.kind == "dependency" else "-.->"
                    lines.append(f"  {ids[m.name]} {arrow}|{e.label()}| {ids[e.to]}")
    else:  # pragma: no cover - the CLI restricts the choices
        raise WorkspaceError(f"unknown graph format {fmt!r}")
    return "\n".join(lines)
