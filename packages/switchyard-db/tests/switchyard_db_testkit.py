"""Helpers of switchyard-db's tests (a module of its own: every package's tests/conftest.py is
named conftest, so importing one by that name finds whichever came first)."""

from __future__ import annotations

import time

import psycopg

from switchyard_db.testing import LocalServer


def wait_replayed(primary: LocalServer, replica: LocalServer, timeout: float = 10.0) -> None:
    """Wait until the replica has replayed everything the primary wrote so far."""
    with psycopg.connect(primary.url(), autocommit=True) as conn:
        lsn = conn.execute("SELECT pg_current_wal_lsn()").fetchone()[0]  # type: ignore[index]
    deadline = time.monotonic() + timeout
    with psycopg.connect(replica.url(), autocommit=True) as conn:
        while True:
            done = conn.execute("SELECT pg_last_wal_replay_lsn() >= %s::pg_lsn", (lsn,)).fetchone()
            if done and done[0]:
                return
            if time.monotonic() > deadline:
                raise AssertionError("the replica did not catch up")
            time.sleep(0.02)
