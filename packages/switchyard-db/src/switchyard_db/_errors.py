"""Database errors: one line that names the database (never its password) and what went wrong."""

from __future__ import annotations

from switchyard import SwitchyardError

__all__ = ["DatabaseError", "MigrationError", "describe"]


class DatabaseError(SwitchyardError):
    """A database cannot be used: unreachable, refused credentials, no free connection in time,
    a bad configuration. ``database`` names it."""

    def __init__(self, database: str, message: str) -> None:
        super().__init__(message)
        self.database = database


class MigrationError(DatabaseError):
    """A migration failed (nothing of it was applied) or the applied ones do not match the
    files (edited after being applied, or unknown to this code)."""


def describe(error: BaseException) -> str:
    """A driver error as one line: its first line, without the connection string libpq may
    echo (it can hold a password)."""
    text = str(error).strip().splitlines()
    first = text[0] if text else type(error).__name__
    if "password=" in first:
        first = first.split("password=", 1)[0] + "password=***"
    return first.removeprefix("connection failed: ")
