"""The ``yard`` command line: list, graph, deps, dependents, order, affected, check, new."""

from __future__ import annotations

import gc
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar, cast

from ._errors import EXIT_ERROR, EXIT_FINDINGS, YardError

if TYPE_CHECKING:
    import argparse

    from ._git import PendingChange
    from ._graph import Graph
    from ._workspace import Workspace


_P = TypeVar("_P", bound="argparse.ArgumentParser")


def _parser() -> argparse.ArgumentParser:
    import argparse  # here: the usual `yard affected` line is read without it

    class _Parser(argparse.ArgumentParser):
        def error(self, message: str) -> None:  # type: ignore[override]
            raise YardError(message)

    parser = _Parser(
        prog="yard",
        description="The uv workspace graph, what a git change affects and why, import checks.",
        parents=[_global_options(_Parser, default=None)],
    )
    # The same options again after the command: there they only set what they are given, so
    # that `yard --root WS list` keeps WS (a subcommand's default would overwrite it).
    common = _global_options(_Parser, default=argparse.SUPPRESS)
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    commands.required = True

    listing = commands.add_parser("list", help="members, versions, paths", parents=[common])
    listing.add_argument("--json", action="store_true", help="print JSON")

    graph = commands.add_parser("graph", help="the member graph", parents=[common])
    graph.add_argument("--format", choices=["text", "json", "dot", "mermaid"], default="text")
    graph.add_argument("--focus", metavar="MEMBER", help="only MEMBER, its deps and dependents")

    for name, text in (
        ("deps", "what MEMBER depends on"),
        ("dependents", "what depends on MEMBER"),
    ):
        sub = commands.add_parser(name, help=text, parents=[common])
        sub.add_argument("member", metavar="MEMBER")
        sub.add_argument("--direct", action="store_true", help="one level only")
        sub.add_argument("--json", action="store_true", help="print JSON")

    order = commands.add_parser("order", help="a topological order in waves", parents=[common])
    order.add_argument("--json", action="store_true", help="print JSON")

    affected = commands.add_parser(
        "affected", help="members a git change affects, and why", parents=[common]
    )
    affected.add_argument("--base", required=True, metavar="REF", help="compare against REF")
    affected.add_argument(
        "--head",
        metavar="REF",
        help="the changed ref (default: HEAD plus staged, unstaged and untracked files)",
    )
    affected.add_argument("--json", action="store_true", help="same as --format json")
    affected.add_argument("--explain", action="store_true", help="say why each is affected")
    affected.add_argument(
        "--format", choices=["names", "json", "github-matrix"], default=None, help="output form"
    )
    affected.add_argument("--shard", metavar="I/N", help="only shard I of N (1-based)")

    check = commands.add_parser(
        "check", help="imports against declared internal dependencies", parents=[common]
    )
    check.add_argument("--json", action="store_true", help="print JSON")

    new = commands.add_parser(
        "new", help="a new member from a template in [tool.yard.templates]", parents=[common]
    )
    new.add_argument("template", metavar="TEMPLATE", help="the template's name, e.g. plugin")
    new.add_argument("name", metavar="NAME", help="the new member's short name, e.g. orders")
    from ._buildcli import add_parsers  # build, cache, slice

    add_parsers(commands, common)
    return parser


