"""Every per-action option, declared once: the frozen :class:`ActionPolicy` and its option table.

An option is one :class:`Option` row in ``OPTIONS``: its name, default, checker and help. The
decorator, the builder, the manifest, ``switchyard actions show`` and the transport all read a
policy through that table, so a new option is one row here plus the component that enforces it.
Checkers turn what a user writes (``rate="100/s"``, ``breaker={"failures": 5}``) into canonical
values and raise ``ValueError`` with the message that ends up after ``action NAME: OPTION ...``.

No dataclasses, no re at import time: ``import switchyard`` stays cheap.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any, Final, NoReturn, final

from ._errors import ActionDefinitionError

__all__ = ["OPTIONS", "ActionPolicy", "Breaker", "Cache", "Option", "Rate", "parse_duration"]

_UNITS: Final = {
    "ms": 0.001,
    "s": 1.0,
    "sec": 1.0,
    "second": 1.0,
    "seconds": 1.0,
    "m": 60.0,
    "min": 60.0,
    "minute": 60.0,
    "minutes": 60.0,
    "h": 3600.0,
    "hour": 3600.0,
    "hours": 3600.0,
    "d": 86400.0,
    "day": 86400.0,
    "days": 86400.0,
}
PRIORITIES: Final = ("high", "normal", "low")


def _number(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    number = float(value)
    return number if math.isfinite(number) else None


def parse_duration(value: object, *, what: str = "a duration") -> float:
    """Seconds from a number or a text such as ``"30s"``, ``"5m"``, ``"250ms"``, ``"1.5h"``."""
    number = _number(value)
    if number is None and isinstance(value, str):
        text = value.strip().lower()
        digits = text.rstrip("abcdefghijklmnopqrstuvwxyz").strip()
        unit = text[len(digits) :].strip() or "s"
        try:
            number = float(digits) * _UNITS[unit] if digits else None
        except (KeyError, ValueError):
            number = None
        if number is not None and not math.isfinite(number):
            number = None
    if number is None or number <= 0:
        raise ValueError(f"must be {what} > 0 (seconds, or text like '30s', '5m'), got {value!r}")
    return number


def _period_text(seconds: float) -> str:
    for unit, size in (("d", 86400.0), ("h", 3600.0), ("min", 60.0), ("s", 1.0)):
        if seconds >= size and (seconds / size).is_integer():
            count = int(seconds / size)
            return unit if count == 1 else f"{count}{unit}"
    return f"{seconds * 1000:g}ms"


@final
class Rate:
    """``count`` job starts per ``period`` seconds, evenly spaced, with bursts of up to
    ``burst`` (default: a tenth of ``count``, at least 1). Written ``"100/s"``, ``"5000/min"``,
    ``"10/30s"``."""

    __slots__ = ("burst", "count", "period")

    count: int
    period: float
    burst: int

    def __init__(self, count: int, period: float = 1.0, *, burst: int | None = None) -> None:
        if isinstance(count, bool) or not isinstance(count, int) or count < 1:
            raise ValueError(f"count must be an integer >= 1, got {count!r}")
        seconds = parse_duration(period, what="a period")
        if burst is None:
            burst = max(1, count // 10)
        if isinstance(burst, bool) or not isinstance(burst, int) or not 1 <= burst <= count:
            raise ValueError(f"burst must be an integer from 1 to {count}, got {burst!r}")
        object.__setattr__(self, "count", count)
        object.__setattr__(self, "period", seconds)
        object.__setattr__(self, "burst", burst)

    @classmethod
    def parse(cls, value: object) -> Rate:
        """A Rate from ``"100/s"`` (or a Rate)."""
        if isinstance(value, Rate):
            return value
        if isinstance(value, str) and "/" in value:
            count_text, _, period_text = value.partition("/")
            period_text = period_text.strip()
            if period_text and period_text[0].isalpha():
                period_text = "1" + period_text
            try:
                count = int(count_text.strip())
                return cls(count, parse_duration(period_text))
            except ValueError:
                pass
        raise ValueError(
            f"must be '<count>/<period>' such as '100/s', '5000/min' or '10/30s', got {value!r}"
        )

    @property
    def interval(self) -> float:
        """Seconds between two starts at the steady rate."""
        return self.period / self.count

    def __setattr__(self, key: str, value: object) -> NoReturn:
        raise AttributeError("Rate is frozen")

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rate_of, (self.count, self.period, self.burst))

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Rate) and (self.count, self.period, self.burst) == (
            other.count,
            other.period,
            other.burst,
        )

    def __hash__(self) -> int:
        return hash((self.count, self.period, self.burst))

    def __str__(self) -> str:
        text = f"{self.count}/{_period_text(self.period)}"
        return text if self.burst == max(1, self.count // 10) else f"{text} burst {self.burst}"

    def __repr__(self) -> str:
        return f"Rate({self.count}, {self.period:g}, burst={self.burst})"

    def to_json(self) -> dict[str, Any]:
        return {"count": self.count, "period": self.period, "burst": self.burst}


@final
class Breaker:
    """A circuit breaker: open after ``failures`` failures within ``window`` seconds, or, with
    ``ratio``, when at least ``min_calls`` ran in the window and that share of them failed; while
    open (``cooldown`` seconds) the action's jobs wait; then one probe runs (half-open): its
    success closes the breaker, its failure opens it again."""

    __slots__ = ("cooldown", "failures", "min_calls", "ratio", "window")

    failures: int | None
    ratio: float | None
    min_calls: int
    window: float
    cooldown: float

    def __init__(
        self,
        *,
        failures: int | None = None,
        ratio: float | None = None,
        min_calls: int = 10,
        window: float | str = 60.0,
        cooldown: float | str = 30.0,
    ) -> None:
        if failures is None and ratio is None:
            failures = 5
        if failures is not None and (
            isinstance(failures, bool) or not isinstance(failures, int) or failures < 1
        ):
            raise ValueError(f"failures must be an integer >= 1, got {failures!r}")
        if ratio is not None:
            number = _number(ratio)
            if number is None or not 0 < number <= 1:
                raise ValueError(f"ratio must be a number in (0, 1], got {ratio!r}")
            ratio = number
        if isinstance(min_calls, bool) or not isinstance(min_calls, int) or min_calls < 1:
            raise ValueError(f"min_calls must be an integer >= 1, got {min_calls!r}")
        object.__setattr__(self, "failures", failures)
        object.__setattr__(self, "ratio", ratio)
        object.__setattr__(self, "min_calls", min_calls)
        object.__setattr__(self, "window", parse_duration(window, what="a window"))
        object.__setattr__(self, "cooldown", parse_duration(cooldown, what="a cooldown"))

    @classmethod
    def parse(cls, value: object) -> Breaker:
        """A Breaker from a Breaker, a mapping of its fields, ``True`` (the defaults), or an
        integer (the failure count)."""
        if isinstance(value, Breaker):
            return value
        if value is True:
            return cls()
        if isinstance(value, int) and not isinstance(value, bool):
            return cls(failures=value)
        if isinstance(value, Mapping):
            known = {"failures", "ratio", "min_calls", "window", "cooldown"}
            unknown = sorted(set(map(str, value)) - known)
            if unknown:
                raise ValueError(
                    f"has no field {unknown[0]!r} (fields: {', '.join(sorted(known))})"
                )
            try:
                return cls(**{str(k): v for k, v in value.items()})
            except TypeError as error:  # pragma: no cover - fields checked above
                raise ValueError(str(error)) from None
        raise ValueError(
            "must be True, a failure count, a Breaker(...) or a mapping such as "
            f"{{'failures': 5, 'window': '60s', 'cooldown': '30s'}}, got {value!r}"
        )

    def __setattr__(self, key: str, value: object) -> NoReturn:
        raise AttributeError("Breaker is frozen")

    def __reduce__(self) -> tuple[Any, ...]:
        return (_breaker_of, (self.to_json(),))

    def _key(self) -> tuple[object, ...]:
        return (self.failures, self.ratio, self.min_calls, self.window, self.cooldown)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Breaker) and self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._key())

    def __str__(self) -> str:
        if self.ratio is not None:
            trip = f"{self.ratio:.0%} of >= {self.min_calls} calls failed"
        else:
            trip = f"{self.failures} failures"
        return (
            f"open after {trip} within {_period_text(self.window)}, "
            f"for {_period_text(self.cooldown)}"
        )

    def __repr__(self) -> str:
        return (
            f"Breaker(failures={self.failures}, ratio={self.ratio}, min_calls={self.min_calls}, "
            f"window={self.window:g}, cooldown={self.cooldown:g})"
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "failures": self.failures,
            "ratio": self.ratio,
            "min_calls": self.min_calls,
            "window": self.window,
            "cooldown": self.cooldown,
        }


@final
class Cache:
    """Keep an action's results for ``ttl`` seconds, keyed by action, action version and
    canonical input; ``tags`` are templates over the input's fields (``"user:{user_id}"``) that
    ``ctx.invalidate(...)`` or ``switchyard cache invalidate`` drop them by. Written
    ``cache="5m"`` or ``cache={"ttl": "5m", "tags": ["user:{user_id}"]}``."""

    __slots__ = ("tags", "ttl")

    ttl: float
    tags: tuple[str, ...]

    def __init__(self, ttl: float | str, *, tags: tuple[str, ...] | list[str] = ()) -> None:
        seconds = parse_duration(ttl, what="a time to live")
        given: object = tags
        if not isinstance(given, list | tuple) or not all(isinstance(t, str) and t for t in given):
            raise ValueError(f"tags must be a list of non-empty strings, got {tags!r}")
        object.__setattr__(self, "ttl", seconds)
        object.__setattr__(self, "tags", tuple(tags))

    @classmethod
    def parse(cls, value: object) -> Cache:
        """A Cache from a Cache, a duration, or a mapping ``{"ttl": ..., "tags": [...]}``."""
        if isinstance(value, Cache):
            return value
        if isinstance(value, Mapping):
            unknown = sorted(set(map(str, value)) - {"ttl", "tags"})
            if unknown or "ttl" not in value:
                raise ValueError(
                    "must be a duration such as '5m' or {'ttl': '5m', 'tags': ['user:{user_id}']}"
                    f", got {dict(value)!r}"
                )
            return cls(value["ttl"], tags=tuple(value.get("tags", ())))
        try:
            return cls(value)  # type: ignore[arg-type]
        except ValueError:
            raise ValueError(
                f"must be a duration such as '5m' or {{'ttl': '5m', 'tags': [...]}}, got {value!r}"
            ) from None

    def fields(self) -> list[str]:
        """The input fields the tag templates use."""
        import string

        names: list[str] = []
        for tag in self.tags:
            for _, field, _, _ in string.Formatter().parse(tag):
                if field is not None and field not in names:
                    names.append(field)
        return names

    def __setattr__(self, key: str, value: object) -> NoReturn:
        raise AttributeError("Cache is frozen")

    def __reduce__(self) -> tuple[Any, ...]:
        return (_cache_of, (self.ttl, self.tags))

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Cache) and (self.ttl, self.tags) == (other.ttl, other.tags)

    def __hash__(self) -> int:
        return hash((self.ttl, self.tags))

    def __str__(self) -> str:
        text = _period_text(self.ttl)
        return f"{text}, tags {', '.join(self.tags)}" if self.tags else text

    def __repr__(self) -> str:
        return f"Cache({self.ttl:g}, tags={self.tags!r})"

    def to_json(self) -> dict[str, Any]:
        return {"ttl": self.ttl, "tags": list(self.tags)}


# -- checkers: value -> canonical value, or ValueError("must be ...") ----------------------------


def _queue(value: object) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"must be a non-empty string or None, got {value!r}")
    if "," in value or any(c.isspace() for c in value):
        raise ValueError(f"must be a queue name without commas or spaces, got {value!r}")
    return value


def _count(low: int, what: str = "an integer") -> Callable[[object], int]:
    def check(value: object) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise ValueError(f"must be {what} >= {low}, got {value!r}")
        return value

    return check


def _optional_count(value: object) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"must be an integer >= 1 (jobs running at once) or None, got {value!r}")
    return value


def _seconds_or_zero(value: object) -> float:
    number = _number(value)
    if number is None or number < 0:
        raise ValueError(f"must be a number of seconds >= 0, got {value!r}")
    return number


def _timeout(value: object) -> float | None:
    if value is None:
        return None
    return parse_duration(value, what="a number of seconds")


def _result_ttl(value: object) -> int | None:
    if value is None:
        return None
    if value == 0 and not isinstance(value, bool):
        return 0
    return math.ceil(parse_duration(value, what="a duration (0: keep no result)"))


def _flag(value: object) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"must be True or False, got {value!r}")
    return value


def _priority(value: object) -> str:
    if value not in PRIORITIES:
        raise ValueError(f"must be 'high', 'normal' or 'low', got {value!r}")
    return str(value)


def _key_field(value: object) -> str | None:
    if value is None:
        return None
    parts = value.split(".") if isinstance(value, str) else []
    if not parts or not all(p.isidentifier() for p in parts):
        raise ValueError(
            f"must name a field of the input model (e.g. 'tenant_id' or 'customer.id'), "
            f"got {value!r}"
        )
    return str(value)


def _rate(value: object) -> Rate | None:
    return None if value is None else Rate.parse(value)


def _breaker(value: object) -> Breaker | None:
    if value is None or value is False:
        return None
    return Breaker.parse(value)


def _cache(value: object) -> Cache | None:
    if value is None or value is False:
        return None
    return Cache.parse(value)


def _cron(value: object) -> str | None:
    if value is None:
        return None
    from ._schedule import check_cron

    return check_cron(value)


def _every(value: object) -> int | None:
    if value is None:
        return None
    from ._schedule import check_every

    return check_every(value)


def _timezone(value: object) -> str:
    if value == "UTC":
        return "UTC"
    from ._schedule import check_timezone

    return check_timezone(value)


def _schedule_data(value: object) -> str | None:
    if value is None:
        return None
    from ._schedule import check_data

    return check_data(value)


def _overlap(value: object) -> str:
    if value not in ("skip", "queue", "allow"):
        raise ValueError(f"must be 'skip', 'queue' or 'allow', got {value!r}")
    return str(value)


def _catchup(value: object) -> str:
    if value in ("none", "latest"):
        return str(value)
    from ._schedule import check_catchup

    return str(check_catchup(value))


def _to_json(value: object) -> object:
    to_json = getattr(value, "to_json", None)
    return to_json() if to_json is not None else value


def _rate_from_json(value: object) -> Rate | None:
    if isinstance(value, Mapping):
        return Rate(value["count"], value["period"], burst=value["burst"])
    return _rate(value)


def _breaker_from_json(value: object) -> Breaker | None:
    if isinstance(value, Mapping):
        return Breaker(**{str(k): v for k, v in value.items()})
    return _breaker(value)


@final
class Option:
    """One per-action option: its name, default, checker, help, and its JSON form."""

    __slots__ = ("check", "default", "from_json", "help", "name")

    def __init__(
        self,
        name: str,
        default: object,
        check: Callable[[object], object],
        help: str,
        *,
        from_json: Callable[[object], object] | None = None,
    ) -> None:
        self.name = name
        self.default = default
        self.check = check
        self.help = help
        self.from_json = from_json or check


#: every per-action option, in the order ``actions show`` prints them
OPTIONS: Final[dict[str, Option]] = {
    o.name: o
    for o in (
        Option("queue", None, _queue, "queue hint (routing rules win over it)"),
        Option("priority", "normal", _priority, "high, normal or low within its queue"),
        Option("retries", 0, _count(0), "attempts after the first failure"),
        Option("backoff", 1.0, _seconds_or_zero, "seconds before the first retry, doubling"),
        Option("timeout", None, _timeout, "seconds a run may take (None: no limit)"),
        Option("idempotent", True, _flag, "False: a run cut short by a dead worker fails"),
        Option("io_bound", False, _flag, "a sync handler that waits on I/O: run in threads"),
        Option("concurrency", None, _optional_count, "runs at once across every worker"),
        Option("concurrency_key", None, _key_field, "input field: the limit applies per value"),
        Option(
            "rate",
            None,
            _rate,
            "starts per period across every worker ('100/s')",
            from_json=_rate_from_json,
        ),
        Option("rate_key", None, _key_field, "input field: the rate applies per value"),
        Option(
            "breaker",
            None,
            _breaker,
            "circuit breaker: defer jobs after failures",
            from_json=_breaker_from_json,
        ),
        Option("cache", None, _cache, "keep results this long ('5m'), with tags to drop them by"),
        Option(
            "result_ttl",
            None,
            _result_ttl,
            "keep a job's result this long ('1h'; 0: keep none; None: the transport's default)",
        ),
        Option("schedule", None, _cron, "fire on this cron expression ('0 3 * * *')"),
        Option("every", None, _every, "fire at this interval ('30s', '5m'; whole seconds)"),
        Option("timezone", "UTC", _timezone, "the time zone of schedule's cron expression"),
        Option(
            "schedule_data",
            None,
            _schedule_data,
            "the input a scheduled firing gets (JSON object; default {})",
        ),
        Option("overlap", "skip", _overlap, "while the last firing runs: skip, queue or allow"),
        Option("catchup", "latest", _catchup, "missed ticks: none, latest or 'all within 1h'"),
    )
}


@final
class ActionPolicy:
    """Every per-action option of one action, checked and frozen (see ``OPTIONS``).

    ``ActionPolicy(retries=3, rate="100/s")`` checks each value; an unknown or bad option raises
    ``ValueError`` naming it (actions raise ActionDefinitionError naming the action too).
    """

    __slots__ = (*OPTIONS, "_hash")

    queue: str | None
    priority: str
    retries: int
    backoff: float
    timeout: float | None
    idempotent: bool
    io_bound: bool
    concurrency: int | None
    concurrency_key: str | None
    rate: Rate | None
    rate_key: str | None
    breaker: Breaker | None
    cache: Cache | None
    result_ttl: int | None
    schedule: str | None
    every: int | None
    timezone: str
    schedule_data: str | None
    overlap: str
    catchup: str
    _hash: int

    def __init__(self, **options: Any) -> None:
        _check_names(options)
        for name, option in OPTIONS.items():
            value = options.get(name, option.default)
            try:
                checked = option.check(value)
            except ValueError as error:
                raise ValueError(f"{name} {error}") from None
            object.__setattr__(self, name, checked)
        if self.concurrency_key is not None and self.concurrency is None:
            raise ValueError("concurrency_key needs concurrency (how many runs at once per key)")
        if self.rate_key is not None and self.rate is None:
            raise ValueError("rate_key needs rate (how many starts per period per key)")
        self._check_schedule()
        object.__setattr__(self, "_hash", hash(self._values()))  # a policy keys per-job caches

    def __setattr__(self, key: str, value: object) -> NoReturn:
        raise AttributeError("ActionPolicy is frozen; use replace(...)")

    def __delattr__(self, key: str) -> NoReturn:
        raise AttributeError("ActionPolicy is frozen")

    def _values(self) -> tuple[object, ...]:
        return tuple(getattr(self, name) for name in OPTIONS)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ActionPolicy) and self._values() == other._values()

    def __hash__(self) -> int:
        return self._hash

    def __repr__(self) -> str:
        changed = [f"{k}={v!r}" for k, v in self.items() if v != OPTIONS[k].default]
        return f"ActionPolicy({', '.join(changed)})"

    def __reduce__(self) -> tuple[Any, ...]:
        return (_from_items, (tuple(self.items()),))

    def items(self) -> list[tuple[str, Any]]:
        """``(option, value)`` for every option, in table order."""
        return [(name, getattr(self, name)) for name in OPTIONS]

    def replace(self, **changes: Any) -> ActionPolicy:
        """A new policy with ``changes`` applied (checked like the constructor)."""
        return ActionPolicy(**{**dict(self.items()), **changes})

    def to_json(self) -> dict[str, Any]:
        """Every option as JSON (rates and breakers as objects)."""
        return {name: _to_json(value) for name, value in self.items()}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ActionPolicy:
        """The policy :meth:`to_json` wrote; options it lacks take their defaults."""
        values = {}
        for name, raw in data.items():
            option = OPTIONS.get(name)
            if option is None:
                raise ValueError(f"unknown option {name!r}")
            values[name] = option.from_json(raw)
        return cls(**values)

    def _check_schedule(self) -> None:
        if self.schedule is not None and self.every is not None:
            raise ValueError("give either schedule (cron) or every (an interval), not both")
        if self.schedule is None and self.every is None:
            for name in ("timezone", "schedule_data", "overlap", "catchup"):
                if getattr(self, name) != OPTIONS[name].default:
                    raise ValueError(f"{name} needs schedule (cron) or every (an interval)")
        elif self.every is not None and self.timezone != "UTC":
            raise ValueError(
                "timezone is for schedule (cron); an interval (every) is anchored at the Unix "
                "epoch, whatever the zone"
            )

    @property
    def scheduled(self) -> bool:
        """Whether the action declares a schedule (``schedule`` or ``every``)."""
        return self.schedule is not None or self.every is not None

    @property
    def flow_controlled(self) -> bool:
        """Whether a job of this action needs a limiter's permission to start."""
        return self.concurrency is not None or self.rate is not None or self.breaker is not None


def _rate_of(count: int, period: float, burst: int) -> Rate:
    return Rate(count, period, burst=burst)


def _breaker_of(fields: dict[str, Any]) -> Breaker:
    return Breaker(**fields)


def _cache_of(ttl: float, tags: tuple[str, ...]) -> Cache:
    return Cache(ttl, tags=tags)


def _from_items(items: tuple[tuple[str, Any], ...]) -> ActionPolicy:
    return ActionPolicy(**dict(items))


def _check_names(options: Mapping[str, Any]) -> None:
    for name in options:
        if name not in OPTIONS:
            import difflib

            close = difflib.get_close_matches(name, list(OPTIONS), n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise ValueError(f"unknown option {name!r}{hint}")


def build_policy(action: str, options: Mapping[str, Any]) -> ActionPolicy:
    """``ActionPolicy(**options)``, its errors as ActionDefinitionError naming ``action``."""
    try:
        return ActionPolicy(**options)
    except ValueError as error:
        raise ActionDefinitionError(f"action {action}: {error}", action=action) from None
