from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import acme_users
import psycopg
import pytest
from switchyard import HandlerError, InvalidInputError, Registry, call_action
from switchyard.testing import make_registry, use_cache, use_registry
from switchyard_db.testing import fresh_database, temporary_server


@pytest.fixture(scope="module")
def pg(tmp_path_factory):
    with temporary_server(tmp_path_factory.mktemp("pg")) as server:
        yield server


@pytest.fixture(autouse=True)
def registry():
    reg = make_registry(*acme_users.ACTIONS)
    with use_registry(reg), use_cache():
        yield reg


@pytest.fixture
def db(pg):
    with fresh_database(pg) as settings:
        yield settings


def create(email="ada@example.com", **extra):
    return call_action("users.create_user", {"email": email, "display_name": "Ada", **extra})


def fields(exc):
    return [error.loc for error in exc.value.errors]


def test_create_then_get_round_trips_the_profile(db):
    made = create(locale="fr-CA", timezone="America/Montreal", bio="math")
    got = call_action("users.get_user", {"user_id": made.id})
    assert got == made
    assert (got.email, got.locale, got.timezone, got.bio) == (
        "ada@example.com",
        "fr-CA",
        "America/Montreal",
        "math",
    )
    assert got.created_at == got.updated_at


def test_email_is_unique_regardless_of_case(db):
    create()
    with pytest.raises(HandlerError) as exc:
        create(email="ADA@example.com")
    assert exc.value.error_type == "DuplicateEmailError"
    assert "already exists" in str(exc.value)


def test_unknown_user_is_a_not_found_error(db):
    with pytest.raises(HandlerError) as exc:
        call_action("users.get_user", {"user_id": 99})
    assert exc.value.error_type == "UserNotFoundError"


def test_update_profile_changes_only_the_given_fields(db):
    made = create()
    updated = call_action(
        "users.update_profile",
        {"user_id": made.id, "display_name": "Ada L.", "timezone": "Europe/London"},
    )
    assert (updated.display_name, updated.timezone) == ("Ada L.", "Europe/London")
    assert (updated.email, updated.locale, updated.created_at) == (
        made.email,
        made.locale,
        made.created_at,
    )
    assert updated.updated_at > made.updated_at


def test_a_cached_profile_is_dropped_by_the_update(db):
    made = create()
    first = call_action("users.get_user", {"user_id": made.id})
    with psycopg.connect(db.url, autocommit=True) as conn:  # behind the action's back
        conn.execute("UPDATE users SET bio = 'changed' WHERE id = %s", (made.id,))
    assert call_action("users.get_user", {"user_id": made.id}) == first  # a cache hit
    call_action("users.update_profile", {"user_id": made.id, "locale": "fr"})
    fresh = call_action("users.get_user", {"user_id": made.id})
    assert (fresh.bio, fresh.locale) == ("changed", "fr")


def test_update_to_a_taken_email_is_refused(db):
    create()
    other = create(email="bob@example.com")
    with pytest.raises(HandlerError) as exc:
        call_action("users.update_profile", {"user_id": other.id, "email": "ada@EXAMPLE.com"})
    assert exc.value.error_type == "DuplicateEmailError"


def test_list_users_pages_in_creation_order_and_filters(db):
    for name in ("ada", "bob", "cy", "dan", "bobby"):
        create(email=f"{name}@example.com")
    page = call_action("users.list_users", {"limit": 2, "offset": 1})
    assert [u.email for u in page.users] == ["bob@example.com", "cy@example.com"]
    assert page.total == 5
    found = call_action("users.list_users", {"email_contains": "bob"})
    assert [u.email for u in found.users] == ["bob@example.com", "bobby@example.com"]
    # LIKE wildcards in the filter are taken literally
    none = call_action("users.list_users", {"email_contains": "%"})
    assert none.total == 0


