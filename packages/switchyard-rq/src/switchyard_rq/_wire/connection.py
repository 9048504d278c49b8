"""Redis connections: the URL, one pool per URL per process, retries, readable failures.

Which Redis: ``SWITCHYARD_REDIS_URL``, else ``redis-url`` in ``[tool.switchyard]``, else the
embedded server of the workspace (``embedded``). Outside a workspace there is no embedded one:
a producer there would fill a Redis of its own that no worker reads, so it is an error that says
so. Each process logs (at debug level, on ``switchyard.redis``) which Redis it uses and why.
"""

from __future__ import annotations

import logging
import os
import re
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar, final
from urllib.parse import urlsplit, urlunsplit

import redis
from redis.backoff import ExponentialBackoff, NoBackoff
from redis.retry import Retry
from redis.sentinel import SentinelConnectionPool
from switchyard import Config

from switchyard_rq._config import current_config
from switchyard_rq._errors import REFUSED, RedisUnavailableError, TransportError
from switchyard_rq._settings import TransportSettings
from switchyard_rq._wire.cluster import is_cluster
from switchyard_rq._wire.deploy import FORMS, is_multi, make_multi_client, parse_deployment
from switchyard_rq._wire.embedded import embedded_url

__all__ = [
    "RedisCheck",
    "RedisConfigError",
    "check_redis",
    "check_url",
    "cluster_configured",
    "get_connection",
    "redact_url",
    "redis_errors",
    "redis_origin",
    "redis_url",
    "reset_pools",
]

log = logging.getLogger("switchyard.redis")

_POOLS: dict[tuple[int, str], redis.Redis] = {}
_LOCK = threading.Lock()
_TOLD: set[tuple[str, str]] = set()  # (url, origin) already logged by this process
_SCHEMES = ("redis", "rediss", "unix")
_FORMS = f"use redis://HOST:PORT/DB, rediss://HOST:PORT/DB, unix:///PATH?db=DB, {FORMS}"
# What a retry can help with; refused credentials (ConnectionErrors too) are not retried.
_TRANSIENT = (redis.ConnectionError, redis.TimeoutError)
#: what says "Redis cannot be reached now" (after the retries), a cluster's trouble included
_UNREACHABLE = (
    *_TRANSIENT,
    redis.exceptions.RedisClusterException,
    redis.exceptions.ClusterDownError,
)
_T = TypeVar("_T")


_ACTIVE = threading.local()  # the deadline of the outermost retrying call in this thread


class _Retry(Retry):
    """redis-py's Retry with a time budget: connection errors are retried with exponential
    backoff until ``budget`` seconds have passed since the outermost call began, whatever nests
    inside it (a command whose connection must first connect retries once, not retries x
    retries); refused credentials fail at once (retrying a wrong password only delays the error,
    and may lock the account)."""

    def __init__(self, backoff: Any, retries: int, *, budget: float, **kwargs: Any) -> None:
        super().__init__(backoff, retries, **kwargs)
        self._budget = budget

    def call_with_retry(
        self,
        do: Callable[[], _T],
        fail: Callable[[Exception], Any] | Callable[[Exception, int], Any],
        is_retryable: Callable[[Exception], bool] | None = None,
        with_failure_count: bool = False,
    ) -> _T:
        outermost = getattr(_ACTIVE, "deadline", None) is None
        if outermost:
            _ACTIVE.deadline = time.monotonic() + self._budget
        try:
            self._backoff.reset()  # type: ignore[no-untyped-call]
            failures = 0
            while True:
                try:
                    return do()
                except self._supported_errors as error:
                    if isinstance(error, REFUSED) or (is_retryable and not is_retryable(error)):
                        raise
                    failures += 1
                    if with_failure_count:
                        fail(error, failures)  # type: ignore[call-arg]
                    else:
                        fail(error)  # type: ignore[call-arg]
                    pause = self._backoff.compute(failures)
                    if failures > self._retries or time.monotonic() + pause > _ACTIVE.deadline:
                        raise error
                    time.sleep(pause)
        finally:
            if outermost:
                _ACTIVE.deadline = None


