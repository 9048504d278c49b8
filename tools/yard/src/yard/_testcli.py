"""The ``yard test`` command: its arguments, and what it prints."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ._errors import YardError

if TYPE_CHECKING:
    from ._testrun import TestReport
    from ._workspace import Workspace

EXIT_FAILED = 1
FAILED_LOG_LINES = 200
"""How much of a failed member's output is shown (all of it is in its log file)."""


class _TestParser(argparse.ArgumentParser):
    """Takes options and members in any order, and everything after ``--`` for pytest."""

    _inner = False

    def error(self, message: str) -> None:  # type: ignore[override]
        raise YardError(message)

    def parse_known_args(  # type: ignore[override]
        self, args: list[str] | None = None, namespace: argparse.Namespace | None = None
    ) -> tuple[argparse.Namespace, list[str]]:
        if self._inner:
            return super().parse_known_args(args, namespace)
        given = list(sys.argv[1:] if args is None else args)
        tail: list[str] = []
        if "--" in given:
            cut = given.index("--")
            given, tail = given[:cut], given[cut + 1 :]
        self._inner = True
        try:
            parsed, rest = self.parse_known_intermixed_args(given, namespace)
        finally:
            self._inner = False
        parsed.pytest_args = tail
        return parsed, rest


def add_parser(commands: Any, remote: argparse.ArgumentParser) -> None:
    """Add ``test`` to the ``yard`` subcommands (``remote``: the remote cache options)."""
    default_class = commands._parser_class
    commands._parser_class = _TestParser  # argparse has no other way to choose one's class
    try:
        test = commands.add_parser(
            "test",
            help="each member's tests in its own environment, in parallel, from the cache",
            description=(
                "Run each member's tests in its own exact environment (what it declares, from "
                "uv.lock), in parallel; passes are cached by content, locally and remotely. "
                "Arguments after -- go to pytest."
            ),
            parents=[remote],
        )
    finally:
        commands._parser_class = default_class
    # --root and --debug as everywhere, without hiding the values given before `test`
    test.add_argument(
        "--root",
        type=Path,
        default=argparse.SUPPRESS,
        help="the workspace root (default: the workspace enclosing the current folder)",
    )
    test.add_argument(
        "--debug", action="store_true", default=argparse.SUPPRESS, help="show tracebacks on errors"
    )
    test.add_argument("members", nargs="*", metavar="MEMBER", help="members (default: all)")
    test.add_argument("--affected", action="store_true", help="what a git change affects")
    test.add_argument("--base", metavar="REF", help="with --affected: compare against REF")
    test.add_argument("--head", metavar="REF", help="with --affected: the changed ref")
    test.add_argument("--jobs", "-j", metavar="N", help="members tested at once (default: cores)")
    test.add_argument(
        "--no-cache",
        action="store_true",
        help="run every member's tests; read and write no cache (local or remote)",
    )
    test.add_argument(
        "--cache-dir",
        type=Path,
        metavar="DIR",
        help="cache folder (default: ~/.cache/yard/build, shared with yard build)",
    )
    test.add_argument(
        "--dry-run", action="store_true", help="say what is cached and what would run; run nothing"
    )
    test.add_argument("--json", action="store_true", help="print the result as JSON")


