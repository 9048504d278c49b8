"""The ``switchyard`` command line (also ``python -m switchyard``).

Imported only by the console script and ``__main__``. Errors are one line on stderr
(``error: ...``), with the traceback only under ``--debug``. Exit codes: 0 ok; 1 bad input, a
failed action or problems found by ``doctor``; 2 an unknown action or a usage error.

Other packages add subcommands through the entry-point group ``switchyard.commands``
(``module:register``; ``register(subparsers)`` adds argparse parsers and sets
``func=callable(args) -> int | None`` as their default); they are loaded only when the command
given is not a core one, or for ``--help``. An option that takes an action's input declares
``type="action-input"``: the core reads it (JSON, ``@path``, ``@-`` for stdin), checks that it
is a JSON object and hands the command the JSON text, so every command words its errors alike.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, NoReturn

from . import __version__
from ._call import call_action
from ._config import load_config
from ._default import build_registry, default_registry, manifest_location
from ._errors import SwitchyardError, UnknownActionError

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from ._registry import Registry

__all__ = ["main"]

COMMANDS_GROUP: Final = "switchyard.commands"
CORE_COMMANDS: Final = frozenset({"actions", "cache", "call", "doctor", "manifest"})
DOCTOR_GROUP: Final = "switchyard.doctor"
#: the argparse type of an option that takes an action's input (``--data``), for every command
ACTION_INPUT: Final = "action-input"
STATUS_GROUP: Final = "switchyard.status"


class UsageError(Exception):
    """A command line that does not parse (exit code 2)."""


class _Parser(argparse.ArgumentParser):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.register("type", ACTION_INPUT, _action_input)

    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{message} (see `{self.prog} --help`)")


def _print_json(value: object) -> None:
    print(json.dumps(value, indent=2, sort_keys=False, default=str))


def _listing_registry() -> Registry:
    """The registry `switchyard call` would use, without loading hook plugins."""
    return build_registry(manifest_location(), load_hooks=False)


def _warn_problems(registry: Registry) -> None:
    count = len(registry.problems())
    if count:
        print(
            f"warning: {count} problem(s) with installed plugins; run `switchyard doctor`",
            file=sys.stderr,
        )


# -- commands -----------------------------------------------------------------------------------


def _actions_list(args: argparse.Namespace) -> int:
    registry = _listing_registry()
    infos = [registry.info(name) for name in registry.names()]
    config = load_config()
    # the queue a scheduled call really goes to: routing rules, then the action's hint, then the
    # default queue (the hint is known from a manifest; listing from metadata imports no plugin)
    routed = {i.name: config.route(i.name, i.queue) for i in infos}
    if args.json:
        _print_json([{**info._asdict(), "routed_queue": routed[info.name]} for info in infos])
    else:
        rows = [("NAME", "DISTRIBUTION", "QUEUE")] + [
            (i.name, i.distribution or "-", routed[i.name]) for i in infos
        ]
        widths = [max(len(row[col]) for row in rows) for col in range(2)]
        for name, dist, queue in rows:
            print(f"{name:<{widths[0]}}  {dist:<{widths[1]}}  {queue}".rstrip())
    _warn_problems(registry)
    return 0


def _actions_show(args: argparse.Namespace) -> int:
    registry = _listing_registry()
    info = registry.info(args.name)
    item = registry.resolve(args.name)
    described: dict[str, Any] = {
        "name": item.name,
        "description": item.description,
        "distribution": info.distribution,
        "dist_version": info.dist_version,
        "target": info.target,
        "version": item.version,
        "queue": item.policy.queue,
        "routed_queue": load_config().route(item.name, item.policy.queue),
        "policy": item.policy.to_json(),
        "async": item.is_async,
        "input_schema": item.input_schema(),
        "output_schema": item.output_schema(),
    }
    if args.json:
        _print_json(described)
        return 0
    print(f"{item.name}: {item.description or '(no description)'}")
    origin = f"{info.distribution} {info.dist_version}" if info.distribution else "in memory"
    print(f"  from             {origin} ({info.target})")
    hint = f" (hint {item.policy.queue})" if item.policy.queue else ""
    print(f"  version          {item.version}")
    print(f"  queue            {described['routed_queue']}{hint}")
    print(f"  handler          {'async' if item.is_async else 'sync'}")
    for option, value in item.policy.items():
        if option != "queue":
            print(f"  {option:<16} {'-' if value is None else value}")
    for key in ("input_schema", "output_schema"):
        print(f"  {key.replace('_', ' ')}:")
        for line in json.dumps(described[key], indent=2).splitlines():
            print(f"    {line}")
    return 0


def _action_input(raw: str) -> str:
    """An action's input from the command line: JSON text, ``@path`` or ``@-`` (stdin), which
    must be a JSON object; returned as JSON text. The one reader of every ``--data`` (the
    argparse type ``"action-input"``), so ``call`` and ``schedule`` say the same things."""
    source = None
    if raw.startswith("@"):
        source = raw[1:]
        try:
            raw = sys.stdin.read() if source == "-" else Path(source).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as error:
            detail = getattr(error, "strerror", None) or str(error)
            raise SwitchyardError(f"cannot read --data file {source}: {detail}") from None
    what = "--data" if source is None else f"--data {'from stdin' if source == '-' else source}"
    try:
        value = json.loads(raw)
    except json.JSONDecodeError as error:
        where = f"line {error.lineno}, column {error.colno}"
        raise SwitchyardError(f"{what} is not valid JSON: {error.msg} ({where})") from None
    if not isinstance(value, dict):
        kind = _JSON_KINDS.get(type(value), type(value).__name__)
        raise SwitchyardError(f"{what} must be a JSON object of the action's input, not {kind}")
    return raw


_JSON_KINDS: Final = {
    list: "a list",
    str: "a string",
    int: "a number",
    float: "a number",
    bool: "true or false",
    type(None): "null",
}


def _call(args: argparse.Namespace) -> int:
    output = call_action(args.name, args.data)
    print(output.model_dump_json(indent=2))
    return 0


def _doctor(args: argparse.Namespace) -> int:
    registry = default_registry()
    print(f"registry: {len(registry)} actions from {registry.source}")
    problems: list[str] = [str(p) for p in registry.problems()]
    for name in registry.names():
        try:
            item = registry.resolve(name)
            item.input_schema()
            item.output_schema()
        except SwitchyardError as error:
            message = str(error)
            if message not in problems:
                problems.append(message)
        except Exception as error:
            info = registry.info(name)
            problems.append(
                f"action {name} from {info.distribution}: cannot build its JSON schemas: "
                f"{type(error).__name__}: {error}"
            )
    for line in _extension_status():
        print(line)
    problems.extend(_extension_problems())
    hooks = [name for name, _ in registry.hooks.plugins()]
    if hooks:
        print(f"hooks: {', '.join(hooks)}")
    if not problems:
        print("ok: no problems found")
        return 0
    for problem in problems:
        print(f"problem: {problem}")
    print(f"{len(problems)} problem(s) found")
    return 1


def _extension_problems() -> list[str]:
    """What the checks of other packages (entry points ``switchyard.doctor``: callables
    returning problems, one line each) find, e.g. switchyard-db's pending migrations."""
    from importlib import metadata

    found: list[str] = []
    for entry in metadata.entry_points(group=DOCTOR_GROUP):
        try:
            check: Callable[[], list[str]] = entry.load()
            found.extend(check())
        except Exception as error:
            dist = entry.dist.name if entry.dist is not None else "unknown distribution"
            found.append(f"check {entry.name} from {dist} failed: {type(error).__name__}: {error}")
    return found


