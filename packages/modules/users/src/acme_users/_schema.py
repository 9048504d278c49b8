"""Where the database lives, how to open it, and ordered schema migrations.

Every component that keeps tables in the acme database (users, and billing on top of it)
records its applied steps in one ``schema_migrations`` table, keyed by component and version.
"""

from __future__ import annotations

import os
import sqlite3
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Final

DB_ENV: Final = "ACME_USERS_DB"


class SchemaError(RuntimeError):
    """The database's schema cannot be brought to what this code expects."""


@dataclass(frozen=True, slots=True)
class Migration:
    """One schema step: applied once, in version order, inside its own transaction."""

    version: int
    name: str
    statements: tuple[str, ...]


def default_db_path() -> Path:
    return Path(tempfile.gettempdir()) / "acme" / "users.sqlite3"


def resolve_db_path(explicit: str | Path | None = None) -> Path:
    """The given path, else ``$ACME_USERS_DB``, else ``<tempdir>/acme/users.sqlite3``."""
    if explicit is not None:
        return Path(explicit)
    from_env = os.environ.get(DB_ENV)
    return Path(from_env) if from_env else default_db_path()


def connect(db_path: str | Path | None = None) -> sqlite3.Connection:
    """Open the database in autocommit mode (transactions are explicit), foreign keys on."""
    path = resolve_db_path(db_path)
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(path, timeout=10.0, isolation_level=None)
    conn.row_factory = sqlite3.Row
    conn.execute("PRAGMA foreign_keys = ON")
    conn.execute("PRAGMA journal_mode = WAL")
    return conn


_LEDGER: Final = """
CREATE TABLE IF NOT EXISTS schema_migrations (
    component  TEXT    NOT NULL,
    version    INTEGER NOT NULL,
    name       TEXT    NOT NULL,
    applied_at TEXT    NOT NULL,
    PRIMARY KEY (component, version)
)
"""


def _check_order(component: str, steps: Sequence[Migration]) -> None:
    expected = list(range(1, len(steps) + 1))
    if [step.version for step in steps] != expected:
        raise SchemaError(f"{component} migrations must be numbered 1..{len(steps)} in order")


def applied_versions(conn: sqlite3.Connection, component: str) -> list[int]:
    conn.execute(_LEDGER)
    rows = conn.execute(
        "SELECT version FROM schema_migrations WHERE component = ? ORDER BY version", (component,)
    )
    return [int(row[0]) for row in rows]


def apply_migrations(
    conn: sqlite3.Connection, component: str, steps: Sequence[Migration]
) -> list[int]:
    """Apply the steps not yet applied, in order; return the versions applied now.

    Each step runs in a ``BEGIN IMMEDIATE`` transaction that re-reads the ledger first, so two
    processes migrating at once apply every step exactly once. A database newer than the code
    (a version this code does not know) is refused rather than silently used.
    """
    _check_order(component, steps)
    if applied_versions(conn, component) == [step.version for step in steps]:
        return []  # the common case: one read, no write lock
    newly: list[int] = []
    for step in steps:
        conn.execute("BEGIN IMMEDIATE")
        try:
            done = applied_versions(conn, component)
            if done and done[-1] > len(steps):
                raise SchemaError(
                    f"the database's {component} schema is at version {done[-1]}, newer than "
                    f"this code's {len(steps)}: upgrade the code before using this database"
                )
            if step.version not in done:
                for statement in step.statements:
                    conn.execute(statement)
                conn.execute(
                    "INSERT INTO schema_migrations (component, version, name, applied_at)"
                    " VALUES (?, ?, ?, ?)",
                    (component, step.version, step.name, datetime.now(UTC).isoformat()),
                )
                newly.append(step.version)
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")
    return newly


USERS_MIGRATIONS: Final = (
    Migration(
        1,
        "create users",
        (
            """CREATE TABLE users (
                id           INTEGER PRIMARY KEY AUTOINCREMENT,
                email        TEXT NOT NULL UNIQUE COLLATE NOCASE,
                display_name TEXT NOT NULL,
                created_at   TEXT NOT NULL,
                updated_at   TEXT NOT NULL
            )""",
        ),
    ),
    Migration(
        2,
        "profile locale and timezone",
        (
            "ALTER TABLE users ADD COLUMN locale TEXT NOT NULL DEFAULT 'en'",
            "ALTER TABLE users ADD COLUMN timezone TEXT NOT NULL DEFAULT 'UTC'",
        ),
    ),
    Migration(
        3,
        "profile bio, index on creation time",
        (
            "ALTER TABLE users ADD COLUMN bio TEXT NOT NULL DEFAULT ''",
            "CREATE INDEX users_created_at ON users (created_at, id)",
        ),
    ),
)
