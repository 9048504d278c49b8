"""Migrations per module: plain SQL files in the module, applied in order, recorded.

A module declares its folder of migrations with an entry point::

    [project.entry-points."switchyard.migrations"]
    users = "acme_users.migrations"       # a package holding 0001_create_users.sql, 0002_...

The files are numbered from 1 without gaps (``NNNN_what.sql``). A component's migrations go to
the database whose ``migrations`` setting names it, else to ``main``. Components are applied in
the order of their distributions' dependencies (acme-billing's tables reference acme-users', so
users comes first), then by name.

Each file runs in its own transaction together with its row in ``switchyard_migrations``
(component, version, name, checksum, applied_at): a failed file leaves nothing of itself. A
session advisory lock serializes migrators, so two workers starting at once apply each file
once. An applied file edited afterwards (its checksum changed), or an applied version that no
file has, is reported by ``status`` and ``switchyard doctor`` and stops ``migrate``.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from typing import Any, Final

import psycopg

from switchyard_db._errors import DatabaseError, MigrationError, describe
from switchyard_db._settings import DEFAULT, DatabaseSettings

__all__ = ["Component", "Status", "apply", "components", "status"]

GROUP: Final = "switchyard.migrations"
_FILE: Final = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")
_LOCK_ID: Final = 0x5357_4459  # "SWDY": the advisory lock every migrator takes
_LEDGER: Final = """
CREATE TABLE IF NOT EXISTS switchyard_migrations (
    component  text        NOT NULL,
    version    integer     NOT NULL,
    name       text        NOT NULL,
    checksum   text        NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (component, version)
)
"""


@dataclass(frozen=True, slots=True)
class Migration:
    version: int
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()[:16]


@dataclass(frozen=True, slots=True)
class Component:
    """One module's migrations: its name, distribution and files in order."""

    name: str
    distribution: str | None
    migrations: tuple[Migration, ...]
    requires: frozenset[str] = frozenset()


def _read(name: str, target: str) -> tuple[Migration, ...]:
    from importlib.resources import files

    try:
        folder = files(target)
    except (ModuleNotFoundError, TypeError) as error:
        raise MigrationError(DEFAULT, f"migrations {name}: cannot find {target}: {error}") from None
    found: list[Migration] = []
    for item in folder.iterdir():
        match = _FILE.match(item.name)
        if match is None:
            continue
        found.append(Migration(int(match.group(1)), item.name, item.read_text(encoding="utf-8")))
    found.sort(key=lambda m: m.version)
    versions = [m.version for m in found]
    if versions != list(range(1, len(found) + 1)):
        raise MigrationError(
            DEFAULT,
            f"migrations {name} ({target}): files must be numbered 0001, 0002, ... without gaps, "
            f"found {', '.join(m.name for m in found) or 'none'}",
        )
    return tuple(found)


def components() -> list[Component]:
    """Every installed module's migrations, in the order they apply."""
    from importlib import metadata

    found: dict[str, Component] = {}
    for entry in metadata.entry_points(group=GROUP):
        dist = entry.dist.name if entry.dist is not None else None
        requires: set[str] = set()
        if entry.dist is not None:
            for requirement in entry.dist.requires or ():
                requires.add(re.split(r"[\s<>=!~;\[(]", requirement, maxsplit=1)[0].lower())
        found[entry.name] = Component(
            entry.name, dist, _read(entry.name, entry.value), frozenset(requires)
        )
    return _ordered(found)


def _ordered(found: dict[str, Component]) -> list[Component]:
    by_dist = {(c.distribution or "").lower(): c.name for c in found.values()}
    ordered: list[Component] = []
    done: set[str] = set()

    def visit(name: str, path: tuple[str, ...]) -> None:
        if name in done or name in path:
            return
        component = found[name]
        for dist in sorted(component.requires):
            before = by_dist.get(dist)
            if before is not None and before != name:
                visit(before, (*path, name))
        done.add(name)
        ordered.append(component)

    for name in sorted(found):
        visit(name, ())
    return ordered


