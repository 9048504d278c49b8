"""``switchyard top`` (a live terminal view) and ``switchyard stats --json`` (one snapshot).

Both read only Redis: the queues (depth, oldest job, in flight), the per-action job stats each
worker process publishes once a second, and the pool gauges each supervisor publishes; so they
work from any machine that reaches the Redis, without the workers' health ports. Rates and
percentiles come from the difference between two reads: ``top`` uses the last ~10 s.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import sys
import time
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType
from typing import Any, Final, TextIO

import redis

from switchyard_rq._ops.options import seconds
from switchyard_rq._ops.stats import StatsSnapshot, read_snapshot
from switchyard_rq._ops.view import build_view
from switchyard_rq._wire.connection import check_url, get_connection, redis_errors, url_of

__all__ = ["register"]

_WINDOW: Final = 10.0
_BOLD, _DIM, _RED, _RESET = "\x1b[1m", "\x1b[2m", "\x1b[31m", "\x1b[0m"


def register(subparsers: Any) -> None:
    """Add ``top`` and ``stats`` to the ``switchyard`` command."""
    top = subparsers.add_parser("top", help="a live view of queues, actions and workers")
    top.add_argument(
        "--interval",
        type=seconds(3600, positive=True),
        default=1.0,
        metavar="S",
        help="refresh (1 s)",
    )
    top.add_argument("--redis-url", metavar="URL", help="default: SWITCHYARD_REDIS_URL/config")
    top.add_argument("--queues", metavar="A,B", help="only these queues (default: all known)")
    top.set_defaults(func=_top)
    stats = subparsers.add_parser("stats", help="one snapshot of what top shows")
    stats.add_argument("--json", action="store_true", help="print JSON (for scripts)")
    stats.add_argument(
        "--window",
        type=seconds(3600, positive=True),
        default=1.0,
        metavar="S",
        help="rates over S s (1)",
    )
    stats.add_argument("--redis-url", metavar="URL", help="default: SWITCHYARD_REDIS_URL/config")
    stats.add_argument("--queues", metavar="A,B", help="only these queues (default: all known)")
    stats.set_defaults(func=_stats)


def _client(args: argparse.Namespace) -> redis.Redis:
    if args.redis_url:
        check_url(args.redis_url, "--redis-url")
    return get_connection(args.redis_url)


def _queues(args: argparse.Namespace) -> list[str] | None:
    if not args.queues:
        return None
    return [q.strip() for q in args.queues.split(",") if q.strip()]


def _read(client: redis.Redis, queues: list[str] | None) -> StatsSnapshot:
    with redis_errors(client):
        return read_snapshot(client, queues)


# -- rendering ---------------------------------------------------------------------------------


def _ms(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    if seconds >= 10:
        return f"{seconds:.0f}s"
    if seconds >= 1:
        return f"{seconds:.1f}s"
    return f"{seconds * 1000:.1f}ms" if seconds < 0.1 else f"{seconds * 1000:.0f}ms"


def _age(seconds: float) -> str:
    return "-" if seconds <= 0 else _ms(seconds)


def _ago(action: dict[str, Any]) -> str:
    """When the action's last job ended: "now" (in the window), "42s ago", "3m ago"..."""
    if action["percentiles_over"] == "window":
        return "now"
    age = action["last_job_age"]
    if age is None:
        return "-"
    for unit, size in (("d", 86_400), ("h", 3_600), ("m", 60)):
        if age >= size:
            return f"{age // size:.0f}{unit} ago"
    return f"{age:.0f}s ago"


