"""The users actions: profiles in PostgreSQL (see ``UserStore``), with schema migrations.

The database is the configured ``main`` one (``ctx.db()``; the embedded server by default):
inputs carry data only, never where to find it. Reads go to a replica when there is one (with
this job's own writes seen), and ``users.get_user`` keeps its results a minute, dropped by
``update_profile``'s ``user:{id}`` invalidation.
"""

from __future__ import annotations

from typing import Annotated
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator
from switchyard import Context, action

from acme_users._store import User, UserStore


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


class _Input(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


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
    applied: list[str] = Field(description="migration files applied by this call")


@action("users.create_user", description="Create a user profile.", idempotent=False)
def create_user(data: CreateUserIn, ctx: Context) -> User:
    with ctx.db().connection() as conn:
        return UserStore(conn).create(
            email=data.email,
            display_name=data.display_name,
            locale=data.locale,
            timezone=data.timezone,
            bio=data.bio,
        )


@action(
    "users.get_user",
    description="Fetch one user profile by id.",
    cache={"ttl": "1m", "tags": ["user:{user_id}"]},
)
def get_user(data: GetUserIn, ctx: Context) -> User:
    with ctx.db().read(own_writes=True).connection() as conn:
        return UserStore(conn).require(data.user_id)


@action("users.update_profile", description="Change some fields of a user's profile.")
def update_profile(data: UpdateProfileIn, ctx: Context) -> User:
    with ctx.db().connection() as conn:
        user = UserStore(conn).update(data.user_id, data.changes())
    ctx.invalidate(f"user:{data.user_id}")
    return user


@action("users.list_users", description="A page of users, oldest first, optionally filtered.")
def list_users(data: ListUsersIn, ctx: Context) -> UserPage:
    with ctx.db().read(own_writes=True).connection() as conn:
        users, total = UserStore(conn).page(
            limit=data.limit, offset=data.offset, email_contains=data.email_contains
        )
    return UserPage(users=users, total=total, limit=data.limit, offset=data.offset)


@action("users.migrate", description="Bring the database's schema up to date (every module's).")
def migrate(data: MigrateIn) -> MigrateOut:
    import switchyard_db

    return MigrateOut(applied=switchyard_db.migrate("main"))