def run_test(args: argparse.Namespace, root: Path) -> int:
    """``yard test``."""
    from . import _progress
    from ._buildcli import _cache_dir, open_remote
    from ._testrun import TestOptions, labels, test
    from ._workspace import load_workspace

    jobs = _jobs(args.jobs)  # bad input fails before anything is read
    if (args.base or args.head) and not args.affected:
        raise YardError("--base and --head go with --affected")
    if args.affected and args.members:
        raise YardError("give members or --affected, not both")
    if args.affected and not args.base:
        raise YardError("--affected needs --base REF (e.g. --base origin/main)")
    workspace = load_workspace(root)
    names = _select(args, workspace)
    if args.no_cache:
        args.no_remote_cache = True
    remote, warnings = open_remote(args, root)
    if not names:
        if remote is not None:
            remote.close()
        return _nothing(args, "nothing to test: no member is affected")
    words = _progress.Words("yard test", "testing", labels(), ("passed", "failed"))
    if remote is not None and not args.json:
        how = "read-only" if remote.settings.read_only else "read-write"
        print(f"remote cache: {remote.settings.shown} ({how})", flush=True)
    options = TestOptions(
        cache=_cache_dir(args),
        jobs=jobs,
        use_cache=not args.no_cache,
        pytest_args=tuple(args.pytest_args),
        dry_run=args.dry_run,
        remote=remote,
    )
    reporter = _progress.reporter(sys.stdout, quiet=args.json, words=words)
    try:
        report = test(workspace, names, options, reporter)
    finally:
        if remote is not None:
            remote.close()
    if remote is not None:
        report.extra["remote"] = remote.describe()
    report.extra["warnings"] = warnings
    return _show(args, report)


def _jobs(text: str | None) -> int:
    if text is None:
        return os.cpu_count() or 1
    if not text.isdigit() or int(text) < 1:
        raise YardError(f"--jobs {text}: expected a whole number of at least 1")
    return int(text)


def _select(args: argparse.Namespace, workspace: Workspace) -> list[str]:
    if args.members:
        return sorted({workspace.member(name).name for name in args.members})
    if not args.affected:
        return list(workspace.members)
    from ._affected import compute_affected
    from ._git import PendingChange
    from ._graph import Graph

    pending = PendingChange(workspace.root, args.base, args.head)
    try:
        graph = Graph(workspace.members)
        found = compute_affected(workspace, graph, base=args.base, head=args.head, pending=pending)
    finally:
        pending.close()
    return list(found.affected)


def _nothing(args: argparse.Namespace, message: str) -> int:
    if args.json:
        print(json.dumps({"ok": True, "summary": {}, "members": [], "warnings": []}, indent=2))
    else:
        print(message)
    return 0


def _show(args: argparse.Namespace, report: TestReport) -> int:
    from ._testrun import tail

    results = report.results.values()
    failed = [r for r in results if r.state == "failed"]
    if args.json:
        data = {
            "ok": report.ok,
            "summary": report.summary(),
            "members": [r.as_dict() for r in results],
            **report.extra,
        }
        print(json.dumps(data, indent=2))
    else:
        for r in failed:
            print(f"---- {r.name}: tests failed (exit status {r.code}); the end of {r.log}:")
            for line in tail(r.log, FAILED_LOG_LINES):
                print(line)
        print(table(report))
    if failed:
        names = ", ".join(r.name for r in failed)
        print(f"yard: error: tests failed for: {names}", file=sys.stderr)
    return 0 if report.ok else EXIT_FAILED


def table(report: TestReport) -> str:
    """The final table: member, result, time, cached or run, and pytest's summary line."""
    rows = [("member", "result", "time", "cached or run", "summary")]
    for r in report.results.values():
        if r.state == "cached":
            how = "cached (remote)" if r.source == "remote" else "cached"
            seconds = "-"
        elif r.state == "planned":
            how, seconds = "would run", "-"
        elif r.source == "run":
            how, seconds = "run", f"{r.seconds:.1f} s"
        else:
            how, seconds = "-", "-"
        rows.append((r.name, r.result, seconds, how, r.summary))
    widths = [max(len(row[i]) for row in rows) for i in range(5)]
    lines = [
        "  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)).rstrip() for row in rows
    ]
    s = report.summary()
    line = (
        f"passed {s['passed']}, failed {s['failed']}, no tests {s['no_tests']}; "
        f"run {s['run']}, cached {s['cached']} ({s['from_remote']} from the remote) "
        f"in {s['seconds']:.2f} s"
    )
    if s["saved_seconds"]:
        line += f" (the cached runs took {s['saved_seconds']:.1f} s)"
    lines.append(line)
    return "\n".join(lines)