def test_migrate_applies_every_step_once(pg):
    with fresh_database(pg, migrate=False) as settings:
        first = call_action("users.migrate", {})  # every installed module's, users' first
        assert first.applied[:3] == [
            "users 0001_create_users.sql",
            "users 0002_profile_locale_timezone.sql",
            "users 0003_profile_bio_created_index.sql",
        ]
        assert call_action("users.migrate", {}).applied == []
        with psycopg.connect(settings.url) as conn:
            rows = conn.execute(
                "SELECT component, version FROM switchyard_migrations"
                " WHERE component = 'users' ORDER BY version"
            ).fetchall()
    assert rows == [("users", 1), ("users", 2), ("users", 3)]


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"email": "not-an-email", "display_name": "A"}, "email"),
        ({"email": "a@example.com", "display_name": ""}, "display_name"),
        ({"email": "a@example.com", "display_name": " padded "}, "display_name"),
        ({"email": "a@example.com", "display_name": "A", "locale": "english"}, "locale"),
        ({"email": "a@example.com", "display_name": "A", "timezone": "Mars/Olympus"}, "timezone"),
        ({"email": "a@example.com", "display_name": "A", "bio": "x" * 501}, "bio"),
        ({"email": "a@example.com", "display_name": "A", "role": "admin"}, "role"),
        # no input names a file or a database: the database is configured, not chosen by a job
        ({"email": "a@example.com", "display_name": "A", "db_path": "/tmp/x.db"}, "db_path"),
    ],
)
def test_create_user_bad_input_names_the_field(data, field):
    with pytest.raises(InvalidInputError) as exc:
        call_action("users.create_user", data)
    assert fields(exc) == [field]


def test_other_actions_bad_input():
    with pytest.raises(InvalidInputError) as exc:
        call_action("users.get_user", {"user_id": 0})
    assert fields(exc) == ["user_id"]
    with pytest.raises(InvalidInputError) as exc:
        call_action("users.list_users", {"limit": 1000})
    assert fields(exc) == ["limit"]
    with pytest.raises(InvalidInputError) as exc:
        call_action("users.update_profile", {"user_id": 1})
    assert "nothing to update" in str(exc.value)


def test_every_entry_point_resolves_to_the_action_it_names():
    installed = Registry.from_entry_points()
    ours = sorted(action.name for action in acme_users.ACTIONS)
    assert [name for name in installed.names() if name.startswith("users.")] == ours
    for name in ours:
        assert installed.info(name).distribution == "acme-users"
        assert installed.resolve(name).name == name


def test_a_queued_update_round_trips_through_json(db):
    made = create()
    queued = acme_users.UpdateProfileIn(user_id=made.id, bio="poet").model_dump_json()
    updated = call_action("users.update_profile", queued)
    assert (updated.bio, updated.display_name) == ("poet", "Ada")


def test_processes_racing_on_a_fresh_database_migrate_once(pg):
    with fresh_database(pg, migrate=False) as settings:
        script = textwrap.dedent(
            """
            import sys
            import acme_users
            from switchyard.testing import run
            for i in range(5):
                run(acme_users.create_user, {"display_name": "W",
                                             "email": f"{sys.argv[1]}-{i}@example.com"})
            """
        )
        env = {
            **os.environ,
            "SWITCHYARD_DATABASE_URL": settings.url,
            "SWITCHYARD_DATABASE_MAIN_AUTO_MIGRATE": "true",
        }
        writers = [
            subprocess.Popen([sys.executable, "-c", script, f"w{n}"], env=env) for n in range(3)
        ]
        assert [w.wait(timeout=60) for w in writers] == [0, 0, 0]
        assert call_action("users.list_users", {}).total == 15
        with psycopg.connect(settings.url) as conn:
            ledger = conn.execute(
                "SELECT version FROM switchyard_migrations WHERE component = 'users'"
            ).fetchall()
    assert [row[0] for row in ledger] == [1, 2, 3]
