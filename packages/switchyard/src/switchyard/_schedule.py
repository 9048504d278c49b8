"""Schedules: an action fired on a cron expression or an interval, with its data, time zone,
overlap and catch-up policies.

A schedule is declared on the action (``@action(..., schedule="0 3 * * *")`` or ``every="30s"``,
see the policy's options) or in ``[tool.switchyard.schedules]``; :func:`load_schedules` gathers
both into frozen :class:`Schedule` values, checked against the registry (the action exists, the
data fits its input model). Which ticks are due after a pause is :meth:`Schedule.plan`; firing
them is the transport's (``switchyard_rq``) and the worker's job.

Imported on first use (``switchyard.Schedule``), never by ``import switchyard``.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any, Final, NoReturn, final

from ._cron import Cron, parse_cron
from ._errors import ConfigError, SwitchyardError
from ._policy import parse_duration

if TYPE_CHECKING:
    from pathlib import Path
    from zoneinfo import ZoneInfo

    from ._config import Config
    from ._registry import Registry

__all__ = [
    "CATCHUP",
    "OVERLAP",
    "Catchup",
    "Schedule",
    "check_catchup",
    "check_cron",
    "check_data",
    "check_every",
    "check_overlap",
    "check_timezone",
    "load_schedules",
]

OVERLAP: Final = ("skip", "queue", "allow")
CATCHUP: Final = ("none", "latest", "all within <duration>")
NAME_CHARS: Final = frozenset("abcdefghijklmnopqrstuvwxyz0123456789_.-")


# -- checkers: what a user writes -> a canonical value, or ValueError("must be ...") -----------


def check_cron(value: object) -> str | None:
    """A cron expression (checked) or None."""
    if value is None:
        return None
    parse_cron(value)
    return str(value)


def check_every(value: object) -> int | None:
    """An interval in whole seconds (at least 1) or None."""
    if value is None:
        return None
    seconds = parse_duration(value, what="an interval")
    if seconds < 1 or not float(seconds).is_integer():
        raise ValueError(f"must be a whole number of seconds >= 1 ('30s', '5m'), got {value!r}")
    return int(seconds)


def check_timezone(value: object) -> str:
    """An IANA time zone name that this machine knows."""
    if not isinstance(value, str) or not value:
        raise ValueError(f"must be an IANA time zone name such as 'Europe/Berlin', got {value!r}")
    _zone(value)
    return value


def _zone(name: str) -> ZoneInfo:
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(
            f"must be an IANA time zone name this machine knows (such as 'UTC' or "
            f"'Europe/Berlin'), got {name!r}"
        ) from None


def check_overlap(value: object) -> str:
    if value not in OVERLAP:
        raise ValueError(f"must be 'skip', 'queue' or 'allow', got {value!r}")
    return str(value)


@final
class Catchup:
    """What to fire for ticks missed by more than the grace period (while no scheduler ran):
    ``none``, the ``latest`` one, or ``all within`` a window (``"all within 10m"``)."""

    __slots__ = ("kind", "window")

    kind: str
    window: float

    def __init__(self, kind: str, window: float = 0.0) -> None:
        object.__setattr__(self, "kind", kind)
        object.__setattr__(self, "window", window)

    def __setattr__(self, key: str, value: object) -> NoReturn:
        raise AttributeError("Catchup is frozen")

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Catchup) and (self.kind, self.window) == (other.kind, other.window)

    def __hash__(self) -> int:
        return hash((self.kind, self.window))

    def __str__(self) -> str:
        if self.kind != "all":
            return self.kind
        return f"all within {_span(self.window)}"

    def __repr__(self) -> str:
        return f"Catchup({str(self)!r})"

    def to_json(self) -> str:
        return str(self)


def _span(seconds: float) -> str:
    """``30s``, ``1min``, ``2h``: a duration as ``parse_duration`` reads it back."""
    from ._policy import _period_text

    text = _period_text(seconds)
    return "1" + text if text[0].isalpha() else text


def check_catchup(value: object) -> Catchup:
    if isinstance(value, Catchup):
        return value
    if value in ("none", "latest"):
        return Catchup(str(value))
    words = value.split() if isinstance(value, str) else []
    if words[:2] == ["all", "within"] and len(words) > 2:
        try:
            return Catchup("all", parse_duration(" ".join(words[2:]), what="a window"))
        except ValueError:
            pass
    raise ValueError(
        f"must be 'none', 'latest' or 'all within <duration>' (e.g. 'all within 1h'), got {value!r}"
    )


def check_data(value: object) -> str | None:
    """Schedule data: a JSON object (a mapping), kept as canonical JSON text, or None."""
    if value is None:
        return None
    if isinstance(value, str):  # the canonical form itself (a policy's JSON)
        import contextlib

        with contextlib.suppress(ValueError):
            value = json.loads(value)
    if not isinstance(value, Mapping):
        raise ValueError(f"must be a mapping (the action's input), got {value!r}")
    try:
        return json.dumps(dict(value), sort_keys=True, separators=(",", ":"))
    except (TypeError, ValueError) as error:
        raise ValueError(f"must be JSON-able: {error}") from None


# -- the schedule ------------------------------------------------------------------------------


@final
class Schedule:
    """One schedule, checked and frozen: ``name`` fires ``action`` with ``data`` on ``cron``
    (in ``timezone``) or ``every`` seconds (anchored at the Unix epoch), by ``overlap`` and
    ``catchup`` policy. ``source`` says where it was declared."""

    __slots__ = (
        "_cron",
        "_zone",
        "action",
        "catchup",
        "cron",
        "data",
        "every",
        "name",
        "overlap",
        "source",
        "timezone",
    )

    name: str
    action: str
    cron: str | None
    every: int | None
    data: str  # canonical JSON of the action's input
    timezone: str
    overlap: str
    catchup: Catchup
    source: str
    _cron: Cron | None
    _zone: ZoneInfo

    def __init__(
        self,
        name: str,
        action: str,
        *,
        cron: object = None,
        every: object = None,
        data: object = None,
        timezone: object = "UTC",
        overlap: object = "skip",
        catchup: object = "latest",
        source: str = "",
    ) -> None:
        """Raises ValueError naming the bad field (``cron '61 * * * *': minute field ...``)."""
        if not isinstance(name, str) or not name or not set(name.lower()) <= NAME_CHARS:
            raise ValueError(f"schedule name {name!r}: use letters, digits, '_', '.' and '-' only")
        checked: dict[str, Any] = {}
        for field, check, value in (
            ("cron", check_cron, cron),
            ("every", check_every, every),
            ("data", check_data, data),
            ("timezone", check_timezone, timezone),
            ("overlap", check_overlap, overlap),
            ("catchup", check_catchup, catchup),
        ):
            try:
                checked[field] = check(value)
            except ValueError as error:
                raise ValueError(f"{field} {error}") from None
        if (checked["cron"] is None) == (checked["every"] is None):
            raise ValueError(
                "give either cron (e.g. '0 3 * * *') or every (e.g. '30s'), not both"
                if checked["cron"] is not None
                else "needs cron (e.g. '0 3 * * *') or every (e.g. '30s')"
            )
        if checked["every"] is not None and checked["timezone"] != "UTC":
            raise ValueError(
                "timezone is for cron schedules; an interval (every) is anchored at the Unix "
                "epoch, whatever the zone"
            )
        set_ = object.__setattr__
        set_(self, "name", name)
        set_(self, "action", action)
        set_(self, "source", source)
        if checked["data"] is None:
            checked["data"] = "{}"
        for field, value in checked.items():
            set_(self, field, value)
        set_(self, "_cron", parse_cron(self.cron) if self.cron is not None else None)
        set_(self, "_zone", _zone(self.timezone))

    def __setattr__(self, key: str, value: object) -> NoReturn:
        raise AttributeError("Schedule is frozen")

    def _key(self) -> tuple[object, ...]:
        return (self.name, self.action, self.cron, self.every, self.data, self.timezone,
                self.overlap, self.catchup)  # fmt: skip

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Schedule) and self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._key())

    def __repr__(self) -> str:
        return f"<Schedule {self.name}: {self.action} {self.when}>"

    @property
    def when(self) -> str:
        """``cron 0 3 * * * (Europe/Berlin)`` or ``every 30s``."""
        if self.cron is not None:
            return f"cron {self.cron} ({self.timezone})"
        return f"every {_span(float(self.every or 0))}"

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "action": self.action,
            "cron": self.cron,
            "every": self.every,
            "timezone": self.timezone,
            "data": json.loads(self.data),
            "overlap": self.overlap,
            "catchup": str(self.catchup),
            "source": self.source,
        }

    # -- times ----------------------------------------------------------------------------------

    def next_after(self, after: float) -> float | None:
        """The first tick (unix seconds) later than ``after``; None if there is none."""
        if self.every is not None:
            return float((int(after) // self.every + 1) * self.every)
        assert self._cron is not None
        return self._cron.next_after(after, self._zone)

    def ticks(self, after: float, until: float) -> Iterator[float]:
        """Every tick in ``(after, until]``, ascending."""
        tick = self.next_after(after)
        while tick is not None and tick <= until:
            yield tick
            tick = self.next_after(tick)

    def count(self, after: float, until: float, *, limit: int = 100_000) -> int:
        """How many ticks fall in ``(after, until]`` (counted up to ``limit`` for cron)."""
        if until <= after:
            return 0
        if self.every is not None:
            return int(until) // self.every - int(after) // self.every
        found = 0
        for _ in self.ticks(after, until):
            found += 1
            if found >= limit:
                break
        return found

    def _latest(self, after: float, until: float) -> float | None:
        """The last tick in ``(after, until]``, looking back a widening window."""
        for back in (3600.0, 86_400.0, 32 * 86_400.0, 367 * 86_400.0, 9 * 367 * 86_400.0):
            start = max(after, until - back)
            found = None
            for tick in self.ticks(start, until):
                found = tick
            if found is not None or start == after:
                return found
        return None

    def plan(self, last: float, now: float, grace: float) -> list[float]:
        """The ticks to fire now, ascending, when every tick up to ``last`` was handled.

        A tick at most ``grace`` seconds old is on time (a failover or a busy moment took that
        long) and fires whatever the policy; older ones were missed, and the catch-up policy
        says which of them fire: none, the latest one (one run makes up for them all), or all
        within its window.
        """
        edge = now - grace
        on_time = list(self.ticks(max(last, edge), now))
        kind = self.catchup.kind
        if last >= edge or kind == "none":
            return on_time
        if kind == "latest":
            latest = self._latest(last, edge)
            return on_time if latest is None else [latest, *on_time]
        missed = list(self.ticks(max(last, now - self.catchup.window), edge))
        return missed + on_time


def _from_table(name: str, entry: Any, source: str) -> Schedule:
    """A Schedule from one ``[tool.switchyard.schedules]`` entry (ValueError if bad)."""
    if not isinstance(entry, Mapping):
        raise ValueError('must be a table such as { action = "reports.build", cron = "0 3 * * *" }')
    known = ("action", "cron", "every", "data", "timezone", "overlap", "catchup")
    unknown = sorted(set(entry) - set(known))
    if unknown:
        raise ValueError(f"unknown key {unknown[0]!r} (keys: {', '.join(known)})")
    action = entry.get("action")
    if not isinstance(action, str) or not action:
        raise ValueError('needs action = "<module>.<verb_noun>", the action to fire')
    options = {k: entry[k] for k in known[1:] if k in entry}
    return Schedule(name, action, source=source, **options)


def _lines(text: str) -> dict[str, int]:
    """Where each entry of ``[tool.switchyard.schedules]`` starts: name -> 1-based line (one
    pass over the file, for a table of any size)."""
    import re

    header = re.compile(r"^\s*\[\s*([^\[\]]+?)\s*\]\s*(?:#.*)?$")
    assign = re.compile(r"""^\s*(?:"([^"]+)"|'([^']+)'|([A-Za-z0-9_.-]+?))\s*=""")
    found: dict[str, int] = {}
    current = ""
    for number, row in enumerate(text.splitlines(), start=1):
        match = header.match(row)
        if match:
            current = re.sub(r"\s*\.\s*", ".", match.group(1)).replace('"', "")
            name = current.removeprefix("tool.switchyard.schedules.")
            if name != current:
                found.setdefault(name, number)
            continue
        if current == "tool.switchyard.schedules":
            named = assign.match(row)
            if named:
                found.setdefault(next(g for g in named.groups() if g), number)
    return found


