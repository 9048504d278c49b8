"""``switchyard events``: the job event stream of every queue (or some), the latest events or
followed as they come (``--follow``), from any machine that reaches the Redis.

Each queue has its own bounded stream (``switchyard:events:<queue>``, MAXLEN ~10,000: see
keys.events); the scripts that schedule, take and settle jobs write it in the same call. This
reads the streams with XREVRANGE (the latest) and XREAD BLOCK (following), merging them in time
order (on a Redis Cluster each queue's stream lives in its queue's slot: read one at a time);
queues that appear while it follows are picked up within a few seconds.
"""

from __future__ import annotations

import argparse
import fnmatch
import json
import signal
import sys
import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from types import FrameType
from typing import Any, Final

import redis

from switchyard_rq._ops.options import count
from switchyard_rq._wire import keys
from switchyard_rq._wire.cluster import is_cluster
from switchyard_rq._wire.connection import check_url, get_connection, redis_errors

__all__ = ["Event", "read_events", "register"]

_BLOCK_MS: Final = 1000
_RESCAN: Final = 5.0  # seconds between two looks for new queues while following
KINDS: Final = ("scheduled", "started", "progress", "succeeded", "failed", "retried", "cancelled")


@dataclass(frozen=True, slots=True)
class Event:
    """One job event: its stream entry id (``<ms>-<n>``, Redis's clock), queue, kind, job id,
    action, and what the kind adds (``attempt``, ``error``, ``progress``, ``workflow``)."""

    id: str
    queue: str
    event: str
    job: str
    action: str
    extra: dict[str, str]

    @property
    def at(self) -> float:
        return int(self.id.split("-", 1)[0]) / 1000

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "at": self.at,
            "queue": self.queue,
            "event": self.event,
            "job": self.job,
            "action": self.action,
            **self.extra,
        }

    def line(self) -> str:
        when = datetime.fromtimestamp(self.at, UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
        more = ""
        if "error" in self.extra:
            try:
                error = json.loads(self.extra["error"])
                more = f"  {error.get('type')}: {error.get('message')}"
            except (ValueError, AttributeError):
                more = f"  {self.extra['error']}"
        elif "progress" in self.extra:
            from switchyard_rq._producer.handle import Progress

            found = Progress.from_json(self.extra["progress"])
            more = f"  {found}" if found else ""
        elif "attempt" in self.extra:
            more = f"  attempt {self.extra['attempt']}"
        if "workflow" in self.extra:
            more += f"  workflow {self.extra['workflow']}"
        return f"{when}  {self.queue}  {self.event:<9}  {self.action}  {self.job}{more}"


def _text(raw: Any) -> str:
    return raw.decode(errors="replace") if isinstance(raw, bytes) else str(raw)


def _event(queue: str, entry_id: Any, fields: dict[Any, Any]) -> Event:
    found = {_text(k): _text(v) for k, v in fields.items()}
    return Event(
        _text(entry_id),
        queue,
        found.pop("event", ""),
        found.pop("job", ""),
        found.pop("action", ""),
        found,
    )


def _order(event: Event) -> tuple[int, int]:
    ms, _, seq = event.id.partition("-")
    return int(ms), int(seq or 0)


def _known_queues(client: redis.Redis) -> list[str]:
    listed = client.smembers(keys.QUEUES_SET)
    return sorted(_text(k).removeprefix(keys.QUEUE_PREFIX) for k in listed)


def read_events(
    client: redis.Redis, queues: Iterable[str] | None = None, *, last: int = 20
) -> list[Event]:
    """The latest ``last`` events of ``queues`` (default: every queue Redis knows), oldest
    first."""
    if last <= 0:
        return []
    names = list(queues) if queues is not None else _known_queues(client)
    found: list[Event] = []
    for queue in names:
        entries: Any = client.xrevrange(keys.events(queue), count=last)
        for entry_id, fields in entries or []:
            found.append(_event(queue, entry_id, fields or {}))
    found.sort(key=_order)
    return found[-last:]


def register(subparsers: Any) -> None:
    """Add ``events`` to the ``switchyard`` command."""
    events = subparsers.add_parser(
        "events", help="the job event stream: the latest events, or --follow new ones"
    )
    events.add_argument(
        "--follow", "-f", action="store_true", help="keep printing new events (Ctrl-C stops)"
    )
    events.add_argument("--queue", metavar="A,B", help="only these queues (default: all known)")
    events.add_argument(
        "--action", metavar="PATTERN", help="only actions matching this glob (e.g. 'text.*')"
    )
    events.add_argument(
        "--event",
        metavar="A,B",
        help=f"only these kinds of event ({', '.join(KINDS)})",
    )
    events.add_argument(
        "--last",
        type=count(0, 10_000),
        default=20,
        metavar="N",
        help="print the latest N events first (20; with --follow default 0)",
    )
    events.add_argument(
        "--max",
        type=count(1, 10_000_000),
        metavar="N",
        help="with --follow, stop after N events",
    )
    events.add_argument("--json", action="store_true", help="one JSON object a line")
    events.add_argument("--redis-url", metavar="URL", help="default: SWITCHYARD_REDIS_URL/config")
    events.set_defaults(func=_events)


def _kinds(text: str | None) -> set[str] | None:
    if not text:
        return None
    wanted = {k.strip() for k in text.split(",") if k.strip()}
    unknown = sorted(wanted - set(KINDS))
    if unknown:
        from switchyard_rq._ops.cli import UsageError

        raise UsageError(f"--event: unknown kind {', '.join(unknown)} (known: {', '.join(KINDS)})")
    return wanted


def _events(args: argparse.Namespace) -> int:
    if args.redis_url:
        check_url(args.redis_url, "--redis-url")
    kinds = _kinds(args.event)
    client = get_connection(args.redis_url)
    fixed = [q.strip() for q in args.queue.split(",") if q.strip()] if args.queue else None
    last = args.last
    if args.follow and "--last" not in sys.argv:
        last = 0

    def wanted(event: Event) -> bool:
        if kinds is not None and event.event not in kinds:
            return False
        return args.action is None or fnmatch.fnmatchcase(event.action, args.action)

    def show(event: Event) -> None:
        print(json.dumps(event.to_dict()) if args.json else event.line(), flush=True)

    with redis_errors(client):
        queues = fixed if fixed is not None else _known_queues(client)
        shown = [e for e in read_events(client, queues, last=10_000 if last else 0) if wanted(e)]
        for event in shown[-last:] if last else []:
            show(event)
        if not args.follow:
            if not shown and not args.json:
                print("no events", file=sys.stderr)
            return 0
        return _follow(client, fixed, queues, wanted, show, args.max)


def _follow(
    client: redis.Redis,
    fixed: list[str] | None,
    queues: list[str],
    wanted: Any,
    show: Any,
    most: int | None,
) -> int:
    """Print new events as they come, until Ctrl-C, SIGTERM or ``most`` events."""
    stopped: list[int] = []

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stopped.append(signum)

    previous = signal.signal(signal.SIGTERM, on_signal)
    # from now on: each stream's last entry id as of now ("$" would miss what comes between
    # two XREADs)
    cursors = {keys.events(q): _tail(client, q) for q in queues}
    names = {keys.events(q): q for q in queues}
    printed = 0
    clustered = is_cluster(client)
    rescan = time.monotonic() + _RESCAN
    try:
        while not stopped:
            if fixed is None and time.monotonic() >= rescan:
                rescan = time.monotonic() + _RESCAN
                for queue in _known_queues(client):
                    if keys.events(queue) not in cursors:
                        cursors[keys.events(queue)] = "0-0"  # new since: all of it
                        names[keys.events(queue)] = queue
            if not cursors:
                time.sleep(_BLOCK_MS / 1000)
                continue
            replies = _read_new(client, cursors, clustered)
            batch: list[Event] = []
            for stream, entries in replies or []:
                name = _text(stream)
                for entry_id, fields in entries:
                    cursors[name] = _text(entry_id)
                    batch.append(_event(names[name], entry_id, fields))
            batch.sort(key=_order)
            for event in batch:
                if wanted(event):
                    show(event)
                    printed += 1
                    if most is not None and printed >= most:
                        return 0
    except KeyboardInterrupt:
        pass
    finally:
        signal.signal(signal.SIGTERM, previous)
    return 0


def _read_new(client: redis.Redis, cursors: dict[str, str], clustered: bool) -> Any:
    """New entries of every stream after its cursor, waiting up to a second for some: one XREAD
    for all of them, or on a cluster (each queue's stream in its own slot) one a stream, each
    waiting its share of the second."""
    if not clustered:
        return client.xread(dict(cursors), block=_BLOCK_MS, count=1000)  # type: ignore[arg-type]
    found: list[Any] = []
    share = max(_BLOCK_MS // len(cursors), 10)
    for name, cursor in cursors.items():
        got: Any = client.xread({name: cursor}, block=share, count=1000)
        found += got or []
    return found


def _tail(client: redis.Redis, queue: str) -> str:
    latest = client.xrevrange(keys.events(queue), count=1)
    return _text(latest[0][0]) if latest else "0-0"
