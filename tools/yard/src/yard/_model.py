"""The value objects of a workspace: members and the edges between them.

They are named tuples: immutable, slotted, and cheap to create at import time (a dataclass
costs the command line several milliseconds of start-up before it does anything).
"""

from __future__ import annotations

from pathlib import Path
from typing import Final, Literal, NamedTuple

EdgeKind = Literal["dependency", "optional", "group", "entry-point"]

DECLARED_KINDS: Final[frozenset[str]] = frozenset({"dependency", "optional", "group"})
"""Edge kinds a pyproject declares as requirements; entry-point edges are inferred."""


class Edge(NamedTuple):
    """One internal dependency of a member on another member.

    ``kind`` says how it is declared: ``dependency`` (``project.dependencies``), ``optional``
    (``project.optional-dependencies``, ``extra`` names the extra), ``group``
    (``dependency-groups``, ``group`` names the group) or ``entry-point`` (the member consumes
    an entry-point group that the target provides, ``entry_point_group`` names it).
    """

    to: str
    kind: EdgeKind
    requirement: str = ""
    extra: str | None = None
    group: str | None = None
    entry_point_group: str | None = None
    marker: str | None = None
    extras: tuple[str, ...] = ()
    source: str | None = None
    """Where a ``[tool.uv.sources]`` entry for the target is declared: ``member``, ``root``."""
    origin: str | None = None
    """Where the edge was read when the pyproject could not say: ``uv.lock`` for a member whose
    dependencies are ``dynamic`` (filled in by a build hook); None for the pyproject."""

    def as_dict(self) -> dict[str, object]:
        """The edge as JSON data, leaving out the fields that do not apply."""
        data: dict[str, object] = {"to": self.to, "kind": self.kind}
        if self.requirement:
            data["requirement"] = self.requirement
        for key, value in (
            ("extra", self.extra),
            ("group", self.group),
            ("entry_point_group", self.entry_point_group),
            ("marker", self.marker),
            ("source", self.source),
            ("origin", self.origin),
        ):
            if value is not None:
                data[key] = value
        if self.extras:
            data["extras"] = list(self.extras)
        return data

    def label(self) -> str:
        """A short description of how the edge is declared, e.g. ``optional[fast]``, and where
        it was read when not in the pyproject (``dependency from uv.lock``)."""
        if self.kind == "optional":
            text = f"optional[{self.extra}]"
        elif self.kind == "group":
            text = f"group:{self.group}"
        elif self.kind == "entry-point":
            text = f"entry-point:{self.entry_point_group}"
        else:
            text = "dependency"
        return f"{text} from {self.origin}" if self.origin else text


class Member(NamedTuple):
    """A workspace member: its normalized name, version and folder relative to the root."""

    name: str
    version: str | None
    path: str
    """The member's folder relative to the workspace root, ``/``-separated (``.`` for the root)."""
    root: str
    """The workspace root folder, absolute (see :attr:`directory`)."""
    edges: tuple[Edge, ...] = ()
    provides: frozenset[str] = frozenset()
    """Entry-point groups this member provides (``console_scripts`` for ``project.scripts``)."""
    consumes: tuple[str, ...] = ()
    """Entry-point groups this member loads plugins from (``[tool.yard] consumes``)."""
    ignore: tuple[str, ...] = ()
    """Globs, relative to the member folder, of files that are not inputs of the member."""
    dynamic: tuple[str, ...] = ()
    """``dependencies`` and/or ``optional-dependencies`` when ``project.dynamic`` lists them
    (their edges are read from uv.lock)."""

    @property
    def directory(self) -> Path:
        """The member's folder, absolute (made when asked for: a thousand paths cost
        start-up time that most commands do not need)."""
        return Path(self.root) if self.path == "." else Path(self.root, self.path)

    @property
    def depends_on(self) -> list[str]:
        """The sorted union of the members this one depends on, through any kind of edge."""
        return sorted({edge.to for edge in self.edges})