def read_schedules_table(path: Path, table: object, text: str) -> tuple[Schedule, ...]:
    """``[tool.switchyard.schedules]`` of the file at ``path`` (``text``): ConfigError with the
    file and line of a bad entry."""
    from ._settings import _line_of

    lines = _lines(text)

    if not isinstance(table, Mapping):
        raise ConfigError(
            str(path),
            "[tool.switchyard] schedules must be a table of name = { action = ..., cron = ... }",
            _line_of(text, "tool.switchyard", "schedules"),
        )
    found: list[Schedule] = []
    for name, entry in table.items():
        number = lines.get(str(name))
        source = f"{path}:{number}" if number else str(path)
        try:
            found.append(_from_table(str(name), entry, source))
        except ValueError as error:
            raise ConfigError(
                str(path), f"[tool.switchyard.schedules] {name}: {error}", number
            ) from None
    return tuple(found)


def _from_policy(name: str, policy: Any) -> Schedule:
    return Schedule(
        name,
        name,
        cron=policy.schedule,
        every=policy.every,
        data=json.loads(policy.schedule_data) if policy.schedule_data else None,
        timezone=policy.timezone,
        overlap=policy.overlap,
        catchup=policy.catchup,
        source=f"action {name}",
    )


def load_schedules(
    config: Config,
    registry: Registry,
    *,
    manifest: str | Path | None = None,
    actions: list[str] | None = None,
    resolve: bool = True,
) -> list[Schedule]:
    """Every schedule: ``config``'s (``[tool.switchyard.schedules]``) and those declared on
    actions, each checked against its action: it exists and its data fits the input model.

    Actions declaring a schedule are those named in ``actions`` if given, else found in
    ``manifest`` if given (no import), else by resolving every action of ``registry`` (which
    imports them all). With ``resolve=False`` only
    ``config``'s schedules are returned, their actions checked by name (nothing imported).

    Raises ConfigError (pyproject entries: file and line) or SwitchyardError naming the
    schedule, before anything is fired. A plugin that fails to import declares no schedule here
    (its error is ``switchyard doctor``'s), unless a pyproject schedule names its action.
    """

    def fail(schedule: Schedule, message: str) -> NoReturn:
        path, _, line = schedule.source.rpartition(":")
        raise ConfigError(
            path or schedule.source,
            f"[tool.switchyard.schedules] {schedule.name}: {message}",
            int(line) if line.isdigit() else None,
        )

    for schedule in config.schedules:
        if schedule.action not in registry:
            import difflib

            close = difflib.get_close_matches(schedule.action, registry.names(), n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            fail(schedule, f"unknown action {schedule.action!r}{hint}")
    if not resolve:
        return sorted(config.schedules, key=lambda s: s.name)
    schedules: dict[str, Schedule] = {}
    if actions is not None:
        declaring = actions
    elif manifest is not None:
        from ._manifest import scheduled_actions

        declaring = scheduled_actions(manifest)
    else:
        declaring = registry.names()
    for name in declaring:
        try:
            action = registry.resolve(name)
        except SwitchyardError:
            continue
        if action.policy.scheduled:
            schedules[name] = _from_policy(name, action.policy)
    for schedule in config.schedules:
        if schedule.name in schedules:
            fail(schedule, f"the action {schedule.name} declares a schedule of that name")
        try:
            registry.resolve(schedule.action).validate_input(schedule.data)
        except SwitchyardError as error:
            fail(schedule, str(error))
        schedules[schedule.name] = schedule
    return [schedules[name] for name in sorted(schedules)]