class RedisConfigError(TransportError, ValueError):
    """No Redis is configured where one is needed, or a Redis URL is not one; the message says
    which setting and what to do."""


@final
@dataclass(frozen=True, slots=True)
class _Choice:
    url: str | None  # None: the embedded server of ``root``
    origin: str
    root: Path | None = None


def _choose(config: Config | None) -> _Choice:
    url = os.environ.get("SWITCHYARD_REDIS_URL", "").strip()
    if url:
        return _Choice(url, "SWITCHYARD_REDIS_URL")
    config = config or current_config()
    if config.redis_url:
        where = config.root / "pyproject.toml" if config.root else "[tool.switchyard]"
        return _Choice(config.redis_url, f"redis-url in {where}")
    if config.root is None:
        here = Path.cwd()
        raise RedisConfigError(
            f"no Redis for {here}: SWITCHYARD_REDIS_URL is not set and no workspace encloses "
            "this folder (the embedded Redis serves a workspace's own processes; one started "
            "here would serve no worker); set SWITCHYARD_REDIS_URL=redis://HOST:6379/0 to the "
            "Redis your workers use, or run this from inside the workspace"
        )
    return _Choice(None, "embedded", config.root)


def redis_url(config: Config | None = None) -> str:
    """``SWITCHYARD_REDIS_URL``, else config ``redis-url`` (of ``config``, default the current
    one), else, in a workspace, its embedded server's URL (started under
    ``<workspace>/.switchyard/`` on first use). Outside a workspace with no URL configured,
    raises :class:`RedisConfigError`: a server of its own there would serve no worker."""
    choice = _choose(config)
    url = choice.url
    if url is None:
        assert choice.root is not None
        url = embedded_url(choice.root)
    if (url, choice.origin) not in _TOLD:
        _TOLD.add((url, choice.origin))
        log.debug("Redis: %s (%s)", redact_url(url), choice.origin)
    return url


def cluster_configured(config: Config | None = None) -> bool:
    """Whether the configured Redis (see :func:`redis_url`) is a cluster; starts nothing."""
    try:
        url = _choose(config).url
    except RedisConfigError:
        return False
    return url is not None and url.split("://", 1)[0].lower().endswith("+cluster")


def redis_origin(config: Config | None = None) -> str:
    """Where :func:`redis_url`'s URL comes from: ``SWITCHYARD_REDIS_URL``, ``redis-url in
    <path>`` or ``embedded``; starts nothing, raises as :func:`redis_url` does."""
    return _choose(config).origin


def _origin_of(url: str) -> str:
    """The setting ``url`` comes from, if it is the configured one (for errors)."""
    try:
        choice = _choose(None)
    except RedisConfigError:
        choice = None
    return choice.origin if choice and choice.url == url else "given to get_connection"


def check_url(url: str, origin: str) -> str:
    """``url`` if it is a Redis URL, else :class:`RedisConfigError` naming ``origin`` (the
    setting it came from) and the problem."""
    if is_multi(url):
        try:
            parse_deployment(url)
        except ValueError as exc:
            raise RedisConfigError(
                f"bad Redis URL {redact_url(url)!r} ({origin}): {exc}; use {FORMS}"
            ) from None
        return url
    parts = urlsplit(url)
    problem = None
    if parts.scheme not in _SCHEMES:
        problem = f"unknown scheme {parts.scheme!r}" if parts.scheme else "no scheme"
    elif parts.scheme == "unix":
        if not parts.path:
            problem = "no socket path"
    else:
        try:
            port = parts.port
        except ValueError:
            port = -1
        db = parts.path.strip("/")
        if port is not None and not 0 < port < 65536:
            problem = f"the port must be 1-65535, not {parts.netloc.rsplit(':', 1)[-1]!r}"
        elif db and not db.isdigit():
            problem = f"the database must be a number, as in /0, not {db!r}"
    if problem is None:
        from redis.connection import parse_url

        try:
            parse_url(url)  # type: ignore[no-untyped-call]  # its query options, checked
        except ValueError as exc:
            problem = str(exc).rstrip(".").lower()
    if problem is not None:
        raise RedisConfigError(f"bad Redis URL {redact_url(url)!r} ({origin}): {problem}; {_FORMS}")
    return url


