"""User profiles in SQLite: the ``User`` record and ``UserStore``, the Python API for dependents."""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Final, Self

from pydantic import BaseModel, ConfigDict

from acme_users._schema import USERS_MIGRATIONS, apply_migrations, connect

COMPONENT: Final = "users"
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


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds")


def _user(row: sqlite3.Row) -> User:
    return User.model_validate(dict(row))


_COLUMNS: Final = "id, email, display_name, locale, timezone, bio, created_at, updated_at"


class UserStore:
    """User profiles in one SQLite database; opening it applies pending migrations.

    ``with UserStore.open(path) as store: ...``. Other components (billing) may keep their
    own tables in the same database through ``store.connection``.
    """

    __slots__ = ("_conn",)

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn

    @classmethod
    def open(cls, db_path: str | Path | None = None) -> Self:
        conn = connect(db_path)
        try:
            apply_migrations(conn, COMPONENT, USERS_MIGRATIONS)
        except BaseException:
            conn.close()
            raise
        return cls(conn)

    @property
    def connection(self) -> sqlite3.Connection:
        return self._conn

    def close(self) -> None:
        self._conn.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def create(
        self, *, email: str, display_name: str, locale: str, timezone: str, bio: str
    ) -> User:
        now = _now()
        try:
            cursor = self._conn.execute(
                "INSERT INTO users (email, display_name, locale, timezone, bio, created_at,"
                " updated_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (email, display_name, locale, timezone, bio, now, now),
            )
        except sqlite3.IntegrityError as exc:
            raise DuplicateEmailError(email) from exc
        assert cursor.lastrowid is not None
        return self.require(cursor.lastrowid)

    def get(self, user_id: int) -> User | None:
        row = self._conn.execute(
            f"SELECT {_COLUMNS} FROM users WHERE id = ?", (user_id,)
        ).fetchone()
        return None if row is None else _user(row)

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
        columns = [name for name in PROFILE_FIELDS if name in changes]
        assignments = ", ".join(f"{name} = ?" for name in columns)
        values = [changes[name] for name in columns]
        try:
            cursor = self._conn.execute(
                f"UPDATE users SET {assignments}, updated_at = ? WHERE id = ?",
                (*values, _now(), user_id),
            )
        except sqlite3.IntegrityError as exc:
            raise DuplicateEmailError(changes["email"]) from exc
        if cursor.rowcount == 0:
            raise UserNotFoundError(user_id)
        return self.require(user_id)

    def page(
        self, *, limit: int, offset: int = 0, email_contains: str | None = None
    ) -> tuple[list[User], int]:
        """A page of users, oldest first, and the total that match."""
        where = ""
        params: tuple[str, ...] = ()
        if email_contains:
            escaped = email_contains.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
            where, params = "WHERE email LIKE ? ESCAPE '\\'", (f"%{escaped}%",)
        total = int(self._conn.execute(f"SELECT count(*) FROM users {where}", params).fetchone()[0])
        rows = self._conn.execute(
            f"SELECT {_COLUMNS} FROM users {where} ORDER BY created_at, id LIMIT ? OFFSET ?",
            (*params, limit, offset),
        )
        return [_user(row) for row in rows], total
