"""The configured databases: ``[tool.switchyard.databases.NAME]``, overridden by the environment.

One frozen :class:`DatabaseSettings` per database, read by one reader (:func:`load_databases`)
through one rule table (``_RULES``): each row names a setting, its default, its checker and its
environment variable. No pydantic: a worker reads this when its first job asks for a database.

```toml
[tool.switchyard.databases.main]
url = "postgresql://app@db.internal:5432/app"      # none: the embedded server (.switchyard/)
replicas = ["postgresql://app@replica-1:5432/app"]
pool-size = 10               # connections per process at most (per pool: sync, each event loop)
pool-timeout = "10s"         # how long a job waits for a free connection before it fails
statement-timeout = "30s"
slow-query = "200ms"         # a log line (fingerprint, never parameters) past this
pgbouncer = false            # true: no session state (SET LOCAL per transaction)
prepared-statements = false  # server-side prepared statements (true only without PgBouncer
                             # in transaction mode, or with PgBouncer >= 1.21 set up for them)
migrations = ["analytics"]   # components whose migrations go here (default: all, to main)
auto-migrate = false         # apply pending migrations when a process opens the pools
                             # (default: true for the embedded server only)
```

``SWITCHYARD_DATABASE_URL`` is the ``main`` database's URL; ``SWITCHYARD_DATABASE_<NAME>_URL``
and ``SWITCHYARD_DATABASE_<NAME>_REPLICAS`` (comma-separated) any database's.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final
from urllib.parse import urlsplit, urlunsplit

from switchyard import ConfigError, load_config

__all__ = ["DEFAULT", "DatabaseSettings", "load_databases", "redact"]

DEFAULT: Final = "main"


def redact(url: str) -> str:
    """``url`` with its password replaced by ``***`` (host, user and database stay)."""
    if "://" not in url:  # a libpq "key=value" string
        return " ".join(
            "password=***" if part.startswith("password=") else part for part in url.split()
        )
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    if parts.port is not None:
        host = f"{host}:{parts.port}"
    return urlunsplit(parts._replace(netloc=f"{parts.username or ''}:***@{host}"))


_UNITS: Final = {"ms": 0.001, "s": 1.0, "m": 60.0, "min": 60.0, "h": 3600.0}


def _seconds(value: object) -> float:
    """Seconds from a number or a text such as ``"30s"``, ``"200ms"``, ``"5m"``."""
    number: float | None = None
    if isinstance(value, int | float) and not isinstance(value, bool):
        number = float(value)
    elif isinstance(value, str):
        text = value.strip().lower()
        digits = text.rstrip("abcdefghijklmnopqrstuvwxyz")
        try:
            number = float(digits) * _UNITS[text[len(digits) :].strip() or "s"]
        except (KeyError, ValueError):
            number = None
    if number is None or not number > 0 or number == float("inf"):
        raise ValueError(
            f"must be a duration > 0 (seconds, or text like '30s', '200ms'), got {value!r}"
        )
    return number


def _url(value: object) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip():
        raise ValueError(
            f"must be a PostgreSQL URL such as 'postgresql://user@host/db', got {value!r}"
        )
    return value.strip()


def _urls(value: object) -> tuple[str, ...]:
    if isinstance(value, str):
        value = [v for v in value.split(",") if v.strip()]
    if not isinstance(value, list | tuple) or not all(isinstance(v, str) and v for v in value):
        raise ValueError(f"must be a list of PostgreSQL URLs, got {value!r}")
    return tuple(v.strip() for v in value)


def _size(value: object) -> int:
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 1000:
        raise ValueError(f"must be an integer from 1 to 1000, got {value!r}")
    return value


def _optional_seconds(value: object) -> float | None:
    if value is None or value in (0, "0", "off", "none"):
        return None
    return _seconds(value)


def _flag(value: object) -> bool:
    if isinstance(value, str) and value.strip().lower() in ("1", "true", "yes", "on"):
        return True
    if isinstance(value, str) and value.strip().lower() in ("0", "false", "no", "off"):
        return False
    if not isinstance(value, bool):
        raise ValueError(f"must be true or false, got {value!r}")
    return value


def _optional_flag(value: object) -> bool | None:
    return None if value is None else _flag(value)


def _names(value: object) -> tuple[str, ...]:
    if not isinstance(value, list | tuple) or not all(isinstance(v, str) and v for v in value):
        raise ValueError(f"must be a list of migration component names, got {value!r}")
    return tuple(value)


@dataclass(frozen=True, slots=True)
class _Rule:
    key: str  # the file's spelling (kebab-case); the field is its snake_case
    default: object
    check: Callable[[object], object]
    env: str | None  # SWITCHYARD_DATABASE_<NAME>_<env>


_RULES: Final = (
    _Rule("url", None, _url, "URL"),
    _Rule("replicas", (), _urls, "REPLICAS"),
    _Rule("pool-size", 10, _size, "POOL_SIZE"),
    _Rule("pool-timeout", 10.0, _seconds, "POOL_TIMEOUT"),
    _Rule("connect-timeout", 5.0, _seconds, "CONNECT_TIMEOUT"),
    _Rule("statement-timeout", 30.0, _optional_seconds, "STATEMENT_TIMEOUT"),
    _Rule("slow-query", 0.2, _optional_seconds, "SLOW_QUERY"),
    _Rule("replica-retry", 5.0, _seconds, "REPLICA_RETRY"),
    _Rule("pgbouncer", False, _flag, "PGBOUNCER"),
    _Rule("prepared-statements", False, _flag, "PREPARED_STATEMENTS"),
    _Rule("migrations", (), _names, None),
    _Rule("auto-migrate", None, _optional_flag, "AUTO_MIGRATE"),
)


@dataclass(frozen=True, slots=True)
class DatabaseSettings:
    """One database's settings, checked (see the module's docs). ``url`` None: embedded."""

    name: str
    url: str | None = None
    replicas: tuple[str, ...] = ()
    pool_size: int = 10
    pool_timeout: float = 10.0
    connect_timeout: float = 5.0
    statement_timeout: float | None = 30.0
    slow_query: float | None = 0.2
    replica_retry: float = 5.0
    pgbouncer: bool = False
    prepared_statements: bool = False
    migrations: tuple[str, ...] = ()
    auto_migrate: bool | None = None
    root: Path | None = None  # the project folder (where the embedded server lives)

    @property
    def embedded(self) -> bool:
        return self.url is None

    @property
    def migrates_on_open(self) -> bool:
        """Whether a process applies pending migrations when it opens the pools (default: for
        the embedded server only; production runs ``switchyard db migrate`` in its deploy)."""
        return self.embedded if self.auto_migrate is None else self.auto_migrate

    @property
    def where(self) -> str:
        """``database NAME (URL without password)``: how every error names this database."""
        return f"database {self.name} ({redact(self.url) if self.url else 'embedded'})"


def _env_name(name: str) -> str:
    return "".join(c if c.isalnum() else "_" for c in name).upper()


def _from_env(name: str, environ: Mapping[str, str]) -> dict[str, str]:
    found: dict[str, str] = {}
    prefix = f"SWITCHYARD_DATABASE_{_env_name(name)}_"
    for rule in _RULES:
        if rule.env is None:
            continue
        raw = environ.get(prefix + rule.env, "").strip()
        if raw:
            found[rule.key] = raw
    if name == DEFAULT and environ.get("SWITCHYARD_DATABASE_URL", "").strip():
        found.setdefault("url", environ["SWITCHYARD_DATABASE_URL"].strip())
    return found


def _build(name: str, raw: Mapping[str, object], where: str, root: Path | None) -> DatabaseSettings:
    known = {rule.key: rule for rule in _RULES}
    values: dict[str, Any] = {}
    for key, value in raw.items():
        rule = known.get(key.replace("_", "-"))
        if rule is None:
            import difflib

            close = difflib.get_close_matches(key, list(known), n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise ConfigError(
                where, f"[tool.switchyard.databases.{name}] unknown setting {key!r}{hint}"
            )
        try:
            values[rule.key.replace("-", "_")] = rule.check(value)
        except ValueError as error:
            raise ConfigError(where, f"[tool.switchyard.databases.{name}] {key} {error}") from None
    return DatabaseSettings(name=name, root=root, **values)


def load_databases(
    start: Path | None = None, environ: Mapping[str, str] | None = None
) -> dict[str, DatabaseSettings]:
    """Every configured database by name (``main`` always: the embedded server by default)."""
    environ = os.environ if environ is None else environ
    config = load_config(start)
    root = config.root
    tables: dict[str, Mapping[str, object]] = {}
    where = "pyproject.toml"
    if root is not None:
        path = root / "pyproject.toml"
        where = str(path)
        with path.open("rb") as handle:  # load_config has checked that it parses
            data = tomllib.load(handle)
        found = data.get("tool", {}).get("switchyard", {}).get("databases", {})
        if not isinstance(found, dict) or not all(isinstance(v, dict) for v in found.values()):
            raise ConfigError(where, "[tool.switchyard.databases] must hold one table per database")
        tables = found
    names = {DEFAULT, *tables}
    prefix = "SWITCHYARD_DATABASE_"
    for key in environ:  # a database named only by the environment
        if key.startswith(prefix) and key.endswith("_URL") and len(key) > len(prefix) + 4:
            names.add(key[len(prefix) : -4].lower())
    result: dict[str, DatabaseSettings] = {}
    for name in sorted(names):
        file_values = dict(tables.get(name, {}))
        env_values = _from_env(name, environ)
        settings = _build(name, file_values, where, root)
        if env_values:
            settings = _build(name, {**file_values, **env_values}, "environment", root)
        result[name] = settings
    return result
