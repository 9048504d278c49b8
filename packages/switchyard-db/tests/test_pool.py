"""Pools on real servers: bounded whatever the concurrency, behind PgBouncer in transaction
mode, replicas in turn, and errors as one line naming the database."""

from __future__ import annotations

import asyncio
import logging
import threading
import time

import psycopg
import pytest
from switchyard import Context, HandlerError, action, call_action
from switchyard.testing import make_registry, use_registry
from switchyard_db_testkit import wait_replayed

import switchyard_db
from switchyard_db import DatabaseError, DatabaseSettings
from switchyard_db.testing import free_port, fresh_database, temporary_server, use_databases


class Peak:
    """The most server connections of ``dbname`` seen while the block ran (sampled)."""

    def __init__(self, url: str, dbname: str) -> None:
        self.url, self.dbname, self.most = url, dbname, 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)

    def _watch(self) -> None:
        with psycopg.connect(self.url, autocommit=True) as conn:
            while not self._stop.is_set():
                row = conn.execute(
                    "SELECT count(*) FROM pg_stat_activity"
                    " WHERE datname = %s AND backend_type = 'client backend'"
                    " AND pid <> pg_backend_pid()",
                    (self.dbname,),
                ).fetchone()
                self.most = max(self.most, int(row[0]) if row else 0)
                time.sleep(0.005)

    def __enter__(self) -> Peak:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def dbname(settings: DatabaseSettings) -> str:
    return psycopg.conninfo.conninfo_to_dict(settings.url or "")["dbname"]  # type: ignore[return-value]


