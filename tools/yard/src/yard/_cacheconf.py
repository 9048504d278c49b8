"""The remote cache settings: one reader of ``[tool.yard.cache]``, the environment and flags.

Precedence: a command-line flag, then the environment, then the root pyproject.toml. The
token comes from the environment only (a secret has no place in a committed file or on a
command line that ``ps`` shows).
"""

from __future__ import annotations

import base64
import os
import re
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final
from urllib.parse import unquote, urlsplit

from ._errors import YardError

ENV_URL: Final = "YARD_REMOTE_CACHE"
ENV_TOKEN: Final = "YARD_REMOTE_CACHE_TOKEN"
ENV_READ_ONLY: Final = "YARD_REMOTE_CACHE_READ_ONLY"
ENV_TIMEOUT: Final = "YARD_REMOTE_CACHE_TIMEOUT"

DEFAULT_TIMEOUT: Final = 10.0
"""Seconds any one request may wait for the server (to connect, or between bytes)."""
_KNOWN: Final = ("remote", "read-only", "timeout", "token-header")
_HEADER_NAME: Final = re.compile(r"[A-Za-z0-9!#$%&'*+.^_`|~-]+")
_TRUE: Final = ("1", "true", "yes", "on")
_FALSE: Final = ("0", "false", "no", "off", "")


@dataclass(frozen=True, slots=True)
class RemoteSettings:
    """Where the remote cache is and how to talk to it."""

    scheme: str
    host: str
    port: int | None
    prefix: str
    """The URL's path without its trailing slash: requests go to ``<prefix>/ac/<key>``."""
    read_only: bool
    timeout: float
    headers: tuple[tuple[str, str], ...]
    """Credentials (basic auth from the URL, or the token header), sent with every request."""
    shown: str
    """The URL for messages: without credentials."""


def remote_settings(
    root: Path, *, url: str | None = None, disabled: bool = False, read_only: bool = False
) -> RemoteSettings | None:
    """The remote cache to use, or None for none; bad settings are one clear YardError."""
    table = _table(root)
    read_only = _read_only(table) or read_only  # checked even when no remote is used
    timeout = _timeout(table)
    if disabled:
        return None
    where = f"{ENV_URL}" if url is None and ENV_URL in os.environ else "--remote-cache"
    if url is None:
        url = os.environ.get(ENV_URL)
    if url is None:
        where = "pyproject.toml: tool.yard.cache.remote"
        configured = table.get("remote")
        if configured is not None and not isinstance(configured, str):
            raise YardError(f"{where} must be a URL string")
        url = configured
    if not url:
        return None
    scheme, host, port, prefix, userinfo = _parse_url(url, where)
    headers: list[tuple[str, str]] = []
    if userinfo is not None:
        headers.append(("Authorization", "Basic " + base64.b64encode(userinfo).decode("ascii")))
    token = os.environ.get(ENV_TOKEN)
    if token:
        header = table.get("token-header", "Authorization")
        if not isinstance(header, str) or not _HEADER_NAME.fullmatch(header):
            raise YardError(
                f"pyproject.toml: tool.yard.cache.token-header {header!r} is not a header name"
            )
        if any(ord(c) < 32 or ord(c) > 126 for c in token):
            raise YardError(f"{ENV_TOKEN} holds characters an HTTP header cannot carry")
        if header.lower() == "authorization":
            if userinfo is not None:
                raise YardError(
                    f"give the remote cache credentials in the URL or in {ENV_TOKEN}, not both"
                )
            token = token if " " in token else f"Bearer {token}"
        headers.append((header, token))
    return RemoteSettings(
        scheme=scheme,
        host=host,
        port=port,
        prefix=prefix,
        read_only=read_only,
        timeout=timeout,
        headers=tuple(headers),
        shown=f"{scheme}://{host}{f':{port}' if port else ''}{prefix}",
    )


def _table(root: Path) -> dict[str, Any]:
    path = root / "pyproject.toml"
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
        return {}  # the workspace reader reports a broken root pyproject
    table = data.get("tool", {}).get("yard", {}).get("cache", {})
    if not isinstance(table, dict):
        raise YardError("pyproject.toml: [tool.yard.cache] must be a table")
    for name in table:
        if name not in _KNOWN:
            raise YardError(
                f"pyproject.toml: [tool.yard.cache]: unknown setting {name!r} "
                f"(known: {', '.join(_KNOWN)})"
            )
    return table


def _parse_url(url: str, where: str) -> tuple[str, str, int | None, str, bytes | None]:
    bad = f"{where}: {_redact(url)!r} is not a remote cache URL; expected http(s)://HOST[:PORT][/PATH]"
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError:
        raise YardError(bad) from None
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.query or parts.fragment:
        raise YardError(bad)
    userinfo = None
    if parts.username is not None:
        userinfo = f"{unquote(parts.username)}:{unquote(parts.password or '')}".encode()
    host = parts.hostname
    if ":" in host:
        host = f"[{host}]"  # an IPv6 address
    return parts.scheme, host, port, parts.path.rstrip("/"), userinfo


def _redact(url: str) -> str:
    return re.sub(r"//[^/@]*@", "//***@", url)


def _read_only(table: dict[str, Any]) -> bool:
    text = os.environ.get(ENV_READ_ONLY)
    if text is not None:
        if text.strip().lower() in _TRUE:
            return True
        if text.strip().lower() in _FALSE:
            return False
        raise YardError(f"{ENV_READ_ONLY}={text!r}: expected 1 or 0")
    value = table.get("read-only", False)
    if not isinstance(value, bool):
        raise YardError("pyproject.toml: tool.yard.cache.read-only must be true or false")
    return value


def _timeout(table: dict[str, Any]) -> float:
    text = os.environ.get(ENV_TIMEOUT)
    value: Any = table.get("timeout", DEFAULT_TIMEOUT) if text is None else text
    where = ENV_TIMEOUT if text is not None else "pyproject.toml: tool.yard.cache.timeout"
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        seconds = -1.0
    if isinstance(value, bool) or not 0 < seconds <= 600:
        raise YardError(f"{where} {value!r}: expected seconds, more than 0 and at most 600")
    return seconds