def render(view: dict[str, Any], width: int, height: int, *, live: bool = True) -> list[str]:
    """The screen's lines (ANSI bold headers), cut to ``width`` x ``height``; ``live`` for
    ``top``'s refreshed screen, else one snapshot."""
    w = view["workers"]
    nodes = any(q.get("node") for q in view["queues"])
    stamp = time.strftime("%H:%M:%S", time.localtime(view["time"]))
    how = f"rates over {view['window']:.1f} s" + ("; Ctrl-C quits" if live else "")
    lines = [
        f"{_BOLD}switchyard {'top' if live else 'stats'}{_RESET}  {view['redis']}  {stamp}  "
        f"({how})",
        f"workers: {w['pools']} pool(s), {w['processes']} processes, {w['busy']} busy, "
        f"{w['recycled']} recycled, {w['consumers']} consumers publishing",
        "",
        _BOLD + f"{'QUEUE':<20} {'DEPTH':>8} {'OLDEST':>8} {'IN FLIGHT':>9} {'SCHED':>6}"
        f" {'IN/s':>9} {'OUT/s':>9}" + ("  NODE" if nodes else "") + _RESET,
    ]
    for q in view["queues"]:
        lines.append(
            f"{q['queue'][:20]:<20} {q['depth']:>8} {_age(q['oldest_age']):>8} "
            f"{q['in_flight']:>9} {q['scheduled']:>6} {q['rate_in']:>9.1f} {q['rate_out']:>9.1f}"
            + (f"  {q['node']}" if nodes else "")
        )
    if not view["queues"]:
        lines.append(_DIM + "(no queues yet)" + _RESET)
    lines += [
        "",
        _BOLD + f"{'ACTION':<32} {'QUEUE':<12} {'RUNS/s':>8} {'P50':>8} {'P95':>8} {'P99':>8}"
        f" {'ERR%':>6} {'OK':>9} {'FAILED':>7} {'LAST JOB':>9}" + _RESET,
    ]
    busiest = sorted(view["actions"], key=lambda a: (-a["rate"], a["action"]))
    for a in busiest:
        err = a["error_rate"] * 100
        err_text = f"{err:>6.1f}"
        if err > 0:
            err_text = _RED + err_text + _RESET
        latency = f"{_ms(a['p50']):>8} {_ms(a['p95']):>8} {_ms(a['p99']):>8}"
        if a["percentiles_over"] != "window":  # the last known figures: dim, with their age
            latency = _DIM + latency + _RESET
        lines.append(
            f"{a['action'][:32]:<32} {a['queue'][:12]:<12} {a['rate']:>8.1f} {latency} "
            f"{err_text} {a['succeeded']:>9} {a['failed']:>7} {_ago(a):>9}"
        )
    if not view["actions"]:
        lines.append(_DIM + "(no job stats: start a worker with metrics on)" + _RESET)
    if view["flow"]:
        lines += ["", _BOLD + f"{'LIMIT':<32} {'KIND':<12} {'STATE':>10} {'WAITING':>8}" + _RESET]
        for f in view["flow"]:
            if f["kind"] == "concurrency":
                state = f"{f['in_use']}/{f['limit']}".rjust(10)
            else:
                state = f["state"].rjust(10)
                if f["state"] == "open":
                    state = _RED + state + _RESET
            line = f"{f['name'][:32]:<32} {f['kind']:<12} {state} {f['waiting']:>8}"
            if f["probe_in"] is not None:
                line += f"  probe in {f['probe_in']:.0f}s"
            lines.append(line)
    if view.get("progress"):
        lines += ["", _BOLD + f"{'RUNNING JOB':<34} {'ACTION':<28} PROGRESS" + _RESET]
        for row in view["progress"]:
            done = f"{row['done']:g}" + (f"/{row['total']:g}" if row["total"] else "")
            if row["total"]:
                done += f" ({min(row['done'] / row['total'], 1.0):.0%})"
            text = f"{done} {row['message']}" if row["message"] else done
            lines.append(f"{row['id'][:34]:<34} {row['action'][:28]:<28} {text}")
    lines += _render_databases(view["databases"])
    cut = lines[: max(height - 1, 1)]
    return [_clip(line, width) for line in cut]


