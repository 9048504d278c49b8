"""The transport's tunables: RQ-compatible TTLs and pool sizes, from ``SWITCHYARD_*`` variables."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Final, final

__all__ = ["TransportSettings"]


def _int_env(name: str, default: int, *, minimum: int) -> int:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ValueError(f"{name}={raw!r} is not an integer") from None
    if value < minimum or (minimum == -1 and value == 0):
        more = " (-1 keeps forever; 0 would drop results)" if minimum == -1 else ""
        raise ValueError(f"{name}={raw!r} must be at least {max(minimum, 1)}{more}")
    return value


def _flag_env(name: str, default: bool = False) -> bool:
    raw = os.environ.get(name, "").strip().lower()
    if raw == "":
        return default
    if raw in {"0", "false", "no", "off"}:
        return False
    if raw in {"1", "true", "yes", "on"}:
        return True
    raise ValueError(f"{name}={raw!r} is not a flag (1/0, true/false, yes/no, on/off)")


@final
@dataclass(frozen=True, slots=True)
class TransportSettings:
    """How long results and failures are kept, and the connection pool's shape.

    ``result_ttl``/``failure_ttl`` are seconds (-1 keeps forever), as RQ reads them from the job.
    """

    #: seconds a finished job (and its result) is kept: an hour, where RQ keeps 500 s, arq an
    #: hour and Dramatiq 10 minutes when its results are on (an action's ``result_ttl`` wins)
    result_ttl: int = 3_600
    failure_ttl: int = 7 * 86_400
    max_connections: int = 50
    pool_timeout: float = 10.0
    health_check_interval: int = 30
    connect_retries: int = 6
    #: a call to an unreachable Redis gives up after retrying this long (plus one connect
    #: attempt's timeout: at most 2 s)
    retry_seconds: float = 2.5
    heartbeat_ttl: int = 15
    #: also write RQ's result streams (``rq:results:<id>``, what RQ's ``Job.return_value()``
    #: reads; about 4.7 KB a job on Redis 7.0) for RQ's own tools: SWITCHYARD_RQ_RESULTS=1
    rq_result_streams: bool = False
    #: write each queue's job event stream (``switchyard:events:<queue>``: scheduled, started,
    #: progress, succeeded, failed, retried, cancelled; ``switchyard events``):
    #: SWITCHYARD_EVENTS=0 turns it off (see docs/workflows.md for what it costs)
    events: bool = True
    #: durable scheduling: ``schedule_action`` returns only once this many replicas of the
    #: master hold the job (Redis ``WAIT``, within ``retry_seconds``), so that a failover cannot
    #: lose it; 0 (the default) trusts asynchronous replication: SWITCHYARD_REDIS_WAIT_REPLICAS
    wait_replicas: int = 0

    @classmethod
    def from_env(cls) -> TransportSettings:
        """From ``SWITCHYARD_RESULT_TTL``, ``SWITCHYARD_FAILURE_TTL``,
        ``SWITCHYARD_REDIS_MAX_CONNECTIONS``, ``SWITCHYARD_REDIS_RETRIES``,
        ``SWITCHYARD_RQ_RESULTS``, ``SWITCHYARD_EVENTS``, ``SWITCHYARD_REDIS_WAIT_REPLICAS``, else
        the defaults (cached per value of those: every ``schedule_action`` reads them)."""
        get = os.environ.get
        key = tuple([get(name) for name in _NAMES])
        found = _CACHE.get(key)
        if found is None:
            found = cls._read()
            if len(_CACHE) > 16:
                _CACHE.clear()
            _CACHE[key] = found
        return found

    @classmethod
    def _read(cls) -> TransportSettings:
        default = _DEFAULT
        return cls(
            result_ttl=_int_env("SWITCHYARD_RESULT_TTL", default.result_ttl, minimum=-1),
            failure_ttl=_int_env("SWITCHYARD_FAILURE_TTL", default.failure_ttl, minimum=-1),
            max_connections=_int_env(
                "SWITCHYARD_REDIS_MAX_CONNECTIONS", default.max_connections, minimum=1
            ),
            connect_retries=_int_env(
                "SWITCHYARD_REDIS_RETRIES", default.connect_retries, minimum=0
            ),
            rq_result_streams=_flag_env("SWITCHYARD_RQ_RESULTS"),
            events=_flag_env("SWITCHYARD_EVENTS", default=True),
            wait_replicas=_int_env(
                "SWITCHYARD_REDIS_WAIT_REPLICAS", default.wait_replicas, minimum=0
            ),
        )


_DEFAULT: Final = TransportSettings()
_NAMES: Final = (
    "SWITCHYARD_RQ_RESULTS",
    "SWITCHYARD_EVENTS",
    "SWITCHYARD_RESULT_TTL",
    "SWITCHYARD_FAILURE_TTL",
    "SWITCHYARD_REDIS_MAX_CONNECTIONS",
    "SWITCHYARD_REDIS_RETRIES",
    "SWITCHYARD_REDIS_WAIT_REPLICAS",
)
_CACHE: dict[tuple[str | None, ...], TransportSettings] = {}
