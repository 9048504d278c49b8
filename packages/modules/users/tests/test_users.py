from __future__ import annotations

import sqlite3
import subprocess
import sys
import textwrap

import acme_users
import pytest
from switchyard import HandlerError, InvalidInputError, Registry, call_action
from switchyard.testing import make_registry, use_registry


@pytest.fixture(autouse=True)
def registry():
    reg = make_registry(*acme_users.ACTIONS)
    with use_registry(reg):
        yield reg


@pytest.fixture
def db(tmp_path):
    return str(tmp_path / "users.sqlite3")


def create(db, email="ada@example.com", **extra):
    return call_action(
        "users.create_user", {"db_path": db, "email": email, "display_name": "Ada", **extra}
    )


def fields(exc):
    return [error.loc for error in exc.value.errors]


def test_create_then_get_round_trips_the_profile(db):
    made = create(db, locale="fr-CA", timezone="America/Montreal", bio="math")
    got = call_action("users.get_user", {"db_path": db, "user_id": made.id})
    assert got == made
    assert (got.email, got.locale, got.timezone, got.bio) == (
        "ada@example.com",
        "fr-CA",
        "America/Montreal",
        "math",
    )
    assert got.created_at == got.updated_at


def test_email_is_unique_regardless_of_case(db):
    create(db)
    with pytest.raises(HandlerError) as exc:
        create(db, email="ADA@example.com")
    assert exc.value.error_type == "DuplicateEmailError"
    assert "already exists" in str(exc.value)


def test_unknown_user_is_a_not_found_error(db):
    with pytest.raises(HandlerError) as exc:
        call_action("users.get_user", {"db_path": db, "user_id": 99})
    assert exc.value.error_type == "UserNotFoundError"


def test_update_profile_changes_only_the_given_fields(db):
    made = create(db)
    updated = call_action(
        "users.update_profile",
        {"db_path": db, "user_id": made.id, "display_name": "Ada L.", "timezone": "Europe/London"},
    )
    assert (updated.display_name, updated.timezone) == ("Ada L.", "Europe/London")
    assert (updated.email, updated.locale, updated.created_at) == (
        made.email,
        made.locale,
        made.created_at,
    )
    assert updated.updated_at > made.updated_at


def test_update_to_a_taken_email_is_refused(db):
    create(db)
    other = create(db, email="bob@example.com")
    with pytest.raises(HandlerError) as exc:
        call_action(
            "users.update_profile",
            {"db_path": db, "user_id": other.id, "email": "ada@EXAMPLE.com"},
        )
    assert exc.value.error_type == "DuplicateEmailError"


def test_list_users_pages_in_creation_order_and_filters(db):
    for name in ("ada", "bob", "cy", "dan", "bobby"):
        create(db, email=f"{name}@example.com")
    page = call_action("users.list_users", {"db_path": db, "limit": 2, "offset": 1})
    assert [u.email for u in page.users] == ["bob@example.com", "cy@example.com"]
    assert page.total == 5
    found = call_action("users.list_users", {"db_path": db, "email_contains": "bob"})
    assert [u.email for u in found.users] == ["bob@example.com", "bobby@example.com"]
    # LIKE wildcards in the filter are taken literally
    none = call_action("users.list_users", {"db_path": db, "email_contains": "%"})
    assert none.total == 0


def test_db_path_defaults_to_the_environment_variable(tmp_path, monkeypatch):
    path = tmp_path / "from-env.sqlite3"
    monkeypatch.setenv(acme_users.DB_ENV, str(path))
    made = call_action("users.create_user", {"email": "e@example.com", "display_name": "E"})
    assert path.exists()
    assert call_action("users.get_user", {"db_path": str(path), "user_id": made.id}) == made


def test_migrate_applies_every_step_once(db):
    first = call_action("users.migrate", {"db_path": db})
    assert (first.applied, first.version) == ([1, 2, 3], 3)
    again = call_action("users.migrate", {"db_path": db})
    assert (again.applied, again.version) == ([], 3)
    conn = sqlite3.connect(db)
    rows = conn.execute("SELECT component, version FROM schema_migrations ORDER BY version")
    assert list(rows) == [("users", 1), ("users", 2), ("users", 3)]
    conn.close()