def redact_url(url: str) -> str:
    """The URL with its password replaced by ``***`` (user names stay: they help)."""
    if is_multi(url):  # many hosts: no urlsplit
        url = re.sub(r"(sentinel_password=)[^&#]*", r"\1***", url)
        scheme, _, rest = url.partition("://")
        userinfo, at, _ = rest.partition("/")[0].rpartition("@")
        if not at or ":" not in userinfo:
            return url if not at else f"{scheme}://***@{rest[len(userinfo) + 1 :]}"
        return f"{scheme}://{userinfo.split(':', 1)[0]}:***@{rest[len(userinfo) + 1 :]}"
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    if parts.port is not None:
        host = f"{host}:{parts.port}"
    user = parts.username or ""
    return urlunsplit(parts._replace(netloc=f"{user}:***@{host}"))


def get_connection(url: str | None = None) -> redis.Redis:
    """The process's client for ``url`` (default :func:`redis_url`): one pool per URL per process,
    bounded (``SWITCHYARD_REDIS_MAX_CONNECTIONS``), health-checked, retrying connection errors with
    exponential backoff. ``redis://``, ``rediss://`` (TLS), ``unix://`` and ``user:password@``
    URLs work, and so do a Redis Cluster (``redis+cluster://``) and a master behind Sentinel
    (``redis+sentinel://``); a cluster's client asks its seeds for the layout here, and raises
    :class:`RedisUnavailableError` when none answers."""
    url = url or redis_url()
    key = (os.getpid(), url)
    client = _POOLS.get(key)
    if client is not None:
        return client
    with _LOCK:
        client = _POOLS.get(key)
        if client is None:
            check_url(url, _origin_of(url))
            try:
                client = _make_client(url, TransportSettings.from_env())
            except _UNREACHABLE as exc:
                raise RedisUnavailableError(redact_url(url), _refusal(exc) or exc) from exc
            _POOLS[key] = client
    return client


