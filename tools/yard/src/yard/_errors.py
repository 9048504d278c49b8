"""The one error type yard raises for problems a person must fix."""

from __future__ import annotations

from typing import Final

EXIT_FINDINGS: Final = 1
"""Exit status when a check found problems (``yard check``)."""
EXIT_ERROR: Final = 2
"""Exit status for a usage, configuration or repository error."""


class YardError(Exception):
    """A problem with the workspace, the repository or the command line.

    The message is one line saying what is wrong, where, and what to do next; the command-line
    interface prints it as ``yard: error: <message>`` and exits with :data:`EXIT_ERROR`.
    """


class WorkspaceError(YardError):
    """The workspace cannot be read: a missing or malformed pyproject, a bad member glob."""


class GitError(YardError):
    """Git cannot answer: not a repository, an unknown ref, a missing merge base."""
