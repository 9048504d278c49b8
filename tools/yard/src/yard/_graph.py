"""The member graph: cycles, dependencies and dependents, topological waves, renderings."""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Mapping

from ._errors import WorkspaceError
from ._model import DECLARED_KINDS, Member


class Graph:
    """The internal dependency graph of a workspace's members.

    Edges point from a member to what it depends on. Declared edges (dependencies, extras,
    groups) may form cycles, as uv allows: a core package whose ``all`` extra lists the plugins
    that depend on it, a package whose test group uses a test-utils member that depends on the
    package. Each cycle is a strongly connected component (:attr:`cycles`): what a change
    affects runs through it, and :meth:`waves` puts its members in one wave. Entry-point edges
    only widen what a change affects and take no part in cycles or order.
    """

    __slots__ = ("_declared", "_dependents", "_forward", "cycles", "members")

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
        self._declared = declared
        self.cycles: list[list[str]] = [] if _acyclic(declared) else find_cycles(declared)
        """The members of each dependency cycle (strongly connected component of declared
        edges with more than one member), each sorted, sorted by their first member."""

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
        """A topological order in parallel waves: each wave depends only on earlier ones and
        on itself (the members of a cycle are in one wave, as they can only be built and
        installed together).

        Only declared edges count; with ``names``, the order of that subset of members.
        """
        selected = set(self.members if names is None else names)
        forward = {
            name: [d for d in self._declared[name] if d in selected] for name in sorted(selected)
        }
        return [sorted(m for group in wave for m in group) for wave in component_waves(forward)]

    def cycles_among(self, names: Iterable[str]) -> list[list[str]]:
        """The dependency cycles within ``names`` alone (part of a cycle may be none)."""
        if not self.cycles:
            return []
        selected = set(names)
        return find_cycles({n: [d for d in self._declared[n] if d in selected] for n in selected})

    def cycle_path(self, members: Iterable[str]) -> list[tuple[str, str]]:
        """One shortest way round a cycle, from its first member back to it: each step is
        (member, the label of the edge that leaves it)."""
        inside = set(members)
        start = min(inside)
        parent: dict[str, str] = {}
        queue = deque([start])
        while queue:
            name = queue.popleft()
            for target in self._declared[name]:
                if target == start:
                    path = [name]
                    while path[-1] != start:
                        path.append(parent[path[-1]])
                    path.reverse()
                    ring = [*path, start]
                    return [(m, self._label(m, ring[i + 1])) for i, m in enumerate(path)]
                if target in inside and target not in parent:
                    parent[target] = name
                    queue.append(target)
        raise WorkspaceError(f"internal error: {sorted(inside)} is not a cycle")  # pragma: no cover

    def _label(self, name: str, target: str) -> str:
        labels = sorted(
            {
                e.label()
                for e in self.members[name].edges
                if e.to == target and e.kind in DECLARED_KINDS
            }
        )
        return ", ".join(labels)

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
    until none are left (the quick test; :func:`find_cycles` finds the cycles when it fails)."""
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


def find_cycles(forward: Mapping[str, Iterable[str]]) -> list[list[str]]:
    """The strongly connected components of more than one member, each sorted, sorted."""
    return sorted(c for c in components(forward) if len(c) > 1)


def components(forward: Mapping[str, Iterable[str]]) -> list[list[str]]:
    """The strongly connected components of a graph (Tarjan's, without recursion), each
    sorted, dependencies first: a component comes after every component it reaches.

    ``forward`` maps each node to the nodes it points to (its dependencies), all of them keys.
    """
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for start in sorted(forward):
        if start in index:
            continue
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        work = [(start, iter(sorted(forward[start])))]
        while work:
            node, targets = work[-1]
            target = next(targets, None)
            if target is not None:
                if target not in index:
                    index[target] = low[target] = len(index)
                    stack.append(target)
                    on_stack.add(target)
                    work.append((target, iter(sorted(forward[target]))))
                elif target in on_stack:
                    low[node] = min(low[node], index[target])
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index[node]:
                component: list[str] = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                found.append(sorted(component))
    return found


def component_waves(forward: Mapping[str, Iterable[str]]) -> list[list[list[str]]]:
    """The strongly connected components in waves: each wave's components depend only on
    components of earlier waves (a graph without cycles: one member per component)."""
    groups = components(forward)
    where = {name: i for i, group in enumerate(groups) for name in group}
    pending = {
        i: {where[d] for name in group for d in forward[name]} - {i}
        for i, group in enumerate(groups)
    }
    waves: list[list[list[str]]] = []
    while pending:
        ready = sorted((i for i, deps in pending.items() if not deps), key=lambda i: groups[i])
        waves.append([groups[i] for i in ready])
        for i in ready:
            del pending[i]
        for deps in pending.values():
            deps.difference_update(ready)
    return waves


def render(graph: Graph, fmt: str, names: Iterable[str] | None = None) -> str:
    """The graph (or the subgraph of ``names``) as text, json, dot or mermaid; cycles among
    the members shown are listed (text, json) or boxed (dot, mermaid)."""
    selected = sorted(graph.members if names is None else names)
    keep = set(selected)
    members = [graph.members[n] for n in selected]
    loops = graph.cycles_among(selected)
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
            ],
            "cycles": loops,
        }
        return json.dumps(data, indent=2)
    lines: list[str] = []
    if fmt == "text":
        for m in members:
            lines.append(f"{m.name} {m.version or '(dynamic)'}  {m.path}")
            for e in sorted(m.edges, key=lambda e: (e.to, e.label())):
                if e.to in keep:
                    lines.append(f"  -> {e.to}  ({e.label()})")
        for loop in loops:
            steps = graph.cycle_path(loop)
            way = " ".join(f"{name} -[{label}]->" for name, label in steps)
            lines.append(f"cycle of {len(loop)}: {' '.join(loop)}")
            lines.append(f"  e.g. {way} {steps[0][0]}")
    elif fmt == "dot":
        lines.append("digraph workspace {")
        lines.append("  rankdir=LR;")
        for m in members:
            lines.append(f'  "{m.name}";')
        for i, loop in enumerate(loops, 1):
            inner = " ".join(f'"{name}";' for name in loop)
            lines.append(f'  subgraph "cluster_cycle_{i}" {{ label="cycle"; color=red; {inner} }}')
        looped = {name: i for i, loop in enumerate(loops) for name in loop}
        for m in members:
            for e in m.edges:
                if e.to in keep:
                    style = ", style=dashed" if e.kind != "dependency" else ""
                    if e.kind in DECLARED_KINDS and looped.get(m.name, -1) == looped.get(e.to):
                        style += ", color=red"
                    lines.append(f'  "{m.name}" -> "{e.to}" [label="{e.label()}"{style}];')
        lines.append("}")
    elif fmt == "mermaid":
        ids = {name: f"m{i}" for i, name in enumerate(selected)}
        lines.append("graph LR")
        for m in members:
            lines.append(f'  {ids[m.name]}["{m.name}"]')
        for i, loop in enumerate(loops, 1):
            lines.append(f"  subgraph cycle{i} [cycle]")
            lines.extend(f"    {ids[name]}" for name in loop)
            lines.append("  end")
        for m in members:
            for e in m.edges:
                if e.to in keep:
                    arrow = "-->" if e.kind == "dependency" else "-.->"
                    lines.append(f"  {ids[m.name]} {arrow}|{e.label()}| {ids[e.to]}")
    else:  # pragma: no cover - the CLI restricts the choices
        raise WorkspaceError(f"unknown graph format {fmt!r}")
    return "\n".join(lines)
