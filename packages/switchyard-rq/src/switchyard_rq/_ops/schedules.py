"""``switchyard schedules [list] | pause NAME | resume NAME | trigger NAME``.

The schedules are the project's (``[tool.switchyard.schedules]``) and the installed actions'
(``schedule=`` or ``every=``), checked as the worker checks them; their state (last firing,
paused, counts) is read from Redis.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from datetime import UTC, datetime
from typing import Any

import redis
from switchyard import Schedule, default_registry, load_schedules

from switchyard_rq._config import current_config
from switchyard_rq._errors import JobFailedError, TransportError
from switchyard_rq._ops.options import seconds
from switchyard_rq._scheduler.state import (
    ScheduleState,
    pause_schedule,
    schedule_states,
    trigger_schedule,
)
from switchyard_rq._wire.connection import check_url, get_connection

__all__ = ["register"]


class ScheduleUsageError(TransportError):
    """A bad schedules command (the core CLI prints it as one line)."""


def _common(parser: argparse.ArgumentParser, *, sub: bool) -> None:
    """Options accepted before and after the subcommand (after it, they win)."""
    default: Any = argparse.SUPPRESS if sub else None
    parser.add_argument(
        "--redis-url", metavar="URL", default=default, help="default: SWITCHYARD_REDIS_URL/config"
    )
    parser.add_argument(
        "--json", action="store_true", default=argparse.SUPPRESS if sub else False,
        help="print JSON (for scripts)",
    )  # fmt: skip


def register(subparsers: Any) -> None:
    """Add ``schedules`` to the ``switchyard`` command."""
    parser = subparsers.add_parser(
        "schedules", help="list schedules with their next runs; pause, resume or trigger one"
    )
    _common(parser, sub=False)
    parser.set_defaults(func=_list)
    commands = parser.add_subparsers(dest="schedules_command", metavar="SUBCOMMAND")
    listing = commands.add_parser("list", help="every schedule: next run, last firing (default)")
    _common(listing, sub=True)
    listing.set_defaults(func=_list)
    for verb, func, about in (
        ("pause", _pause, "stop firing NAME (its ticks are skipped) until resumed"),
        ("resume", _resume, "fire NAME again from its next tick"),
        ("trigger", _trigger, "fire NAME now, once, whatever its times (prints the job id)"),
    ):
        command = commands.add_parser(verb, help=about)
        command.add_argument("name", metavar="NAME")
        _common(command, sub=True)
        if verb == "trigger":
            command.add_argument(
                "--wait",
                nargs="?",
                const=30.0,
                type=seconds(86_400.0),
                metavar="SECONDS",
                help="wait for the job's result and print it (default at most 30 s)",
            )
        command.set_defaults(func=func)


def _client(args: argparse.Namespace) -> redis.Redis:
    if args.redis_url:
        check_url(args.redis_url, "--redis-url")
    return get_connection(args.redis_url)


def _schedules() -> list[Schedule]:
    return load_schedules(current_config(), default_registry())


def _find(name: str) -> Schedule:
    schedules = {s.name: s for s in _schedules()}
    found = schedules.get(name)
    if found is None:
        import difflib

        close = difflib.get_close_matches(name, list(schedules), n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        known = ", ".join(schedules) or "none are declared"
        raise ScheduleUsageError(f"unknown schedule {name!r}{hint} (schedules: {known})")
    return found


def _when(moment: float | None, zone: Any, now: float) -> str:
    if moment is None:
        return "-"
    local = datetime.fromtimestamp(moment, zone).strftime("%Y-%m-%d %H:%M:%S %Z")
    delta = moment - now
    span = _ago(abs(delta))
    return f"{local} ({'in ' + span if delta >= 0 else span + ' ago'})"


def _ago(seconds: float) -> str:
    for unit, size in (("d", 86_400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds / size:.0f}{unit}"
    return f"{seconds:.0f}s"


def _row(schedule: Schedule, state: ScheduleState, now: float) -> dict[str, Any]:
    return {
        **schedule.to_json(),
        "next": schedule.next_after(now),
        "paused": state.paused,
        "last_fired_tick": state.tick,
        "last_fired_at": state.fired_at,
        "last_job": state.job,
        "pending": state.pending,
        "fired": state.fired,
        "skipped": state.skipped,
        "missed": state.missed,
    }


def _list(args: argparse.Namespace) -> int:
    schedules = _schedules()
    states = schedule_states([s.name for s in schedules], connection=_client(args))
    now = time.time()
    rows = [_row(s, states[s.name], now) for s in schedules]
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    if not rows:
        print("no schedules (declare them on an action or in [tool.switchyard.schedules])")
        return 0
    for schedule, row in zip(schedules, rows, strict=True):
        zone = UTC if schedule.every is not None else _zone(schedule.timezone)
        status = "paused" if row["paused"] else "active"
        if row["pending"] is not None:
            status += ", one firing held (overlap queue)"
        print(f"{schedule.name}  {schedule.action}  {schedule.when}  [{status}]")
        print(f"  next   {'(paused)' if row['paused'] else _when(row['next'], zone, now)}")
        fired = row["last_fired_at"]
        job = f", job {row['last_job']}" if row["last_job"] else ""
        print(f"  last   {_when(fired, zone, now) if fired else 'never'}{job}")
        print(f"  counts fired {row['fired']}, skipped {row['skipped']}, missed {row['missed']}; "
              f"overlap {schedule.overlap}, catch-up {schedule.catchup}")  # fmt: skip
    return 0


def _zone(name: str) -> Any:
    from zoneinfo import ZoneInfo

    return ZoneInfo(name)


def _pause(args: argparse.Namespace) -> int:
    schedule = _find(args.name)
    changed = pause_schedule(schedule.name, True, connection=_client(args))
    return _say(args, schedule.name, "paused" if changed else "already paused", paused=True)


def _resume(args: argparse.Namespace) -> int:
    schedule = _find(args.name)
    changed = pause_schedule(schedule.name, False, connection=_client(args))
    return _say(args, schedule.name, "resumed" if changed else "not paused", paused=False)


def _say(args: argparse.Namespace, name: str, what: str, **fields: Any) -> int:
    if args.json:
        print(json.dumps({"name": name, "result": what, **fields}))
    else:
        print(f"{name}: {what}")
    return 0


def _trigger(args: argparse.Namespace) -> int:
    schedule = _find(args.name)
    handle = trigger_schedule(schedule, connection=_client(args))
    if args.wait is None:
        print(json.dumps({"name": schedule.name, "job": handle.id}) if args.json else handle.id)
        return 0
    try:
        result = handle.result(timeout=args.wait)
    except JobFailedError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(result.model_dump_json())
    return 0
