"""The users actions: profiles in SQLite (see ``UserStore``), with schema migrations.

Database: the ``db_path`` input when given, else ``$ACME_USERS_DB``, else
``<tempdir>/acme/users.sqlite3``. Nothing is opened at import time.
"""

from __future__ import annotations

from typing import Annotated
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator
from switchyard import action

from acme_users._schema import (
    USERS_MIGRATIONS,
    applied_versions,
    apply_migrations,
    connect,
    resolve_db_path,
)
from acme_users._store import COMPONENT, User, UserStore


def _known_timezone(name: str) -> str:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown IANA time zone {name!r} (e.g. 'Europe/Paris', 'UTC')") from None
    return name


Email = Annotated[
    str,
    Field(min_length=3, max_length=254, pattern=r"^[^@\s]+@[^@\s.]+(\.[^@\s.]+)+$"),
]
DisplayName = Annotated[str, Field(min_length=1, max_length=100, pattern=r"^\S(.*\S)?$")]
Locale = Annotated[str, Field(pattern=r"^[a-z]{2}(-[A-Z]{2})?$", description="e.g. 'en', 'fr-CA'")]
Timezone = Annotated[str, Field(min_length=1, max_length=64), AfterValidator(_known_timezone)]
Bio = Annotated[str, Field(max_length=500)]
UserId = Annotated[int, Field(ge=1, le=2**62)]
DbPath = Annotated[
    str, Field(min_length=1, max_length=4096, description="SQLite file; default $ACME_USERS_DB")
]


class _Input(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    db_path: DbPath | None = None


class CreateUserIn(_Input):
    email: Email
    display_name: DisplayName
    locale: Locale = "en"
    timezone: Timezone = "UTC"
    bio: Bio = ""


class GetUserIn(_Input):
    user_id: UserId


class UpdateProfileIn(_Input):
    user_id: UserId
    email: Email | None = None
    display_name: DisplayName | None = None
    locale: Locale | None = None
    timezone: Timezone | None = None
    bio: Bio | None = None

    @model_validator(mode="after")
    def _something_to_change(self) -> UpdateProfileIn:
        if not self.changes():
            raise ValueError("nothing to update: give email, display_name, locale, timezone or bio")
        return self

    def changes(self) -> dict[str, str]:
        fields = ("email", "display_name", "locale", "timezone", "bio")
        return {name: value for name in fields if (value := getattr(self, name)) is not None}


class ListUsersIn(_Input):
    limit: int = Field(50, ge=1, le=500)
    offset: int = Field(0, ge=0)
    email_contains: str | None = Field(None, min_length=1, max_length=254)


class UserPage(BaseModel):
    users: list[User]
    total: int
    limit: int
    offset: int


class MigrateIn(_Input):
    pass


class MigrateOut(BaseModel):
    db_path: str
    applied: list[int] = Field(description="versions applied by this call")
    version: int = Field(description="the users schema version now")


@action("users.create_user", description="Create a user profile.", idempotent=False)
def create_user(data: CreateUserIn) -> User:
    with UserStore.open(data.db_path) as store:
        return store.create(
            email=data.email,
            display_name=data.display_name,
            locale=data.locale,
            timezone=data.timezone,
            bio=data.bio,
        )


@action("users.get_user", description="Fetch one user profile by id.")
def get_user(data: GetUserIn) -> User:
    with UserStore.open(data.db_path) as store:
        return store.require(data.user_id)


@action("users.update_profile", description="Change some fields of a user's profile.")
def update_profile(data: UpdateProfileIn) -> User:
    with UserStore.open(data.db_path) as store:
        return store.update(data.user_id, data.changes())


@action("users.list_users", description="A page of users, oldest first, optionally filtered.")
def list_users(data: ListUsersIn) -> UserPage:
    with UserStore.open(data.db_path) as store:
        users, total = store.page(
            limit=data.limit, offset=data.offset, email_contains=data.email_contains
        )
    return UserPage(users=users, total=total, limit=data.limit, offset=data.offset)


@action("users.migrate", description="Bring the users database schema up to date.")
def migrate(data: MigrateIn) -> MigrateOut:
    path = resolve_db_path(data.db_path)
    conn = connect(path)
    try:
        applied = apply_migrations(conn, COMPONENT, USERS_MIGRATIONS)
        version = max(applied_versions(conn, COMPONENT), default=0)
    finally:
        conn.close()
    return MigrateOut(db_path=str(path), applied=applied, version=version)
