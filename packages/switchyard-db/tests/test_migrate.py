"""Migrations on a real server, with the workspace's modules' files (users, billing, search):
order, ledger, a failed file leaving nothing behind, edited files, doctor and the CLI."""

from __future__ import annotations

import os
import subprocess
import sys

import psycopg
import pytest

import switchyard_db
from switchyard_db import MigrationError
from switchyard_db.testing import fresh_database


def ledger(url: str) -> list[tuple[str, int]]:
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT component, version FROM switchyard_migrations ORDER BY applied_at, version"
        ).fetchall()
    return [(str(c), int(v)) for c, v in rows]


def test_components_apply_in_dependency_order_once(pg):
    with fresh_database(pg, migrate=False) as settings:
        applied = switchyard_db.migrate("main")
        assert switchyard_db.migrate("main") == []
        rows = ledger(settings.url or "")
    components = [c for c, _ in rows]
    assert components.index("users") < components.index("billing")  # invoices reference users
    assert applied[:3] == [
        "users 0001_create_users.sql",
        "users 0002_profile_locale_timezone.sql",
        "users 0003_profile_bio_created_index.sql",
    ]
    assert len(applied) == len(rows)


def test_a_failed_file_leaves_nothing_of_itself_and_names_the_database_and_file(pg):
    with fresh_database(pg, migrate=False) as settings:
        url = settings.url or ""
        with psycopg.connect(url, autocommit=True) as conn:  # in the way of billing's 0001
            conn.execute("CREATE TABLE invoices (id int)")
        with pytest.raises(MigrationError) as exc:
            switchyard_db.migrate("main")
        rows = ledger(url)
        with psycopg.connect(url) as conn:
            columns = conn.execute(
                "SELECT column_name FROM information_schema.columns WHERE table_name = 'invoices'"
            ).fetchall()
    message = str(exc.value)
    assert message.startswith("database main (postgresql://postgres@/")
    assert "migration billing 0001_create_invoices.sql failed, nothing of it was applied" in message
    assert 'relation "invoices" already exists' in message
    assert ("users", 3) in rows
    assert not any(c == "billing" for c, _ in rows)
    assert columns == [("id",)]  # the failed file changed nothing


def test_an_edited_applied_file_is_a_problem_for_status_doctor_and_migrate(pg, tmp_path):
    with fresh_database(pg, migrate=False) as settings:
        url = settings.url or ""
        switchyard_db.migrate("main")
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(
                "UPDATE switchyard_migrations SET checksum = 'edited' "
                "WHERE component = 'users' AND version = 2"
            )
            conn.execute("DELETE FROM switchyard_migrations WHERE component = 'billing'")
        env = {**os.environ, "SWITCHYARD_DATABASE_URL": url}
        found = subprocess.run(
            [sys.executable, "-m", "switchyard", "doctor"],
            env=env, cwd=tmp_path, capture_output=True, text=True, check=False,
        )  # fmt: skip
        problems = found.stdout.splitlines()
        with pytest.raises(MigrationError, match=r"0002_profile_locale_timezone\.sql was edited"):
            switchyard_db.migrate("main")
    assert found.returncode == 1
    assert any("users 0002_profile_locale_timezone.sql was edited after it was applied" in p
               for p in problems)  # fmt: skip
    assert any("migration(s) of billing pending" in p and "switchyard db migrate" in p
               for p in problems)  # fmt: skip


def test_the_command_line_migrates_and_reports(pg, tmp_path):
    with fresh_database(pg, migrate=False) as settings:
        env = {**os.environ, "SWITCHYARD_DATABASE_URL": settings.url or ""}

        def switchyard(*args: str) -> subprocess.CompletedProcess[str]:
            return subprocess.run(
                [sys.executable, "-m", "switchyard", *args],
                env=env, cwd=tmp_path, capture_output=True, text=True, check=False,
            )  # fmt: skip

        pending = switchyard("db", "status")
        migrated = switchyard("db", "migrate")
        done = switchyard("db", "status")
    assert pending.returncode == 1
    assert "users            at 0, pending: 0001_create_users.sql" in pending.stdout
    assert migrated.returncode == 0
    assert "users 0001_create_users.sql" in migrated.stdout
    assert done.returncode == 0
    assert "pending" not in done.stdout


def test_an_unreachable_database_is_one_line_from_the_command_line(tmp_path):
    from switchyard_db.testing import free_port

    env = {
        **os.environ,
        "SWITCHYARD_DATABASE_URL": f"postgresql://app:hunter2@127.0.0.1:{free_port()}/app",
    }
    done = subprocess.run(
        [sys.executable, "-m", "switchyard", "db", "migrate"],
        env=env, cwd=tmp_path, capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert done.returncode == 1
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("error: database main (postgresql://app:***@127.0.0.1:")
    assert "cannot connect" in lines[0]
    assert "hunter2" not in done.stderr