def test_sync_pool_never_opens_more_than_pool_size_however_many_threads(pg):
    with fresh_database(pg, migrate=False, pool_size=4) as settings:
        db = switchyard_db.database("main")

        def job() -> None:
            for _ in range(10):
                with db.connection() as conn:
                    conn.execute("SELECT pg_sleep(0.002)")

        with Peak(pg.url(), dbname(settings)) as peak:
            threads = [threading.Thread(target=job) for _ in range(64)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
        stats = [p for p in switchyard_db.snapshot()["pools"] if p["database"] == "main"]
    assert 1 <= peak.most <= 4
    assert stats[0]["requests"] == 640
    assert stats[0]["size"] <= 4


def test_async_pool_never_opens_more_than_pool_size_however_many_tasks(pg):
    with fresh_database(pg, migrate=False, pool_size=4) as settings:
        db = switchyard_db.database("main")

        async def job() -> None:
            for _ in range(10):
                async with db.aconnection() as conn:
                    await conn.execute("SELECT pg_sleep(0.002)")

        async def main() -> None:
            await asyncio.gather(*(job() for _ in range(64)))
            await switchyard_db_close()

        with Peak(pg.url(), dbname(settings)) as peak:
            asyncio.run(main())
    assert 1 <= peak.most <= 4


async def switchyard_db_close() -> None:
    from switchyard._resource import aclose_resources

    await aclose_resources()


def test_a_transaction_that_raises_leaves_nothing_behind(pg):
    @action("t.half_write")
    def half_write(data: Empty, ctx: Context) -> Empty:
        with ctx.db().connection() as conn:
            conn.execute("INSERT INTO notes VALUES ('first half')")
            raise RuntimeError("the second half failed")

    with fresh_database(pg, migrate=False) as settings, use_registry(make_registry(half_write)):
        with psycopg.connect(settings.url or "", autocommit=True) as conn:
            conn.execute("CREATE TABLE notes (text text)")
        with pytest.raises(HandlerError, match="the second half failed"):
            call_action("t.half_write", {})
        with psycopg.connect(settings.url or "") as conn:
            assert conn.execute("SELECT count(*) FROM notes").fetchone() == (0,)


from pydantic import BaseModel  # noqa: E402


class Empty(BaseModel):
    pass


def test_behind_pgbouncer_in_transaction_mode_with_many_clients(pg, pgbouncer):
    """PgBouncer gives each transaction any of its 2 server connections: a statement prepared
    on one is unknown on the next, so the pool must never prepare server-side."""
    with fresh_database(pg, migrate=False, pool_size=8) as settings:
        url = pgbouncer.url(dbname(settings))
        through = DatabaseSettings(name="main", url=url, pool_size=8, pgbouncer=True)
        errors: list[BaseException] = []
        with use_databases({"main": through}):
            db = switchyard_db.database("main")

            def job(n: int) -> None:
                try:
                    for i in range(30):
                        with db.connection() as conn:
                            row = conn.execute("SELECT %s::int + %s::int", (n, i)).fetchone()
                            assert row == (n + i,)
                            timeout = conn.execute("SHOW statement_timeout").fetchone()
                            assert timeout == ("30s",)
                except BaseException as error:
                    errors.append(error)

            threads = [threading.Thread(target=job, args=(n,)) for n in range(16)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
    assert errors == []


def test_reads_go_round_robin_over_healthy_replicas_and_see_own_writes(pg, replica):
    with fresh_database(pg, migrate=False) as settings:
        with psycopg.connect(settings.url or "", autocommit=True) as conn:
            conn.execute("CREATE TABLE seen (n int)")
        wait_replayed(pg, replica)
        name = dbname(settings)
        dead = f"postgresql://postgres@127.0.0.1:{free_port()}/{name}"
        spread = DatabaseSettings(
            name="main",
            url=settings.url,
            replicas=(replica.tcp_url(name), dead, replica.url(name)),
            connect_timeout=1.0,
        )
        with use_databases({"main": spread}):
            db = switchyard_db.database("main")
            served = []
            for _ in range(20):
                with db.read().connection() as conn:
                    served.append(conn.execute("SELECT pg_is_in_recovery()").fetchone()[0])
            assert all(served)  # every read on a replica, the dead one skipped
            numbers = {
                p["role"]: p["requests"]
                for p in switchyard_db.snapshot()["pools"]
                if p["database"] == "main"
            }
            assert abs(numbers["replica0"] - numbers["replica2"]) <= 2  # within 10% of 20
            with db.connection() as conn:
                conn.execute("INSERT INTO seen VALUES (1)")
            with db.read(own_writes=True).connection() as conn:
                assert conn.execute("SELECT pg_is_in_recovery()").fetchone() == (False,)
                assert conn.execute("SELECT count(*) FROM seen").fetchone() == (1,)


def test_with_no_healthy_replica_reads_go_to_the_primary(pg):
    with fresh_database(pg, migrate=False) as settings:
        dead = f"postgresql://postgres@127.0.0.1:{free_port()}/x"
        lonely = DatabaseSettings(
            name="main", url=settings.url, replicas=(dead,), connect_timeout=1.0
        )
        with (
            use_databases({"main": lonely}),
            switchyard_db.database("main").read().connection() as conn,
        ):
            assert conn.execute("SELECT pg_is_in_recovery()").fetchone() == (False,)


def test_unreachable_database_is_one_line_naming_it_without_the_password():
    url = f"postgresql://app:s3cret@127.0.0.1:{free_port()}/app"
    with (
        use_databases({"main": DatabaseSettings(name="main", url=url, connect_timeout=1.0)}),
        pytest.raises(DatabaseError) as exc,
        switchyard_db.database("main").connection(),
    ):
        pass
    message = str(exc.value)
    assert message.startswith(
        f"database main (postgresql://app:***@127.0.0.1:{url.split(':')[3].split('/')[0]}/app)"
        ": cannot connect: "
    )
    assert "s3cret" not in message
    assert "\n" not in message


def test_wrong_password_is_one_line_naming_the_database(tmp_path):
    with temporary_server(tmp_path / "pw", password="right") as server:
        url = server.tcp_url("postgres", password="wrong")
        with (
            use_databases({"main": DatabaseSettings(name="main", url=url)}),
            pytest.raises(DatabaseError) as exc,
            switchyard_db.database("main").connection(),
        ):
            pass
    message = str(exc.value)
    assert "database main (postgresql://postgres:***@127.0.0.1:" in message
    assert "password authentication failed" in message
    assert "wrong" not in message.replace("password authentication", "")


def test_a_pool_exhausted_past_its_wait_fails_the_job_naming_the_database(pg):
    @action("t.wait_for_connection")
    def wait_for_connection(data: Empty, ctx: Context) -> Empty:
        with ctx.db().connection():
            return Empty()

    with fresh_database(pg, migrate=False, pool_size=1, pool_timeout=0.2):
        held = threading.Event()
        release = threading.Event()

        def hold() -> None:
            with switchyard_db.database("main").connection():
                held.set()
                release.wait(5)

        holder = threading.Thread(target=hold)
        holder.start()
        held.wait(5)
        try:
            with (
                use_registry(make_registry(wait_for_connection)),
                pytest.raises(HandlerError) as exc,
            ):
                call_action("t.wait_for_connection", {})
        finally:
            release.set()
            holder.join()
    assert exc.value.error_type == "DatabaseError"
    assert "database main (" in str(exc.value)
    assert "no primary connection free within 0.2 s (pool-size 1 per process)" in str(exc.value)


def test_a_slow_query_logs_its_fingerprint_never_its_parameters(pg, caplog):
    with fresh_database(pg, migrate=False, slow_query=0.05):
        db = switchyard_db.database("main", action="t.slow")
        with caplog.at_level(logging.WARNING, logger="switchyard.db"), db.connection() as conn:
            conn.execute("SELECT pg_sleep(0.06), %s::text, 'literal'", ("secret-param",))
    lines = [r.getMessage() for r in caplog.records if r.name == "switchyard.db"]
    assert len(lines) == 1
    assert lines[0].startswith("slow query on database main (action t.slow): ")
    assert "fingerprint " in lines[0]
    assert "SELECT pg_sleep(?), %s::text, ?" in lines[0]
    assert "secret-param" not in lines[0]
    assert "literal" not in lines[0]


def test_queries_are_counted_per_action(pg):
    with fresh_database(pg, migrate=False):
        db = switchyard_db.database("main", action="t.counted")
        before = switchyard_db.snapshot()["queries"].get(("main", "t.counted"), [0.0])[0]
        with db.connection() as conn:
            for _ in range(3):
                conn.execute("SELECT 1")
        row = switchyard_db.snapshot()["queries"][("main", "t.counted")]
    assert row[0] - before == 3
    assert sum(row[3:]) == row[0]  # every query in one bucket


def test_an_unknown_database_names_the_known_ones():
    known = {"main": DatabaseSettings(name="main", url="postgresql://x@/y")}
    expected = r"no database 'reports' configured \(known: main\)"
    with use_databases(known), pytest.raises(DatabaseError, match=expected):
        switchyard_db.database("reports")
