"""The log file: appends under an exclusive lock, fsynced; reads stream line by line."""

from __future__ import annotations

import fcntl
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, BinaryIO, Final

from acme_audit._chain import GENESIS, canonical, lines_of, parse_line, seal

LOG_ENV: Final = "ACME_AUDIT_LOG"


class DamagedLogError(RuntimeError):
    """The log's last entry is unreadable, so nothing can be chained onto it."""


def resolve_log_path(explicit: str | Path | None = None) -> Path:
    """The given path, else ``$ACME_AUDIT_LOG``, else ``<tempdir>/acme/audit.jsonl``."""
    if explicit is not None:
        return Path(explicit)
    from_env = os.environ.get(LOG_ENV)
    return Path(from_env) if from_env else Path(tempfile.gettempdir()) / "acme" / "audit.jsonl"


@contextmanager
def _locked(path: Path) -> Iterator[BinaryIO]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a+b") as handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        try:
            yield handle
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def _last_line(handle: BinaryIO) -> bytes | None:
    """The file's last non-empty line, read backwards in blocks (the log may be large)."""
    end = handle.seek(0, os.SEEK_END)
    block, tail = 4096, b""
    position = end
    while position > 0:
        step = min(block, position)
        position -= step
        handle.seek(position)
        tail = handle.read(step) + tail
        stripped = tail.rstrip(b"\n")
        if b"\n" in stripped:
            return stripped.rsplit(b"\n", 1)[1]
    stripped = tail.rstrip(b"\n")
    return stripped or None


def append(
    path: Path, *, actor: str, action: str, target: str | None, data: dict[str, Any]
) -> dict[str, Any]:
    """Chain one entry onto the log and return it (with its seq and hash)."""
    with _locked(path) as handle:
        last_line = _last_line(handle)
        if last_line is None:
            seq, prev = 1, GENESIS
        else:
            last = parse_line(last_line)
            if last is None:
                raise DamagedLogError(
                    f"the last entry of {path} is unreadable; run audit.verify_chain to see "
                    "where the log was damaged"
                )
            seq, prev = last["seq"] + 1, last["hash"]
        entry = seal(
            {
                "seq": seq,
                "at": datetime.now(UTC).isoformat(timespec="microseconds"),
                "actor": actor,
                "action": action,
                "target": target,
                "data": data,
                "prev": prev,
            }
        )
        handle.seek(0, os.SEEK_END)
        handle.write(canonical(entry) + b"\n")
        handle.flush()
        os.fsync(handle.fileno())
    return entry


@contextmanager
def reading(path: Path) -> Iterator[Iterator[bytes]]:
    """The log's lines; an absent log reads as empty."""
    try:
        handle = path.open("rb")
    except FileNotFoundError:
        yield iter(())
        return
    with handle:
        yield lines_of(handle)


def last_entry(path: Path) -> dict[str, Any] | None:
    try:
        handle = path.open("rb")
    except FileNotFoundError:
        return None
    with handle:
        line = _last_line(handle)
    return None if line is None else parse_line(line)