def test_old_database_is_upgraded_keeping_its_rows(db):
    conn = acme_users.connect(db)
    acme_users.apply_migrations(conn, "users", acme_users.USERS_MIGRATIONS[:1])
    conn.execute(
        "INSERT INTO users (email, display_name, created_at, updated_at)"
        " VALUES ('old@example.com', 'Old', '2020-01-01T00:00:00+00:00',"
        " '2020-01-01T00:00:00+00:00')"
    )
    conn.close()
    out = call_action("users.migrate", {"db_path": db})
    assert out.applied == [2, 3]
    old = call_action("users.get_user", {"db_path": db, "user_id": 1})
    assert (old.email, old.locale, old.timezone, old.bio) == ("old@example.com", "en", "UTC", "")


def test_database_newer_than_the_code_is_refused(db):
    call_action("users.migrate", {"db_path": db})
    conn = sqlite3.connect(db)
    conn.execute("INSERT INTO schema_migrations VALUES ('users', 4, 'future', '2031-01-01')")
    conn.commit()
    conn.close()
    with pytest.raises(HandlerError) as exc:
        call_action("users.get_user", {"db_path": db, "user_id": 1})
    assert exc.value.error_type == "SchemaError"
    assert "newer than this code" in str(exc.value)


def test_failed_migration_step_leaves_nothing_half_applied(db):
    broken = (
        *acme_users.USERS_MIGRATIONS,
        acme_users.Migration(4, "broken", ("ALTER TABLE users ADD COLUMN x TEXT", "NOT SQL")),
    )
    conn = acme_users.connect(db)
    with pytest.raises(sqlite3.OperationalError):
        acme_users.apply_migrations(conn, "users", broken)
    assert acme_users.applied_versions(conn, "users") == [1, 2, 3]
    columns = [row[1] for row in conn.execute("PRAGMA table_info(users)")]
    assert "x" not in columns
    conn.close()


def test_migrations_out_of_order_are_a_schema_error(db):
    steps = tuple(reversed(acme_users.USERS_MIGRATIONS))
    conn = acme_users.connect(db)
    with pytest.raises(acme_users.SchemaError):
        acme_users.apply_migrations(conn, "users", steps)
    conn.close()


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
        ({"email": "a@example.com", "display_name": "A", "db_path": ""}, "db_path"),
    ],
)
def test_create_user_bad_input_names_the_field(data, field):
    with pytest.raises(InvalidInputError) as exc:
        call_action("users.create_user", data)
    assert fields(exc) == [field]


def test_other_actions_bad_input(db):
    with pytest.raises(InvalidInputError) as exc:
        call_action("users.get_user", {"db_path": db, "user_id": 0})
    assert fields(exc) == ["user_id"]
    with pytest.raises(InvalidInputError) as exc:
        call_action("users.list_users", {"db_path": db, "limit": 1000})
    assert fields(exc) == ["limit"]
    with pytest.raises(InvalidInputError) as exc:
        call_action("users.update_profile", {"db_path": db, "user_id": 1})
    assert "nothing to update" in str(exc.value)


def test_every_entry_point_resolves_to_the_action_it_names():
    installed = Registry.from_entry_points()
    ours = sorted(action.name for action in acme_users.ACTIONS)
    assert [name for name in installed.names() if name.startswith("users.")] == ours
    for name in ours:
        assert installed.info(name).distribution == "acme-users"
        assert installed.resolve(name).name == name


def test_a_queued_update_round_trips_through_json(db):
    made = create(db)
    queued = acme_users.UpdateProfileIn(db_path=db, user_id=made.id, bio="poet").model_dump_json()
    updated = call_action("users.update_profile", queued)
    assert (updated.bio, updated.display_name) == ("poet", "Ada")


def test_processes_racing_on_a_fresh_database_migrate_once(db):
    script = textwrap.dedent(
        """
        import sys
        import acme_users
        from switchyard.testing import run
        for i in range(5):
            run(acme_users.create_user, {"db_path": sys.argv[1], "display_name": "W",
                                         "email": f"{sys.argv[2]}-{i}@example.com"})
        """
    )
    writers = [subprocess.Popen([sys.executable, "-c", script, db, f"w{n}"]) for n in range(3)]
    assert [w.wait(timeout=60) for w in writers] == [0, 0, 0]
    assert call_action("users.list_users", {"db_path": db}).total == 15
    conn = sqlite3.connect(db)
    ledger = conn.execute("SELECT version FROM schema_migrations WHERE component = 'users'")
    assert [row[0] for row in ledger] == [1, 2, 3]
    conn.close()