def _extension_status() -> list[str]:
    """What other packages say about the services they use (entry points ``switchyard.status``:
    callables returning lines ``name: detail``), e.g. switchyard-rq's ``redis: <url> (<where
    from>), answers``."""
    from importlib import metadata

    lines: list[str] = []
    for entry in metadata.entry_points(group=STATUS_GROUP):
        try:
            status: Callable[[], list[str]] = entry.load()
            lines.extend(status())
        except Exception as error:
            dist = entry.dist.name if entry.dist is not None else "unknown distribution"
            lines.append(
                f"{entry.name}: status from {dist} failed: {type(error).__name__}: {error}"
            )
    return lines


def _cache_invalidate(args: argparse.Namespace) -> int:
    from ._cache import invalidate

    print(f"dropped {invalidate(*args.tags)} cached result(s)")
    return 0


def _manifest_write(args: argparse.Namespace) -> int:
    from ._manifest import write_manifest

    path = write_manifest(args.path)
    count = len(json.loads(path.read_text(encoding="utf-8"))["actions"])
    print(f"wrote {path} ({count} actions)")
    return 0


# -- parser -------------------------------------------------------------------------------------


def _core_parser() -> tuple[_Parser, argparse._SubParsersAction[_Parser]]:
    parser = _Parser(
        prog="switchyard",
        description="List, inspect and call switchyard actions; check installed plugins.",
    )
    parser.add_argument("--version", action="version", version=f"switchyard {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks of errors")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    actions = commands.add_parser("actions", help="list or describe actions")
    actions_commands = actions.add_subparsers(dest="actions_command", metavar="SUBCOMMAND")
    listing = actions_commands.add_parser("list", help="list actions (imports no plugin)")
    listing.add_argument("--json", action="store_true", help="print JSON")
    listing.set_defaults(func=_actions_list)
    show = actions_commands.add_parser("show", help="describe an action and its schemas")
    show.add_argument("name", metavar="NAME")
    show.add_argument("--json", action="store_true", help="print JSON")
    show.set_defaults(func=_actions_show)

    call = commands.add_parser("call", help="call an action in process and print its output")
    call.add_argument("name", metavar="NAME")
    call.add_argument(
        "--data",
        default="{}",
        type=ACTION_INPUT,
        metavar="JSON|@FILE",
        help="the input as JSON, or @path to a JSON file (@- for stdin); default {}",
    )
    call.set_defaults(func=_call)

    doctor = commands.add_parser(
        "doctor", help="load every action; report broken plugins, conflicts, a stale manifest"
    )
    doctor.set_defaults(func=_doctor)

    cache = commands.add_parser("cache", help="cached action results")
    cache_commands = cache.add_subparsers(dest="cache_command", metavar="SUBCOMMAND")
    drop = cache_commands.add_parser("invalidate", help="drop the results stored under TAGs")
    drop.add_argument("tags", metavar="TAG", nargs="+", help="e.g. user:42")
    drop.set_defaults(func=_cache_invalidate)

    manifest = commands.add_parser("manifest", help="write the action manifest")
    manifest_commands = manifest.add_subparsers(dest="manifest_command", metavar="SUBCOMMAND")
    write = manifest_commands.add_parser("write", help="write the manifest JSON to PATH")
    write.add_argument("path", metavar="PATH", type=Path)
    write.set_defaults(func=_manifest_write)
    return parser, commands


