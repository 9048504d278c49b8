"""``switchyard-gateway``: serve the gateway (the default command), or make an API key.

    switchyard-gateway [serve] [--host H] [--port P] [--workers N] [--config FILE]
                       [--auth on|off|auto] [--max-body SIZE] [--rate RATE] [--log-level L]
    switchyard-gateway hash-key [KEY]      a new key (or KEY) and the hash the settings store

Options go before or after ``serve``. A bad option or setting is one line on stderr and exit
status 2; ``--debug`` shows the traceback of an unexpected error.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
from collections.abc import Sequence
from typing import Any

from ._settings import ENV_PREFIX, Settings, SettingsError

__all__ = ["main"]

_FLAGS = ("host", "port", "workers", "auth", "max_body", "rate", "log_level")


def _add_serve_options(parser: argparse.ArgumentParser, *, suppress: bool) -> None:
    default: Any = argparse.SUPPRESS if suppress else None
    parser.add_argument("--host", default=default, metavar="H", help="address (127.0.0.1)")
    parser.add_argument("--port", default=default, metavar="P", help="port (8080; 0: any free)")
    parser.add_argument("--workers", default=default, metavar="N", help="server processes (1)")
    parser.add_argument("--config", default=default, metavar="FILE", help="settings file (TOML)")
    parser.add_argument(
        "--auth",
        default=default,
        metavar="on|off|auto",
        help="auth (auto: on when keys or JWT are set)",
    )
    parser.add_argument(
        "--max-body",
        default=default,
        metavar="SIZE",
        help="largest request body (project's max-payload-bytes)",
    )
    parser.add_argument(
        "--rate", default=default, metavar="RATE", help="each client's rate, e.g. 100/s (none)"
    )
    parser.add_argument(
        "--log-level", default=default, metavar="L", help="warning, info, debug... (warning)"
    )
    parser.add_argument(
        "--debug", action="store_true", default=default, help="tracebacks for unexpected errors"
    )


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="switchyard-gateway",
        description="Serve every Switchyard action over HTTP, with auth, limits and a dashboard.",
    )
    _add_serve_options(parser, suppress=False)
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    serve = commands.add_parser("serve", help="serve (the default)")
    _add_serve_options(serve, suppress=True)
    key = commands.add_parser("hash-key", help="a new API key and its hash (or KEY's hash)")
    key.add_argument("key", nargs="?", metavar="KEY", help="hash this key instead of a new one")
    return parser


def _fail(message: str) -> int:
    print(f"switchyard-gateway: error: {message}", file=sys.stderr)
    return 2


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "hash-key":
        from ._auth import hash_key, new_key

        key = args.key or new_key()
        if args.key is None:
            print(f"key:  {key}")
        print(f"hash: {hash_key(key)}")
        return 0
    try:
        return _serve(args)
    except SettingsError as exc:
        return _fail(str(exc))
    except Exception as exc:
        if args.debug:
            raise
        from switchyard import SwitchyardError

        if isinstance(exc, SwitchyardError):
            return _fail(str(exc))
        return _fail(f"{type(exc).__name__}: {exc} (--debug shows where)")


def _serve(args: argparse.Namespace) -> int:
    overrides = {name: getattr(args, name) for name in _FLAGS if getattr(args, name, None)}
    if args.config:
        overrides["config"] = args.config
    settings = Settings.load(overrides=overrides)
    # the server's processes build their settings again from the environment: hand them ours
    for name, value in overrides.items():
        os.environ[ENV_PREFIX + name.upper()] = str(value)

    from switchyard import default_registry

    registry = default_registry()
    auth = "off"
    if settings.auth_on:
        ways = [f"{len(settings.keys)} API key(s)"] if settings.keys else []
        if settings.jwt.secret is not None:
            ways.append("JWT HS256")
        if settings.jwt.jwks is not None:
            ways.append("JWT RS256")
        auth = "on (" + (", ".join(ways) or "nothing accepted") + ")"
    rate = str(settings.rate) if settings.rate else "none"
    print(
        f"switchyard-gateway on http://{settings.host}:{settings.port}: {settings.workers} "
        f"process(es), {len(registry)} actions from {registry.source}, auth {auth}, "
        f"client rate {rate}",
        flush=True,
    )
    import uvicorn

    options: dict[str, Any] = {
        "host": settings.host,
        "port": settings.port,
        "log_level": settings.log_level,
        "access_log": False,
        "http": "httptools",
        "loop": "uvloop" if sys.platform != "win32" else "asyncio",
        "lifespan": "on",
        "server_header": False,
        "timeout_graceful_shutdown": 10,
    }
    if settings.workers == 1:
        from ._app import Gateway

        uvicorn.run(Gateway(settings, registry=registry), **options)
        return 0
    folder = tempfile.mkdtemp(prefix="switchyard-gateway-metrics-")
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = folder
    try:
        uvicorn.run(
            "switchyard_gateway._app:create_app", factory=True, workers=settings.workers, **options
        )
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    return 0
