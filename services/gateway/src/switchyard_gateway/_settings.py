"""The gateway's settings: a TOML file (``--config`` / ``SWITCHYARD_GATEWAY_CONFIG``), then the
``SWITCHYARD_GATEWAY_*`` variables, then the command line. Read once per server process.

A bad value raises :class:`SettingsError`, one line naming the variable, flag or file and key.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Final, final

from switchyard import Rate

__all__ = ["ENV_PREFIX", "ApiKey", "JwtSettings", "Settings", "SettingsError"]

ENV_PREFIX: Final = "SWITCHYARD_GATEWAY_"
_HASH: Final = re.compile(r"^sha256:[0-9a-f]{64}$")
_CLIENT: Final = re.compile(r"^[A-Za-z0-9_.@-]{1,64}$")


class SettingsError(ValueError):
    """A bad setting: ``where`` is the variable, flag or ``file: key`` it came from."""

    def __init__(self, where: str, message: str) -> None:
        super().__init__(f"{where}: {message}")
        self.where = where


@final
@dataclass(frozen=True, slots=True)
class ApiKey:
    """A client's API key, by its hash (``sha256:<hex>`` of the key: the key itself is never
    stored), the action globs it may call (``scopes``; ``dashboard`` opens /ui) and its own
    rate (else the gateway's default)."""

    client: str
    hash: str
    scopes: tuple[str, ...]
    rate: Rate | None = None


@final
@dataclass(frozen=True, slots=True)
class JwtSettings:
    """JWTs the gateway accepts: HS256 signed with ``secret``, RS256 by a key of the JWKS file
    ``jwks``; ``issuer``/``audience`` are checked when set; scopes are read from the claim
    ``scope_claim`` (a space-separated string or a list), the client's id from ``sub``."""

    secret: bytes | None = None
    jwks: Path | None = None
    issuer: str | None = None
    audience: str | None = None
    scope_claim: str = "scope"
    leeway: float = 30.0

    @property
    def enabled(self) -> bool:
        return self.secret is not None or self.jwks is not None


@final
@dataclass(frozen=True, slots=True)
class Settings:
    """Everything a gateway process reads at start."""

    host: str = "127.0.0.1"
    port: int = 8080
    workers: int = 1
    #: "on", "off", or "auto" (on when an API key or a JWT setting is configured)
    auth: str = "auto"
    #: the largest request body accepted (bytes); None: the project's max_payload_bytes
    max_body: int | None = None
    #: each client's requests, shared by every replica (None: unlimited); a key may set its own
    rate: Rate | None = None
    keys: tuple[ApiKey, ...] = field(default=())
    jwt: JwtSettings = field(default_factory=JwtSettings)
    #: where the settings file was, for messages
    config: Path | None = None
    #: uvicorn's log level
    log_level: str = "warning"

    @property
    def auth_on(self) -> bool:
        if self.auth == "auto":
            return bool(self.keys) or self.jwt.enabled
        return self.auth == "on"

    @classmethod
    def load(
        cls,
        environ: Mapping[str, str] | None = None,
        overrides: Mapping[str, Any] | None = None,
    ) -> Settings:
        """The file named by ``overrides['config']`` or ``SWITCHYARD_GATEWAY_CONFIG``, then the
        variables, then ``overrides`` (the command line's flags, already typed)."""
        env = os.environ if environ is None else environ
        overrides = dict(overrides or {})
        path_text = overrides.pop("config", None) or env.get(ENV_PREFIX + "CONFIG") or None
        settings = cls()
        if path_text:
            settings = _from_file(Path(path_text))
        return _from_env(settings, env, overrides)


def _flag_name(name: str) -> str:
    return "--" + name.replace("_", "-")


def _port(value: object, where: str) -> int:
    number = _int(value, where)
    if not 0 <= number <= 65535:
        raise SettingsError(where, f"must be a port number from 0 to 65535, got {value!r}")
    return number


def _int(value: object, where: str, low: int = 0) -> int:
    try:
        number = int(str(value).strip()) if not isinstance(value, int) else value
    except ValueError:
        raise SettingsError(where, f"must be an integer, got {value!r}") from None
    if isinstance(value, bool) or number < low:
        raise SettingsError(where, f"must be an integer >= {low}, got {value!r}")
    return number


_UNITS: Final = {"": 1, "b": 1, "kb": 1000, "kib": 1024, "mb": 1000**2, "mib": 1024**2}


def _size(value: object, where: str) -> int:
    if isinstance(value, int) and not isinstance(value, bool):
        number = value
    else:
        found = re.fullmatch(r"\s*(\d+)\s*([A-Za-z]*)\s*", str(value))
        unit = found.group(2).lower() if found else None
        if found is None or unit not in _UNITS:
            raise SettingsError(
                where, f"must be a size in bytes such as 1048576, '512KiB' or '1MiB', got {value!r}"
            )
        number = int(found.group(1)) * _UNITS[unit]
    if number < 1:
        raise SettingsError(where, f"must be at least 1 byte, got {value!r}")
    return number


def _rate(value: object, where: str) -> Rate | None:
    if value in (None, "", "none", "off"):
        return None
    try:
        return Rate.parse(value)
    except ValueError as exc:
        raise SettingsError(where, f"rate {exc}") from None


def _auth(value: object, where: str) -> str:
    text = str(value).strip().lower()
    aliases = {"true": "on", "1": "on", "yes": "on", "false": "off", "0": "off", "no": "off"}
    text = aliases.get(text, text)
    if text not in ("on", "off", "auto"):
        raise SettingsError(where, f"must be on, off or auto, got {value!r}")
    return text


def _scopes(value: object, where: str) -> tuple[str, ...]:
    if isinstance(value, str):
        items = [s for s in re.split(r"[,\s]+", value) if s]
    elif isinstance(value, list) and all(isinstance(s, str) for s in value):
        items = [s.strip() for s in value if s.strip()]
    else:
        raise SettingsError(where, f"must be a list of action globs, got {value!r}")
    return tuple(items)


def _key(client: object, hash_: object, scopes: object, rate: object, where: str) -> ApiKey:
    if not isinstance(client, str) or not _CLIENT.match(client):
        raise SettingsError(
            where, f"client must be 1-64 letters, digits or _.@- characters, got {client!r}"
        )
    if not isinstance(hash_, str) or not _HASH.match(hash_):
        raise SettingsError(
            where,
            f"hash must be 'sha256:' and 64 lowercase hex digits (switchyard-gateway hash-key "
            f"prints one), got {hash_!r}",
        )
    return ApiKey(client, hash_, _scopes(scopes, where), _rate(rate, where))


def _parse_env_keys(text: str, where: str) -> tuple[ApiKey, ...]:
    """``client sha256:<hex> scope,scope[ rate]`` entries separated by ``;`` or newlines."""
    keys = []
    for number, entry in enumerate(re.split(r"[;\n]", text), 1):
        parts = entry.split()
        if not parts:
            continue
        if len(parts) not in (3, 4):
            raise SettingsError(
                f"{where} entry {number}",
                f"expected 'CLIENT sha256:HEX SCOPE[,SCOPE...] [RATE]', got {entry.strip()!r}",
            )
        rate = parts[3] if len(parts) == 4 else None
        keys.append(_key(parts[0], parts[1], parts[2], rate, f"{where} entry {number}"))
    return tuple(keys)


def _from_file(path: Path) -> Settings:
    import tomllib

    where = str(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise SettingsError(where, f"cannot read it ({exc.strerror or exc})") from None
    except tomllib.TOMLDecodeError as exc:
        raise SettingsError(where, f"not valid TOML: {exc}") from None
    known = {"host", "port", "workers", "auth", "max-body", "rate", "keys", "jwt", "log-level"}
    for name in data:
        if name not in known:
            raise SettingsError(
                f"{where}: {name}", f"unknown setting (known: {', '.join(sorted(known))})"
            )
    settings = Settings(config=path)
    values: dict[str, Any] = {}
    if "host" in data:
        values["host"] = str(data["host"])
    if "port" in data:
        values["port"] = _port(data["port"], f"{where}: port")
    if "workers" in data:
        values["workers"] = _int(data["workers"], f"{where}: workers", 1)
    if "auth" in data:
        values["auth"] = _auth(data["auth"], f"{where}: auth")
    if "max-body" in data:
        values["max_body"] = _size(data["max-body"], f"{where}: max-body")
    if "rate" in data:
        values["rate"] = _rate(data["rate"], f"{where}: rate")
    if "log-level" in data:
        values["log_level"] = _log_level(data["log-level"], f"{where}: log-level")
    entries = data.get("keys", [])
    if not isinstance(entries, list):
        raise SettingsError(f"{where}: keys", "must be an array of tables ([[keys]])")
    keys = []
    for number, entry in enumerate(entries):
        at = f"{where}: keys[{number}]"
        if not isinstance(entry, dict):
            raise SettingsError(at, "must be a table with client, hash and scopes")
        extra = set(entry) - {"client", "hash", "scopes", "rate"}
        if extra:
            raise SettingsError(
                at, f"unknown field {sorted(extra)[0]!r} (client, hash, scopes, rate)"
            )
        keys.append(
            _key(
                entry.get("client"),
                entry.get("hash"),
                entry.get("scopes", []),
                entry.get("rate"),
                at,
            )
        )
    values["keys"] = tuple(keys)
    if "jwt" in data:
        values["jwt"] = _jwt_from(data["jwt"], path)
    return replace(settings, **values)


def _jwt_from(table: object, path: Path) -> JwtSettings:
    where = f"{path}: jwt"
    if not isinstance(table, dict):
        raise SettingsError(where, "must be a table ([jwt])")
    known = {"secret-env", "jwks", "issuer", "audience", "scope-claim", "leeway"}
    for name in table:
        if name not in known:
            raise SettingsError(
                f"{where}.{name}", f"unknown setting (known: {', '.join(sorted(known))})"
            )
    secret = None
    if "secret-env" in table:
        variable = str(table["secret-env"])
        text = os.environ.get(variable)
        if not text:
            raise SettingsError(f"{where}.secret-env", f"the variable {variable} is not set")
        secret = text.encode()
    jwks = None
    if "jwks" in table:
        jwks = Path(str(table["jwks"]))
        if not jwks.is_absolute():
            jwks = path.parent / jwks
    leeway = table.get("leeway", 30)
    if isinstance(leeway, bool) or not isinstance(leeway, int | float) or leeway < 0:
        raise SettingsError(f"{where}.leeway", f"must be seconds >= 0, got {leeway!r}")
    return JwtSettings(
        secret=secret,
        jwks=jwks,
        issuer=table.get("issuer"),
        audience=table.get("audience"),
        scope_claim=str(table.get("scope-claim", "scope")),
        leeway=float(leeway),
    )


def _log_level(value: object, where: str) -> str:
    text = str(value).strip().lower()
    if text not in ("critical", "error", "warning", "info", "debug"):
        raise SettingsError(
            where, f"must be critical, error, warning, info or debug, got {value!r}"
        )
    return text


def _host(value: object, where: str) -> str:
    return str(value)


def _workers(value: object, where: str) -> int:
    return _int(value, where, 1)


#: variable or flag name -> (field, reader)
_READERS: Final[dict[str, tuple[str, Callable[[Any, str], Any]]]] = {
    "host": ("host", _host),
    "port": ("port", _port),
    "workers": ("workers", _workers),
    "auth": ("auth", _auth),
    "max_body": ("max_body", _size),
    "rate": ("rate", _rate),
    "log_level": ("log_level", _log_level),
}


def _from_env(settings: Settings, env: Mapping[str, str], overrides: Mapping[str, Any]) -> Settings:
    values: dict[str, Any] = {}
    known = set(_READERS) | {"config", "keys", "jwt_secret", "jwks"}
    for variable in env:
        if variable.startswith(ENV_PREFIX):
            name = variable.removeprefix(ENV_PREFIX).lower()
            if name not in known:
                names = ", ".join(ENV_PREFIX + k.upper() for k in sorted(known))
                raise SettingsError(variable, f"unknown variable (known: {names})")
    for name, (target, reader) in _READERS.items():
        variable = ENV_PREFIX + name.upper()
        if env.get(variable, "").strip():
            values[target] = reader(env[variable], variable)
    if env.get(ENV_PREFIX + "KEYS", "").strip():
        extra = _parse_env_keys(env[ENV_PREFIX + "KEYS"], ENV_PREFIX + "KEYS")
        values["keys"] = settings.keys + extra
    jwt = settings.jwt
    if env.get(ENV_PREFIX + "JWT_SECRET"):
        jwt = replace(jwt, secret=env[ENV_PREFIX + "JWT_SECRET"].encode())
    if env.get(ENV_PREFIX + "JWKS", "").strip():
        jwt = replace(jwt, jwks=Path(env[ENV_PREFIX + "JWKS"].strip()))
    values["jwt"] = jwt
    for name, value in overrides.items():
        if value is None:
            continue
        target, reader = _READERS[name]
        values[target] = reader(value, _flag_name(name))
    found = replace(settings, **values)
    clients = [k.client for k in found.keys]
    for client in clients:
        if clients.count(client) > 1:
            raise SettingsError("keys", f"client {client!r} has two keys; one client, one key")
    if found.jwt.jwks is not None and not found.jwt.jwks.is_file():
        raise SettingsError("jwks", f"no JWKS file at {found.jwt.jwks}")
    return found
