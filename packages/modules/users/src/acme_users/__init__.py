"""acme-users: user profiles in SQLite with schema migrations, as switchyard actions.

Besides the actions, dependents (billing, notifications) use ``UserStore`` and keep their own
tables in the same database with ``apply_migrations`` under their own component name.
"""

from __future__ import annotations

from acme_users._schema import (
    DB_ENV,
    USERS_MIGRATIONS,
    Migration,
    SchemaError,
    applied_versions,
    apply_migrations,
    connect,
    resolve_db_path,
)
from acme_users._store import DuplicateEmailError, User, UserNotFoundError, UserStore
from acme_users.actions import (
    CreateUserIn,
    GetUserIn,
    ListUsersIn,
    MigrateIn,
    MigrateOut,
    UpdateProfileIn,
    UserPage,
    create_user,
    get_user,
    list_users,
    migrate,
    update_profile,
)

ACTIONS = (create_user, get_user, update_profile, list_users, migrate)

__all__ = [
    "ACTIONS",
    "DB_ENV",
    "USERS_MIGRATIONS",
    "CreateUserIn",
    "DuplicateEmailError",
    "GetUserIn",
    "ListUsersIn",
    "MigrateIn",
    "MigrateOut",
    "Migration",
    "SchemaError",
    "UpdateProfileIn",
    "User",
    "UserNotFoundError",
    "UserPage",
    "UserStore",
    "applied_versions",
    "apply_migrations",
    "connect",
    "create_user",
    "get_user",
    "list_users",
    "migrate",
    "resolve_db_path",
    "update_profile",
]