def _global_options(parser_class: type[_P], *, default: object) -> _P:
    """The options every command takes, before or after its name (``--root``, ``--debug``)."""
    common = parser_class(add_help=False)
    common.add_argument(
        "--root",
        type=Path,
        default=default,
        help="the workspace root (default: the workspace enclosing the current folder)",
    )
    common.add_argument(
        "--debug",
        action="store_true",
        default=False if default is None else default,
        help="show tracebacks on errors",
    )
    return common


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status (0 ok, 1 findings, 2 errors)."""
    args_list = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in args_list
    collecting = gc.isenabled()
    try:
        args = _quick_affected(args_list) or _parser().parse_args(args_list)
        return _run(args)
    except YardError as exc:
        if debug:
            raise
        print(f"yard: error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return 0
    finally:
        if collecting:
            gc.enable()


_AFFECTED_VALUES = ("--base", "--head", "--format", "--shard", "--root")
_AFFECTED_FLAGS = ("--json", "--explain", "--debug")
_GLOBAL_VALUES: tuple[str, ...] = ("--root",)
_GLOBAL_FLAGS: tuple[str, ...] = ("--debug",)
_FORMATS = ("names", "json", "github-matrix")


def _quick_affected(argv: list[str]) -> argparse.Namespace | None:
    """The arguments of a plain ``yard affected`` command line, read without building the
    whole argparse parser (CI runs this command on every push; argparse and the other
    commands' modules cost it start-up time), or None for anything else.

    It takes exactly what argparse would take the same way: the global options (``--root``,
    ``--debug``) then the command, then known options spelled out in full (``--base REF`` or
    ``--base=REF``). Anything else (help, abbreviations, a missing or odd value, an unknown
    word) is left to argparse, which accepts it or says what is wrong.
    """
    values: dict[str, object] = {
        "command": None,
        "root": None,
        "debug": False,
        "base": None,
        "head": None,
        "json": False,
        "explain": False,
        "format": None,
        "shard": None,
    }
    i = 0
    flags, options = _GLOBAL_FLAGS, _GLOBAL_VALUES
    while i < len(argv):
        if values["command"] is None and argv[i] == "affected":
            values["command"] = "affected"
            flags, options = _AFFECTED_FLAGS, _AFFECTED_VALUES
            i += 1
            continue
        option, equals, value = argv[i].partition("=")
        if option in flags and not equals:
            values[option[2:]] = True
            i += 1
            continue
        if option not in options:
            return None
        if not equals:
            if i + 1 == len(argv):
                return None
            value = argv[i + 1]
            i += 1
        if not value or value.startswith("-"):
            return None
        values[option[2:]] = value
        i += 1
    if values["command"] is None or values["base"] is None:
        return None
    if values["format"] not in (None, *_FORMATS):
        return None
    if values["root"] is not None:
        values["root"] = Path(str(values["root"]))
    from types import SimpleNamespace

    return cast("argparse.Namespace", SimpleNamespace(**values))  # the same attributes


def _run(args: argparse.Namespace) -> int:
    if args.command not in ("build", "cache", "slice", "test", "new"):
        # The graph commands are short runs that build many small objects and drop none:
        # the cyclic garbage collector would only walk them again and again (a third of the
        # start-up time at 1,000 members). main() turns it back on.
        gc.disable()
    from ._workspace import find_root, load_workspace

    root = args.root.absolute() if args.root is not None else find_root(Path.cwd())
    if args.command in ("build", "cache", "slice", "test"):
        from ._buildcli import run

        return run(args, root)
    if args.command == "new":
        from ._new import new_command

        return new_command(root, args.template, args.name)
    pending = None
    shard = None
    if args.command == "affected":
        from ._git import PendingChange

        if args.json and args.format not in (None, "json"):
            raise YardError(f"--json contradicts --format {args.format}")
        shard = _shard(args.shard) if args.shard else None  # bad input fails before git runs
        pending = PendingChange(root, args.base, args.head)  # git works while yard reads
    try:
        from ._graph import Graph

        # what a change affects is read in the workspace as of its head
        head = args.head if args.command == "affected" else None
        workspace = load_workspace(root, rev=head)
        if args.command != "affected":  # affected reports them with its own
            warn(workspace.warnings)
        graph = Graph(workspace.members)
        return _command(args, workspace, graph, pending, shard)
    finally:
        if pending is not None:
            pending.close()


def _command(
    args: argparse.Namespace,
    workspace: Workspace,
    graph: Graph,
    pending: PendingChange | None,
    shard: tuple[int, int] | None,
) -> int:
    import json

    out: str
    if args.command == "list":
        members = list(workspace.members.values())
        if args.json:
            out = json.dumps(
                [{"name": m.name, "version": m.version, "path": m.path} for m in members],
                indent=2,
            )
        else:
            width = max((len(m.name) for m in members), default=0)
            out = "\n".join(f"{m.name:<{width}}  {m.version or '-':<10}  {m.path}" for m in members)
    elif args.command == "graph":
        from ._graph import render

        names = graph.focus(workspace.member(args.focus).name) if args.focus else None
        out = render(graph, args.format, names)
    elif args.command in ("deps", "dependents"):
        name = workspace.member(args.member).name
        fn = graph.dependencies if args.command == "deps" else graph.dependents
        found = fn(name, direct=args.direct)
        out = json.dumps(found) if args.json else "\n".join(found)
    elif args.command == "order":
        waves = graph.waves()
        if args.json:
            out = json.dumps({"waves": waves, "cycles": graph.cycles}, indent=2)
        else:
            lines = []
            for i, wave in enumerate(waves, 1):
                lines.append(f"wave {i}: {' '.join(wave)}")
                in_wave = set(wave)
                lines.extend(f"  cycle: {' '.join(c)}" for c in graph.cycles if c[0] in in_wave)
            out = "\n".join(lines)
    elif args.command == "affected":
        assert pending is not None
        out = _affected(args, workspace, graph, pending, shard)
    else:
        return _check(args, workspace)
    if out:
        print(out)
    return 0


def _affected(
    args: argparse.Namespace,
    workspace: Workspace,
    graph: Graph,
    pending: PendingChange,
    shard: tuple[int, int] | None,
) -> str:
    import json

    from ._affected import compute_affected

    fmt = args.format or ("json" if args.json else "names")
    result = compute_affected(workspace, graph, base=args.base, head=args.head, pending=pending)
    warn(result.warnings)
    if shard is not None:
        result = result.shard(*shard)
    if args.explain and fmt == "names":
        return result.explain()
    if fmt == "json":
        data = result.as_dict()
        if shard is not None:
            data["shard"] = args.shard
        return json.dumps(data, indent=2)
    if fmt == "github-matrix":
        include = [
            {"member": name, "path": workspace.members[name].path} for name in result.affected
        ]
        return json.dumps({"include": include})
    return "\n".join(result.affected)


def warn(warnings: Sequence[str]) -> None:
    """Print what yard worked around on stderr, one line each (stdout stays the answer)."""
    for line in warnings:
        print(f"yard: warning: {line}", file=sys.stderr)


def _shard(text: str) -> tuple[int, int]:
    index, _, count = text.partition("/")
    if not (index.isdigit() and count.isdigit()) or int(count) < 1:
        raise YardError(f"--shard {text}: expected I/N with whole numbers, e.g. 1/4")
    if not 1 <= int(index) <= int(count):
        raise YardError(f"--shard {text}: I must be between 1 and N")
    return int(index), int(count)


def _check(args: argparse.Namespace, workspace: Workspace) -> int:
    import json

    from ._check import check

    findings = check(workspace)
    errors = [f for f in findings if f.severity == "error"]
    if args.json:
        print(json.dumps([f.as_dict() for f in findings], indent=2))
    else:
        for f in findings:
            severity = "warning: " if f.severity == "warning" else ""
            print(f"{f.where}: {f.member}: {severity}{f.message}")
        count = len(workspace.members)
        warnings = len(findings) - len(errors)
        noted = f", {warnings} warning(s)" if warnings else ""
        if errors:
            print(f"yard check: {len(errors)} problem(s){noted} in {count} member(s)")
        else:
            print(f"yard check: {count} member(s), imports match declared dependencies{noted}")
    return EXIT_FINDINGS if errors else 0
