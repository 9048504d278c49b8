"""Switchyard's database layer: one bounded PostgreSQL pool per database per process (psycopg 3,
psycopg_pool), an embedded server by default, PgBouncer-safe, read replicas, migrations per
module and query monitoring. Actions reach a database through their context,
``ctx.db("main")``; see docs/databases.md.
"""

from __future__ import annotations

from switchyard_db._cli import migrate
from switchyard_db._embedded import stop_embedded
from switchyard_db._errors import DatabaseError, MigrationError
from switchyard_db._handle import Database, configured, database, use_settings
from switchyard_db._monitor import BUCKETS, fingerprint, snapshot
from switchyard_db._settings import DatabaseSettings, load_databases, redact

__all__ = [
    "BUCKETS",
    "Database",
    "DatabaseError",
    "DatabaseSettings",
    "MigrationError",
    "configured",
    "database",
    "fingerprint",
    "load_databases",
    "migrate",
    "redact",
    "snapshot",
    "stop_embedded",
    "use_settings",
]