def _render_databases(db: dict[str, Any]) -> list[str]:
    """The DATABASE section: each pool's utilization (over every process), then query rates."""
    if not db["pools"] and not db["queries"]:
        return []
    lines = [
        "",
        _BOLD + f"{'DATABASE':<20} {'ROLE':<9} {'PROCS':>5} {'IN USE':>9} {'WAITING':>8}"
        f" {'CHECKOUT/s':>10} {'WAIT':>8} {'ERRORS':>7}" + _RESET,
    ]
    for p in db["pools"]:
        use = f"{p['in_use']}/{p['max']}".rjust(9)
        if p["max"] and p["in_use"] >= p["max"]:
            use = _RED + use + _RESET
        errors = f"{p['errors']:>7}"
        if p["new_errors"]:
            errors = _RED + errors + _RESET
        lines.append(
            f"{p['database'][:20]:<20} {p['role'][:9]:<9} {p['processes']:>5} {use} "
            f"{p['waiting']:>8} {p['checkouts_per_s']:>10.1f} {_ms(p['mean_wait'] or None):>8} "
            f"{errors}"
        )
    if db["queries"]:
        lines += [
            "",
            _BOLD + f"{'QUERIES BY ACTION':<32} {'DATABASE':<12} {'Q/s':>8} {'MEAN':>8}"
            f" {'P95':>8} {'ERRORS':>7}" + _RESET,
        ]
        for q in sorted(db["queries"], key=lambda q: (-q["rate"], q["action"])):
            lines.append(
                f"{q['action'][:32]:<32} {q['database'][:12]:<12} {q['rate']:>8.1f} "
                f"{_ms(q['mean']):>8} {_ms(q['p95']):>8} {q['errors']:>7}"
            )
    return lines


def _clip(line: str, width: int) -> str:
    """Cut a line to ``width`` visible characters (ANSI codes take no room)."""
    out: list[str] = []
    seen = 0
    i = 0
    while i < len(line):
        if line[i] == "\x1b":
            end = line.find("m", i)
            if end < 0:
                break
            out.append(line[i : end + 1])
            i = end + 1
            continue
        if seen >= width:
            break
        out.append(line[i])
        seen += 1
        i += 1
    return "".join(out) + _RESET


@contextmanager
def _screen(stream: TextIO) -> Iterator[None]:
    """The alternate screen without a cursor, restored however we leave."""
    stream.write("\x1b[?1049h\x1b[?25l")
    stream.flush()
    try:
        yield
    finally:
        stream.write("\x1b[?25h\x1b[?1049l")
        stream.flush()


def _top(args: argparse.Namespace) -> int:
    client = _client(args)
    queues = _queues(args)
    if not sys.stdout.isatty():  # piped, redirected: one plain snapshot, no terminal codes
        return _snapshot(client, queues, args.interval, as_json=False)
    history: deque[StatsSnapshot] = deque([_read(client, queues)])
    where = url_of(client)
    stream = sys.stdout
    stopped: list[int] = []

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stopped.append(signum)

    previous = signal.signal(signal.SIGTERM, on_signal)
    try:
        with _screen(stream):
            while not stopped:
                time.sleep(args.interval)
                snap = _read(client, queues)
                history.append(snap)
                while len(history) > 2 and snap.time - history[1].time >= _WINDOW:
                    history.popleft()
                size = shutil.get_terminal_size((120, 40))
                lines = render(build_view(history[0], snap, where), size.columns, size.lines)
                stream.write("\x1b[H\x1b[2J" + "\n".join(lines) + "\n")
                stream.flush()
    except KeyboardInterrupt:
        pass
    finally:
        signal.signal(signal.SIGTERM, previous)
    return 0


def _stats(args: argparse.Namespace) -> int:
    return _snapshot(_client(args), _queues(args), args.window, as_json=args.json)


def _snapshot(
    client: redis.Redis, queues: list[str] | None, window: float, *, as_json: bool
) -> int:
    """Print one view of ``window`` seconds: JSON, or text (plain unless on a terminal)."""
    first = _read(client, queues)
    time.sleep(window)
    view = build_view(first, _read(client, queues), url_of(client))
    if as_json:
        print(json.dumps(view, indent=2))
        return 0
    width = shutil.get_terminal_size((120, 40)).columns
    plain = os.environ.get("NO_COLOR") or not sys.stdout.isatty()
    for line in render(view, width, 10_000, live=False):
        print(_strip(line) if plain else line)
    return 0


def _strip(line: str) -> str:
    for code in (_BOLD, _DIM, _RED, _RESET):
        line = line.replace(code, "")
    return line
