"""yard: the uv workspace graph, what a git change affects and why, and an import check.

yard works on any uv workspace and imports nothing of the project it reads. The command line
(``yard``) is the main interface; this module exposes the same model for scripts and for the
build cache that builds on it. Names are imported on first use, so that the command line
starts without loading what a command does not need.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._affected import Affected, compute_affected
    from ._check import Finding, check
    from ._errors import GitError, WorkspaceError, YardError
    from ._graph import Graph
    from ._model import Edge, Member
    from ._names import normalize
    from ._workspace import Config, Workspace, find_root, load_workspace

__all__ = [
    "Affected",
    "Config",
    "Edge",
    "Finding",
    "GitError",
    "Graph",
    "Member",
    "Workspace",
    "WorkspaceError",
    "YardError",
    "check",
    "compute_affected",
    "find_root",
    "load_workspace",
    "normalize",
]

_WHERE = {
    "Affected": "_affected",
    "compute_affected": "_affected",
    "Finding": "_check",
    "check": "_check",
    "GitError": "_errors",
    "WorkspaceError": "_errors",
    "YardError": "_errors",
    "Graph": "_graph",
    "Edge": "_model",
    "Member": "_model",
    "normalize": "_names",
    "Config": "_workspace",
    "Workspace": "_workspace",
    "find_root": "_workspace",
    "load_workspace": "_workspace",
}


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'yard' has no attribute {name!r}")
    value = getattr(import_module(f"yard.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
