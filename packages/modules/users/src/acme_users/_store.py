"""User profiles in PostgreSQL: the ``User`` record and ``UserStore``, the Python API for
dependents (billing, notifications), over one connection of switchyard-db's pool."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, Final

import psycopg
from psycopg.rows import dict_row
from pydantic import BaseModel, ConfigDict

PROFILE_FIELDS: Final = ("email", "display_name", "locale", "timezone", "bio")


class User(BaseModel):
    """A user's profile as stored."""

    model_config = ConfigDict(frozen=True)

    id: int
    email: str
    display_name: str
    locale: str
    timezone: str
    bio: str
    created_at: datetime
    updated_at: datetime


class UserNotFoundError(LookupError):
    def __init__(self, user_id: int) -> None:
        super().__init__(f"no user with id {user_id}")
        self.user_id = user_id


class DuplicateEmailError(ValueError):
    def __init__(self, email: str) -> None:
        super().__init__(f"a user with email {email!r} already exists")
        self.email = email


_COLUMNS: Final = "id, email, display_name, locale, timezone, bio, created_at, updated_at"


class UserStore:
    """User profiles over one connection (a transaction of ``ctx.db("main").connection()``)::

    with ctx.db("main").connection() as conn:
        user = UserStore(conn).require(user_id)
    """

    __slots__ = ("_conn",)

    def __init__(self, conn: psycopg.Connection[Any]) -> None:
        self._conn = conn

    @property
    def connection(self) -> psycopg.Connection[Any]:
        return self._conn

    def _one(self, query: Any, params: tuple[Any, ...]) -> User | None:
        with self._conn.cursor(row_factory=dict_row) as cur:
            row = cur.execute(query, params).fetchone()
        return None if row is None else User.model_validate(row)

    def create(
        self, *, email: str, display_name: str, locale: str, timezone: str, bio: str
    ) -> User:
        now = datetime.now(UTC)
        try:
            with self._conn.transaction():  # a savepoint: the caller's transaction survives
                user = self._one(
                    f"INSERT INTO users (email, display_name, locale, timezone, bio, created_at,"
                    f" updated_at) VALUES (%s, %s, %s, %s, %s, %s, %s) RETURNING {_COLUMNS}",
                    (email, display_name, locale, timezone, bio, now, now),
                )
        except psycopg.errors.UniqueViolation as exc:
            raise DuplicateEmailError(email) from exc
        assert user is not None
        return user

    def get(self, user_id: int) -> User | None:
        return self._one(f"SELECT {_COLUMNS} FROM users WHERE id = %s", (user_id,))

    def require(self, user_id: int) -> User:
        user = self.get(user_id)
        if user is None:
            raise UserNotFoundError(user_id)
        return user

    def update(self, user_id: int, changes: Mapping[str, str]) -> User:
        unknown = set(changes) - set(PROFILE_FIELDS)
        if unknown:
            raise ValueError(f"not profile fields: {', '.join(sorted(unknown))}")
        if not changes:
            return self.require(user_id)
        from psycopg import sql

        columns = [name for name in PROFILE_FIELDS if name in changes]
        assignments = sql.SQL(", ").join(
            sql.SQL("{} = %s").format(sql.Identifier(name)) for name in columns
        )
        query = sql.SQL(
            "UPDATE users SET {}, updated_at = %s WHERE id = %s RETURNING " + _COLUMNS
        ).format(assignments)
        try:
            with self._conn.transaction():
                user = self._one(
                    query, (*(changes[name] for name in columns), datetime.now(UTC), user_id)
                )
        except psycopg.errors.UniqueViolation as exc:
            raise DuplicateEmailError(changes["email"]) from exc
        if user is None:
            raise UserNotFoundError(user_id)
        return user

    def page(
        self, *, limit: int, offset: int = 0, email_contains: str | None = None
    ) -> tuple[list[User], int]:
        """A page of users, oldest first, and the total that match."""
        where = ""
        params: tuple[str, ...] = ()
        if email_contains:
            escaped = email_contains.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
            where, params = "WHERE email ILIKE %s", (f"%{escaped}%",)
        with self._conn.cursor(row_factory=dict_row) as cur:
            count = cur.execute(f"SELECT count(*) AS n FROM users {where}", params).fetchone()
            rows = cur.execute(
                f"SELECT {_COLUMNS} FROM users {where} ORDER BY created_at, id LIMIT %s OFFSET %s",
                (*params, limit, offset),
            ).fetchall()
        total = int(count["n"]) if count else 0
        return [User.model_validate(row) for row in rows], total