def for_database(settings: DatabaseSettings, every: dict[str, DatabaseSettings]) -> list[str]:
    """The components whose migrations go to ``settings``' database."""
    claimed = {c for s in every.values() for c in s.migrations}
    names = [c.name for c in components()]
    if settings.migrations:
        return [n for n in names if n in settings.migrations]
    if settings.name == DEFAULT:
        return [n for n in names if n not in claimed]
    return []


@dataclass(slots=True)
class Status:
    """One component's migrations on one database."""

    component: str
    applied: list[int] = field(default_factory=list)
    pending: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


def _applied(conn: psycopg.Connection[Any], component: str) -> dict[int, tuple[str, str]]:
    rows = conn.execute(
        "SELECT version, name, checksum FROM switchyard_migrations WHERE component = %s",
        (component,),
    ).fetchall()
    return {int(r[0]): (str(r[1]), str(r[2])) for r in rows}


def _check(component: Component, applied: dict[int, tuple[str, str]]) -> Status:
    known = {m.version: m for m in component.migrations}
    state = Status(component.name, applied=sorted(applied))
    for version, (name, checksum) in sorted(applied.items()):
        migration = known.get(version)
        if migration is None:
            state.problems.append(
                f"{component.name} {name} is applied but this code has no migration {version}: "
                "the database is newer than the code"
            )
        elif migration.checksum != checksum:
            state.problems.append(
                f"{component.name} {migration.name} was edited after it was applied "
                f"(checksum {checksum} in the database, {migration.checksum} in the file): "
                "add a new migration instead"
            )
    state.pending = [m.name for m in component.migrations if m.version not in applied]
    return state


def _connect(settings: DatabaseSettings, url: str) -> psycopg.Connection[Any]:
    try:
        return psycopg.connect(url, connect_timeout=max(1, round(settings.connect_timeout)))
    except psycopg.Error as error:
        raise DatabaseError(
            settings.name, f"{settings.where}: cannot connect: {describe(error)}"
        ) from None


def status(settings: DatabaseSettings, url: str, names: list[str]) -> list[Status]:
    """Where each of ``names``' migrations stands on the database."""
    every = {c.name: c for c in components()}
    with _connect(settings, url) as conn:
        exists = conn.execute("SELECT to_regclass('switchyard_migrations')").fetchone()
        result = []
        for name in names:
            applied = _applied(conn, name) if exists and exists[0] else {}
            result.append(_check(every[name], applied))
    return result


def apply(settings: DatabaseSettings, url: str, names: list[str]) -> list[str]:
    """Apply the pending migrations of ``names``, in order; the files applied now.

    Raises MigrationError naming the database, the file and the cause when one fails (that
    file left nothing behind; the files before it stay applied) or when the recorded ones do
    not match the files."""
    every = {c.name: c for c in components()}
    done: list[str] = []
    with _connect(settings, url) as conn:
        conn.autocommit = True
        conn.execute("SELECT pg_advisory_lock(%s)", (_LOCK_ID,))
        try:
            conn.execute(_LEDGER)
            for name in names:
                component = every[name]
                state = _check(component, _applied(conn, name))
                if state.problems:
                    raise MigrationError(settings.name, f"{settings.where}: {state.problems[0]}")
                for migration in component.migrations:
                    if migration.name not in state.pending:
                        continue
                    try:
                        with conn.transaction():
                            conn.execute(migration.sql.encode())
                            conn.execute(
                                "INSERT INTO switchyard_migrations"
                                " (component, version, name, checksum) VALUES (%s, %s, %s, %s)",
                                (name, migration.version, migration.name, migration.checksum),
                            )
                    except psycopg.Error as error:
                        raise MigrationError(
                            settings.name,
                            f"{settings.where}: migration {name} {migration.name} failed, "
                            f"nothing of it was applied: {describe(error)}",
                        ) from None
                    done.append(f"{name} {migration.name}")
        finally:
            conn.execute("SELECT pg_advisory_unlock(%s)", (_LOCK_ID,))
    return done
