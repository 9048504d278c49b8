"""``switchyard schedule | jobs | routes | top | stats | schedules``: subcommands of the core CLI
(``switchyard.commands``).

Errors are SwitchyardErrors: the core CLI prints them as one line and exits non-zero.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from typing import Any

from switchyard import SwitchyardError, default_registry

from switchyard_rq._config import current_config
from switchyard_rq._errors import JobFailedError, TransportError
from switchyard_rq._ops.jobs import describe_job, failed_jobs
from switchyard_rq._ops.options import count, seconds
from switchyard_rq._producer.handle import JobHandle, Progress
from switchyard_rq._producer.schedule import route, schedule_action

__all__ = ["register"]


_MAX_WAIT = 86_400.0  # a day: as long as results are kept by default
_MAX_DELAY = 366 * 86_400.0


class UsageError(TransportError):
    """A bad command-line value (the core CLI prints it as one line)."""


def register(subparsers: Any) -> None:
    """Add ``schedule``, ``jobs`` and ``routes`` to the ``switchyard`` command."""
    schedule = subparsers.add_parser(
        "schedule",
        help="schedule an action on its queue, or a workflow (prints the id, or the result)",
    )
    schedule.add_argument("name", metavar="NAME", nargs="?", help="the action")
    schedule.add_argument(
        "--chain",
        nargs="+",
        metavar="NAME",
        help="a chain of actions instead: each one's output feeds the next (--data: the first's)",
    )
    schedule.add_argument(
        "--workflow", metavar="FILE", help="a workflow file (.toml or .json) instead"
    )
    schedule.add_argument(
        "--on-failure",
        choices=("cancel", "keep"),
        help="a workflow's step failed: cancel the other steps of its stage (default) or keep them",
    )
    schedule.add_argument(
        "--data",
        default="{}",
        type="action-input",  # the core's reader: the same words as `switchyard call`
        metavar="JSON|@FILE",
        help="the input as JSON, or @path to a JSON file (@- for stdin); default {}",
    )
    schedule.add_argument(
        "--wait",
        nargs="?",
        const=30.0,
        type=seconds(_MAX_WAIT),
        metavar="SECONDS",
        help="wait for the result and print it (default at most 30 s)",
    )
    schedule.add_argument(
        "--delay", type=seconds(_MAX_DELAY), metavar="SECONDS", help="run it later (up to a year)"
    )
    schedule.add_argument("--key", metavar="KEY", help="idempotency key")
    schedule.add_argument(
        "--priority",
        choices=("high", "normal", "low"),
        help="within its queue (default: the action's own)",
    )
    schedule.set_defaults(func=_schedule)

    jobs = subparsers.add_parser("jobs", help="inspect jobs; list and retry failed ones")
    jobs_commands = jobs.add_subparsers(dest="jobs_command", metavar="SUBCOMMAND")
    show = jobs_commands.add_parser("show", help="a job's status, result or error")
    show.add_argument("id", metavar="ID")
    show.add_argument("--json", action="store_true", help="print JSON")
    show.set_defaults(func=_jobs_show)
    failed = jobs_commands.add_parser("failed", help="list failed jobs with their errors")
    failed.add_argument("--queue", metavar="QUEUE", help="only this queue")
    failed.add_argument(
        "--limit", type=count(1, 10_000), default=50, metavar="N", help="at most N (50)"
    )
    failed.add_argument("--json", action="store_true", help="print JSON")
    failed.set_defaults(func=_jobs_failed)
    retry = jobs_commands.add_parser("retry", help="put a failed job back on its queue")
    retry.add_argument("id", metavar="ID")
    retry.set_defaults(func=_jobs_retry)
    cancel = jobs_commands.add_parser(
        "cancel",
        help="cancel a job: a waiting one at once, a running one is asked to stop",
    )
    cancel.add_argument("id", metavar="ID")
    cancel.set_defaults(func=_jobs_cancel)

    routes = subparsers.add_parser("routes", help="the routing table and each queue's actions")
    routes.add_argument("--json", action="store_true", help="print JSON")
    routes.set_defaults(func=_routes)

    from switchyard_rq._ops.schedules import register as register_schedules
    from switchyard_rq._ops.top import register as register_top

    register_top(subparsers)
    register_schedules(subparsers)

    from switchyard_rq._ops.events import register as register_events

    register_events(subparsers)

    from switchyard_rq._ops.workflows import register as register_workflows

    register_workflows(subparsers)


def _guard(func: Callable[[], int]) -> int:
    """ValueErrors from bad options become one-line errors too."""
    try:
        return func()
    except ValueError as exc:
        if isinstance(exc, SwitchyardError):
            raise
        raise UsageError(str(exc)) from None


def _schedule(args: argparse.Namespace) -> int:
    given = [w for w, v in (("NAME", args.name), ("--chain", args.chain),
                            ("--workflow", args.workflow)) if v]  # fmt: skip
    if len(given) != 1:
        raise UsageError(
            "schedule takes one of NAME, --chain NAME... or --workflow FILE"
            + (f", not {' and '.join(given)}" if given else "")
        )
    if args.name is None:
        from switchyard_rq._ops.workflows import schedule_from_args

        return _guard(lambda: schedule_from_args(args))
    if args.on_failure is not None:
        raise UsageError("--on-failure is for a workflow (--chain or --workflow)")

    def run() -> int:
        handle = schedule_action(
            args.name, args.data, delay=args.delay, key=args.key, priority=args.priority
        )
        if args.wait is None:
            print(handle.id)
            return 0
        try:
            result = handle.result(timeout=args.wait)
        except JobFailedError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
        print(result.model_dump_json())
        return 0

    return _guard(run)


def _jobs_show(args: argparse.Namespace) -> int:
    info = describe_job(JobHandle(args.id))
    if args.json:
        print(json.dumps(info, indent=2))
        return 0
    width = max(len(k) for k in info)
    for name, value in info.items():
        shown = json.dumps(value) if isinstance(value, dict | list) else value
        if name == "progress":
            shown = str(Progress(**value))
        print(f"{name.ljust(width)}  {shown}")
    return 0


def _jobs_failed(args: argparse.Namespace) -> int:
    rows = failed_jobs(args.queue, limit=args.limit)
    if args.json:
        print(json.dumps(rows, indent=2))
    elif not rows:
        print("no failed jobs")
    for row in [] if args.json else rows:
        about: dict[str, Any] = row["error"] or {}
        print(f"{row['id']}  {row['queue']}  {row['action']}  {about.get('type')}: "
              f"{about.get('message')}")  # fmt: skip
    return 0


def _jobs_retry(args: argparse.Namespace) -> int:
    handle = JobHandle(args.id)
    if not handle.requeue():
        raise UsageError(
            f"job {args.id} is {handle.status}, not failed: only failed or canceled jobs retry"
        )
    print(f"requeued {args.id} on {describe_job(handle)['queue']}")
    return 0


def _jobs_cancel(args: argparse.Namespace) -> int:
    handle = JobHandle(args.id)
    before = handle.status
    if not handle.cancel():
        raise UsageError(f"job {args.id} is {before}: it has ended, there is nothing to cancel")
    if before == "started":
        print(f"asked {args.id} to stop (it was running): it ends as canceled when it stops")
    else:
        print(f"canceled {args.id} (it was {before})")
    return 0


def _routes(args: argparse.Namespace) -> int:
    config = current_config()
    registry = default_registry()
    carried: dict[str, list[str]] = {}
    for name in registry.names():
        carried.setdefault(route(name, registry.info(name).queue, config=config), []).append(name)
    table = {
        "rules": [{"pattern": p, "queue": q} for p, q in config.routing],
        "default_queue": config.default_queue,
        "queues": {q: carried[q] for q in sorted(carried)},
    }
    if args.json:
        print(json.dumps(table, indent=2))
        return 0
    print("rules (first match wins):" if config.routing else "rules: none")
    for pattern, queue in config.routing:
        print(f"  {pattern}  ->  {queue}")
    print(f"default queue: {config.default_queue}")
    if not carried:
        print("no actions installed")
    for queue in sorted(carried):
        print(f"{queue} ({len(carried[queue])} actions): {', '.join(carried[queue])}")
    return 0
