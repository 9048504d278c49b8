"""multiprocessing's helper processes: the forkserver the pool is forked from, and the resource
tracker it starts. Both are the supervisor's children, started at boot and ended at its exit.

Each ends on its own once every holder of its "alive" pipe has closed it: the supervisor and
every pool process (multiprocessing hands both pipes to each child it forks). Left to that, they
outlive the supervisor for a moment, for init to reap (in a container without an init, nobody
does); and the tracker ignores SIGTERM and SIGINT, the server SIGINT, so a signal to the process
group does not end them. So the supervisor, its pool gone, closes their pipes itself, waits for
them and reaps them, and kills one that does not end in time (a pool process that could not be
killed still holds it): a stopped worker leaves no process behind. multiprocessing has no public
call for this; the attributes read here are those its own ``_stop()`` methods use (3.11 to
3.13), which wait without a timeout.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from typing import Any, Final

__all__ = ["start_forkserver", "stop_helpers"]

_POLL: Final = 0.01


def start_forkserver() -> Any:
    """The forkserver context, its server started now (idempotent).

    Each child is forked from a small server process that imported the transport once (never
    the plugins, never a Redis connection), so a replacement or an extra process is serving in
    milliseconds instead of re-importing everything. Started before the supervisor's own heavy
    imports, the server's imports run beside them on another core."""
    from multiprocessing import forkserver, get_context

    context = get_context("forkserver")
    context.set_forkserver_preload(["switchyard_worker._child", "switchyard_rq"])
    forkserver.ensure_running()
    return context


def stop_helpers(timeout: float = 5.0) -> list[str]:
    """End this process's forkserver and resource tracker (if it started them) and reap them.

    Call it once the pool is gone. Returns the helpers that had to be killed (SIGKILL), each as
    "forkserver 123", after ``timeout`` seconds."""
    from multiprocessing import forkserver, resource_tracker, util

    helpers: list[tuple[str, int]] = []
    server: Any = getattr(forkserver, "_forkserver", None)
    if server is not None and getattr(server, "_forkserver_pid", None) is not None:
        pid, fd = server._forkserver_pid, server._forkserver_alive_fd
        address = server._forkserver_address
        server._forkserver_pid = server._forkserver_alive_fd = server._forkserver_address = None
        with contextlib.suppress(OSError):
            os.close(fd)  # its EOF tells the server to leave
        if address and not util.is_abstract_socket_namespace(address):
            with contextlib.suppress(OSError):
                os.unlink(address)  # its socket file
        helpers.append(("forkserver", pid))
    tracker: Any = getattr(resource_tracker, "_resource_tracker", None)
    if tracker is not None and getattr(tracker, "_pid", None) is not None:
        pid, fd = tracker._pid, tracker._fd
        tracker._pid = tracker._fd = None
        with contextlib.suppress(OSError):
            os.close(fd)
        helpers.append(("resource tracker", pid))
    deadline = time.monotonic() + timeout
    killed = []
    for name, pid in helpers:
        if not _reap(pid, deadline):
            killed.append(f"{name} {pid}")
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)  # the tracker ignores SIGTERM
            _reap(pid, None)
    return killed


def _reap(pid: int, deadline: float | None) -> bool:
    """Wait for child ``pid`` to end (until ``deadline``, None: however long); True once reaped
    (or not ours to reap)."""
    while True:
        try:
            done, _ = os.waitpid(pid, 0 if deadline is None else os.WNOHANG)
        except ChildProcessError:
            return True
        if done:
            return True
        if deadline is not None and time.monotonic() >= deadline:
            return False
        time.sleep(_POLL)