def _add_plugin_commands(commands: argparse._SubParsersAction[_Parser]) -> None:
    from importlib import metadata

    for entry in metadata.entry_points(group=COMMANDS_GROUP):
        try:
            register: Callable[[Any], None] = entry.load()
            register(commands)
        except Exception as error:
            dist = entry.dist.name if entry.dist is not None else "unknown distribution"
            print(
                f"warning: cannot load command {entry.name} from {dist} ({entry.value}): "
                f"{type(error).__name__}: {error}",
                file=sys.stderr,
            )


def _wants_plugin_commands(argv: Sequence[str]) -> bool:
    positional = [arg for arg in argv if not arg.startswith("-")]
    if positional:
        return positional[0] not in CORE_COMMANDS
    return any(arg in ("-h", "--help") for arg in argv) or not argv


class _LineFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return f"{record.levelname.lower()}: {record.getMessage()}"


def _exit_code(error: BaseException) -> int:
    return 2 if isinstance(error, UnknownActionError | UsageError) else 1


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code."""
    args_in = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in args_in
    args_in = [arg for arg in args_in if arg != "--debug"]  # accepted anywhere on the line
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_LineFormatter())
    logger = logging.getLogger("switchyard")
    level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG if debug else logging.WARNING)
    try:
        parser, commands = _core_parser()
        if _wants_plugin_commands(args_in):
            _add_plugin_commands(commands)
        args = parser.parse_args(args_in)
        func: Callable[[argparse.Namespace], int | None] | None = getattr(args, "func", None)
        if func is None:
            parser.print_help(sys.stderr)
            return 2
        return func(args) or 0
    except (SwitchyardError, UsageError) as error:
        if debug:
            import traceback

            traceback.print_exc()
        print(f"error: {error}", file=sys.stderr)
        return _exit_code(error)
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # the reader went away (`switchyard actions list | head`): stop quietly, as cat does
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except Exception as error:
        if debug:
            import traceback

            traceback.print_exc()
        print(
            f"error: unexpected {type(error).__name__}: {error} (run with --debug for details)",
            file=sys.stderr,
        )
        return 1
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)