def _refusal(exc: BaseException) -> BaseException | None:
    """The credentials' refusal behind ``exc`` (a cluster client reports its seeds' answers as
    text in a RedisClusterException), else None."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, REFUSED):
            return seen
        seen = seen.__cause__ or seen.__context__
    text = str(exc)
    if "invalid username-password" in text or "WRONGPASS" in text or "NOAUTH" in text:
        return redis.AuthenticationError(text.rsplit(": ", 1)[-1])
    return None


def _make_client(url: str, settings: TransportSettings) -> redis.Redis:
    """The client of ``url``: a bounded, retrying pool; for a cluster a ``redis.RedisCluster``
    (typed here as the ``redis.Redis`` it mostly behaves as: code that must tell them apart asks
    :func:`~switchyard_rq._wire.cluster.is_cluster`)."""
    scheme = url.split("://", 1)[0]
    options: dict[str, Any] = {
        "max_connections": settings.max_connections,
        "timeout": settings.pool_timeout,
        "health_check_interval": settings.health_check_interval,
        "socket_connect_timeout": min(2.0, settings.retry_seconds),
        "retry": _Retry(
            ExponentialBackoff(cap=1.0, base=0.05),
            settings.connect_retries,
            budget=settings.retry_seconds,
            supported_errors=_TRANSIENT,
        ),
        "retry_on_error": list(_TRANSIENT),
    }
    if is_multi(url):
        client: redis.Redis = make_multi_client(parse_deployment(url), options, options["retry"])
        return client
    if scheme != "unix":
        options["socket_keepalive"] = True
    pool = redis.BlockingConnectionPool.from_url(url, **options)
    return redis.Redis(connection_pool=pool)


def reset_pools() -> None:
    """Close and forget every pool of this process (tests, and after a fork if you like)."""
    with _LOCK:
        clients = list(_POOLS.values())
        _POOLS.clear()
    for client in clients:
        client.connection_pool.disconnect()


def url_of(client: redis.Redis) -> str:
    """A printable, password-free description of where ``client`` points."""
    if is_cluster(client):
        cluster: Any = client
        nodes = ",".join(f"{n.host}:{n.port}" for n in cluster.get_primaries())
        return f"redis+cluster://{nodes}"
    pool = client.connection_pool
    if isinstance(pool, SentinelConnectionPool):
        hosts = ",".join(
            f"{k.get('host')}:{k.get('port')}"
            for k in (s.connection_pool.connection_kwargs for s in pool.sentinel_manager.sentinels)
        )
        return f"redis+sentinel://{hosts}/{pool.service_name}"
    kwargs = client.connection_pool.connection_kwargs
    if "path" in kwargs:
        return f"unix://{kwargs['path']}"
    scheme = (
        "rediss" if client.connection_pool.connection_class.__name__ == "SSLConnection" else "redis"
    )
    user = kwargs.get("username")
    auth = f"{user}:***@" if user else ("***@" if kwargs.get("password") else "")
    host, port, db = kwargs.get("host", "localhost"), kwargs.get("port", 6379), kwargs.get("db", 0)
    return f"{scheme}://{auth}{host}:{port}/{db}"


@contextmanager
def redis_errors(client: redis.Redis) -> Iterator[None]:
    """Turn connection errors (after the retries) into :class:`RedisUnavailableError`; so too a
    cluster none of whose nodes answers, or whose slot for a key no master serves."""
    try:
        yield
    except _UNREACHABLE as exc:
        raise RedisUnavailableError(url_of(client), exc) from exc


@final
@dataclass(frozen=True, slots=True)
class RedisCheck:
    """What one PING of a Redis said: ``problem`` is None when it answered, else why not in a
    few words ("connection refused"); ``error`` is the exception behind it."""

    #: the URL, password replaced by ``***``
    url: str
    problem: str | None = None
    error: Exception | None = None

    @property
    def refused(self) -> bool:
        """Redis refused the credentials: waiting will not help."""
        return isinstance(self.error, REFUSED)

    def __str__(self) -> str:
        if self.problem is None:
            return f"Redis at {self.url} answers"
        return f"waiting for Redis at {self.url}: {self.problem}"


def check_redis(url: str, *, timeout: float = 1.0) -> RedisCheck:
    """PING the Redis at ``url`` once, on a connection of its own, without retries: whether it
    answers now (for readiness checks and start-up messages; a pool retries instead)."""
    shown = redact_url(url)
    client: Any = None
    try:
        if is_multi(url):  # a cluster (its seeds asked for its layout) or the sentinels' master
            options = {"max_connections": 2, "timeout": timeout, "health_check_interval": 0,
                       "socket_connect_timeout": timeout, "retry_on_error": []}  # fmt: skip
            client = make_multi_client(parse_deployment(url), options, Retry(NoBackoff(), 0))
        else:
            client = redis.Redis.from_url(
                url,
                socket_connect_timeout=timeout,
                socket_timeout=timeout,
                retry=Retry(NoBackoff(), 0),  # one try
            )
    except ValueError as exc:
        return RedisCheck(shown, f"not a Redis URL: {exc}", exc)
    except Exception as exc:  # a cluster client asks its seeds as it starts
        return RedisCheck(shown, _reason(exc, timeout), exc)
    try:
        client.ping()
    except Exception as exc:
        return RedisCheck(shown, _reason(exc, timeout), exc)
    finally:
        client.close()
    return RedisCheck(shown)


def _reason(exc: Exception, timeout: float) -> str:
    """A few words for people: "connection refused", "no answer within 1 s"..."""
    if isinstance(exc, REFUSED):
        return f"it refused the credentials ({exc})"
    if isinstance(exc, redis.TimeoutError):
        return f"no answer within {timeout:g} s"
    cause = exc.__cause__ or exc.__context__
    if isinstance(cause, OSError) and cause.strerror:
        return cause.strerror[0].lower() + cause.strerror[1:]
    return f"{type(exc).__name__}: {exc}"
