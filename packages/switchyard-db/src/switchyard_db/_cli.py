"""``switchyard db migrate|status|stop-embedded``, and the check ``switchyard doctor`` runs.

Loaded by the ``switchyard`` command through the entry-point groups ``switchyard.commands`` and
``switchyard.doctor``; errors are the core CLI's one line (DatabaseError names the database).
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from switchyard_db._handle import configured
from switchyard_db._migrate import apply, for_database, status
from switchyard_db._settings import DatabaseSettings

__all__ = ["doctor", "migrate", "register"]


def _selected(name: str | None) -> list[DatabaseSettings]:
    every = configured()
    if name is None:
        return [s for s in every.values() if for_database(s, every)]
    if name not in every:
        from switchyard_db._handle import settings_of

        settings_of(name)  # raises the error that lists the known ones
    return [every[name]]


def _url(settings: DatabaseSettings) -> str:
    from switchyard_db._pool import primary_url

    return primary_url(settings)


def _migrate(args: argparse.Namespace) -> int:
    every = configured()
    for settings in _selected(args.database):
        names = for_database(settings, every)
        done = apply(settings, _url(settings), names)
        summary = ", ".join(done) if done else "nothing to apply"
        print(f"{settings.where}: {summary}")
    return 0


def _status(args: argparse.Namespace) -> int:
    every = configured()
    report: list[dict[str, Any]] = []
    bad = False
    for settings in _selected(args.database):
        for state in status(settings, _url(settings), for_database(settings, every)):
            bad = bad or bool(state.pending or state.problems)
            report.append({"database": settings.name, **_as_dict(state)})
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        for row in report:
            applied = row["applied"][-1] if row["applied"] else 0
            pending = f", pending: {', '.join(row['pending'])}" if row["pending"] else ""
            print(f"{row['database']}  {row['component']:<16} at {applied}{pending}")
            for problem in row["problems"]:
                print(f"  problem: {problem}")
    return 1 if bad else 0


def _as_dict(state: Any) -> dict[str, Any]:
    return {
        "component": state.component,
        "applied": state.applied,
        "pending": state.pending,
        "problems": state.problems,
    }


def _stop_embedded(args: argparse.Namespace) -> int:
    from pathlib import Path

    from switchyard import load_config

    from switchyard_db._embedded import stop_embedded

    root = load_config().root or Path.cwd()
    print("stopped" if stop_embedded(root) else "the embedded PostgreSQL was not running")
    return 0


def register(commands: Any) -> None:
    """Add ``switchyard db ...`` to the switchyard command line."""
    db = commands.add_parser("db", help="database migrations and the embedded PostgreSQL")
    sub = db.add_subparsers(dest="db_command", metavar="SUBCOMMAND")
    migrate = sub.add_parser("migrate", help="apply pending migrations, in order")
    migrate.add_argument("--database", metavar="NAME", help="only this database")
    migrate.set_defaults(func=_migrate)
    show = sub.add_parser("status", help="applied and pending migrations (exit 1 if any pend)")
    show.add_argument("--database", metavar="NAME", help="only this database")
    show.add_argument("--json", action="store_true", help="print JSON")
    show.set_defaults(func=_status)
    stop = sub.add_parser("stop-embedded", help="stop the project's embedded PostgreSQL")
    stop.set_defaults(func=_stop_embedded)


def doctor() -> list[str]:
    """Problems with the databases' migrations: pending ones (where nothing applies them on
    open), edited or unknown applied ones, a database that cannot be reached."""
    from switchyard import SwitchyardError

    from switchyard_db._embedded import embedded_server

    problems: list[str] = []
    every = configured()
    for settings in every.values():
        names = for_database(settings, every)
        if not names:
            continue
        if settings.embedded:
            from pathlib import Path

            if embedded_server(settings.root or Path.cwd()).pid() is None:
                continue  # not started yet: it migrates when first opened
        try:
            states = status(settings, _url(settings), names)
        except SwitchyardError as error:
            problems.append(str(error))
            continue
        for state in states:
            problems.extend(f"{settings.where}: {p}" for p in state.problems)
            if state.pending and not settings.migrates_on_open:
                problems.append(
                    f"{settings.where}: {len(state.pending)} migration(s) of {state.component} "
                    f"pending ({', '.join(state.pending)}): run `switchyard db migrate`"
                )
    return problems


def migrate(database: str = "main") -> list[str]:
    """Apply the pending migrations of ``database`` (its components, in order); the files
    applied now, as ``component file``."""
    from switchyard_db._handle import settings_of

    settings = settings_of(database)
    return apply(settings, _url(settings), for_database(settings, configured()))
