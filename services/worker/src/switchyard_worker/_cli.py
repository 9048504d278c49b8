"""``switchyard-worker``: parse options, boot, print the boot line, supervise until signalled."""

from __future__ import annotations

import time

_T0 = time.perf_counter()

import argparse  # noqa: E402 - after _T0 on purpose: the boot time covers our imports
import logging  # noqa: E402
import sys  # noqa: E402
from collections.abc import Sequence  # noqa: E402
from typing import TYPE_CHECKING, Any, NoReturn  # noqa: E402

if TYPE_CHECKING:
    from ._settings import WorkerSettings

__all__ = ["main"]

_DESCRIPTION = """\
Run a supervised pool of warm worker processes that consume Switchyard's queues.
Every option can also be set as SWITCHYARD_WORKER_<NAME> in the environment
(e.g. SWITCHYARD_WORKER_MAX_PROCESSES=8); a flag wins over the environment."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        self.exit(2, f"switchyard-worker: error: {message} (see --help)\n")


def _parser() -> argparse.ArgumentParser:
    p = _Parser(
        prog="switchyard-worker", description=_DESCRIPTION, argument_default=argparse.SUPPRESS
    )
    add = p.add_argument
    add("--queues", metavar="A,B", help="queues to serve (default: every routed queue)")
    add("--min", dest="min_processes", type=int, metavar="N", help="fewest processes (1)")
    add("--max", dest="max_processes", type=int, metavar="N", help="most processes (cores, >= 2)")
    add("--max-jobs", type=int, metavar="N", help="recycle a process after N jobs (never)")
    add(
        "--concurrency",
        type=int,
        metavar="N",
        help="jobs at once per process: async or io_bound ones (16)",
    )
    add("--grace", type=float, metavar="S", help="seconds for in-flight jobs on SIGTERM (30)")
    add("--health-port", type=int, metavar="P", help="serve /healthz, /readyz, /metrics (0 = off)")
    add("--health-host", metavar="H", help="address for the health server (127.0.0.1)")
    add("--redis-url", metavar="URL", help="Redis to use (default: SWITCHYARD_REDIS_URL/config)")
    add("--manifest", metavar="PATH", help="read actions from this manifest")
    add("--scale-interval", type=float, metavar="S", help="autoscaler tick (1.0)")
    add("--scale-backlog", type=int, metavar="N", help="waiting jobs per process: busy (20)")
    add("--scale-max-wait", type=float, metavar="S", help="oldest job age: busy (1.0)")
    add("--scale-up-ticks", type=int, metavar="N", help="busy ticks before growing (2)")
    add("--scale-down-ticks", type=int, metavar="N", help="idle ticks before shrinking (30)")
    add("--recover-interval", type=float, metavar="S", help="orphaned-job sweep period (5.0)")
    add(
        "--no-metrics",
        dest="metrics",
        action="store_false",
        help="no per-job metrics (/metrics keeps the pool's gauges; top sees queues only)",
    )
    add(
        "--no-schedules",
        dest="schedules",
        action="store_false",
        help="run no scheduler here (schedules fire from the other workers)",
    )
    add("--schedule-lease", type=float, metavar="S", help="schedulers' lease: failover time (5.0)")
    add("--log-format", metavar="text|json", help="log lines for people (text) or machines (json)")
    add("--job-log", metavar="all|failures|off", help="a line per job outcome: all (default), ...")
    add("--debug", action="store_true", help="debug logs and tracebacks")
    return p


def _settings_error(exc: Any) -> str:
    from ._settings import FLAGS

    if exc.field is None:
        return str(exc.message)
    return f"{FLAGS.get(exc.field, exc.field)}: {exc.message}"


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``switchyard-worker`` command; returns the exit code."""
    args = vars(_parser().parse_args(argv))
    debug = bool(args.get("debug"))
    try:
        return _run(args)
    except KeyboardInterrupt:
        return 130
    except _UserError as exc:
        if debug:
            raise
        print(f"switchyard-worker: error: {exc}", file=sys.stderr)
        return exc.code
    except Exception as exc:
        if debug:
            raise
        print(
            f"switchyard-worker: error: {type(exc).__name__}: {exc} (rerun with --debug)",
            file=sys.stderr,
        )
        return 1


class _UserError(Exception):
    def __init__(self, message: str, code: int) -> None:
        super().__init__(message)
        self.code = code


def _run(args: dict[str, Any]) -> int:
    from ._settings import SettingsError, WorkerSettings

    try:
        settings = WorkerSettings.load(args)
    except SettingsError as exc:
        raise _UserError(_settings_error(exc), 2) from exc

    from ._forkserver import start_forkserver, stop_helpers

    start_forkserver()  # its imports run beside ours, on another core
    try:
        return _serve(settings, url_flag="redis_url" in args)
    finally:
        for helper in stop_helpers():
            print(f"switchyard-worker: killed {helper}: it did not stop", file=sys.stderr)


def _serve(settings: WorkerSettings, *, url_flag: bool) -> int:
    import switchyard
    import switchyard_rq

    from ._boot import load_registry, served_queues
    from ._health import HealthServer
    from ._logs import configure_logging
    from ._supervisor import Supervisor

    configure_logging(
        logging.DEBUG if settings.debug else logging.INFO, settings.log_format, "supervisor"
    )
    try:
        config = switchyard.load_config()
        t_registry = time.perf_counter()
        boot = load_registry(config, settings.manifest)
        registry_ms = (time.perf_counter() - t_registry) * 1000
        if settings.schedules:  # a schedule naming no action stops us here, with its line
            switchyard.load_schedules(config, boot.registry, resolve=False)
        if settings.redis_url:
            url = settings.redis_url
            origin = "--redis-url" if url_flag else "SWITCHYARD_WORKER_REDIS_URL"
        else:
            url, origin = switchyard_rq.redis_url(), switchyard_rq.redis_origin()
        switchyard_rq.check_url(url, origin)
    except switchyard.SwitchyardError as exc:
        raise _UserError(str(exc), 1) from exc
    queues = served_queues(boot, settings.queues)
    supervisor = Supervisor(settings, boot, queues=queues, redis_url=url)
    try:
        redis = supervisor.check_redis()  # unreachable: said now, served once it answers
    except switchyard.SwitchyardError as exc:  # credentials refused: they will not fix themselves
        raise _UserError(str(exc), 1) from exc
    health = None
    if settings.health_port:
        try:
            health = HealthServer(
                settings.health_host,
                settings.health_port,
                supervisor.readiness,
                supervisor.metrics,
                exposition=supervisor.exposition,
            )
        except OSError as exc:
            where = f"{settings.health_host}:{settings.health_port}"
            raise _UserError(f"--health-port: cannot listen on {where}: {exc.strerror}", 1) from exc
    boot_ms = (time.perf_counter() - _T0) * 1000
    procs = f"{settings.min_processes}-{settings.max_processes}"
    each = f" x {settings.concurrency} jobs" if settings.concurrency > 1 else ""
    print(
        f"switchyard-worker: {len(boot.registry)} actions ({boot.source}), "
        f"queues {','.join(queues)}, redis {switchyard_rq.redact_url(url)} ({origin}), "
        f"{procs} processes{each}"
        + (f", health http://{health.address[0]}:{health.address[1]}" if health else "")
        + f", booted in {boot_ms:.1f} ms (registry {registry_ms:.1f} ms)"
        + (f"; not ready: {redis}" if redis.problem else ""),
        flush=True,
    )
    try:
        return supervisor.run()
    except switchyard.SwitchyardError as exc:
        raise _UserError(str(exc), 1) from exc
    finally:
        if health is not None:
            health.close()
