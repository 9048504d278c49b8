"""acme-users: user profiles in PostgreSQL with schema migrations, as switchyard actions.

Besides the actions, dependents (billing, notifications) use ``UserStore`` over a connection of
``ctx.db("main")``, and keep their own tables in the same database (their own migrations).
"""

from __future__ import annotations

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
    "CreateUserIn",
    "DuplicateEmailError",
    "GetUserIn",
    "ListUsersIn",
    "MigrateIn",
    "MigrateOut",
    "UpdateProfileIn",
    "User",
    "UserNotFoundError",
    "UserPage",
    "UserStore",
    "create_user",
    "get_user",
    "list_users",
    "migrate",
    "update_profile",
]
