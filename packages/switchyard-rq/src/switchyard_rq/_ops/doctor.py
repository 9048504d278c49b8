"""What ``switchyard doctor`` says about Redis: which one this project uses, where that comes
from, and whether it answers (entry points ``switchyard.status`` and ``switchyard.doctor``).

The embedded server is looked for, never started: a doctor changes nothing.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

from switchyard import SwitchyardError

from switchyard_rq._wire.connection import _choose, check_redis, check_url
from switchyard_rq._wire.embedded import _ping, socket_path

__all__ = ["problems", "status"]


def status() -> list[str]:
    """One line: ``redis: <url> (<where from>), answers`` or why it does not."""
    return [_look()[0]]


def problems() -> list[str]:
    """A Redis that is configured and does not answer, or a Redis URL that is not one."""
    problem = _look()[1]
    return [] if problem is None else [problem]


@cache
def _look() -> tuple[str, str | None]:
    """(the status line, the problem or None), worked out once per process."""
    try:
        choice = _choose(None)
    except SwitchyardError:
        return (
            f"redis: none (SWITCHYARD_REDIS_URL is not set and {Path.cwd()} is in no "
            "workspace, so no embedded one either)",
            None,
        )
    if choice.url is None:
        assert choice.root is not None
        sock = socket_path(choice.root)
        if sock is None or not _ping(sock):
            where = choice.root / ".switchyard"
            return f"redis: embedded, under {where} (not running: it starts on first use)", None
        url = f"unix://{sock}?db=0"
    else:
        url = choice.url
        try:
            check_url(url, choice.origin)
        except SwitchyardError as exc:
            return f"redis: {exc}", str(exc)
    check = check_redis(url)
    if check.problem is None:
        return f"redis: {check.url} ({choice.origin}), answers", None
    line = f"redis: {check.url} ({choice.origin}), does not answer: {check.problem}"
    return line, f"cannot reach Redis at {check.url} ({choice.origin}): {check.problem}"
