"""Redis connections: the URL, one pool per URL per process, retries, readable failures."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit, urlunsplit

import redis
from redis.backoff import ExponentialBackoff
from redis.retry import Retry
from switchyard import Config

from switchyard_rq._config import current_config
from switchyard_rq._errors import REFUSED, RedisUnavailableError
from switchyard_rq._settings import TransportSettings
from switchyard_rq._wire.embedded import embedded_url

__all__ = ["get_connection", "redact_url", "redis_errors", "redis_url", "reset_pools"]

_POOLS: dict[tuple[int, str], redis.Redis] = {}
_LOCK = threading.Lock()
# What a retry can help with; refused credentials (ConnectionErrors too) are not retried.
_TRANSIENT = (redis.ConnectionError, redis.TimeoutError)
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


def redis_url(config: Config | None = None) -> str:
    """``SWITCHYARD_REDIS_URL``, else config ``redis-url`` (of ``config``, default the current
    one), else the embedded server's URL (started under ``<workspace>/.switchyard/`` on first
    use)."""
    url = os.environ.get("SWITCHYARD_REDIS_URL", "").strip()
    if url:
        return url
    config = config or current_config()
    if config.redis_url:
        return config.redis_url
    return embedded_url(config.root or Path.cwd())


def redact_url(url: str) -> str:
    """The URL with its password replaced by ``***`` (user names stay: they help)."""
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
    URLs work."""
    url = url or redis_url()
    key = (os.getpid(), url)
    client = _POOLS.get(key)
    if client is not None:
        return client
    with _LOCK:
        client = _POOLS.get(key)
        if client is None:
            client = _POOLS[key] = _make_client(url, TransportSettings.from_env())
    return client


def _make_client(url: str, settings: TransportSettings) -> redis.Redis:
    scheme = urlsplit(url).scheme
    if scheme not in {"redis", "rediss", "unix"}:
        raise ValueError(
            f"unsupported Redis URL {redact_url(url)!r}: use redis://, rediss:// or unix://"
        )
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
    """Turn connection errors (after the retries) into :class:`RedisUnavailableError`."""
    try:
        yield
    except _TRANSIENT as exc:
        raise RedisUnavailableError(url_of(client), exc) from exc
